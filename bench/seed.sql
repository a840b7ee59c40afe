-- The bench's users and conversations without the server, for pgbench alone
-- (SKIP_LOADGEN=1, or when the load generator could not create them): the layout loadgen
-- makes — users bench-user-0..N-1 of bench-org/bench-zone, direct pairs (0,1), (2,3), ...
-- and groups of :group_size consecutive users. Run as a superuser (row-level security does
-- not apply), after the server's migrations:
--
--   psql -v users=100 -v group_size=10 -f bench/seed.sql messenger_bench
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO organizations (portal_id) VALUES ('bench-org') ON CONFLICT (portal_id) DO NOTHING;
INSERT INTO zones (org_id, portal_id)
SELECT id, 'bench-zone' FROM organizations WHERE portal_id = 'bench-org'
ON CONFLICT (org_id, portal_id) DO NOTHING;

INSERT INTO users (issuer, sub, org_id, zone_id, name, role, locale)
SELECT 'dreamseed-portal', 'bench-user-' || i, z.org_id, z.id, '벤치 사용자 ' || i,
       CASE WHEN i % 10 = 0 THEN 'teacher' ELSE 'student' END, 'ko'
  FROM generate_series(0, :users - 1) i
  JOIN zones z ON z.portal_id = 'bench-zone'
  JOIN organizations o ON o.id = z.org_id AND o.portal_id = 'bench-org'
ON CONFLICT (issuer, sub) WHERE moved_at IS NULL DO NOTHING;

CREATE TEMP TABLE bench_users AS
SELECT id, org_id, substring(sub FROM 12)::int AS i FROM users
 WHERE issuer = 'dreamseed-portal' AND sub ~ '^bench-user-[0-9]+$' AND substring(sub FROM 12)::int < :users;

WITH pairs AS (
    SELECT a.org_id, a.id AS a, b.id AS b FROM bench_users a JOIN bench_users b ON b.i = a.i + 1 WHERE a.i % 2 = 0
), made AS (
    INSERT INTO conversations (org_id, kind, direct_user_lo, direct_user_hi, created_by)
    SELECT org_id, 'direct', least(a, b), greatest(a, b), a FROM pairs
    RETURNING id, org_id, direct_user_lo, direct_user_hi
)
INSERT INTO conversation_participants (conversation_id, user_id, org_id)
SELECT id, direct_user_lo, org_id FROM made
UNION ALL
SELECT id, direct_user_hi, org_id FROM made;

WITH made AS (
    INSERT INTO conversations (org_id, kind, title, created_by)
    SELECT u.org_id, 'group', '부하 시험 ' || (g + 1) || '반', u.id
      FROM generate_series(0, :users / :group_size - 1) g
      JOIN bench_users u ON u.i = g * :group_size
    RETURNING id, org_id, created_by
)
INSERT INTO conversation_participants (conversation_id, user_id, org_id, role)
SELECT made.id, m.id, made.org_id, CASE WHEN m.id = made.created_by THEN 'admin' ELSE 'member' END
  FROM made
  JOIN bench_users c ON c.id = made.created_by
  CROSS JOIN generate_series(0, :group_size - 1) j
  JOIN bench_users m ON m.i = (c.i + j) % :users;
COMMIT;
