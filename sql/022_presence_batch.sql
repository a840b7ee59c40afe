-- Users gone offline, stored and looked up in batches: when thousands of streams close at
-- once (a school's network going down), one call stores every one's last_seen_at and
-- answers whom to tell, instead of a transaction and a contacts query per user.
--
-- app_presence_offline records that each of p_users (at most 10000, the ones the caller's
-- realtime engine reports offline) was last seen at p_at, never later than now and never
-- earlier than what is stored, and answers each one's portal id, last_seen_at as stored and
-- contacts: the users
-- who share an active conversation with them, announcements aside (as store.Contacts).
-- It acts as nobody (the presence batcher and the sweeper of lapsed presence), so it is
-- refused inside a user's transaction; it writes nothing but last_seen_at. The rows are
-- locked in id order, so two processes' batches cannot deadlock.
CREATE FUNCTION app_presence_offline(p_users bigint[], p_at timestamptz)
RETURNS TABLE (user_id bigint, sub text, last_seen_at timestamptz, contacts bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF cardinality(p_users) > 10000 THEN
        RAISE EXCEPTION 'at most 10000 users' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM users u WHERE u.id = ANY (p_users) ORDER BY u.id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH seen AS (
        UPDATE users u
           SET last_seen_at = GREATEST(coalesce(u.last_seen_at, '-infinity'), LEAST(p_at, now()))
         WHERE u.id = ANY (p_users)
        RETURNING u.id, u.sub, u.last_seen_at
    )
    SELECT s.id, s.sub, s.last_seen_at,
           coalesce(array_agg(DISTINCT other.user_id) FILTER (WHERE other.user_id IS NOT NULL), '{}'::bigint[])
      FROM seen s
      LEFT JOIN conversation_participants mine ON mine.user_id = s.id AND mine.left_at IS NULL
      LEFT JOIN conversations c ON c.id = mine.conversation_id AND c.kind <> 'announcement'
      LEFT JOIN conversation_participants other
             ON other.conversation_id = c.id AND other.left_at IS NULL AND other.user_id <> s.id
     GROUP BY s.id, s.sub, s.last_seen_at;
END $$;
ALTER FUNCTION app_presence_offline(bigint[], timestamptz) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_presence_offline(bigint[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_presence_offline(bigint[], timestamptz) TO messenger_app;

-- app_presence_lapsed (one lapsed user at a time) is replaced: lapses join the same batches.
DROP FUNCTION app_presence_lapsed(bigint, timestamptz);
