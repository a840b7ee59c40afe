-- The pages bench's data (make bench-pages): a teacher, bench-teacher of bench-org /
-- bench-zone, in :convs conversations — one group, the thread, of :members members with
-- :thread_messages messages, and direct conversations with parents, each with
-- :direct_messages messages, the last of them with none — as parents and a teacher write
-- them. Run as the database owner, after the server's migrations (the numbering trigger
-- numbers the messages as it does for any owner insert):
--
--   psql -v convs=50 -v members=10 -v thread_messages=110 -v direct_messages=3 -f bench/pages-seed.sql messenger_pages_bench
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO organizations (portal_id) VALUES ('bench-org') ON CONFLICT (portal_id) DO NOTHING;
INSERT INTO zones (org_id, portal_id)
SELECT id, 'bench-zone' FROM organizations WHERE portal_id = 'bench-org'
ON CONFLICT (org_id, portal_id) DO NOTHING;

INSERT INTO users (issuer, sub, org_id, zone_id, name, role, locale)
SELECT 'dreamseed-portal', 'bench-teacher', z.org_id, z.id, '김민준 선생님', 'teacher', 'ko'
  FROM zones z JOIN organizations o ON o.id = z.org_id AND o.portal_id = 'bench-org' WHERE z.portal_id = 'bench-zone'
UNION ALL
SELECT 'dreamseed-portal', 'bench-parent-' || i, z.org_id, z.id,
       (ARRAY['이', '박', '최', '정', '강', '조', '윤', '장'])[1 + i % 8] ||
       (ARRAY['서연', '도윤', '하은', '시우', '지우', '서준', '하윤', '예준', '지민', '주원'])[1 + i % 10] || ' 보호자',
       'parent', 'ko'
  FROM generate_series(1, :convs) i
  JOIN zones z ON z.portal_id = 'bench-zone'
  JOIN organizations o ON o.id = z.org_id AND o.portal_id = 'bench-org'
ON CONFLICT (issuer, sub) WHERE moved_at IS NULL DO NOTHING;

CREATE TEMP TABLE pb_users AS
SELECT id, org_id, CASE WHEN sub = 'bench-teacher' THEN 0 ELSE substring(sub FROM 14)::int END AS i
  FROM users WHERE issuer = 'dreamseed-portal' AND (sub = 'bench-teacher' OR sub ~ '^bench-parent-[0-9]+$');

-- The thread: a group of the teacher and :members - 1 parents.
CREATE TEMP TABLE pb_thread AS
WITH made AS (
    INSERT INTO conversations (org_id, kind, title, created_by)
    SELECT org_id, 'group', '3학년 2반 학부모', id FROM pb_users WHERE i = 0
    RETURNING id, org_id, created_by
)
SELECT * FROM made;
INSERT INTO conversation_participants (conversation_id, user_id, org_id, role)
SELECT t.id, u.id, t.org_id, CASE WHEN u.i = 0 THEN 'admin' ELSE 'member' END
  FROM pb_thread t JOIN pb_users u ON u.i < :members;

-- Direct conversations: the teacher with parents 1 .. :convs - 1.
CREATE TEMP TABLE pb_direct AS
WITH made AS (
    INSERT INTO conversations (org_id, kind, direct_user_lo, direct_user_hi, created_by)
    SELECT t.org_id, 'direct', least(t.id, p.id), greatest(t.id, p.id), t.id
      FROM pb_users t JOIN pb_users p ON p.i BETWEEN 1 AND :convs - 1
     WHERE t.i = 0
    RETURNING id, org_id, direct_user_lo, direct_user_hi
)
SELECT made.*, row_number() OVER (ORDER BY id) AS n FROM made;
INSERT INTO conversation_participants (conversation_id, user_id, org_id)
SELECT id, direct_user_lo, org_id FROM pb_direct
UNION ALL
SELECT id, direct_user_hi, org_id FROM pb_direct;

-- The messages, oldest first, one a minute, in each conversation's own order.
INSERT INTO messages (conversation_id, org_id, sender_id, client_msg_id, kind, body, created_at)
SELECT t.id, t.org_id, s.id, gen_random_uuid(), 'text',
       (ARRAY['안녕하세요, 내일 현장학습 준비물 안내드립니다. 도시락과 물, 우비를 챙겨 주세요.',
              '네, 알겠습니다. 감사합니다!',
              '혹시 출발 시간이 몇 시인가요? 아이가 아침에 병원에 들렀다 가야 해서요.',
              '8시 40분까지 교실로 오면 됩니다. 늦으면 담임에게 바로 연락 주세요.',
              '오늘 숙제는 수학 익힘책 24~25쪽입니다. https://school.example/notice/2026 공지도 확인해 주세요.'])[1 + k % 5] || ' (' || k || ')',
       now() - make_interval(mins => :thread_messages - k)
  FROM pb_thread t
  CROSS JOIN generate_series(1, :thread_messages) k
  JOIN pb_users s ON s.i = k % :members
 ORDER BY k;
INSERT INTO messages (conversation_id, org_id, sender_id, client_msg_id, kind, body, created_at)
SELECT d.id, d.org_id, CASE WHEN k % 2 = 0 THEN d.direct_user_lo ELSE d.direct_user_hi END, gen_random_uuid(), 'text',
       (ARRAY['선생님, 오늘 아이가 조금 아파서 조퇴해도 될까요?',
              '네, 보건실에 들렀다가 보내겠습니다. 내일 상태 알려 주세요.',
              '감사합니다. 내일 아침에 연락드릴게요.'])[1 + k % 3],
       now() - make_interval(mins => (1000 + d.n * 10 - k)::int)
  FROM pb_direct d
  CROSS JOIN generate_series(1, :direct_messages) k
 WHERE d.n < :convs - 1
 ORDER BY d.id, k;
-- What the teacher has read: everything but the last three of the thread and the newest
-- direct conversations' last message, so the list shows unread counts.
INSERT INTO read_receipts (conversation_id, user_id, org_id, last_read_seq)
SELECT c.id, u.id, c.org_id, greatest(c.last_seq - CASE WHEN c.kind = 'group' THEN 3 WHEN c.id % 4 = 0 THEN 1 ELSE 0 END, 0)
  FROM conversations c
  JOIN conversation_participants p ON p.conversation_id = c.id
  JOIN pb_users u ON u.id = p.user_id AND u.i = 0
ON CONFLICT (conversation_id, user_id) DO NOTHING;
COMMIT;
ANALYZE;
SELECT (SELECT id FROM pb_thread) AS thread_id,
       (SELECT id FROM pb_direct WHERE n = :convs - 1) AS empty_id,
       (SELECT count(*) FROM conversation_participants p JOIN pb_users u ON u.id = p.user_id AND u.i = 0) AS teacher_convs
\gset pb_
\echo thread :pb_thread_id empty :pb_empty_id conversations :pb_teacher_convs
