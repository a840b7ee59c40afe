-- Groups that schools run: system messages that say what changed, and zone announcements.

-- A system message keeps what happened as data ({"type": "invited", "actor": "…", ...}) so
-- every viewer reads it in their own language; body keeps the Korean text for API clients.
ALTER TABLE messages ADD COLUMN event jsonb;

-- Zone announcements: one conversation per zone, every user of the zone an active member
-- (so unread counts, receipts and the list work as for any conversation), kept in step
-- with the zone claim of the portal's token when a user signs in. Members are 'member';
-- who may post is decided by the portal role (admin, teacher), not by the conversation.

GRANT INSERT ON conversations, conversation_participants TO messenger_gate;
CREATE POLICY gate_create ON conversations FOR INSERT TO messenger_gate WITH CHECK (true);
CREATE POLICY gate_join ON conversation_participants FOR INSERT TO messenger_gate WITH CHECK (true);

-- app_join_zone_announcement makes the user an active member of their zone's announcement
-- conversation (creating it on first use) and ends their membership of other zones'.
-- Called by app_sign_in when a user is new or their claims changed, so it runs as the gate.
GRANT SELECT, INSERT, UPDATE ON read_receipts TO messenger_gate;
CREATE POLICY gate_read ON read_receipts FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_create ON read_receipts FOR INSERT TO messenger_gate WITH CHECK (true);
CREATE POLICY gate_update ON read_receipts FOR UPDATE TO messenger_gate USING (true) WITH CHECK (true);
GRANT INSERT ON audit_log TO messenger_gate;
CREATE POLICY gate_append ON audit_log FOR INSERT TO messenger_gate WITH CHECK (true);

CREATE FUNCTION app_join_zone_announcement(p_user bigint, p_org bigint, p_zone bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_conv bigint;
BEGIN
    WITH moved AS (
        UPDATE conversation_participants p
           SET left_at = now()
          FROM conversations c
         WHERE p.conversation_id = c.id AND p.user_id = p_user AND p.left_at IS NULL
           AND c.kind = 'announcement' AND c.zone_id IS DISTINCT FROM p_zone
        RETURNING p.conversation_id, p.org_id
    )
    INSERT INTO audit_log (org_id, conversation_id, actor_id, action, target_user_id)
    SELECT moved.org_id, moved.conversation_id, p_user, 'member.zone_left', p_user FROM moved;
    IF p_zone IS NULL THEN
        RETURN;
    END IF;
    SELECT c.id INTO v_conv FROM conversations c WHERE c.kind = 'announcement' AND c.zone_id = p_zone;
    IF v_conv IS NULL THEN
        INSERT INTO conversations (org_id, zone_id, kind, title)
        VALUES (p_org, p_zone, 'announcement', '')
        ON CONFLICT (zone_id) WHERE kind = 'announcement' DO NOTHING;
        SELECT c.id INTO v_conv FROM conversations c WHERE c.kind = 'announcement' AND c.zone_id = p_zone;
    END IF;
    WITH joined AS (
        INSERT INTO conversation_participants AS p (conversation_id, user_id, org_id, role)
        VALUES (v_conv, p_user, p_org, 'member')
        ON CONFLICT (conversation_id, user_id) DO UPDATE SET left_at = NULL, joined_at = now()
            WHERE p.left_at IS NOT NULL
        RETURNING p.conversation_id
    )
    INSERT INTO audit_log (org_id, conversation_id, actor_id, action, target_user_id)
    SELECT p_org, joined.conversation_id, p_user, 'member.zone_joined', p_user FROM joined;
    -- A member joins with nothing unread: earlier notices are there to read, not to count.
    INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq)
    SELECT v_conv, p_user, p_org, c.last_seq FROM conversations c WHERE c.id = v_conv
    ON CONFLICT (conversation_id, user_id)
    DO UPDATE SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), read_at = now();
END $$;

ALTER FUNCTION app_join_zone_announcement(bigint, bigint, bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_join_zone_announcement(bigint, bigint, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION app_sign_in(p_issuer text, p_sub text, p_org text, p_zone text, p_name text,
                                       p_email text, p_role text, p_locale text)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_org  bigint;
    v_zone bigint;
    v_user bigint;
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
     WHERE u.issuer = p_issuer AND u.sub = p_sub
       AND (u.org_id, u.zone_id, u.name, u.email, u.role, u.locale)
           IS NOT DISTINCT FROM (v_org, v_zone, p_name, p_email, p_role, p_locale);
    IF v_user IS NULL THEN -- new, or a claim changed
        INSERT INTO users AS u (issuer, sub, org_id, zone_id, name, email, role, locale)
        VALUES (p_issuer, p_sub, v_org, v_zone, p_name, p_email, p_role, p_locale)
        ON CONFLICT ON CONSTRAINT users_issuer_sub_key DO UPDATE
            SET org_id = EXCLUDED.org_id, zone_id = EXCLUDED.zone_id, name = EXCLUDED.name,
                email = EXCLUDED.email, role = EXCLUDED.role, locale = EXCLUDED.locale,
                updated_at = now()
        RETURNING u.id INTO v_user;
        PERFORM app_join_zone_announcement(v_user, v_org, v_zone);
    END IF;

    RETURN QUERY SELECT v_user, v_org, v_zone;
END $$;

-- Users who signed in before announcements existed.
SELECT app_join_zone_announcement(u.id, u.org_id, u.zone_id) FROM users u WHERE u.zone_id IS NOT NULL;

-- app_mark_joined raises the read watermark of members who just joined (or rejoined) a
-- conversation to its newest message: they start with nothing unread. A member invites,
-- and row-level security lets a user write only their own receipt, so it crosses the wall
-- through the gate, for active members of a conversation the caller is an active member of.
CREATE FUNCTION app_mark_joined(p_conv bigint, p_users bigint[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM conversation_participants
                    WHERE conversation_id = p_conv AND user_id = app_user_id()
                      AND org_id = app_org_id() AND left_at IS NULL) THEN
        RAISE EXCEPTION 'not a member of conversation %', p_conv USING ERRCODE = '42501';
    END IF;
    INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq)
    SELECT p.conversation_id, p.user_id, p.org_id, c.last_seq
      FROM conversation_participants p
      JOIN conversations c ON c.id = p.conversation_id
     WHERE p.conversation_id = p_conv AND p.user_id = ANY (p_users) AND p.left_at IS NULL
    ON CONFLICT (conversation_id, user_id)
    DO UPDATE SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), read_at = now();
END $$;

ALTER FUNCTION app_mark_joined(bigint, bigint[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_mark_joined(bigint, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_mark_joined(bigint, bigint[]) TO messenger_app;
