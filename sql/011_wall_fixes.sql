-- The wall, attacked as messenger_app with a real user's settings, let through: the
-- sign-in gate's claims, conversation and audit ids ahead of their sequences, forged
-- system notices, a retired user invited back during their move, a send and a move
-- deadlocking, a refused send locking another organization's conversation row (and
-- telling whether it exists), a read receipt past the last message, edits, duplicate
-- invitations, and control characters in titles and names. Each is closed here.

-- 1. The sign-in path and the presence sweeper act before (or without) a user: inside a
-- user's transaction (app.user_id or app.org_id set) their gates refuse, so a user cannot
-- make themself a teacher, rename another user or move them out of their school, look up
-- sessions, or mark anyone gone.
CREATE FUNCTION app_refuse_inside_user() RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF coalesce(current_setting('app.user_id', true), '') <> '' OR coalesce(current_setting('app.org_id', true), '') <> '' THEN
        RAISE EXCEPTION 'not for a user''s transaction' USING ERRCODE = '42501';
    END IF;
END $$;
ALTER FUNCTION app_refuse_inside_user() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_refuse_inside_user() FROM PUBLIC;

-- app_sign_in as in 009, refused inside a user's transaction; the current row is locked
-- FOR NO KEY UPDATE, which a send's foreign-key check of its sender (FOR KEY SHARE) does
-- not wait for: a send holding its membership and a move waiting for it cannot deadlock.
CREATE OR REPLACE FUNCTION app_sign_in(p_issuer text, p_sub text, p_org text, p_zone text, p_name text,
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
    PERFORM app_refuse_inside_user();
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
           FOR NO KEY UPDATE;
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

CREATE OR REPLACE FUNCTION app_session(p_token_hash bytea)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint, csrf_token text,
               expires_at timestamptz, last_used_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    SELECT s.user_id, u.org_id, u.zone_id, s.csrf_token, s.expires_at, s.last_used_at
      FROM sessions s
      JOIN users u ON u.id = s.user_id AND u.org_id = s.org_id
     WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
       AND u.moved_at IS NULL;
END $$;

-- The sweeper records a lapse no later than now: a time from the future would keep the
-- user "last seen" ahead of every real visit.
CREATE OR REPLACE FUNCTION app_presence_lapsed(p_user bigint, p_at timestamptz)
RETURNS TABLE (org_id bigint, zone_id bigint, sub text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    UPDATE users u
       SET last_seen_at = GREATEST(coalesce(u.last_seen_at, '-infinity'), LEAST(p_at, now()))
     WHERE u.id = p_user
    RETURNING u.org_id, coalesce(u.zone_id, 0::bigint), u.sub;
END $$;

-- 2. Ids are the sequences': a user naming an id ahead of a sequence would make every
-- organization's next conversation (or audit entry) collide with it.
REVOKE INSERT ON conversations FROM messenger_app;
GRANT INSERT (org_id, zone_id, kind, title, direct_user_lo, direct_user_hi, created_by) ON conversations TO messenger_app;
REVOKE INSERT ON audit_log FROM messenger_app;
GRANT INSERT (org_id, conversation_id, actor_id, action, target_user_id, details, request_id) ON audit_log TO messenger_app;

-- 3. A system notice says what this transaction did, in the caller's current name, and its
-- text is the database's: built from the event (p_body is ignored; the signature stays).
--   invited        the names of exactly the members who joined in this transaction
--   removed        the one member an admin removed in this transaction
--   left           the caller, who left in this transaction (the notice follows app_leave)
--   renamed        the group's title, changed in this transaction by an admin
--   admin_granted  a member made admin in this transaction, by an admin
--   admin_revoked  an admin made member in this transaction, by an admin
--   admin_passed   the heir, made admin in this transaction, by the admin who leaves
-- "In this transaction": joined_at or left_at is now() (the transaction's start), or the
-- row was last written by it (xmin). The stored event is rebuilt from what was checked:
-- other keys are dropped.
CREATE FUNCTION app_notice_body(p_type text, p_actor text, p_targets text[], p_title text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type
        WHEN 'invited' THEN p_actor || '님이 ' || array_to_string(p_targets, '님, ') || '님을 초대했습니다.'
        WHEN 'removed' THEN p_actor || '님이 ' || array_to_string(p_targets, '님, ') || '님을 내보냈습니다.'
        WHEN 'left' THEN p_actor || '님이 나갔습니다.'
        WHEN 'renamed' THEN p_actor || '님이 그룹 이름을 ''' || p_title || '''(으)로 바꿨습니다.'
        WHEN 'admin_granted' THEN p_actor || '님이 ' || array_to_string(p_targets, '님, ') || '님을 방장으로 지정했습니다.'
        WHEN 'admin_revoked' THEN p_actor || '님이 ' || array_to_string(p_targets, '님, ') || '님의 방장 권한을 해제했습니다.'
        WHEN 'admin_passed' THEN array_to_string(p_targets, '님, ') || '님이 방장이 되었습니다.'
    END
$$;

CREATE OR REPLACE FUNCTION app_system_notice(p_conv bigint, p_body text, p_event jsonb)
RETURNS TABLE (notice_id bigint, notice_seq bigint, notice_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_type    text := p_event->>'type';
    v_kind    text;
    v_role    text;
    v_left    timestamptz;
    v_name    text;
    v_targets text[];
    v_title   text;
    v_ok      boolean;
    v_event   jsonb;
BEGIN
    -- The caller: an active member, or one who left in this transaction.
    SELECT c.kind, p.role, p.left_at INTO v_kind, v_role, v_left
      FROM conversations c
      JOIN conversation_participants p ON p.conversation_id = c.id
     WHERE c.id = p_conv AND c.org_id = app_org_id()
       AND p.user_id = app_user_id() AND p.org_id = app_org_id()
       AND (p.left_at IS NULL OR p.left_at = now());
    SELECT u.name INTO v_name FROM users u WHERE u.id = app_user_id();
    IF jsonb_typeof(p_event->'targets') = 'array' AND jsonb_array_length(p_event->'targets') > 0 THEN
        SELECT array_agg(t.name ORDER BY t.ord) INTO v_targets
          FROM jsonb_array_elements_text(p_event->'targets') WITH ORDINALITY AS t (name, ord);
    END IF;
    IF v_type = 'renamed' AND jsonb_typeof(p_event->'title') = 'string' THEN
        v_title := p_event->>'title';
    END IF;

    v_ok := v_kind IN ('group', 'direct')
        AND (p_event->>'actor') IS NOT DISTINCT FROM v_name
        AND (v_kind = 'group' OR v_type = 'left')
        AND (v_left IS NULL OR v_type IN ('left', 'admin_passed'))
        AND (v_role = 'admin' OR v_type IN ('invited', 'left'))
        AND (v_type = 'renamed') = (v_title IS NOT NULL)
        AND (v_type = 'left' OR v_type = 'renamed') = (v_targets IS NULL)
        AND (v_type = 'invited' OR coalesce(cardinality(v_targets), 1) = 1);
    IF v_ok THEN
        v_ok := CASE v_type
            WHEN 'invited' THEN
                (SELECT array_agg(x ORDER BY x) FROM unnest(v_targets) AS x) =
                (SELECT array_agg(u.name ORDER BY u.name)
                   FROM conversation_participants p JOIN users u ON u.id = p.user_id
                  WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND p.joined_at = now()
                    AND p.user_id <> app_user_id())
            WHEN 'removed' THEN
                (SELECT array_agg(u.name ORDER BY u.name)
                   FROM conversation_participants p JOIN users u ON u.id = p.user_id
                  WHERE p.conversation_id = p_conv AND p.left_at = now() AND p.user_id <> app_user_id())
                = v_targets
            WHEN 'left' THEN v_left = now()
            WHEN 'renamed' THEN EXISTS (
                SELECT 1 FROM conversations c
                 WHERE c.id = p_conv AND c.title = v_title AND c.xmin = pg_current_xact_id()::xid)
            WHEN 'admin_granted' THEN EXISTS (
                SELECT 1 FROM conversation_participants p JOIN users u ON u.id = p.user_id
                 WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND p.role = 'admin'
                   AND p.user_id <> app_user_id() AND u.name = v_targets[1] AND p.xmin = pg_current_xact_id()::xid)
            WHEN 'admin_revoked' THEN EXISTS (
                SELECT 1 FROM conversation_participants p JOIN users u ON u.id = p.user_id
                 WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND p.role = 'member'
                   AND u.name = v_targets[1] AND p.xmin = pg_current_xact_id()::xid)
            WHEN 'admin_passed' THEN EXISTS (
                SELECT 1 FROM conversation_participants p JOIN users u ON u.id = p.user_id
                 WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND p.role = 'admin'
                   AND p.user_id <> app_user_id() AND u.name = v_targets[1] AND p.xmin = pg_current_xact_id()::xid)
            ELSE false
        END;
    END IF;
    IF v_ok IS NOT TRUE THEN
        RAISE EXCEPTION 'not a notice the caller may post in conversation %', p_conv USING ERRCODE = '42501';
    END IF;

    v_event := jsonb_build_object('type', v_type, 'actor', v_name);
    IF v_targets IS NOT NULL THEN
        v_event := v_event || jsonb_build_object('targets', to_jsonb(v_targets));
    END IF;
    IF v_title IS NOT NULL THEN
        v_event := v_event || jsonb_build_object('title', v_title);
    END IF;
    RETURN QUERY
    WITH msg AS (
        INSERT INTO messages AS x (conversation_id, org_id, sender_id, kind, body, event)
        VALUES (p_conv, app_org_id(), app_user_id(), 'system', app_notice_body(v_type, v_name, v_targets, v_title), v_event)
        RETURNING x.id, x.seq, x.created_at
    ), r AS (
        INSERT INTO read_receipts AS rr (conversation_id, user_id, org_id, last_read_seq)
        SELECT p_conv, app_user_id(), app_org_id(), msg.seq FROM msg
        ON CONFLICT (conversation_id, user_id)
        DO UPDATE SET last_read_seq = GREATEST(rr.last_read_seq, EXCLUDED.last_read_seq), read_at = now()
    )
    SELECT msg.id, msg.seq, msg.created_at FROM msg;
END $$;

-- 4. A retired user joins nothing again, even an invitation racing their move: the check
-- waits for a move in progress (which holds the user row FOR NO KEY UPDATE; FOR SHARE
-- conflicts with it, FOR KEY SHARE would not) and then reads the row as it committed.
CREATE OR REPLACE FUNCTION app_current_member() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_moved timestamptz;
BEGIN
    IF NEW.left_at IS NULL THEN
        SELECT u.moved_at INTO v_moved FROM public.users u WHERE u.id = NEW.user_id FOR SHARE;
        IF v_moved IS NOT NULL THEN
            RAISE EXCEPTION 'user % moved to another organization', NEW.user_id USING ERRCODE = '42501';
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- 6. A send is checked before it is numbered: a user who may not post there is refused
-- with the policy's own error before the conversation's row is locked or its existence
-- shows. The check moved here from the policy (app_send keeps who and where), so a send
-- still probes once. A send raises its sender's watermark here too, under the same lock:
-- the application's statement no longer writes the receipt (no policy checks on it).
-- Inserts without user settings (the owner: tests, demo loading; the gates' notices) are
-- numbered as before.
CREATE OR REPLACE FUNCTION app_number_message() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_user bigint := public.app_user_id();
BEGIN
    IF v_user IS NOT NULL AND NEW.kind <> 'system'
       AND (NEW.sender_id IS DISTINCT FROM v_user OR NEW.org_id IS DISTINCT FROM public.app_org_id()
            OR NOT public.app_may_post(NEW.conversation_id)) THEN
        RAISE EXCEPTION 'new row violates row-level security policy for table "messages"' USING ERRCODE = '42501';
    END IF;
    UPDATE public.conversations
       SET last_seq = last_seq + 1, last_message_at = now(), updated_at = now()
     WHERE id = NEW.conversation_id AND org_id = NEW.org_id
    RETURNING last_seq INTO NEW.seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no conversation %', NEW.conversation_id USING ERRCODE = '42501';
    END IF;
    IF v_user IS NOT NULL AND NEW.kind <> 'system' THEN
        INSERT INTO public.read_receipts AS r (conversation_id, user_id, org_id, last_read_seq)
        VALUES (NEW.conversation_id, v_user, NEW.org_id, NEW.seq)
        ON CONFLICT (conversation_id, user_id)
        DO UPDATE SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), read_at = now();
    END IF;
    RETURN NEW;
END $$;

DROP POLICY app_send ON messages;
CREATE POLICY app_send ON messages FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id() AND kind <> 'system');

-- 7. Smaller holes.
-- A read receipt never passes the conversation's last message.
CREATE FUNCTION app_last_seq(p_conv bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN (SELECT c.last_seq FROM public.conversations c WHERE c.id = p_conv);
END $$;
ALTER FUNCTION app_last_seq(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_last_seq(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_last_seq(bigint) TO messenger_app;

DROP POLICY app_create ON read_receipts;
CREATE POLICY app_create ON read_receipts FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND user_id = app_user_id() AND app_is_member(conversation_id)
                AND last_read_seq <= app_last_seq(conversation_id));
DROP POLICY app_update ON read_receipts;
CREATE POLICY app_update ON read_receipts FOR UPDATE TO messenger_app
    USING (org_id = app_org_id() AND user_id = app_user_id())
    WITH CHECK (org_id = app_org_id() AND user_id = app_user_id() AND last_read_seq <= app_last_seq(conversation_id));

-- Messages are not edited: the application has no edit yet.
REVOKE UPDATE ON messages FROM messenger_app;
DROP POLICY app_edit ON messages;

-- app_invite as in 008, each person once however often the list names them.
CREATE OR REPLACE FUNCTION app_invite(p_conv bigint, p_users bigint[]) RETURNS SETOF bigint
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
        SELECT u.id, min(u.ord) AS ord FROM unnest(p_users) WITH ORDINALITY AS u (id, ord)
         WHERE u.id IS NOT NULL GROUP BY u.id
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

-- Titles and names are one line of text that runs as written: no C0 or C1 control, no
-- line or paragraph separator, no text-direction embedding, override or isolate, whatever
-- path writes them. Rows from before are not checked (NOT VALID); they are rewritten clean.
ALTER TABLE conversations ADD CONSTRAINT conversations_title_plain
    CHECK (title !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]') NOT VALID;
ALTER TABLE users ADD CONSTRAINT users_name_plain
    CHECK (name !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]') NOT VALID;
