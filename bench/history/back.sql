-- make bench-history: a page about 100,000 messages back (before_seq), as chat.Service.Messages runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its one statement as store/page.go has it (sqlPageBefore:
-- the membership, the page with the message before it, the read marks).
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. (bench/history.sh)
\set before random(:last - 101000, :last - 100000)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
WITH mem AS (SELECT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = :thread AND p.user_id = :user AND p.left_at IS NULL) AS ok), page AS (SELECT m.id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at, coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event, m.deleted_at IS NOT NULL FROM messages m LEFT JOIN users u ON u.id = m.sender_id WHERE (SELECT ok FROM mem) AND m.conversation_id = :thread AND m.seq < :before ORDER BY m.seq DESC LIMIT 51), marks AS (SELECT coalesce(array_agg(r.user_id), '{}') AS users, coalesce(array_agg(r.last_read_seq), '{}') AS seqs FROM read_receipts r WHERE r.conversation_id = :thread AND r.last_read_seq >= (SELECT min(seq) FROM page)) SELECT true, mem.ok, marks.users, marks.seqs, 0, 0, '', '', NULL, now(), 0, 0, '', '', '', NULL, false FROM mem, marks UNION ALL SELECT false, true, NULL, NULL, page.* FROM page;
COMMIT;
