-- A user who moves, judged by the portal's tokens rather than by the server's clock.
--
-- 009 compared a token's iat with the current row's created_at: when the request that made
-- the row arrived, not when the portal issued its token. Two tokens naming two other
-- schools that raced let the older one win (the newer one, retried after the older one's
-- commit, looked older than the row it made). And a token without iat moved the user on
-- every request, so an old one within its lifetime moved them back and forth.
--
-- Now the row remembers the iat of the newest token that signed it in (token_iat; null for
-- rows signed in only by tokens without iat, and for rows made before this migration). A
-- token naming another organization moves the user only if it carries iat and its iat is
-- later than token_iat (than the row's created_at, to the second, when token_iat is null);
-- otherwise it is refused (SQLSTATE 28000, a 401): the portal must send iat to move people.
-- iat counts whole seconds: of two tokens issued in the same second naming two schools,
-- the first to arrive wins and the other is refused, so nothing moves back and forth.

ALTER TABLE users ADD COLUMN token_iat timestamptz;

-- app_sign_in as in 011 (refused inside a user's transaction, the current row locked FOR
-- NO KEY UPDATE, the user written only when a claim changed, the zone's announcements
-- joined, 40001 when a concurrent move won), and: token_iat raised to each token's iat
-- (GREATEST; a token's first sign-in writes it), and a move allowed only to a token newer
-- than it.
CREATE OR REPLACE FUNCTION app_sign_in(p_issuer text, p_sub text, p_org text, p_zone text, p_name text,
                                       p_email text, p_role text, p_locale text, p_issued_at timestamptz)
RETURNS TABLE (user_id bigint, org_id bigint, zone_id bigint, moved jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_org       bigint;
    v_zone      bigint;
    v_user      bigint;
    v_iat_known boolean;
    v_cur       bigint;
    v_cur_org   bigint;
    v_cur_at    timestamptz;
    v_cur_iat   timestamptz;
    v_moved     jsonb;
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

    SELECT u.id, p_issued_at IS NULL OR coalesce(u.token_iat >= p_issued_at, false) INTO v_user, v_iat_known FROM users u
     WHERE u.issuer = p_issuer AND u.sub = p_sub AND u.moved_at IS NULL
       AND (u.org_id, u.zone_id, u.name, u.email, u.role, u.locale)
           IS NOT DISTINCT FROM (v_org, v_zone, p_name, p_email, p_role, p_locale);
    IF v_user IS NOT NULL AND NOT v_iat_known THEN
        -- The same claims in a newer token: only its iat is written, once per token (the
        -- zone's announcements are not joined again, which would mark them read).
        UPDATE users u SET token_iat = GREATEST(u.token_iat, p_issued_at)
         WHERE u.id = v_user AND u.moved_at IS NULL;
        IF NOT FOUND THEN
            v_user := NULL; -- moved meanwhile: judged below like any other token
        END IF;
    END IF;
    IF v_user IS NULL THEN -- new, moved, or a claim changed
        SELECT u.id, u.org_id, u.created_at, u.token_iat INTO v_cur, v_cur_org, v_cur_at, v_cur_iat FROM users u
         WHERE u.issuer = p_issuer AND u.sub = p_sub AND u.moved_at IS NULL
           FOR NO KEY UPDATE;
        IF v_cur IS NOT NULL AND v_cur_org <> v_org THEN
            IF p_issued_at IS NULL THEN
                RAISE EXCEPTION 'a token without iat cannot move %', p_sub USING ERRCODE = '28000',
                    HINT = 'no iat';
            END IF;
            IF (v_cur_iat IS NOT NULL AND p_issued_at <= v_cur_iat)
               OR (v_cur_iat IS NULL AND p_issued_at < date_trunc('second', v_cur_at)) THEN
                RAISE EXCEPTION 'token of % predates their move', p_sub USING ERRCODE = '28000',
                    HINT = 'older';
            END IF;
            v_moved := app_move_out(v_cur);
        END IF;
        INSERT INTO users AS u (issuer, sub, org_id, zone_id, name, email, role, locale, token_iat)
        VALUES (p_issuer, p_sub, v_org, v_zone, p_name, p_email, p_role, p_locale, p_issued_at)
        ON CONFLICT (issuer, sub) WHERE moved_at IS NULL DO UPDATE
            SET zone_id = EXCLUDED.zone_id, name = EXCLUDED.name, email = EXCLUDED.email,
                role = EXCLUDED.role, locale = EXCLUDED.locale,
                token_iat = GREATEST(u.token_iat, EXCLUDED.token_iat), updated_at = now()
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
