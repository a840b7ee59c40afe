-- One send, as the server runs it (store.InsertMessage inside chat.SendMessage, one
-- store.DB.InTx transaction as the messenger_app role; keep it in step with
-- store/messages.go), for pgbench:
--
--   pgbench -n -M extended -c 16 -j 2 -T 30 -D npairs=N -f bench/send.sql -U messenger_app messenger_bench
--
-- bench_pairs (made by bench/run.sh) lists every (conversation, member) of the bench
-- conversations; a transaction picks one at random, as the load generator picks a random
-- user and one of their conversations. Its lookup rides along in the statement that sets
-- the row-level security settings, so the round trips are the server's.
\set n random(1, :npairs)
BEGIN;
SELECT set_config('app.user_id', user_id::text, true) AS set_user,
       set_config('app.org_id', org_id::text, true) AS set_org,
       set_config('app.zone_id', coalesce(zone_id::text, ''), true) AS set_zone,
       conversation_id AS conv, user_id AS uid, org_id AS org, gen_random_uuid() AS cmid
  FROM bench_pairs WHERE n = :n \gset
-- InsertMessage, first statement: was this client_msg_id sent already, the conversation's
-- kind and zone, the membership check, and who is in it (the recipients of the event)
SELECT (SELECT id FROM messages WHERE sender_id = :uid AND client_msg_id = :cmid::uuid),
       c.kind, coalesce(c.zone_id, 0),
       EXISTS (SELECT 1 FROM conversation_participants
                WHERE conversation_id = :conv AND user_id = :uid AND left_at IS NULL FOR SHARE),
       CASE WHEN c.kind = 'announcement' THEN '{}'
            ELSE (SELECT coalesce(array_agg(p.user_id ORDER BY p.user_id), '{}')
                    FROM conversation_participants p
                   WHERE p.conversation_id = :conv AND p.left_at IS NULL) END
  FROM conversations c WHERE c.id = :conv;
-- second statement: the message (a trigger checks the sender may post there, numbers it
-- under the conversation row lock and raises the sender's own read watermark)
INSERT INTO messages (conversation_id, org_id, sender_id, client_msg_id, kind, body)
VALUES (:conv, :org, :uid, :cmid::uuid, 'text', '부하 시험 메시지 pgbench ' || :cmid)
RETURNING id, seq, created_at;
COMMIT;
