-- make bench-history: the newest page of the thread, as chat.Service.Messages runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. (bench/history.sh)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT 1 FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51;
\set before :last - 51
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:before]::bigint[]);
\set lowest :last - 50
SELECT r.conversation_id, r.user_id, r.last_read_seq FROM unnest(ARRAY[:thread]::bigint[], ARRAY[:lowest]::bigint[]) AS q (conversation_id, lowest) JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest;
COMMIT;
