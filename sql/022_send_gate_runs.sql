-- The send gate's answer with, for each conversation the batch sent to, the message that
-- was its last before the batch: its sender, kind and time, on the first of the
-- conversation's new messages (one probe of UNIQUE (conversation_id, seq) per
-- conversation). With it the application knows whether each new message continues the run
-- of the one before it (messenger.JoinsRun) without a read of its own: the live row
-- carries the answer, and the browser only applies it.
--
-- It wraps app_send_batch (020_send_gate.sql), which keeps every check and lock: only a
-- send the gate created is looked behind, in a conversation whose row that gate locked
-- until the commit and where its sender is a member, so the answer says nothing of a
-- conversation the sender may not read. It refuses to run inside a user's transaction as
-- the gate does (the gate's own check, called first).

CREATE FUNCTION app_send_batch_runs(p_convs bigint[], p_users bigint[], p_orgs bigint[], p_clients uuid[],
                                    p_bodies text[], p_announce boolean[])
RETURNS TABLE (outcome text, message_id bigint, message_seq bigint, message_at timestamptz,
               zone_id bigint, members bigint[], prev_sender bigint, prev_kind text, prev_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
-- As the gate's: a statement on arrays planned once, not again on every call.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT b.o, b.id, b.seq, b.at, b.zone, b.mem, p.sender_id, p.kind, p.created_at
          FROM (SELECT g.*, s.conv,
                       min(g.ord) FILTER (WHERE g.o = 'created') OVER (PARTITION BY s.conv) AS first
                  FROM app_send_batch(p_convs, p_users, p_orgs, p_clients, p_bodies, p_announce)
                       WITH ORDINALITY AS g (o, id, seq, at, zone, mem, ord)
                  JOIN unnest(p_convs) WITH ORDINALITY AS s (conv, ord) ON s.ord = g.ord) b
          LEFT JOIN messages p
                 ON b.ord = b.first AND p.conversation_id = b.conv AND p.seq = b.seq - 1
         ORDER BY b.ord;
END $$;
ALTER FUNCTION app_send_batch_runs(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_send_batch_runs(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_send_batch_runs(bigint[], bigint[], bigint[], uuid[], text[], boolean[]) TO messenger_app;
