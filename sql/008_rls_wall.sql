-- Row-level security as a wall by itself: whatever SQL the application runs as a user (a
-- bug, an injection), the database lets that user do only what the product lets them do.
--
-- The application's role keeps direct writes where a row is the user's own and a policy
-- can say so: sending a message, their own read watermark, their own last_seen_at and
-- notification settings, the audit log (append-only), sessions. Everything that touches
-- another user's rows goes through SECURITY DEFINER gate functions owned by
-- messenger_gate, each of which first checks the caller (app.user_id / app.org_id):
--
--   app_start_conversation  the members of a conversation the caller just created
--   app_invite              members into a group the caller is in (with their receipts)
--   app_remove_member       another member out of a group the caller is an admin of
--   app_set_member_role     admin or member, in a group the caller is an admin of
--   app_pass_admin          the longest-standing member made admin as the last admin leaves
--   app_leave               the caller out of a conversation (never a zone's announcements)
--   app_rename              a group's title, by its admin
--   app_lock_conversation   the ordering lock of a membership change, for a member
--   app_system_notice       a system message, by a member who may make that change
--   app_presence_lapsed     a lapsed user's last_seen_at: the sweeper only (no user settings)
--
-- Each refuses with SQLSTATE 42501, as a privilege or policy refusal does. app_mark_joined
-- (which raised any member's receipt) is no longer the application's.

-- Users: the application writes only the last_seen_at of its own row.
REVOKE UPDATE ON users FROM messenger_app;
GRANT UPDATE (last_seen_at) ON users TO messenger_app;

-- Conversations: created by the user, as a group or a direct conversation of their own;
-- never updated by the application. last_seq is numbered by the database (the trigger
-- below), titles change through app_rename, the ordering lock through app_lock_conversation.
REVOKE INSERT, UPDATE ON conversations FROM messenger_app;
GRANT INSERT (id, org_id, zone_id, kind, title, direct_user_lo, direct_user_hi, created_by) ON conversations TO messenger_app;
DROP POLICY app_update ON conversations;
DROP POLICY app_create ON conversations;
CREATE POLICY app_create ON conversations FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND created_by = app_user_id() AND last_seq = 0 AND zone_id IS NULL
                AND (kind = 'group' OR (kind = 'direct' AND app_user_id() IN (direct_user_lo, direct_user_hi))));
GRANT UPDATE ON conversations TO messenger_gate;
CREATE POLICY gate_update ON conversations FOR UPDATE TO messenger_gate USING (true) WITH CHECK (true);

-- Participants: the application reads, and changes only its own notification settings.
-- Joining, leaving, roles: through the gates.
REVOKE INSERT, UPDATE ON conversation_participants FROM messenger_app;
GRANT UPDATE (muted, muted_until) ON conversation_participants TO messenger_app;
DROP POLICY app_join ON conversation_participants;
DROP POLICY app_update ON conversation_participants;
-- Also what lets a send share-lock its own membership row (FOR SHARE needs UPDATE).
CREATE POLICY app_own ON conversation_participants FOR UPDATE TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());

-- app_is_member: is the caller an active member of p_conv? One primary-key probe, cheaper
-- in a policy than app_visible_conversation_ids (every conversation of the user).
CREATE FUNCTION app_is_member(p_conv bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.conversation_participants p
                    WHERE p.conversation_id = p_conv AND p.user_id = public.app_user_id()
                      AND p.org_id = public.app_org_id() AND p.left_at IS NULL);
END $$;

-- app_may_post: may the caller post in p_conv? An active member, and in a zone's
-- announcements only a portal admin or teacher.
CREATE FUNCTION app_may_post(p_conv bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM public.conversation_participants p
          JOIN public.conversations c ON c.id = p.conversation_id
         WHERE p.conversation_id = p_conv AND p.user_id = public.app_user_id()
           AND p.org_id = public.app_org_id() AND p.left_at IS NULL
           AND (c.kind <> 'announcement'
                OR EXISTS (SELECT 1 FROM public.users u
                            WHERE u.id = public.app_user_id() AND u.role IN ('admin', 'teacher'))));
