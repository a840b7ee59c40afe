-- bench/archive.sh: a page deep in the archive (before_seq well below the boundary), as
-- chat.Service.Messages runs it on an archived conversation (store.MessagesBefore): the hot
-- statement finds nothing below the boundary, the same statement on messages_archive reads
-- the page; the message before it (runs: messagesAt) likewise, hot then archive; the marks.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D boundary=..
\set before random(1000, :boundary - 1000)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT 1 FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51;
\set lowest :before - 51
\set prev :before - 52
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:prev]::bigint[]);
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:prev]::bigint[]);
SELECT r.conversation_id, r.user_id, r.last_read_seq FROM unnest(ARRAY[:thread]::bigint[], ARRAY[:lowest]::bigint[]) AS q (conversation_id, lowest) JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest;
COMMIT;
