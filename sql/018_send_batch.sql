-- Group commit of sends: app_send_messages stores the text messages that several senders
-- sent to one conversation meanwhile, in one statement and one transaction, so that the
-- transaction's fixed cost (its round trips, its snapshot, the commit's WAL flush) is paid
-- once for all of them.
--
-- It runs as the caller (SECURITY INVOKER: the application's role, row-level security on):
-- for each send it names that send's user in the transaction's settings, as a single send
-- does with set_config, and every check and insert is the same statement, under the same
-- policies and the same numbering trigger (app_number_message), as a single send's. The
-- application role may already name any user in its settings; this function gives it no
-- more.
--
-- Each send gets its own answer, and a refused one does not sink the others:
--   created    message_id, message_seq, message_at: the new message
--   duplicate  message_id: the sender's message with that client_msg_id, stored before
--   not_found  the conversation is not there for the sender (not an active member)
--   forbidden  an announcement, and the sender may not announce
-- The checks come first (app_send_check), each sender's membership row share-locked until
-- the commit (as a single send's is: a removal either waits for the send or commits before
-- it), in order of user id as a membership change locks the rows; then the inserts, in the order given, so
-- seqs follow the order of the arrays. An error that is no check's answer (a client_msg_id
-- that another transaction stored meanwhile, a role changed since the application read it)
-- fails the statement, and the application sends each message alone. Two sends in one call
-- must not share a sender and a client_msg_id (the application answers the second from the
-- first). The first row also carries the members to tell (an announcement's: none).
-- app_send_check: is the caller an active member of p_conv, and the conversation's kind and
-- zone; the caller's own membership row is share-locked until the commit (a removal or a
-- leave waits for the send, or commits first and the send finds no membership). A gate,
-- like app_may_post, so that the check is one index probe: the same question asked as the
-- application role goes through the read policies' visibility function, which costs more
-- than the rest of the check. No row: not a member.
CREATE FUNCTION app_send_check(p_conv bigint) RETURNS TABLE (conv_kind text, conv_zone bigint)
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN QUERY
        SELECT c.kind, coalesce(c.zone_id, 0)
          FROM public.conversation_participants p
          JOIN public.conversations c ON c.id = p.conversation_id
         WHERE p.conversation_id = p_conv AND p.user_id = public.app_user_id()
           AND p.org_id = public.app_org_id() AND p.left_at IS NULL
           FOR SHARE OF p;
END $$;
ALTER FUNCTION app_send_check(bigint) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_send_check(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_send_check(bigint) TO messenger_app;

CREATE FUNCTION app_send_messages(p_conv bigint, p_users bigint[], p_orgs bigint[], p_zones bigint[],
                                  p_clients uuid[], p_bodies text[], p_announce boolean[])
RETURNS TABLE (outcome text, message_id bigint, message_seq bigint, message_at timestamptz,
               zone_id bigint, members bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    n          int := coalesce(array_length(p_users, 1), 0);
    v_out      text[] := array_fill(NULL::text, ARRAY[n]);
    v_id       bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_seq      bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_at       timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
    v_conv     text;   -- the conversation's kind, once a sender found it
    v_conv_zone bigint;
    v_member   boolean;
    v_kind     text;
    v_zone     bigint;
    v_existing bigint;
    v_new_id   bigint;
    v_new_seq  bigint;
    v_new_at   timestamptz;
    v_any      boolean := false;
    v_members  bigint[] := '{}';
    i          int;
BEGIN
    IF n = 0 OR array_length(p_orgs, 1) <> n OR array_length(p_zones, 1) <> n OR array_length(p_clients, 1) <> n
       OR array_length(p_bodies, 1) <> n OR array_length(p_announce, 1) <> n THEN
        RAISE EXCEPTION 'app_send_messages: arrays of different lengths' USING ERRCODE = '22023';
    END IF;
    FOR i IN SELECT u.o FROM unnest(p_users) WITH ORDINALITY AS u (id, o) ORDER BY u.id, u.o LOOP
        PERFORM set_config('app.user_id', p_users[i]::text, true), set_config('app.org_id', p_orgs[i]::text, true),
                set_config('app.zone_id', coalesce(p_zones[i]::text, ''), true);
        SELECT k.conv_kind, k.conv_zone INTO v_kind, v_zone FROM app_send_check(p_conv) k;
        v_member := FOUND;
        IF v_member THEN
            v_conv := v_kind;
            v_conv_zone := v_zone;
        END IF;
        SELECT m.id INTO v_existing FROM messages m WHERE m.sender_id = p_users[i] AND m.client_msg_id = p_clients[i];
        IF NOT v_member THEN
            v_out[i] := 'not_found';
        ELSIF v_existing IS NOT NULL THEN
            v_out[i] := 'duplicate';
            v_id[i] := v_existing;
        ELSIF v_conv = 'announcement' AND NOT p_announce[i] THEN
            v_out[i] := 'forbidden';
        ELSE
            v_out[i] := 'new';
        END IF;
    END LOOP;
    FOR i IN 1..n LOOP
        CONTINUE WHEN v_out[i] <> 'new';
        PERFORM set_config('app.user_id', p_users[i]::text, true), set_config('app.org_id', p_orgs[i]::text, true),
                set_config('app.zone_id', coalesce(p_zones[i]::text, ''), true);
        INSERT INTO messages (conversation_id, org_id, sender_id, client_msg_id, kind, body)
        VALUES (p_conv, p_orgs[i], p_users[i], p_clients[i], 'text', p_bodies[i])
        RETURNING id, seq, created_at INTO v_new_id, v_new_seq, v_new_at;
        v_id[i] := v_new_id;
        v_seq[i] := v_new_seq;
        v_at[i] := v_new_at;
        v_out[i] := 'created';
        v_any := true;
    END LOOP;
    IF v_any AND v_conv <> 'announcement' THEN
        -- As the last sender named above, who is an active member.
        SELECT coalesce(array_agg(p.user_id ORDER BY p.user_id), '{}') INTO v_members
          FROM conversation_participants p WHERE p.conversation_id = p_conv AND p.left_at IS NULL;
    END IF;
    RETURN QUERY
        SELECT v_out[k], v_id[k], v_seq[k], v_at[k],
               CASE WHEN v_conv = 'announcement' THEN v_conv_zone ELSE 0 END,
               CASE WHEN k = 1 THEN v_members END
          FROM generate_subscripts(v_out, 1) AS k ORDER BY k;
END $$;
REVOKE ALL ON FUNCTION app_send_messages(bigint, bigint[], bigint[], bigint[], uuid[], text[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_send_messages(bigint, bigint[], bigint[], bigint[], uuid[], text[], boolean[]) TO messenger_app;
