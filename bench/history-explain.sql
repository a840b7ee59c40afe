-- EXPLAIN (ANALYZE, BUFFERS) of the five reads of a long history (make bench-history), as
-- the application's role with the identity settings store.DB.InTx gives a transaction:
-- the statements of store/messages.go, store/conversations.go (Conversations,
-- UnreadCounts), and the page's read marks (fillReadCounts). Each page runs once unexplained
-- first, so that the plan shown is a warm one.
--
--   psql -v user=1 -v org=1 -v zone=1 -v thread=1 -v last=N -v before=N -v after=N -f bench/history-explain.sql DB
\set ON_ERROR_STOP on
\pset pager off
SET ROLE messenger_app;
BEGIN;
SELECT :last - 50 AS newest_lowest, :before - 51 AS back_lowest, :after + 1 AS after_lowest \gset
SELECT set_config('app.user_id', :'user', true), set_config('app.org_id', :'org', true), set_config('app.zone_id', :'zone', true) \g /dev/null

\set page 'SELECT m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, \'\'), coalesce(u.name, \'\'), coalesce(u.role, \'\'), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id'
\set marks 'SELECT r.conversation_id, r.user_id, r.last_read_seq FROM unnest(ARRAY[:thread]::bigint[], ARRAY[:lowest]::bigint[]) AS q (conversation_id, lowest) JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest'

\echo '== newest page: MessagesBefore(thread, 0, 51)'
:page WHERE m.conversation_id = :thread AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page WHERE m.conversation_id = :thread AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51;
\echo '-- its read counts: the watermarks at or past the page (fillReadCounts)'
\set lowest :newest_lowest
EXPLAIN (ANALYZE, BUFFERS) :marks;

\echo '== page 100,000 back: MessagesBefore(thread, before, 51)'
:page WHERE m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page WHERE m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51;
\echo '-- its read counts'
\set lowest :back_lowest
EXPLAIN (ANALYZE, BUFFERS) :marks;

\echo '== after_seq catch-up: MessagesAfter(thread, after, 51)'
:page WHERE m.conversation_id = :thread AND m.seq > :after ORDER BY m.seq ASC LIMIT 51 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page WHERE m.conversation_id = :thread AND m.seq > :after ORDER BY m.seq ASC LIMIT 51;
\echo '-- its read counts'
\set lowest :after_lowest
EXPLAIN (ANALYZE, BUFFERS) :marks;

\set list 'SELECT c.id, c.kind, c.title, c.last_seq, c.last_message_at, c.updated_at, c.last_seq - coalesce(r.last_read_seq, 0), coalesce(p.muted_until > now(), false) FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id WHERE p.user_id = :user AND p.left_at IS NULL AND c.id = ANY (ARRAY(SELECT conversation_id FROM conversation_participants WHERE user_id = :user AND left_at IS NULL)) AND (c.last_message_at, c.id) < (\'9999-01-01\'::timestamptz, 9223372036854775807) ORDER BY c.last_message_at DESC, c.id DESC LIMIT 51'
\echo '== conversation list: Conversations(nil, 51)'
:list \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :list;

\set unread 'SELECT c.id, c.last_seq - coalesce(r.last_read_seq, 0) FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id WHERE p.user_id = :user AND p.left_at IS NULL AND c.id = ANY (ARRAY(SELECT conversation_id FROM conversation_participants WHERE user_id = :user AND left_at IS NULL)) AND c.last_seq > coalesce(r.last_read_seq, 0)'
\echo '== unread counts: UnreadCounts()'
:unread \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :unread;
COMMIT;
