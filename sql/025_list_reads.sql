-- The conversation list's reads (docs/performance.md, "The conversation list through two
-- gates").
--
-- app_list_page answers a page of the caller's conversation list: their conversations
-- before the cursor (p_before_at, p_before_id), p_limit of them, newest activity first,
-- each with the caller's unread count and mute, its last message (NULL message_id: none)
-- with its sender, and that message's read count (the members other than its sender whose
-- watermark reached it). As the application's role the same reads passed the policies of
-- five tables: the visibility function once for each (the caller's 500 memberships each
-- time) and its filter on every row read, 500 conversations to sort and 3,525 watermarks
-- to count for a teacher's first page: 3.4 ms of the statement's, 1.4 ms here. The caller
-- is app.user_id / app.org_id, as every gate's; what it reads is bounded by the caller's
-- own active memberships in their organization (as the list always was: never a zone's
-- announcements the caller is not a member of), and within them by what the policies
-- would show them: the conversations, their last messages and senders of the caller's
-- organization, and the watermarks of those conversations (a member's to read).
CREATE FUNCTION app_list_page(p_before_at timestamptz, p_before_id bigint, p_limit integer)
RETURNS TABLE (id bigint, kind text, title text, last_seq bigint, last_message_at timestamptz,
               updated_at timestamptz, member_count integer, unread bigint, muted boolean,
               message_id bigint, message_kind text, body text, client_msg_id uuid, created_at timestamptz,
               sender_id bigint, sender_user_id bigint, sender_sub text, sender_name text, sender_role text,
               event jsonb, deleted boolean, readers bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    v_user bigint := app_user_id();
    v_org  bigint := app_org_id();
BEGIN
    RETURN QUERY
        WITH c AS MATERIALIZED (
            SELECT c.id, c.kind, c.title, c.last_seq, c.last_message_at, c.updated_at, c.member_count
              FROM conversations c
             WHERE c.id = ANY (ARRAY(SELECT p.conversation_id FROM conversation_participants p
                                      WHERE p.user_id = v_user AND p.org_id = v_org AND p.left_at IS NULL))
               AND c.org_id = v_org
               AND (c.last_message_at, c.id) < (p_before_at, p_before_id)
             ORDER BY c.last_message_at DESC, c.id DESC
             LIMIT p_limit)
        SELECT c.id, c.kind, c.title, c.last_seq, c.last_message_at, c.updated_at, c.member_count,
               c.last_seq - coalesce((SELECT r.last_read_seq FROM read_receipts r
                                       WHERE r.conversation_id = c.id AND r.user_id = v_user), 0),
               coalesce((SELECT p.muted_until > now() FROM conversation_participants p
                          WHERE p.conversation_id = c.id AND p.user_id = v_user AND p.left_at IS NULL), false),
               m.id, coalesce(m.kind, ''), coalesce(m.body, ''), m.client_msg_id, coalesce(m.created_at, c.last_message_at),
               coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''),
               m.event, coalesce(m.deleted_at IS NOT NULL, false),
               CASE WHEN m.id IS NULL THEN 0::bigint ELSE
                   (SELECT count(*) FROM read_receipts r
                     WHERE r.conversation_id = c.id AND r.last_read_seq >= m.seq
                       AND r.user_id <> coalesce(m.sender_id, 0) AND r.org_id = v_org) END
          FROM c
          LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq AND m.org_id = v_org
          LEFT JOIN users u ON u.id = m.sender_id AND u.org_id = v_org
         ORDER BY c.last_message_at DESC, c.id DESC;
END $$;
ALTER FUNCTION app_list_page(timestamptz, bigint, integer) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_list_page(timestamptz, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_list_page(timestamptz, bigint, integer) TO messenger_app;

-- app_list_members answers the first p_each members (in the order they joined) of each
-- conversation of p_convs the caller is an active member of, with their users: the list's
-- first members (store.ListMembers). As the application's role the same read passed the
-- policies of conversation_participants and users (the visibility function for each, and
-- its filter on each of the 216 rows): 1.1 ms, about 0.3 less here (docs/performance.md).
-- A conversation the caller is not an active member of in their organization answers
-- nothing.
CREATE FUNCTION app_list_members(p_convs bigint[], p_each integer)
RETURNS TABLE (conversation_id bigint, role text, user_id bigint, sub text, org_id bigint, zone_id bigint,
               name text, email text, user_role text, locale text, last_seen_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    v_user bigint := app_user_id();
    v_org  bigint := app_org_id();
BEGIN
    RETURN QUERY
        SELECT q.id, m.role, u.id, u.sub, u.org_id, coalesce(u.zone_id, 0), u.name, u.email, u.role, u.locale, u.last_seen_at
          FROM unnest(p_convs) AS q (id)
          JOIN conversation_participants me ON me.conversation_id = q.id AND me.user_id = v_user
                                           AND me.org_id = v_org AND me.left_at IS NULL
         CROSS JOIN LATERAL (SELECT p.user_id, p.role, p.joined_at FROM conversation_participants p
                              WHERE p.conversation_id = q.id AND p.left_at IS NULL
                              ORDER BY p.joined_at, p.user_id LIMIT p_each) m
          JOIN users u ON u.id = m.user_id AND u.org_id = v_org
         ORDER BY q.id, m.joined_at, m.user_id;
END $$;
ALTER FUNCTION app_list_members(bigint[], integer) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_list_members(bigint[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_list_members(bigint[], integer) TO messenger_app;