END $$;

ALTER FUNCTION app_is_member(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_may_post(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_is_member(bigint), app_may_post(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_is_member(bigint), app_may_post(bigint) TO messenger_app;

-- Messages: the application sends text and files as itself where it may post; system
-- messages (and their event data) come only from app_system_notice. A message's seq and
-- time are the database's: the trigger takes the next seq under the conversation's row
-- lock, and the application names neither column.
REVOKE INSERT ON messages FROM messenger_app;
GRANT INSERT (conversation_id, org_id, sender_id, client_msg_id, kind, body) ON messages TO messenger_app;
DROP POLICY app_send ON messages;
CREATE POLICY app_send ON messages FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id() AND kind <> 'system'
                AND app_may_post(conversation_id));
REVOKE UPDATE ON messages FROM messenger_app;
GRANT UPDATE (body, edited_at, deleted_at) ON messages TO messenger_app;
DROP POLICY app_edit ON messages;
CREATE POLICY app_edit ON messages FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND sender_id = app_user_id() AND kind <> 'system')
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id() AND kind <> 'system');

GRANT SELECT, INSERT ON messages TO messenger_gate;
CREATE POLICY gate_read ON messages FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_notice ON messages FOR INSERT TO messenger_gate WITH CHECK (kind = 'system');

CREATE FUNCTION app_number_message() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE public.conversations
       SET last_seq = last_seq + 1, last_message_at = now(), updated_at = now()
     WHERE id = NEW.conversation_id AND org_id = NEW.org_id
    RETURNING last_seq INTO NEW.seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no conversation %', NEW.conversation_id USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
ALTER FUNCTION app_number_message() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_number_message() FROM PUBLIC;
CREATE TRIGGER messages_number BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION app_number_message();

-- Read receipts: each user creates and raises only their own, in a conversation they are
-- an active member of; a joining member's receipt is made by app_invite.
DROP POLICY app_create ON read_receipts;
CREATE POLICY app_create ON read_receipts FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND user_id = app_user_id() AND app_is_member(conversation_id));
REVOKE UPDATE ON read_receipts FROM messenger_app;
GRANT UPDATE (last_read_seq, read_at) ON read_receipts TO messenger_app;
REVOKE EXECUTE ON FUNCTION app_mark_joined(bigint, bigint[]) FROM messenger_app;

