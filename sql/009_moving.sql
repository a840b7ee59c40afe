-- A user who moves: the portal's token names another organization for a known user (a
-- teacher transferred to another school).
--
-- A user row belongs to one organization for good: the memberships, messages, receipts
-- and audit entries of a school refer to it, and the school keeps them. Moving retires
-- the row (moved_at): the user leaves every conversation of the old school the way a
-- leave does (a "left" notice, the admin role passed on, the audit log), leaves its zone's
-- announcements, drops out of its directory, and their old sessions end. A new row starts
-- afresh in the new school. Coming back is one more move: another new row, so nothing of
-- before comes back (memberships, receipts, direct conversations) and old messages stay
-- unreadable.

ALTER TABLE users ADD COLUMN moved_at timestamptz;
ALTER TABLE users DROP CONSTRAINT users_issuer_sub_key;
CREATE UNIQUE INDEX users_current ON users (issuer, sub) WHERE moved_at IS NULL;

-- app_store_notice stores a system message of p_sender in p_conv (numbered by the
-- trigger) and answers it as JSON for the caller to announce.
CREATE FUNCTION app_store_notice(p_conv bigint, p_sender bigint, p_org bigint, p_body text, p_event jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v jsonb;
BEGIN
    INSERT INTO messages AS m (conversation_id, org_id, sender_id, kind, body, event)
    VALUES (p_conv, p_org, p_sender, 'system', p_body, p_event)
    RETURNING jsonb_build_object('id', m.id, 'seq', m.seq, 'created_at', m.created_at,
                                 'body', m.body, 'event', m.event) INTO v;
    RETURN v;
END $$;

-- app_move_out retires user p_user from their organization: it leaves each of their
-- group and direct conversations there as app_leave would after app_pass_admin, with the
-- notices and audit entries a leave makes, leaves the zone's announcements, and marks the
-- row moved. It answers what the members of those conversations are to hear:
-- {"user_id", "name", "role", "conversations": [{"conversation_id", "members": [...],
-- "notices": [message...]}]}.
CREATE FUNCTION app_move_out(p_user bigint) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_user    record;
    c         record;
    v_heir    bigint;
    v_heir_nm text;
    v_notices jsonb;
    v_out     jsonb := '[]';
BEGIN
    SELECT u.id, u.name, u.role, u.org_id INTO v_user FROM users u WHERE u.id = p_user;
    FOR c IN
        SELECT cv.id, cv.kind FROM conversation_participants p
          JOIN conversations cv ON cv.id = p.conversation_id
         WHERE p.user_id = p_user AND p.left_at IS NULL AND cv.kind IN ('group', 'direct')
         ORDER BY cv.id
    LOOP
        -- The ordering lock of a membership change (app_lock_conversation's order).
        PERFORM 1 FROM conversation_participants WHERE conversation_id = c.id FOR NO KEY UPDATE;
        PERFORM 1 FROM conversations WHERE id = c.id FOR NO KEY UPDATE;
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM conversation_participants
                                   WHERE conversation_id = c.id AND user_id = p_user AND left_at IS NULL);
        INSERT INTO audit_log (org_id, conversation_id, actor_id, action, details)
        VALUES (v_user.org_id, c.id, p_user, 'member.left', '{"moved": true}');
        v_notices := jsonb_build_array(app_store_notice(c.id, p_user, v_user.org_id, v_user.name || '님이 나갔습니다.',
                                                        jsonb_build_object('type', 'left', 'actor', v_user.name)));
        v_heir := NULL;
        IF c.kind = 'group' THEN
            UPDATE conversation_participants SET role = 'admin'
             WHERE conversation_id = c.id AND user_id = (
                   SELECT user_id FROM conversation_participants
                    WHERE conversation_id = c.id AND left_at IS NULL AND user_id <> p_user
                    ORDER BY joined_at, user_id LIMIT 1)
               AND NOT EXISTS (SELECT 1 FROM conversation_participants
                                WHERE conversation_id = c.id AND left_at IS NULL AND role = 'admin' AND user_id <> p_user)
            RETURNING user_id INTO v_heir;
        END IF;
        IF v_heir IS NOT NULL THEN
            SELECT u.name INTO v_heir_nm FROM users u WHERE u.id = v_heir;
            INSERT INTO audit_log (org_id, conversation_id, actor_id, action, target_user_id, details)
            VALUES (v_user.org_id, c.id, p_user, 'member.role_changed', v_heir,
                    '{"from": "member", "to": "admin", "automatic": true}');
            v_notices := v_notices || app_store_notice(c.id, p_user, v_user.org_id, v_heir_nm || '님이 방장이 되었습니다.',
                jsonb_build_object('type', 'admin_passed', 'actor', v_user.name, 'targets', jsonb_build_array(v_heir_nm)));
        END IF;
        UPDATE conversation_participants SET left_at = now()
         WHERE conversation_id = c.id AND user_id = p_user AND left_at IS NULL;
        v_out := v_out || jsonb_build_object(
            'conversation_id', c.id,
            'notices', v_notices,
            'members', (SELECT coalesce(jsonb_agg(p.user_id ORDER BY p.user_id), '[]')
                          FROM conversation_participants p WHERE p.conversation_id = c.id AND p.left_at IS NULL));
    END LOOP;
    PERFORM app_join_zone_announcement(p_user, v_user.org_id, NULL);
    UPDATE users SET moved_at = now(), updated_at = now() WHERE id = p_user;
    RETURN jsonb_build_object('user_id', v_user.id, 'name', v_user.name, 'role', v_user.role, 'conversations', v_out);
END $$;

ALTER FUNCTION app_store_notice(bigint, bigint, bigint, text, jsonb) OWNER TO messenger_gate;
ALTER FUNCTION app_move_out(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_store_notice(bigint, bigint, bigint, text, jsonb), app_move_out(bigint) FROM PUBLIC;

-- A retired user joins nothing again, whatever path tries (a request already on its way
-- with the old identity, an invitation by an old colleague, a direct conversation reopened).
CREATE FUNCTION app_current_member() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF NEW.left_at IS NULL AND EXISTS (SELECT 1 FROM public.users u WHERE u.id = NEW.user_id AND u.moved_at IS NOT NULL) THEN
        RAISE EXCEPTION 'user % moved to another organization', NEW.user_id USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
ALTER FUNCTION app_current_member() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_current_member() FROM PUBLIC;
CREATE TRIGGER participants_current BEFORE INSERT OR UPDATE OF left_at ON conversation_participants
    FOR EACH ROW EXECUTE FUNCTION app_current_member();

-- app_sign_in as before (organization, zone, the user written only when a claim changed,
-- the zone's announcements joined), and: a current user of another organization moves
-- (app_move_out) and is made anew. moved answers app_move_out's JSON, or null. A token
-- issued (p_issued_at, its iat) before the current row was made cannot move the user:
-- the portal said otherwise since (SQLSTATE 28000).
DROP FUNCTION app_sign_in(text, text, text, text, text, text, text, text);
CREATE FUNCTION app_sign_in(p_issuer text, p_sub text, p_org text, p_zone text, p_name text,
                            p_email text, p_role text, p_locale text, p_issued_at timestamptz)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint, moved jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_org     bigint;
    v_zone    bigint;
    v_user    bigint;
    v_cur     bigint;
    v_cur_org bigint;
    v_cur_at  timestamptz;
    v_moved   jsonb;
BEGIN
    SELECT o.id INTO v_org FROM organizations o WHERE o.portal_id = p_org;
    IF v_org IS NULL THEN
        INSERT INTO organizations (portal_id) VALUES (p_org) ON CONFLICT (portal_id) DO NOTHING;
        SELECT o.id INTO v_org FROM organizations o WHERE o.portal_id = p_org;
    END IF;

    IF coalesce(p_zone, '') <> '' THEN
        SELECT z.id INTO v_zone FROM zones z WHERE z.org_id = v_org AND z.portal_id = p_zone;
        IF v_zone IS NULL THEN
            INSERT INTO zones (org_id, portal_id) VALUES (v_org, p_zone)
            ON CONFLICT ON CONSTRAINT zones_org_id_portal_id_key DO NOTHING;
            SELECT z.id INTO v_zone FROM zones z WHERE z.org_id = v_org AND z.portal_id = p_zone;
        END IF;
    END IF;

    SELECT u.id INTO v_user FROM users u
     WHERE u.issuer = p_issuer AND u.sub = p_sub AND u.moved_at IS NULL
       AND (u.org_id, u.zone_id, u.name, u.email, u.role, u.locale)
           IS NOT DISTINCT FROM (v_org, v_zone, p_name, p_email, p_role, p_locale);
    IF v_user IS NULL THEN -- new, moved, or a claim changed
        SELECT u.id, u.org_id, u.created_at INTO v_cur, v_cur_org, v_cur_at FROM users u
         WHERE u.issuer = p_issuer AND u.sub = p_sub AND u.moved_at IS NULL
           FOR UPDATE;
        IF v_cur IS NOT NULL AND v_cur_org <> v_org THEN
            IF p_issued_at < date_trunc('second', v_cur_at) THEN
                RAISE EXCEPTION 'token of % predates their move', p_sub USING ERRCODE = '28000';
            END IF;
            v_moved := app_move_out(v_cur);
        END IF;
        INSERT INTO users AS u (issuer, sub, org_id, zone_id, name, email, role, locale)
        VALUES (p_issuer, p_sub, v_org, v_zone, p_name, p_email, p_role, p_locale)
        ON CONFLICT (issuer, sub) WHERE moved_at IS NULL DO UPDATE
            SET zone_id = EXCLUDED.zone_id, name = EXCLUDED.name, email = EXCLUDED.email,
                role = EXCLUDED.role, locale = EXCLUDED.locale, updated_at = now()
            WHERE u.org_id = EXCLUDED.org_id
        RETURNING u.id INTO v_user;
        IF v_user IS NULL THEN
            -- A concurrent sign-in with another organization won: try again from the start.
            RAISE EXCEPTION 'user % moved concurrently', p_sub USING ERRCODE = '40001';
        END IF;
        PERFORM app_join_zone_announcement(v_user, v_org, v_zone);
    END IF;

    RETURN QUERY SELECT v_user, v_org, v_zone, v_moved;
END $$;
ALTER FUNCTION app_sign_in(text, text, text, text, text, text, text, text, timestamptz) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_sign_in(text, text, text, text, text, text, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_sign_in(text, text, text, text, text, text, text, text, timestamptz) TO messenger_app;

-- A moved user's sessions end with their row.
CREATE OR REPLACE FUNCTION app_session(p_token_hash bytea)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint, csrf_token text,
               expires_at timestamptz, last_used_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT s.user_id, u.org_id, u.zone_id, s.csrf_token, s.expires_at, s.last_used_at
      FROM sessions s
      JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
     WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
       AND u.moved_at IS NULL
$$;
