-- Coalesced web push: one job per conversation and delay window pushes each away member
-- the conversation's newest message they have not read. push_marks remembers, per member
-- of a conversation, the newest message already pushed to them, so that the job run again
-- (a retry, a forged copy) never pushes the same message twice. The app role has no
-- privilege on it: only the job's gates below read and write it.
CREATE TABLE push_marks (
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL,
    seq             bigint NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
REVOKE ALL ON push_marks FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON push_marks TO messenger_gate;
ALTER TABLE push_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE push_marks FORCE ROW LEVEL SECURITY;
CREATE POLICY gate_all ON push_marks TO messenger_gate USING (true) WITH CHECK (true);

-- app_push_marks answers the newest seq pushed to each member of a conversation who has
-- had a push there: jobs only.
CREATE FUNCTION app_push_marks(p_conv bigint) RETURNS TABLE (user_id bigint, seq bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY SELECT m.user_id, m.seq FROM push_marks m WHERE m.conversation_id = p_conv;
END $$;
ALTER FUNCTION app_push_marks(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_marks(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_marks(bigint) TO messenger_app;

-- app_push_marked records that each user was pushed the conversation's message seq (never
-- moving a mark back); at most 1000 users: jobs only.
CREATE FUNCTION app_push_marked(p_conv bigint, p_users bigint[], p_seqs bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF cardinality(p_users) > 1000 OR cardinality(p_users) <> cardinality(p_seqs) THEN
        RAISE EXCEPTION 'at most 1000 users, one seq each' USING ERRCODE = '22023';
    END IF;
    INSERT INTO push_marks AS m (conversation_id, user_id, seq)
    SELECT p_conv, u.id, u.seq FROM unnest(p_users, p_seqs) AS u (id, seq)
    ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = GREATEST(m.seq, EXCLUDED.seq);
END $$;
ALTER FUNCTION app_push_marked(bigint, bigint[], bigint[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_marked(bigint, bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_marked(bigint, bigint[], bigint[]) TO messenger_app;
