-- app_sign_in ran on every API request and upserted the organization and zone rows with
-- ON CONFLICT DO UPDATE: a write, so every request of one organization queued on that row
-- lock until its commit. Now they are read, and written only when missing; the user row is
-- written only when a claim changed, as before.

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
    END IF;

    RETURN QUERY SELECT v_user, v_org, v_zone;
END $$;
