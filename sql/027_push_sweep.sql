-- The push sweep: a send's transaction enqueues one job a window for every conversation
-- (the window's sweep), not one a conversation. When it runs, the sweep asks which members
-- of the conversations active since the window began might get a push, asks who of them is
-- live, and enqueues a conversation's own push job only where one of them is away. Most
-- messages are seen live, and then no conversation job runs at all.

-- app_push_sweep answers, for each conversation with a message since p_since, its active
-- members who might get a push when away: push on, not muted, not read up to its newest
-- message, not pushed it already, with a push subscription. The conversation's own job
-- decides the rest (keywords, quiet hours, live streams again). Jobs only.
CREATE FUNCTION app_push_sweep(p_since timestamptz) RETURNS TABLE (conversation_id bigint, user_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    SELECT c.id, p.user_id
      FROM organizations o
      -- Each organization's recent conversations through conversations_recent (org_id,
      -- last_message_at DESC): the ones active since p_since, however many there are in all.
      CROSS JOIN LATERAL (SELECT c.id, c.last_seq FROM conversations c
                           WHERE c.org_id = o.id AND c.last_message_at >= p_since) c
      JOIN conversation_participants p ON p.conversation_id = c.id AND p.left_at IS NULL
      JOIN users u ON u.id = p.user_id AND u.moved_at IS NULL
      LEFT JOIN read_receipts r ON r.conversation_id = c.id AND r.user_id = p.user_id
      LEFT JOIN user_settings s ON s.user_id = p.user_id
      LEFT JOIN push_marks m ON m.conversation_id = c.id AND m.user_id = p.user_id
     WHERE coalesce(r.last_read_seq, 0) < c.last_seq
       AND coalesce(m.seq, 0) < c.last_seq
       AND coalesce(s.push, true)
       AND (p.muted_until IS NULL OR p.muted_until <= now())
       AND EXISTS (SELECT 1 FROM push_subscriptions ps WHERE ps.user_id = p.user_id)
     ORDER BY c.id, p.user_id;
END $$;
ALTER FUNCTION app_push_sweep(timestamptz) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_sweep(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_sweep(timestamptz) TO messenger_app;
