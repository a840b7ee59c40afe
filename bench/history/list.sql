-- make bench-history: the conversation list, as chat.Service.Conversations runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them
-- (sqlConversations: the page with its last messages and their read counts, through
-- the gate app_list_page; then fillMembers: sqlMembers, at most 5 of each group; list_ids are the
-- first page's conversations, which bench/history.sh reads beforehand as the list answers them).
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. -D list_ids=.. -D list_seqs=.. (bench/history.sh)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT id, kind, title, last_seq, last_message_at, updated_at, member_count, unread, muted, message_id, message_kind, body, client_msg_id, created_at, sender_id, sender_user_id, sender_sub, sender_name, sender_role, event, deleted, readers FROM app_list_page('9999-01-01'::timestamptz, 9223372036854775807, 51);
SELECT q.id, m.role, u.id, u.sub, u.org_id, coalesce(u.zone_id, 0), u.name, u.email, u.role, u.locale, u.last_seen_at FROM unnest(:list_ids::bigint[]) AS q (id) CROSS JOIN LATERAL (SELECT p.user_id, p.role, p.joined_at FROM conversation_participants p WHERE p.conversation_id = q.id AND p.left_at IS NULL ORDER BY p.joined_at, p.user_id LIMIT 5) m JOIN users u ON u.id = m.user_id ORDER BY q.id, m.joined_at, m.user_id;
COMMIT;
