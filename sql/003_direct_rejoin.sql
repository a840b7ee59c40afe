-- A direct conversation is one per pair of users, for good. When one of them left it and
-- either starts it again, both become active members again: the pair's row is invisible to
-- the one who left (row-level security), so finding it needs the gate.

CREATE FUNCTION app_reopen_direct(p_other bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT c.id INTO v_id
      FROM conversations c
     WHERE c.kind = 'direct' AND c.org_id = app_org_id()
       AND c.direct_user_lo = least(app_user_id(), p_other)
       AND c.direct_user_hi = greatest(app_user_id(), p_other);
    IF v_id IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE conversation_participants
       SET left_at = NULL, joined_at = CASE WHEN left_at IS NULL THEN joined_at ELSE now() END
     WHERE conversation_id = v_id AND user_id IN (app_user_id(), p_other) AND left_at IS NOT NULL;
    RETURN v_id;
END $$;

ALTER FUNCTION app_reopen_direct(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_reopen_direct(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_reopen_direct(bigint) TO messenger_app;
GRANT UPDATE ON conversation_participants TO messenger_gate;
CREATE POLICY gate_reopen ON conversation_participants FOR UPDATE TO messenger_gate USING (true) WITH CHECK (true);
