-- A member's push is claimed before it is sent: two jobs of one conversation that run at
-- once (two windows' jobs due together on a busy machine, a retried job beside its
-- successor) both see the member's old mark, and both would push the same message.
-- app_push_claim moves each member's mark forward to the seq the job is about to push and
-- answers the members whose mark it moved; a job pushes only those. The second job waits
-- on the row the first locked, finds the mark already there, and is answered nobody. A push
-- claimed and then lost (the process died before it went) is not sent again: a member is
-- never pushed a message twice.
CREATE FUNCTION app_push_claim(p_conv bigint, p_users bigint[], p_seqs bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF cardinality(p_users) > 1000 OR cardinality(p_users) <> cardinality(p_seqs) THEN
        RAISE EXCEPTION 'at most 1000 users, one seq each' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    INSERT INTO push_marks AS m (conversation_id, user_id, seq)
    SELECT p_conv, u.id, u.seq FROM unnest(p_users, p_seqs) AS u (id, seq)
    ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = EXCLUDED.seq WHERE m.seq < EXCLUDED.seq
    RETURNING m.user_id;
END $$;
ALTER FUNCTION app_push_claim(bigint, bigint[], bigint[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_claim(bigint, bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_claim(bigint, bigint[], bigint[]) TO messenger_app;
