-- The conversation list's reads (docs/performance.md, "The conversation list under 5 ms").
--
-- app_preview_readers counts, for each conversation of p_convs the caller can see, the
-- members other than p_senders' whose read watermark reached p_seqs': the read count of
-- each preview of the list. Counted as the application's role, every watermark row passed
-- the policies' filter on read_receipts (app_read: its organization, and its conversation
-- in the caller's visible set): 3,525 rows for a teacher's first page of 51, about 1.0 ms
-- of the previews' 1.6 ms. Here the caller's visibility is checked once per conversation,
-- by the same rule as the policies (app_visible_conversation_ids: an active membership in
-- the caller's organization, or the announcements of their zone), and the watermarks of
-- a conversation the caller cannot see are never read: it answers no row for it. What it
-- answers is what the caller could count under the policies themselves (the watermarks of
-- a conversation they are in are theirs to read); only the per-row filter is saved.
CREATE FUNCTION app_preview_readers(p_convs bigint[], p_seqs bigint[], p_senders bigint[])
RETURNS TABLE (conversation_id bigint, readers bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_org bigint := app_org_id();
BEGIN
    RETURN QUERY
        SELECT q.conv,
               (SELECT count(*) FROM read_receipts r
                 WHERE r.conversation_id = q.conv AND r.last_read_seq >= q.seq
                   AND r.user_id <> q.sender AND r.org_id = v_org)
          FROM unnest(p_convs, p_seqs, p_senders) AS q (conv, seq, sender)
         WHERE q.conv IN (SELECT app_visible_conversation_ids());
END $$;
ALTER FUNCTION app_preview_readers(bigint[], bigint[], bigint[]) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_preview_readers(bigint[], bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_preview_readers(bigint[], bigint[], bigint[]) TO messenger_app;
