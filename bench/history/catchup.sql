-- make bench-history: the after_seq catch-up of a client that missed 1 to 50 messages, as chat.Service.Messages runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. (bench/history.sh)
\set after random(:last - 50, :last - 1)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT 1 FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq > :after ORDER BY m.seq ASC LIMIT 51;
\set lowest :after + 1
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:after]::bigint[]);
SELECT r.conversation_id, r.user_id, r.last_read_seq FROM unnest(ARRAY[:thread]::bigint[], ARRAY[:lowest]::bigint[]) AS q (conversation_id, lowest) JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest;
COMMIT;
