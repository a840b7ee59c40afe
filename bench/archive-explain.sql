-- EXPLAIN (ANALYZE, BUFFERS) of the history pages of an archived thread (bench/archive.sh), as
-- the application's role with the identity settings store.DB.InTx gives a transaction:
-- store.MessagesBefore's statements. The newest page's plan names messages only; a page
-- across the boundary runs the hot statement, then the same on messages_archive for the
-- rest; a page in the archive finds nothing hot and reads the archive. Each runs once
-- unexplained first, so that the plan shown is a warm one.
--
--   psql -v user=1 -v org=1 -v zone=1 -v thread=1 -v boundary=N -f bench/archive-explain.sql DB
\set ON_ERROR_STOP on
\pset pager off
SET ROLE messenger_app;
BEGIN;
SELECT :boundary + 26 AS across, :boundary + 1 AS lowhot, :boundary / 2 AS cold \gset
SELECT set_config('app.user_id', :'user', true), set_config('app.org_id', :'org', true), set_config('app.zone_id', :'zone', true) \g /dev/null

\set cols 'm.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, \'\'), coalesce(u.name, \'\'), coalesce(u.role, \'\'), m.event, m.deleted_at IS NOT NULL'

\echo '== newest page: the hot statement alone'
SELECT :cols FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) SELECT :cols FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51;

\echo '== a page across the boundary (before_seq boundary + 26): hot, then the archive for the 26 below the lowest hot seq'
EXPLAIN (ANALYZE, BUFFERS) SELECT :cols FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :across ORDER BY m.seq DESC LIMIT 51;
SELECT :cols FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :lowhot ORDER BY m.seq DESC LIMIT 26 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) SELECT :cols FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :lowhot ORDER BY m.seq DESC LIMIT 26;

\echo '== a page in the archive (before_seq boundary / 2): hot finds nothing, the archive the page'
EXPLAIN (ANALYZE, BUFFERS) SELECT :cols FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :cold ORDER BY m.seq DESC LIMIT 51;
SELECT :cols FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :cold ORDER BY m.seq DESC LIMIT 51 \g /dev/null
EXPLAIN (ANALYZE, BUFFERS) SELECT :cols FROM messages_archive m LEFT JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = :thread AND m.seq < :cold ORDER BY m.seq DESC LIMIT 51;
ROLLBACK;
