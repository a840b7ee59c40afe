-- Web push: what the metrics may know of push_subscriptions without seeing any row.

-- app_push_subscription_count answers how many subscriptions are stored (the gauge
-- messenger_push_subscriptions): jobs and metrics only, never inside a user's transaction.
CREATE FUNCTION app_push_subscription_count() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN (SELECT count(*) FROM push_subscriptions);
END $$;
ALTER FUNCTION app_push_subscription_count() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_subscription_count() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_subscription_count() TO messenger_app;

-- app_push_unread_totals answers each given user's unread messages across their
-- conversations (a push's app badge) and the conversations that have them, most recent
-- first, at most 50 (the service worker closes the notifications of the others); at most
-- 1000 users: jobs only.
CREATE FUNCTION app_push_unread_totals(p_users bigint[])
RETURNS TABLE (user_id bigint, unread bigint, conversations bigint[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF cardinality(p_users) > 1000 THEN
        RAISE EXCEPTION 'at most 1000 users' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT p.user_id, sum(c.last_seq - coalesce(r.last_read_seq, 0))::bigint,
           (array_agg(p.conversation_id ORDER BY c.last_message_at DESC NULLS LAST, p.conversation_id DESC))[1:50]
      FROM conversation_participants p
      JOIN conversations c ON c.id = p.conversation_id
      LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
     WHERE p.user_id = ANY (p_users) AND p.left_at IS NULL AND c.last_seq > coalesce(r.last_read_seq, 0)
     GROUP BY p.user_id;
END $$;
ALTER FUNCTION app_push_unread_totals(bigint[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_unread_totals(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_unread_totals(bigint[]) TO messenger_app;
