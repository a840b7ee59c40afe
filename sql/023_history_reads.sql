-- The reads of a long history (docs/performance.md, "Ten million messages").
--
-- JIT off for the application's role in this database. A statement whose estimate grows
-- with the history (ten million messages behind a join) can cross jit_above_cost and
-- spend 200+ ms compiling what runs in a few: the list's previews did, 314 ms against 5.6
-- ms without. The application's statements are small index reads; none gains from JIT.
-- Set for the role in this database only (other databases of the cluster keep theirs),
-- it holds for every session the server opens from now on, whatever its connection
-- string. It is a setting of the cluster's catalog, not of the database: pg_dump leaves it
-- out, and a database restored from a dump needs this statement run again.
DO $$
BEGIN
    EXECUTE format('ALTER ROLE messenger_app IN DATABASE %I SET jit = off', current_database());
END $$;

-- Each conversation's active members, counted by the database: the conversation list shows
-- a group's count and carries only its first few members (store.ListMembers); reading every
-- member of each listed conversation to count them was 5,866 rows for a teacher in ten
-- groups of 500. Kept by a trigger on every change of membership (a join, a leave, a
-- rejoin, a removal, a move, a deleted conversation), whoever makes it: the gates, or the
-- owner. Changes are added, not recounted, so that two transactions changing one group's
-- members at once both count (an update of the row waits for the other and adds to what
-- it committed).
ALTER TABLE conversations ADD COLUMN member_count integer NOT NULL DEFAULT 0;

-- The count as it stands, seen past the policies (the owner may be subject to them).
ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE conversation_participants NO FORCE ROW LEVEL SECURITY;
UPDATE conversations c
   SET member_count = n.members
  FROM (SELECT conversation_id, count(*) AS members FROM conversation_participants
         WHERE left_at IS NULL GROUP BY conversation_id) n
 WHERE n.conversation_id = c.id;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
ALTER TABLE conversation_participants FORCE ROW LEVEL SECURITY;

CREATE FUNCTION app_count_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.conversations c SET member_count = c.member_count + d.delta
          FROM (SELECT conversation_id, count(*)::int AS delta FROM added
                 WHERE left_at IS NULL GROUP BY conversation_id) d
         WHERE c.id = d.conversation_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.conversations c SET member_count = c.member_count + d.delta
          FROM (SELECT a.conversation_id,
                       sum(CASE WHEN a.left_at IS NULL THEN 1 ELSE -1 END)::int AS delta
                  FROM after_rows a
                  JOIN before_rows b ON b.conversation_id = a.conversation_id AND b.user_id = a.user_id
                 WHERE (a.left_at IS NULL) <> (b.left_at IS NULL)
                 GROUP BY a.conversation_id) d
         WHERE c.id = d.conversation_id AND d.delta <> 0;
    ELSE
        UPDATE public.conversations c SET member_count = c.member_count - d.delta
          FROM (SELECT conversation_id, count(*)::int AS delta FROM removed
                 WHERE left_at IS NULL GROUP BY conversation_id) d
         WHERE c.id = d.conversation_id;
    END IF;
    RETURN NULL;
END $$;
ALTER FUNCTION app_count_members() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_count_members() FROM PUBLIC;
CREATE TRIGGER participants_counted_insert AFTER INSERT ON conversation_participants
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app_count_members();
CREATE TRIGGER participants_counted_update AFTER UPDATE ON conversation_participants
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows FOR EACH STATEMENT EXECUTE FUNCTION app_count_members();
CREATE TRIGGER participants_counted_delete AFTER DELETE ON conversation_participants
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION app_count_members();

-- A conversation's current members in the order they joined, with what the list shows of
-- them: the list's first few of each group are an index-only range of a few entries.
CREATE INDEX conversation_participants_current ON conversation_participants (conversation_id, joined_at, user_id)
    INCLUDE (org_id, role) WHERE left_at IS NULL;

-- The policies' visibility function, once per table a statement reads: for a user in 500
-- conversations it read their 500 membership rows from the heap (55 pages) and made them
-- distinct, 0.3-0.4 ms each time. From an index of the current memberships by user it
-- reads a few index pages and nothing else, and a policy's IN needs no distinct rows.
CREATE INDEX conversation_participants_user_current ON conversation_participants (user_id, org_id, conversation_id)
    WHERE left_at IS NULL;

CREATE OR REPLACE FUNCTION app_visible_conversation_ids() RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN
    RETURN QUERY
        SELECT p.conversation_id
          FROM public.conversation_participants p
         WHERE p.user_id = public.app_user_id() AND p.org_id = public.app_org_id() AND p.left_at IS NULL
        UNION ALL
        SELECT c.id
          FROM public.conversations c
         WHERE c.kind = 'announcement' AND c.zone_id = public.app_zone_id() AND c.org_id = public.app_org_id();
END $$;