-- app_caller_membership answers the kind of p_conv and the caller's role in it, and
-- refuses a caller who is not an active member of it in their organization.
CREATE FUNCTION app_caller_membership(p_conv bigint, OUT kind text, OUT role text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    SELECT c.kind, p.role INTO kind, role
      FROM conversations c
      JOIN conversation_participants p ON p.conversation_id = c.id
     WHERE c.id = p_conv AND c.org_id = app_org_id()
       AND p.user_id = app_user_id() AND p.org_id = app_org_id() AND p.left_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not a member of conversation %', p_conv USING ERRCODE = '42501';
    END IF;
END $$;

-- app_caller_group_admin refuses unless the caller is an active admin of group p_conv.
CREATE FUNCTION app_caller_group_admin(p_conv bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m record;
BEGIN
    m := app_caller_membership(p_conv);
    IF m.kind <> 'group' OR m.role <> 'admin' THEN
        RAISE EXCEPTION 'not an admin of group %', p_conv USING ERRCODE = '42501';
    END IF;
END $$;

-- app_start_conversation makes the caller and p_members the members of a conversation the
-- caller has just created (it has no members yet): the creator of a group is its admin; a
-- direct conversation takes exactly the other one of its pair.
CREATE FUNCTION app_start_conversation(p_conv bigint, p_members bigint[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_kind text;
    v_lo   bigint;
    v_hi   bigint;
BEGIN
    SELECT c.kind, c.direct_user_lo, c.direct_user_hi INTO v_kind, v_lo, v_hi
      FROM conversations c
     WHERE c.id = p_conv AND c.org_id = app_org_id() AND c.created_by = app_user_id()
       AND c.kind IN ('direct', 'group')
       AND NOT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = c.id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % is not a new one of yours', p_conv USING ERRCODE = '42501';
    END IF;
    IF v_kind = 'direct' AND (cardinality(p_members) <> 1
        OR least(app_user_id(), p_members[1]) <> v_lo OR greatest(app_user_id(), p_members[1]) <> v_hi) THEN
        RAISE EXCEPTION 'a direct conversation is its pair''s' USING ERRCODE = '42501';
    END IF;
    INSERT INTO conversation_participants (conversation_id, user_id, org_id, role)
    VALUES (p_conv, app_user_id(), app_org_id(), CASE v_kind WHEN 'group' THEN 'admin' ELSE 'member' END);
    INSERT INTO conversation_participants (conversation_id, user_id, org_id, role)
    SELECT DISTINCT p_conv, m.id, app_org_id(), 'member'
      FROM unnest(p_members) AS m (id) WHERE m.id <> app_user_id();
END $$;

-- app_invite makes p_users active members of a group the caller is an active member of:
-- new ones join, ones who had left rejoin, as members, with nothing unread. It answers
-- those who were not active members before, in the order given.
CREATE FUNCTION app_invite(p_conv bigint, p_users bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m       record;
    v_added bigint[];
BEGIN
    m := app_caller_membership(p_conv);
    IF m.kind <> 'group' THEN
        RAISE EXCEPTION 'only a group takes new members' USING ERRCODE = '42501';
    END IF;
    WITH want AS (
        SELECT u.id, u.ord FROM unnest(p_users) WITH ORDINALITY AS u (id, ord)
    ), joined AS (
        INSERT INTO conversation_participants AS p (conversation_id, user_id, org_id, role)
        SELECT p_conv, want.id, app_org_id(), 'member' FROM want
        ON CONFLICT (conversation_id, user_id) DO UPDATE
            SET left_at = NULL, joined_at = now(), role = 'member'
            WHERE p.left_at IS NOT NULL
        RETURNING p.user_id
    )
    SELECT coalesce(array_agg(want.id ORDER BY want.ord), '{}') INTO v_added
      FROM want JOIN joined ON joined.user_id = want.id;
    INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq)
    SELECT p_conv, a.id, app_org_id(), c.last_seq
      FROM unnest(v_added) AS a (id), conversations c WHERE c.id = p_conv
    ON CONFLICT (conversation_id, user_id)
    DO UPDATE SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), read_at = now();
    RETURN QUERY SELECT a.id FROM unnest(v_added) WITH ORDINALITY AS a (id, ord) ORDER BY a.ord;
END $$;

-- app_remove_member ends another member's membership of a group the caller is an admin of;
-- false when p_user is not an active member.
CREATE FUNCTION app_remove_member(p_conv bigint, p_user bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_caller_group_admin(p_conv);
    IF p_user = app_user_id() THEN
        RAISE EXCEPTION 'leave with app_leave' USING ERRCODE = '42501';
    END IF;
    UPDATE conversation_participants SET left_at = now()
     WHERE conversation_id = p_conv AND user_id = p_user AND left_at IS NULL;
    RETURN FOUND;
END $$;

-- app_set_member_role makes an active member of a group the caller is an admin of admin or
-- member; a group keeps at least one admin. False when p_user is not an active member.
CREATE FUNCTION app_set_member_role(p_conv bigint, p_user bigint, p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_caller_group_admin(p_conv);
    IF p_role = 'member' AND NOT EXISTS (
        SELECT 1 FROM conversation_participants
         WHERE conversation_id = p_conv AND left_at IS NULL AND role = 'admin' AND user_id <> p_user) THEN
        RAISE EXCEPTION 'a group keeps an admin' USING ERRCODE = '42501';
    END IF;
    UPDATE conversation_participants SET role = p_role
     WHERE conversation_id = p_conv AND user_id = p_user AND left_at IS NULL;
    RETURN FOUND;
END $$;

-- app_pass_admin is called by a member about to leave a group: when no other active admin
-- would be left, the longest-standing other member becomes admin. It answers who, or null.
CREATE FUNCTION app_pass_admin(p_conv bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m      record;
    v_heir bigint;
BEGIN
    m := app_caller_membership(p_conv);
    IF m.kind <> 'group' THEN
        RETURN NULL;
    END IF;
    UPDATE conversation_participants SET role = 'admin'
     WHERE conversation_id = p_conv AND user_id = (
           SELECT user_id FROM conversation_participants
            WHERE conversation_id = p_conv AND left_at IS NULL AND user_id <> app_user_id()
            ORDER BY joined_at, user_id LIMIT 1)
       AND NOT EXISTS (SELECT 1 FROM conversation_participants
                        WHERE conversation_id = p_conv AND left_at IS NULL AND role = 'admin'
                          AND user_id <> app_user_id())
    RETURNING user_id INTO v_heir;
    RETURN v_heir;
END $$;

-- app_leave ends the caller's membership of a conversation; false when they are not an
-- active member. A zone's announcements are left only by moving zone; the last admin of
-- a group with other members passes the role first (app_pass_admin).
CREATE FUNCTION app_leave(p_conv bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_kind text;
BEGIN
    SELECT c.kind INTO v_kind FROM conversations c WHERE c.id = p_conv AND c.org_id = app_org_id();
    IF v_kind = 'announcement' THEN
        RAISE EXCEPTION 'a zone''s announcements cannot be left' USING ERRCODE = '42501';
    END IF;
    IF v_kind = 'group' AND EXISTS (
        SELECT 1 FROM conversation_participants
         WHERE conversation_id = p_conv AND user_id = app_user_id() AND left_at IS NULL AND role = 'admin')
       AND NOT EXISTS (
        SELECT 1 FROM conversation_participants
         WHERE conversation_id = p_conv AND user_id <> app_user_id() AND left_at IS NULL AND role = 'admin')
       AND EXISTS (
        SELECT 1 FROM conversation_participants
         WHERE conversation_id = p_conv AND user_id <> app_user_id() AND left_at IS NULL) THEN
        RAISE EXCEPTION 'the last admin passes the role before leaving' USING ERRCODE = '42501';
    END IF;
    UPDATE conversation_participants SET left_at = now()
     WHERE conversation_id = p_conv AND user_id = app_user_id() AND org_id = app_org_id() AND left_at IS NULL;
    RETURN FOUND;
END $$;

-- app_rename gives a group the caller is an admin of a new title.
CREATE FUNCTION app_rename(p_conv bigint, p_title text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_caller_group_admin(p_conv);
    UPDATE conversations SET title = p_title, updated_at = now() WHERE id = p_conv;
END $$;

-- app_lock_conversation takes the ordering lock of a membership change for an active
-- member: first the members' rows, then the conversation's row, the order a send takes
-- them in too. False when the caller is not an active member.
CREATE FUNCTION app_lock_conversation(p_conv bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT app_is_member(p_conv) THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM conversation_participants WHERE conversation_id = p_conv FOR NO KEY UPDATE;
    PERFORM 1 FROM conversations WHERE id = p_conv FOR NO KEY UPDATE;
    RETURN true;
END $$;

-- app_system_notice stores a system message of the caller: an active member of a group or
-- direct conversation, saying what they may do there (a group's admin removes, renames,
-- changes roles and passes the role on leaving; a member invites and leaves), in their own
-- name; a rename's title is the group's, an heir is an admin. The notice is numbered like any message and raises the caller's watermark.
CREATE FUNCTION app_system_notice(p_conv bigint, p_body text, p_event jsonb)
RETURNS TABLE (notice_id bigint, notice_seq bigint, notice_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m      record;
    v_type text := p_event->>'type';
BEGIN
    m := app_caller_membership(p_conv);
    IF m.kind NOT IN ('group', 'direct')
       OR v_type IS NULL
       OR (v_type <> 'left' AND m.kind <> 'group')
       OR v_type NOT IN ('invited', 'removed', 'left', 'renamed', 'admin_granted', 'admin_revoked', 'admin_passed')
       OR (v_type IN ('removed', 'renamed', 'admin_granted', 'admin_revoked', 'admin_passed') AND m.role <> 'admin')
       OR (p_event->>'actor') IS DISTINCT FROM (SELECT u.name FROM users u WHERE u.id = app_user_id())
       -- what the notice says is so: the new title, the heir an admin
       OR (v_type = 'renamed' AND (p_event->>'title') IS DISTINCT FROM (SELECT c.title FROM conversations c WHERE c.id = p_conv))
       OR (v_type = 'admin_passed' AND NOT EXISTS (
               SELECT 1 FROM conversation_participants p JOIN users u ON u.id = p.user_id
                WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND p.role = 'admin'
                  AND p.user_id <> app_user_id() AND u.name = p_event->'targets'->>0)) THEN
        RAISE EXCEPTION 'not a notice the caller may post in conversation %', p_conv USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    WITH msg AS (
        INSERT INTO messages AS x (conversation_id, org_id, sender_id, kind, body, event)
        VALUES (p_conv, app_org_id(), app_user_id(), 'system', p_body, p_event)
        RETURNING x.id, x.seq, x.created_at
    ), r AS (
        INSERT INTO read_receipts AS rr (conversation_id, user_id, org_id, last_read_seq)
        SELECT p_conv, app_user_id(), app_org_id(), msg.seq FROM msg
        ON CONFLICT (conversation_id, user_id)
        DO UPDATE SET last_read_seq = GREATEST(rr.last_read_seq, EXCLUDED.last_read_seq), read_at = now()
    )
    SELECT msg.id, msg.seq, msg.created_at FROM msg;
END $$;

-- app_presence_lapsed: the presence sweeper acts as nobody (it notices that some process
-- died); a transaction acting as a user may record only their own lapse, in their own
-- organization.
CREATE OR REPLACE FUNCTION app_presence_lapsed(p_user bigint, p_at timestamptz)
RETURNS TABLE (org_id bigint, zone_id bigint, sub text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF (app_user_id() IS NOT NULL OR app_org_id() IS NOT NULL) AND p_user IS DISTINCT FROM app_user_id() THEN
        RAISE EXCEPTION 'a user records only their own presence' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    UPDATE users u
       SET last_seen_at = GREATEST(coalesce(u.last_seen_at, '-infinity'), p_at)
     WHERE u.id = p_user AND (app_org_id() IS NULL OR u.org_id = app_org_id())
    RETURNING u.org_id, coalesce(u.zone_id, 0::bigint), u.sub;
END $$;

ALTER FUNCTION app_caller_membership(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_caller_group_admin(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_start_conversation(bigint, bigint[]) OWNER TO messenger_gate;
ALTER FUNCTION app_invite(bigint, bigint[]) OWNER TO messenger_gate;
ALTER FUNCTION app_remove_member(bigint, bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_set_member_role(bigint, bigint, text) OWNER TO messenger_gate;
ALTER FUNCTION app_pass_admin(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_leave(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_rename(bigint, text) OWNER TO messenger_gate;
ALTER FUNCTION app_lock_conversation(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_system_notice(bigint, text, jsonb) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_caller_membership(bigint), app_caller_group_admin(bigint),
    app_start_conversation(bigint, bigint[]), app_invite(bigint, bigint[]),
    app_remove_member(bigint, bigint), app_set_member_role(bigint, bigint, text),
    app_pass_admin(bigint), app_leave(bigint), app_rename(bigint, text),
    app_lock_conversation(bigint), app_system_notice(bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_start_conversation(bigint, bigint[]), app_invite(bigint, bigint[]),
    app_remove_member(bigint, bigint), app_set_member_role(bigint, bigint, text),
    app_pass_admin(bigint), app_leave(bigint), app_rename(bigint, text),
    app_lock_conversation(bigint), app_system_notice(bigint, text, jsonb) TO messenger_app;
