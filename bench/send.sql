-- One send, as the server runs it when it waited for no other (chat.SendMessage → a batch
-- of one → store.InsertMessages, one store.DB.InTx transaction as the messenger_app role;
-- keep it in step with store/messages.go and sql/020_send_gate.sql), for pgbench:
--
--   pgbench -n -M prepared -c 16 -j 2 -T 30 -D npairs=N -f bench/send.sql -U messenger_app messenger_bench
--
-- bench_pairs (made by bench/run.sh) lists every (conversation, member) of the bench
-- conversations; a transaction picks one at random, as the load generator picks a random
-- user and one of their conversations. Its lookup rides along in the send's one statement,
-- so the round trips are the server's: BEGIN, app_send_batch (the gate: checks the
-- membership and the client_msg_id, raises the conversation's last_seq under its row lock,
-- inserts the message with that seq, raises the sender's watermark and answers the
-- members to tell), COMMIT. Under load the server sends
-- several messages in that one statement and transaction (group commit); this is the
-- transaction of one.
\set n random(1, :npairs)
BEGIN;
SELECT s.outcome, s.message_id, s.message_seq, s.message_at, s.zone_id, s.members
  FROM bench_pairs p,
       app_send_batch(ARRAY[p.conversation_id], ARRAY[p.user_id], ARRAY[p.org_id],
                      ARRAY[gen_random_uuid()], ARRAY['부하 시험 메시지 pgbench'], ARRAY[false]) s
 WHERE p.n = :n;
COMMIT;
