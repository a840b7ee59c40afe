-- A user whose connections lapsed (their server process died) is marked last seen by
-- whichever process noticed; it does not act as that user, so it goes through the gate.

CREATE FUNCTION app_presence_lapsed(p_user bigint, p_at timestamptz)
RETURNS TABLE (org_id bigint, zone_id bigint, sub text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE users u
       SET last_seen_at = GREATEST(coalesce(u.last_seen_at, '-infinity'), p_at)
     WHERE u.id = p_user
    RETURNING u.org_id, coalesce(u.zone_id, 0), u.sub
$$;

ALTER FUNCTION app_presence_lapsed(bigint, timestamptz) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_presence_lapsed(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_presence_lapsed(bigint, timestamptz) TO messenger_app;
