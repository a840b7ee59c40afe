-- EXPLAIN (ANALYZE, BUFFERS) of the five reads of a long history (make bench-history), as
-- the application's role with the identity settings store.DB.InTx gives a transaction:
-- a history page's one statement (store/page.go: the membership, the page with the message
-- before it, the read marks), the list's statements (store/conversations.go:
-- sqlConversations through app_list_page, then fillMembers' sqlListMembers through app_list_members) and
-- the unread counts. Each runs once unexplained first, so that the plan shown is a warm one.
--
--   psql -v user=1 -v org=1 -v zone=1 -v thread=1 -v last=N -v before=N -v after=N -v list_ids='{..}' -v list_seqs='{..}' -f bench/history-explain.sql DB
\set ON_ERROR_STOP on
\pset pager off
SET ROLE messenger_app;
BEGIN;
SELECT set_config('app.user_id', :'user', true), set_config('app.org_id', :'org', true), set_config('app.zone_id', :'zone', true) \g /dev/null

\echo '== newest page: MessagePage(thread, before 0, 50): sqlPageBefore'
\set page_before 'WITH mem AS (SELECT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL) AS ok), page AS (SELECT m.id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, \'\'), coalesce(u.name, \'\'), coalesce(u.role, \'\'), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE (SELECT ok FROM mem) AND m.conversation_id = :thread AND m.seq < :seq ORDER BY m.seq DESC LIMIT :n), marks AS (SELECT coalesce(array_agg(r.user_id), \'{}\') AS users, coalesce(array_agg(r.last_read_seq), \'{}\') AS seqs FROM read_receipts r WHERE r.conversation_id = :thread AND r.last_read_seq >= (SELECT min(seq) FROM page)) SELECT true, mem.ok, marks.users, marks.seqs, 0, 0, \'\', \'\', NULL, now(), 0, 0, \'\', \'\', \'\', NULL, false FROM mem, marks UNION ALL SELECT false, true, NULL, NULL, page.* FROM page'
\set page_from 'WITH mem AS (SELECT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL) AS ok), page AS (SELECT m.id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, \'\'), coalesce(u.name, \'\'), coalesce(u.role, \'\'), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE (SELECT ok FROM mem) AND m.conversation_id = :thread AND m.seq >= :seq ORDER BY m.seq ASC LIMIT :n), marks AS (SELECT coalesce(array_agg(r.user_id), \'{}\') AS users, coalesce(array_agg(r.last_read_seq), \'{}\') AS seqs FROM read_receipts r WHERE r.conversation_id = :thread AND r.last_read_seq >= (SELECT min(seq) FROM page)) SELECT true, mem.ok, marks.users, marks.seqs, 0, 0, \'\', \'\', NULL, now(), 0, 0, \'\', \'\', \'\', NULL, false FROM mem, marks UNION ALL SELECT false, true, NULL, NULL, page.* FROM page'
\set seq 9223372036854775807
\set n 51
:page_before \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page_before;

\echo '== page 100,000 back: MessagePage(thread, before, 50): sqlPageBefore'
\set seq :before
:page_before \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page_before;

\echo '== after_seq catch-up: MessagePage(thread, after, 50): sqlPageFrom, the message before the page with it'
\set seq :after
\set n 52
:page_from \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :page_from;

\echo '== conversation list: Conversations(nil, 51): sqlConversations, the gate app_list_page (its plan is its own: a Function Scan here)'
\set list 'SELECT * FROM app_list_page(\'9999-01-01\'::timestamptz, 9223372036854775807, 51)'
:list \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :list;
\echo '-- its members, the first 5 of each: sqlListMembers, the gate app_list_members (a Function Scan)'
\set members 'SELECT * FROM app_list_members(:\'list_ids\'::bigint[], 5)'
:members \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :members;
\set unread 'SELECT c.id, c.last_seq - coalesce(r.last_read_seq, 0) FROM conversations c LEFT JOIN read_receipts r ON r.conversation_id = c.id AND r.user_id = :user WHERE c.id = ANY (ARRAY(SELECT conversation_id FROM conversation_participants WHERE user_id = :user AND left_at IS NULL)) AND c.last_seq > coalesce(r.last_read_seq, 0)'
\echo '== unread counts: UnreadCounts(): sqlUnreadCounts'
:unread \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) :unread;
COMMIT;
