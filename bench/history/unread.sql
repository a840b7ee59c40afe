-- make bench-history: the unread counts, as chat.Service.UnreadCounts runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. (bench/history.sh)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT c.id, c.last_seq - coalesce(r.last_read_seq, 0) FROM conversations c LEFT JOIN read_receipts r ON r.conversation_id = c.id AND r.user_id = :user WHERE c.id = ANY (ARRAY(SELECT conversation_id FROM conversation_participants WHERE user_id = :user AND left_at IS NULL)) AND c.last_seq > coalesce(r.last_read_seq, 0);
COMMIT;
