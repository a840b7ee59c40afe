-- Sends stored by a gate, numbered once per conversation per batch. Before this, every
-- message's INSERT ran the numbering trigger (app_number_message): the sender's right to
-- post asked again, one UPDATE of the conversation's last_seq per message (a new row
-- version each), one upsert of the sender's receipt per message; and the batch was one
-- app_send_messages call per conversation. app_send_batch stores a whole batch (the sends
-- of several conversations that waited on each other) in one call, a set at a time:
--
--   1. every sender's membership row share-locked, in order of conversation and user (as a
--      membership change locks them: a removal either waits for the send, whose message
--      then comes before its notice, or commits first and the send finds no membership);
--   2. each send's answer from one read: not_found (not an active member of that
--      conversation in that organization), duplicate (the sender's client_msg_id stored
--      before, or given twice in the batch: the later ones answer the first), forbidden
--      (an announcement, and the sender may not announce: the application says so, or the
--      user's portal role is not admin or teacher), else new (conflict: a client_msg_id
--      given twice whose first send was refused);
--   3. the conversations' rows locked in order of id (two batches never wait on each
--      other crosswise), then each one's last_seq raised once by the number of its new
--      messages: they take the seqs after the old last_seq, in the order given;
--   4. the messages inserted in one statement with those seqs, the senders' watermarks
--      raised in one, each conversation's active members read in one.
--
-- Trust. The gate inserts as messenger_gate with the seq set; the numbering trigger skips
-- only such rows (WHEN: the inserting role is messenger_gate and the seq is given). The
-- application role has no privilege on the seq column, so its own INSERT is numbered and
-- checked by the trigger as before, and the gates that insert notices and files leave the
-- seq to it. The gate takes user ids as arguments, as app_send_messages took them for the
-- settings the application role may set anyway; it refuses to run inside a user's
-- transaction (a transaction acting for one user cannot send as others through it), and
-- it checks each sender itself: membership and organization from the database, never
-- the caller's word.
--
-- Each send gets its own answer (outcome, message id, seq, time; an announcement's zone;
-- the first row of each conversation with new messages carries its active members, an
-- announcement's none). An error that is no check's answer (a client_msg_id another
-- transaction stored meanwhile) fails the statement, and the application splits the batch.

DROP TRIGGER messages_number ON messages;
CREATE TRIGGER messages_number BEFORE INSERT ON messages FOR EACH ROW
    WHEN (NEW.seq IS NULL OR current_user <> 'messenger_gate')
    EXECUTE FUNCTION app_number_message();

CREATE POLICY gate_send ON messages FOR INSERT TO messenger_gate WITH CHECK (kind = 'text');

CREATE FUNCTION app_send_batch(p_convs bigint[], p_users bigint[], p_orgs bigint[], p_clients uuid[],
                               p_bodies text[], p_announce boolean[])
RETURNS TABLE (outcome text, message_id bigint, message_seq bigint, message_at timestamptz,
               zone_id bigint, members bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
-- Its statements take arrays: a custom plan (PostgreSQL's choice for a statement's first
-- runs, kept when it looks no dearer) plans every one of them again on every call, which
-- cost more than the batch of one it stored. Their generic plans are the custom ones.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n       int := coalesce(array_length(p_users, 1), 0);
    v_out   text[];
    v_id    bigint[];
    v_kind  text[];
    v_zone  bigint[];
    v_seq   bigint[];
    v_at    timestamptz;
    v_convs bigint[];
    v_base  bigint[]; -- each conversation's new messages, then the last_seq before them
    v_last  bigint;
BEGIN
    PERFORM app_refuse_inside_user();
    IF n = 0 OR n > 1000 OR array_length(p_convs, 1) <> n OR array_length(p_orgs, 1) <> n
       OR array_length(p_clients, 1) <> n OR array_length(p_bodies, 1) <> n
       OR array_length(p_announce, 1) <> n THEN
        RAISE EXCEPTION 'app_send_batch: 1 to 1000 sends, arrays of one length' USING ERRCODE = '22023';
    END IF;

    -- 1. The senders' memberships, share-locked in order.
    PERFORM 1 FROM conversation_participants p
      JOIN (SELECT DISTINCT u.conv, u.usr FROM unnest(p_convs, p_users) AS u (conv, usr)) s
        ON p.conversation_id = s.conv AND p.user_id = s.usr
     WHERE p.left_at IS NULL
     ORDER BY p.conversation_id, p.user_id
       FOR SHARE OF p;

    -- 2. Each send's answer.
    SELECT array_agg(CASE
                WHEN a.member IS NULL THEN 'not_found'
                WHEN a.existing IS NOT NULL OR a.twin THEN 'duplicate'
                WHEN a.kind = 'announcement' AND NOT (a.announce AND a.role IN ('admin', 'teacher')) THEN 'forbidden'
                ELSE 'new' END ORDER BY a.ord),
           array_agg(a.existing ORDER BY a.ord), array_agg(a.kind ORDER BY a.ord),
           array_agg(CASE WHEN a.kind = 'announcement' THEN a.zone ELSE 0 END ORDER BY a.ord)
      INTO v_out, v_id, v_kind, v_zone
      FROM (SELECT s.ord, s.announce, p.user_id AS member, c.kind, coalesce(c.zone_id, 0) AS zone, u.role,
                   (SELECT m.id FROM messages m WHERE m.sender_id = s.usr AND m.client_msg_id = s.client) AS existing,
                   s.client IS NOT NULL AND
                   row_number() OVER (PARTITION BY s.usr, s.client ORDER BY s.ord) > 1 AS twin
              FROM unnest(p_convs, p_users, p_orgs, p_clients, p_announce) WITH ORDINALITY
                   AS s (conv, usr, org, client, announce, ord)
              LEFT JOIN conversation_participants p
                     ON p.conversation_id = s.conv AND p.user_id = s.usr AND p.org_id = s.org AND p.left_at IS NULL
              LEFT JOIN conversations c ON c.id = s.conv AND p.user_id IS NOT NULL
              LEFT JOIN users u ON u.id = s.usr AND p.user_id IS NOT NULL) a;

    -- 3. Each conversation's seqs: its last_seq raised once, in order of id.
    SELECT array_agg(k.conv ORDER BY k.conv), array_agg(k.n ORDER BY k.conv) INTO v_convs, v_base
      FROM (SELECT u.conv, count(*) AS n FROM unnest(p_convs, v_out) AS u (conv, o)
             WHERE u.o = 'new' GROUP BY u.conv) k;
    IF v_convs IS NOT NULL THEN
        FOR i IN 1 .. array_length(v_convs, 1) LOOP
            UPDATE conversations c
               SET last_seq = c.last_seq + v_base[i], last_message_at = now(), updated_at = now()
             WHERE c.id = v_convs[i]
         RETURNING c.last_seq - v_base[i] INTO v_last;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no conversation %', v_convs[i] USING ERRCODE = '42501';
            END IF;
            v_base[i] := v_last;
        END LOOP;
        -- The new messages' seqs: after the old last_seq, in the order given.
        SELECT array_agg(CASE WHEN r.o = 'new' THEN v_base[array_position(v_convs, r.conv)] + r.k END ORDER BY r.ord)
          INTO v_seq
          FROM (SELECT s.ord, s.o, s.conv,
                       count(*) FILTER (WHERE s.o = 'new') OVER (PARTITION BY s.conv ORDER BY s.ord) AS k
                  FROM unnest(p_convs, v_out) WITH ORDINALITY AS s (conv, o, ord)) r;

        -- 4. The messages, the senders' watermarks.
        WITH ins AS (
            INSERT INTO messages (conversation_id, org_id, seq, sender_id, client_msg_id, kind, body)
            SELECT s.conv, s.org, s.seq, s.usr, s.client, 'text', s.body
              FROM unnest(p_convs, p_orgs, v_seq, p_users, p_clients, p_bodies)
                   WITH ORDINALITY AS s (conv, org, seq, usr, client, body, ord)
             WHERE s.seq IS NOT NULL
             ORDER BY s.ord
         RETURNING id, conversation_id, seq, created_at)
        SELECT array_agg(coalesce(ins.id, s.id) ORDER BY s.ord), min(ins.created_at) INTO v_id, v_at
          FROM unnest(p_convs, v_seq, v_id) WITH ORDINALITY AS s (conv, seq, id, ord)
          LEFT JOIN ins ON ins.conversation_id = s.conv AND ins.seq = s.seq;

        INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq)
        SELECT s.conv, s.usr, s.org, max(s.seq)
          FROM unnest(p_convs, p_users, p_orgs, v_seq) AS s (conv, usr, org, seq)
         WHERE s.seq IS NOT NULL
         GROUP BY s.conv, s.usr, s.org
        ON CONFLICT (conversation_id, user_id)
        DO UPDATE SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), read_at = now();
    END IF;

    -- A client_msg_id given twice: the later sends answer the first's message; if the first
    -- stored none (refused), a conflict (the application gives one client_msg_id to two
    -- conversations only by mistake).
    IF 'duplicate' = ANY (v_out) THEN
        SELECT array_agg(r.id ORDER BY r.ord), array_agg(CASE WHEN r.o = 'duplicate' AND r.id IS NULL
                    THEN 'conflict' ELSE r.o END ORDER BY r.ord)
          INTO v_id, v_out
          FROM (SELECT s.ord, s.o, CASE WHEN s.o = 'duplicate' AND s.id IS NULL
                    THEN (SELECT m.id FROM messages m WHERE m.sender_id = s.usr AND m.client_msg_id = s.client)
                    ELSE s.id END AS id
                  FROM unnest(v_out, v_id, p_users, p_clients) WITH ORDINALITY AS s (o, id, usr, client, ord)) r;
    END IF;

    RETURN QUERY
        SELECT CASE WHEN r.o = 'new' THEN 'created' ELSE r.o END, r.id, r.seq,
               CASE WHEN r.o = 'new' THEN v_at END,
               r.zone,
               CASE WHEN r.o = 'new' AND r.kind <> 'announcement' AND r.ord = r.first
                    THEN (SELECT coalesce(array_agg(p.user_id ORDER BY p.user_id), '{}')
                            FROM conversation_participants p
                           WHERE p.conversation_id = r.conv AND p.left_at IS NULL) END
          FROM (SELECT s.*, min(s.ord) FILTER (WHERE s.o = 'new') OVER (PARTITION BY s.conv) AS first
                  FROM unnest(p_convs, v_out, v_id, v_seq, v_kind, v_zone) WITH ORDINALITY
                       AS s (conv, o, id, seq, kind, zone, ord)) r
         ORDER BY r.ord;
END $$;
ALTER FUNCTION app_send_batch(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_send_batch(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_send_batch(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) TO messenger_app;
