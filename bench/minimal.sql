-- The minimal durable send, for pgbench: the least any design of the send must do per
-- message. Number it under the conversation's row lock, store the row, commit (one WAL
-- flush). No sign-in, no row-level security, no membership check, no triggers, no
-- foreign keys, no idempotency lookup: the ceiling `make bench` divides the server's
-- figures by.
--
--   pgbench -n -M prepared -c 16 -j 2 -T 30 -D nhot=10 -f bench/minimal.sql messenger_bench
--
-- bench/run.sh makes bench_hot (the run's hot conversations: n, conversation_id, org_id,
-- a sender_id) and bench_minimal_messages (LIKE messages with its defaults, identity and
-- indexes: the same row, the same unique (conversation_id, seq) and (sender_id,
-- client_msg_id) indexes, without the triggers, foreign keys and policies), and runs it
-- as the database owner.
\set n random(1, :nhot)
BEGIN;
UPDATE conversations c SET last_seq = c.last_seq + 1
  FROM bench_hot h
 WHERE h.n = :n AND c.id = h.conversation_id
RETURNING c.id AS conv, c.org_id AS org, c.last_seq AS seq, h.sender_id AS uid \gset
INSERT INTO bench_minimal_messages (conversation_id, org_id, seq, sender_id, client_msg_id, kind, body)
VALUES (:conv, :org, :seq, :uid, gen_random_uuid(), 'text', '부하 시험 메시지 pgbench minimal')
RETURNING id, created_at;
COMMIT;
