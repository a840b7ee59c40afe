-- bench/archive.sh: a page across the boundary (before_seq 1 to 50 above it), as
-- store.MessagesBefore runs it: the hot statement answers the seqs above the boundary, the
-- same statement on messages_archive the rest of the 51 below the lowest hot seq; the
-- message before the page (messagesAt) hot, then archive; the marks.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D boundary=..
\set before :boundary + random(2, 51)
\set lowhot :boundary + 1
\set rest 51 - (:before - :lowhot)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT 1 FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51;
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :lowhot ORDER BY m.seq DESC LIMIT :rest;
\set lowest :before - 51
\set prev :before - 52
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:prev]::bigint[]);
SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq = ANY(ARRAY[:prev]::bigint[]);
SELECT r.conversation_id, r.user_id, r.last_read_seq FROM unnest(ARRAY[:thread]::bigint[], ARRAY[:lowest]::bigint[]) AS q (conversation_id, lowest) JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest;
COMMIT;
