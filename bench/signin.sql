-- The sign-in every Bearer request runs before its own work (store.DB.SignIn: app_sign_in,
-- then the user row), for pgbench as messenger_app. Not part of the send ceiling: run.sh
-- measures it separately (PGBENCH_SIGNIN=1) because at a thousand requests a second it is
-- half the transactions the database commits.
\set n random(1, :npairs)
SELECT sub, name, role FROM bench_pairs WHERE n = :n \gset
BEGIN;
SELECT user_id, org_id, zone_id
  FROM app_sign_in('dreamseed-portal', :sub, 'bench-org', 'bench-zone', :name, '', :role, 'ko', now()) \gset
SELECT set_config('app.user_id', :user_id::text, true), set_config('app.org_id', :org_id::text, true),
       set_config('app.zone_id', coalesce(:zone_id::text, ''), true);
SELECT id, sub, org_id, coalesce(zone_id, 0), name, email, role, locale, last_seen_at FROM users WHERE id = :user_id;
COMMIT;
