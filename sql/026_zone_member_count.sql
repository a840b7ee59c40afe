-- A zone's announcement conversation is not counted by the member-count trigger (023).
-- Every first sign-in of a zone's user joins its announcement conversation, so counting
-- them updated that one conversations row in every sign-in transaction: a school's
-- morning of first sign-ins queued behind one row lock, and the sends and reads that
-- lock the row waited behind them (10,000 streams opening at 100 at a time ran into the
-- database timeout). Its members are the zone's; its member_count is 0, documented so.
CREATE OR REPLACE FUNCTION app_count_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.conversations c SET member_count = c.member_count + d.delta
          FROM (SELECT conversation_id, count(*)::int AS delta FROM added
                 WHERE left_at IS NULL GROUP BY conversation_id) d
         WHERE c.id = d.conversation_id AND c.kind <> 'announcement';
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.conversations c SET member_count = c.member_count + d.delta
          FROM (SELECT a.conversation_id,
                       sum(CASE WHEN a.left_at IS NULL THEN 1 ELSE -1 END)::int AS delta
                  FROM after_rows a
                  JOIN before_rows b ON b.conversation_id = a.conversation_id AND b.user_id = a.user_id
                 WHERE (a.left_at IS NULL) <> (b.left_at IS NULL)
                 GROUP BY a.conversation_id) d
         WHERE c.id = d.conversation_id AND d.delta <> 0 AND c.kind <> 'announcement';
    ELSE
        UPDATE public.conversations c SET member_count = c.member_count - d.delta
          FROM (SELECT conversation_id, count(*)::int AS delta FROM removed
                 WHERE left_at IS NULL GROUP BY conversation_id) d
         WHERE c.id = d.conversation_id AND c.kind <> 'announcement';
    END IF;
    RETURN NULL;
END $$;
ALTER FUNCTION app_count_members() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_count_members() FROM PUBLIC;

ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY;
UPDATE conversations SET member_count = 0 WHERE kind = 'announcement' AND member_count <> 0;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
