-- Notifications: what a user wants to hear (settings, per-conversation mute and keywords),
-- where pushes go (push_subscriptions, one-time push_tickets for a window without a
-- session), and what the email digest has covered (digest_state, digest_marks).
--
-- The application's role writes only its own rows here: its settings, its own mute and
-- keywords (column grants on conversation_participants), its own subscriptions and tickets,
-- its own digest bookkeeping (a digest job acts as the user it concerns). Everything across
-- users goes through gates owned by messenger_gate, refusing with SQLSTATE 42501:
--
--   app_identity_of              a user's organization, zone, role, locale: jobs only
--   app_notify_members           each active member's notification view of a conversation: jobs only
--   app_partner_quiet_hours      the other member's quiet hours in a 1:1: its member (the composer notice)
--   app_save_push_subscription   the caller's subscription; an endpoint held by another user moves to the caller
--   app_redeem_push_ticket       a live, unused ticket's user, used once: never inside a user's transaction
--   app_push_subscriptions_of    the subscriptions of some users: jobs only
--   app_push_subscription_used   a subscription's last use: jobs only
--   app_push_subscription_gone   a subscription the push service said is gone: jobs only
--   app_digest_candidates        users away long enough with enough unread, email on: jobs only

-- A user's settings. No row: the defaults (push and email on, quiet hours from the role's
-- default, Asia/Seoul). quiet_custom false: the school's default for the role applies;
-- true: quiet_from/quiet_to, or none when both are null (the user turned them off).
-- A window whose end is before its start wraps midnight (21:00-08:00).
CREATE TABLE user_settings (
    user_id      bigint PRIMARY KEY,
    org_id       bigint NOT NULL,
    push         boolean NOT NULL DEFAULT true,
    email        boolean NOT NULL DEFAULT true,
    quiet_custom boolean NOT NULL DEFAULT false,
    quiet_from   time,
    quiet_to     time,
    time_zone    text NOT NULL DEFAULT 'Asia/Seoul',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE,
    CHECK ((quiet_from IS NULL) = (quiet_to IS NULL)),
    CHECK (quiet_from IS DISTINCT FROM quiet_to OR quiet_from IS NULL),
    CHECK (quiet_custom OR quiet_from IS NULL),
    CONSTRAINT user_settings_time_zone CHECK (time_zone ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$')
);

-- A zone name PostgreSQL knows (so SQL may compute local times), as Go's time.LoadLocation
-- is checked first by the application.
CREATE FUNCTION app_valid_time_zone(p_zone text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_zone)
$$;
ALTER TABLE user_settings ADD CONSTRAINT user_settings_known_zone CHECK (app_valid_time_zone(time_zone));

-- Keyword alerts per member: NFC-normalised and lowercased by the application, at most 100
-- words of at most 100 characters here (the configured caps are lower), no control
-- characters. Mute stays in muted_until: a time, 'infinity' for "until I turn it back on".
CREATE FUNCTION app_keywords_ok(p_words text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_ndims(p_words), 1) = 1 AND cardinality(p_words) <= 100
       AND NOT EXISTS (SELECT 1 FROM unnest(p_words) w
                        WHERE w IS NULL OR char_length(w) NOT BETWEEN 1 AND 100
                           OR w ~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
$$;
ALTER TABLE conversation_participants ADD COLUMN keywords text[] NOT NULL DEFAULT '{}'
    CONSTRAINT conversation_participants_keywords CHECK (app_keywords_ok(keywords));
GRANT UPDATE (keywords) ON conversation_participants TO messenger_app;

-- A device's push subscription (the browser's PushSubscription). Its id is random; the
-- endpoint is the capability the push service gave that browser, one row per endpoint.
CREATE TABLE push_subscriptions (
    id           uuid PRIMARY KEY,
    user_id      bigint NOT NULL,
    org_id       bigint NOT NULL,
    endpoint     text NOT NULL UNIQUE CHECK (char_length(endpoint) BETWEEN 1 AND 2048 AND endpoint ~ '^https?://[^\s]+$'),
    p256dh       text NOT NULL CHECK (p256dh ~ '^[A-Za-z0-9_-]{1,200}={0,2}$'),
    auth         text NOT NULL CHECK (auth ~ '^[A-Za-z0-9_-]{1,100}={0,2}$'),
    browser      text NOT NULL DEFAULT '' CHECK (char_length(browser) <= 100
                 AND browser !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- A one-time ticket that lets a top-level window without the session cookie register a
-- subscription for the user who asked for it: its SHA-256, at most 5 minutes, used once.
CREATE TABLE push_tickets (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    bigint NOT NULL,
    org_id     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE,
    CHECK (expires_at > created_at AND expires_at <= created_at + interval '5 minutes')
);
CREATE INDEX push_tickets_expiry ON push_tickets (expires_at);

-- The email digest: when the user last got one, and per conversation the seq it covered up
-- to (a digest never repeats a message; unread is counted above max(read, covered)).
CREATE TABLE digest_state (
    user_id      bigint PRIMARY KEY,
    org_id       bigint NOT NULL,
    last_sent_at timestamptz NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE TABLE digest_marks (
    conversation_id bigint NOT NULL,
    user_id         bigint NOT NULL,
    org_id          bigint NOT NULL,
    up_to_seq       bigint NOT NULL CHECK (up_to_seq >= 0),
    sent_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id),
    FOREIGN KEY (conversation_id, user_id)
        REFERENCES conversation_participants (conversation_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);
CREATE INDEX digest_marks_user ON digest_marks (user_id);

ALTER TABLE user_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_settings FORCE ROW LEVEL SECURITY;
ALTER TABLE push_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE push_subscriptions FORCE ROW LEVEL SECURITY;
ALTER TABLE push_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE push_tickets FORCE ROW LEVEL SECURITY;
ALTER TABLE digest_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE digest_state FORCE ROW LEVEL SECURITY;
ALTER TABLE digest_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE digest_marks FORCE ROW LEVEL SECURITY;

-- The application: its own rows.
GRANT SELECT, INSERT, UPDATE ON user_settings TO messenger_app;
CREATE POLICY app_own ON user_settings TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());

GRANT SELECT, DELETE ON push_subscriptions TO messenger_app;
GRANT UPDATE (browser) ON push_subscriptions TO messenger_app;
CREATE POLICY app_own ON push_subscriptions TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());

-- A ticket is made live and unused, for at most 5 minutes; its use is the gate's.
GRANT INSERT (token_hash, user_id, org_id, expires_at) ON push_tickets TO messenger_app;
GRANT SELECT ON push_tickets TO messenger_app;
CREATE POLICY app_own ON push_tickets FOR SELECT TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id());
CREATE POLICY app_create ON push_tickets FOR INSERT TO messenger_app
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id() AND used_at IS NULL
                AND expires_at <= now() + interval '5 minutes');

