-- make bench-history: the conversation list, as chat.Service.Conversations runs it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them
-- (sqlConversations: the page with its last messages and their read counts, through
-- the gate app_list_page; then fillMembers: sqlListMembers, at most 5 of each group, through the gate app_list_members; list_ids are the
-- first page's conversations, which bench/history.sh reads beforehand as the list answers them).
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. -D list_ids=.. -D list_seqs=.. (bench/history.sh)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT id, kind, title, last_seq, last_message_at, updated_at, member_count, unread, muted, message_id, message_kind, body, client_msg_id, created_at, sender_id, sender_user_id, sender_sub, sender_name, sender_role, event, deleted, readers FROM app_list_page('9999-01-01'::timestamptz, 9223372036854775807, 51);
SELECT * FROM app_list_members(:list_ids::bigint[], 5);
COMMIT;
