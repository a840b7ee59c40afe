-- Row-level security: the second wall behind the application's own checks.
--
-- messenger_app is the role the server connects as: it owns nothing, is not superuser and
-- lacks BYPASSRLS. Every request runs in a transaction that sets app.user_id, app.org_id and
-- app.zone_id with set_config(..., true); the policies below read them, so a missing setting
-- means zero rows.
--
-- messenger_gate owns the few SECURITY DEFINER functions that must see across the wall:
-- signing in (before the user id is known), looking up a session by its token, and listing
-- the conversations of the current user (a policy on conversation_participants cannot query
-- itself without recursion). Policies give it exactly that access and nothing else.

DO $$
BEGIN
    CREATE ROLE messenger_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are per cluster; another database of this cluster made it already
END $$;

DO $$
BEGIN
    CREATE ROLE messenger_gate NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT messenger_gate TO %I', current_user);
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO messenger_app, messenger_gate;

CREATE FUNCTION app_user_id() RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.user_id', true), '')::bigint $$;
CREATE FUNCTION app_org_id() RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.org_id', true), '')::bigint $$;
CREATE FUNCTION app_zone_id() RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.zone_id', true), '')::bigint $$;

-- Conversations the current user may read: the ones they are an active member of, and the
-- announcement channel of their zone.
CREATE FUNCTION app_visible_conversation_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT p.conversation_id
      FROM conversation_participants p
     WHERE p.user_id = app_user_id() AND p.org_id = app_org_id() AND p.left_at IS NULL
    UNION
    SELECT c.id
      FROM conversations c
     WHERE c.kind = 'announcement' AND c.zone_id = app_zone_id() AND c.org_id = app_org_id()
$$;

-- app_sign_in creates or updates the organization, zone and user named by a verified portal
-- token, and answers the user's ids.
CREATE FUNCTION app_sign_in(p_issuer text, p_sub text, p_org text, p_zone text, p_name text,
                            p_email text, p_role text, p_locale text)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_org  bigint;
    v_zone bigint;
    v_user bigint;
BEGIN
    INSERT INTO organizations AS o (portal_id) VALUES (p_org)
    ON CONFLICT (portal_id) DO UPDATE SET portal_id = EXCLUDED.portal_id
    RETURNING o.id INTO v_org;

    IF coalesce(p_zone, '') <> '' THEN
        INSERT INTO zones AS z (org_id, portal_id) VALUES (v_org, p_zone)
        ON CONFLICT ON CONSTRAINT zones_org_id_portal_id_key DO UPDATE SET portal_id = EXCLUDED.portal_id
        RETURNING z.id INTO v_zone;
    END IF;

    INSERT INTO users AS u (issuer, sub, org_id, zone_id, name, email, role, locale)
    VALUES (p_issuer, p_sub, v_org, v_zone, p_name, p_email, p_role, p_locale)
    ON CONFLICT ON CONSTRAINT users_issuer_sub_key DO UPDATE
        SET org_id = EXCLUDED.org_id, zone_id = EXCLUDED.zone_id, name = EXCLUDED.name,
            email = EXCLUDED.email, role = EXCLUDED.role, locale = EXCLUDED.locale,
            updated_at = now()
        WHERE (u.org_id, u.zone_id, u.name, u.email, u.role, u.locale)
              IS DISTINCT FROM
              (EXCLUDED.org_id, EXCLUDED.zone_id, EXCLUDED.name, EXCLUDED.email, EXCLUDED.role, EXCLUDED.locale)
    RETURNING u.id INTO v_user;

    IF v_user IS NULL THEN -- nothing changed: the row is as the token says
        SELECT u.id INTO v_user FROM users u WHERE u.issuer = p_issuer AND u.sub = p_sub;
    END IF;

    RETURN QUERY SELECT v_user, v_org, v_zone;
END $$;

-- app_session answers the live session with this token hash, and its user.
CREATE FUNCTION app_session(p_token_hash bytea)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint, csrf_token text,
               expires_at timestamptz, last_used_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT s.user_id, u.org_id, u.zone_id, s.csrf_token, s.expires_at, s.last_used_at
      FROM sessions s
      JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
     WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
$$;

ALTER FUNCTION app_visible_conversation_ids() OWNER TO messenger_gate;
ALTER FUNCTION app_sign_in(text, text, text, text, text, text, text, text) OWNER TO messenger_gate;
ALTER FUNCTION app_session(bytea) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_visible_conversation_ids(), app_sign_in(text, text, text, text, text, text, text, text),
    app_session(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_visible_conversation_ids(), app_sign_in(text, text, text, text, text, text, text, text),
    app_session(bytea) TO messenger_app;

GRANT SELECT, INSERT, UPDATE ON organizations, zones, users TO messenger_gate;
GRANT SELECT ON conversations, conversation_participants, sessions TO messenger_gate;

GRANT SELECT ON organizations, zones TO messenger_app;
GRANT SELECT, UPDATE ON users TO messenger_app;
GRANT SELECT, INSERT, UPDATE ON conversations, conversation_participants, messages, read_receipts TO messenger_app;
GRANT SELECT, INSERT ON audit_log TO messenger_app; -- append-only: no UPDATE, no DELETE
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO messenger_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO messenger_app;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE zones ENABLE ROW LEVEL SECURITY;
ALTER TABLE zones FORCE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
ALTER TABLE conversation_participants ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_participants FORCE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
ALTER TABLE read_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE read_receipts FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;

-- The gate's own access, used only inside its SECURITY DEFINER functions.
CREATE POLICY gate_all ON organizations TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_all ON zones TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_all ON users TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_read ON conversations FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_read ON conversation_participants FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_read ON sessions FOR SELECT TO messenger_gate USING (true);

-- The application's access: its own organization, and inside it its own conversations.
CREATE POLICY app_org ON organizations TO messenger_app USING (id = app_org_id());
CREATE POLICY app_org ON zones TO messenger_app USING (org_id = app_org_id());

CREATE POLICY app_read ON users FOR SELECT TO messenger_app USING (org_id = app_org_id());
CREATE POLICY app_self ON users FOR UPDATE TO messenger_app
    USING (id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (id = app_user_id() AND org_id = app_org_id());

CREATE POLICY app_read ON conversations FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_create ON conversations FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND created_by = app_user_id());
CREATE POLICY app_update ON conversations FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND id IN (SELECT app_visible_conversation_ids()))
    WITH CHECK (org_id = app_org_id());

CREATE POLICY app_read ON conversation_participants FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
-- Joining: myself (creating a conversation), or others into a conversation I am in.
CREATE POLICY app_join ON conversation_participants FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id()
                AND (user_id = app_user_id() OR conversation_id IN (SELECT app_visible_conversation_ids())));
CREATE POLICY app_update ON conversation_participants FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()))
    WITH CHECK (org_id = app_org_id());

CREATE POLICY app_read ON messages FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_send ON messages FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id()
                AND conversation_id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_edit ON messages FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND sender_id = app_user_id())
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id());

CREATE POLICY app_read ON read_receipts FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_create ON read_receipts FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_update ON read_receipts FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND user_id = app_user_id())
    WITH CHECK (org_id = app_org_id() AND user_id = app_user_id());

CREATE POLICY app_read ON audit_log FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
CREATE POLICY app_append ON audit_log FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND actor_id = app_user_id());

CREATE POLICY app_own ON sessions TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());