GRANT SELECT, INSERT, UPDATE ON digest_state TO messenger_app;
CREATE POLICY app_own ON digest_state TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id() AND last_sent_at <= now());
-- A mark covers only messages that exist, in a conversation the user is in.
GRANT SELECT, INSERT, UPDATE ON digest_marks TO messenger_app;
CREATE POLICY app_own ON digest_marks TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id() AND app_is_member(conversation_id)
                AND up_to_seq <= app_last_seq(conversation_id));

-- The gates' own access, used only inside their functions.
GRANT SELECT ON user_settings, digest_state, digest_marks TO messenger_gate;
GRANT SELECT, INSERT, UPDATE, DELETE ON push_subscriptions TO messenger_gate;
GRANT SELECT, UPDATE, DELETE ON push_tickets TO messenger_gate;
CREATE POLICY gate_read ON user_settings FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_read ON digest_state FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_read ON digest_marks FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_all ON push_subscriptions TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_all ON push_tickets TO messenger_gate USING (true) WITH CHECK (true);

-- app_identity_of answers what a job needs to act as a user (InTx): organization, zone,
-- role, locale, email address. Nothing for a user who moved away.
CREATE FUNCTION app_identity_of(p_user bigint)
RETURNS TABLE (org_id bigint, zone_id bigint, role text, locale text, name text, email text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY SELECT u.org_id, coalesce(u.zone_id, 0::bigint), u.role, u.locale, u.name, u.email
                   FROM users u WHERE u.id = p_user AND u.moved_at IS NULL;
END $$;

-- app_notify_members answers, for each active member of a conversation, what deciding a
-- push needs: their read watermark, mute, keywords and settings (defaults when they have
-- no row; quiet_custom false means the role's default applies).
CREATE FUNCTION app_notify_members(p_conv bigint)
RETURNS TABLE (user_id bigint, role text, locale text, last_read_seq bigint, muted_until timestamptz,
               keywords text[], push boolean, email boolean, quiet_custom boolean, quiet_from time,
               quiet_to time, time_zone text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    SELECT p.user_id, u.role, u.locale, coalesce(r.last_read_seq, 0::bigint), p.muted_until, p.keywords,
           coalesce(s.push, true), coalesce(s.email, true), coalesce(s.quiet_custom, false),
           s.quiet_from, s.quiet_to, coalesce(s.time_zone, 'Asia/Seoul')
      FROM conversation_participants p
      JOIN users u ON u.id = p.user_id
      LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
      LEFT JOIN user_settings s ON s.user_id = p.user_id
     WHERE p.conversation_id = p_conv AND p.left_at IS NULL AND u.moved_at IS NULL
     ORDER BY p.user_id;
END $$;

-- app_partner_quiet_hours answers the other member's quiet hours in a direct conversation
-- the caller is an active member of (what the composer tells the writer); nothing when the
-- partner has left.
CREATE FUNCTION app_partner_quiet_hours(p_conv bigint)
RETURNS TABLE (user_id bigint, role text, quiet_custom boolean, quiet_from time, quiet_to time, time_zone text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    m record;
BEGIN
    m := app_caller_membership(p_conv);
    IF m.kind <> 'direct' THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT p.user_id, u.role, coalesce(s.quiet_custom, false), s.quiet_from, s.quiet_to,
           coalesce(s.time_zone, 'Asia/Seoul')
      FROM conversation_participants p
      JOIN users u ON u.id = p.user_id
      LEFT JOIN user_settings s ON s.user_id = p.user_id
     WHERE p.conversation_id = p_conv AND p.user_id <> app_user_id() AND p.left_at IS NULL
       AND u.moved_at IS NULL;
END $$;

-- app_save_push_subscription stores the caller's subscription (id random, from the
-- application). An endpoint already stored moves to the caller with the new keys: only the
-- browser that holds the subscription knows its endpoint, and that browser now subscribes
-- for the caller (a shared computer). Answers the row's id.
CREATE FUNCTION app_save_push_subscription(p_id uuid, p_endpoint text, p_p256dh text, p_auth text, p_browser text)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_id uuid;
BEGIN
    IF app_user_id() IS NULL OR app_org_id() IS NULL
       OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = app_user_id() AND u.org_id = app_org_id() AND u.moved_at IS NULL) THEN
        RAISE EXCEPTION 'no user' USING ERRCODE = '42501';
    END IF;
    INSERT INTO push_subscriptions AS s (id, user_id, org_id, endpoint, p256dh, auth, browser)
    VALUES (p_id, app_user_id(), app_org_id(), p_endpoint, p_p256dh, p_auth, coalesce(p_browser, ''))
    ON CONFLICT (endpoint) DO UPDATE
        SET user_id = EXCLUDED.user_id, org_id = EXCLUDED.org_id, p256dh = EXCLUDED.p256dh,
            auth = EXCLUDED.auth, browser = EXCLUDED.browser, created_at = now(), last_used_at = NULL
    RETURNING s.id INTO v_id;
    RETURN v_id;
END $$;

-- app_redeem_push_ticket uses a live ticket once and answers its user, for a request that
-- has no session; expired tickets go as it passes.
CREATE FUNCTION app_redeem_push_ticket(p_hash bytea)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_user bigint;
BEGIN
    PERFORM app_refuse_inside_user();
    DELETE FROM push_tickets t WHERE t.expires_at < now() - interval '1 hour';
    UPDATE push_tickets t SET used_at = now()
     WHERE t.token_hash = p_hash AND t.used_at IS NULL AND t.expires_at > now()
    RETURNING t.user_id INTO v_user;
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT u.id, u.org_id, u.zone_id FROM users u WHERE u.id = v_user AND u.moved_at IS NULL;
END $$;

-- app_push_subscriptions_of answers the subscriptions of the given users (at most 1000).
CREATE FUNCTION app_push_subscriptions_of(p_users bigint[])
RETURNS TABLE (id uuid, user_id bigint, endpoint text, p256dh text, auth text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF cardinality(p_users) > 1000 THEN
        RAISE EXCEPTION 'at most 1000 users' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY SELECT s.id, s.user_id, s.endpoint, s.p256dh, s.auth
                   FROM push_subscriptions s WHERE s.user_id = ANY (p_users)
                  ORDER BY s.user_id, s.created_at;
END $$;

CREATE FUNCTION app_push_subscription_used(p_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    UPDATE push_subscriptions SET last_used_at = now() WHERE id = p_id;
END $$;

CREATE FUNCTION app_push_subscription_gone(p_id uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    DELETE FROM push_subscriptions WHERE id = p_id;
    RETURN FOUND;
END $$;

-- app_digest_candidates answers users not seen since p_seen_before, with email on and an
-- address, whose unread messages not yet in a digest (above both their read watermark and
-- the digest's mark, in conversations they have not muted) number at least p_min_unread.
CREATE FUNCTION app_digest_candidates(p_seen_before timestamptz, p_min_unread integer, p_limit integer)
RETURNS TABLE (user_id bigint, unread bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    SELECT u.id, sum(c.last_seq - greatest(coalesce(r.last_read_seq, 0), coalesce(d.up_to_seq, 0)))::bigint
      FROM users u
      LEFT JOIN user_settings s ON s.user_id = u.id
      JOIN conversation_participants p ON p.user_id = u.id AND p.left_at IS NULL
      JOIN conversations c ON c.id = p.conversation_id
      LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = u.id
      LEFT JOIN digest_marks d ON d.conversation_id = p.conversation_id AND d.user_id = u.id
     WHERE u.moved_at IS NULL AND u.email <> '' AND coalesce(s.email, true)
       AND coalesce(u.last_seen_at, u.created_at) < p_seen_before
       AND (p.muted_until IS NULL OR p.muted_until < now())
       AND c.last_seq > greatest(coalesce(r.last_read_seq, 0), coalesce(d.up_to_seq, 0))
     GROUP BY u.id
    HAVING sum(c.last_seq - greatest(coalesce(r.last_read_seq, 0), coalesce(d.up_to_seq, 0))) >= p_min_unread
     ORDER BY u.id
     LIMIT least(greatest(p_limit, 0), 10000);
END $$;

ALTER FUNCTION app_identity_of(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_notify_members(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_partner_quiet_hours(bigint) OWNER TO messenger_gate;
ALTER FUNCTION app_save_push_subscription(uuid, text, text, text, text) OWNER TO messenger_gate;
ALTER FUNCTION app_redeem_push_ticket(bytea) OWNER TO messenger_gate;
ALTER FUNCTION app_push_subscriptions_of(bigint[]) OWNER TO messenger_gate;
ALTER FUNCTION app_push_subscription_used(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_push_subscription_gone(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_digest_candidates(timestamptz, integer, integer) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_identity_of(bigint), app_notify_members(bigint), app_partner_quiet_hours(bigint),
    app_save_push_subscription(uuid, text, text, text, text), app_redeem_push_ticket(bytea),
    app_push_subscriptions_of(bigint[]), app_push_subscription_used(uuid), app_push_subscription_gone(uuid),
    app_digest_candidates(timestamptz, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_identity_of(bigint), app_notify_members(bigint), app_partner_quiet_hours(bigint),
    app_save_push_subscription(uuid, text, text, text, text), app_redeem_push_ticket(bytea),
    app_push_subscriptions_of(bigint[]), app_push_subscription_used(uuid), app_push_subscription_gone(uuid),
    app_digest_candidates(timestamptz, integer, integer) TO messenger_app;
