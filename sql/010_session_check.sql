-- app_sessions_live answers which of these session token hashes are live (not revoked,
-- not expired, of a user who has not moved), with their expiry: one query checks every
-- session of a process's open page streams (handlers/stream_guard.go).
CREATE FUNCTION app_sessions_live(p_token_hashes bytea[])
RETURNS TABLE (token_hash bytea, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT s.token_hash, s.expires_at
      FROM sessions s
      JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
     WHERE s.token_hash = ANY (p_token_hashes) AND s.revoked_at IS NULL AND s.expires_at > now()
       AND u.moved_at IS NULL
$$;
ALTER FUNCTION app_sessions_live(bytea[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_sessions_live(bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_sessions_live(bytea[]) TO messenger_app;
