-- Hot and cold history: a conversation's old messages move from messages (hot) to
-- messages_archive (cold: same columns, its own table, which an operator may put in a
-- cheaper TABLESPACE), and conversations.archived_through_seq says how far.
--
-- A conversation's messages are seq 1..last_seq without gaps; the archive holds a prefix of
-- them and messages the rest: seq 1..archived_through_seq in the archive, the others hot.
-- The last message always stays hot (the CHECK below): the list's preview and a new send
-- never look at the archive. A history page reads messages first; only when its range
-- reaches below the lowest hot seq does it read the archive too, for the seqs below that
-- one (store/messages.go): a page above the boundary touches no archive relation at all.
--
-- Why not PARTITION BY RANGE (created_at): pages are read by (conversation_id, seq), never
-- by time, so a page query could not be pruned to one partition and would probe the
-- (conversation_id, seq) index of every partition; and a partitioned table cannot have
-- UNIQUE (sender_id, client_msg_id) without the partition key in it.
--
-- Only app_archive_conversation writes the archive (owned by messenger_archiver, a role of
-- its own, so that no gate of messenger_gate can delete a message): it moves, in one short
-- transaction, up to p_batch of a conversation's oldest hot messages older than
-- p_older_than (never the last one) and raises the boundary in the same transaction. Sends
-- keep going meanwhile: they insert above last_seq, the move deletes below it, and the
-- conversation's row is locked only by the boundary's update, just before the commit.
--
-- What refers to a message: files and uploads name it by id (their foreign keys go: a move
-- is a DELETE, whose ON DELETE SET NULL would unlink the files; only the file gates set
-- message_id, to the message they have just stored, and `messenger check` finds any that
-- names no message); a file's tombstone (app_delete_file) is written where the message is.
-- Read receipts, digest and push marks are seqs, untouched. The send gate's check of an
-- earlier client_msg_id reads messages only: a retry sent more than the archive's age
-- after its first try (a year by default) is a new message.

ALTER TABLE conversations ADD COLUMN archived_through_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD CONSTRAINT conversations_archive_below_last
    CHECK (archived_through_seq >= 0 AND (archived_through_seq = 0 OR archived_through_seq < last_seq));

CREATE TABLE messages_archive (
    id              bigint NOT NULL,
    conversation_id bigint NOT NULL,
    org_id          bigint NOT NULL,
    seq             bigint NOT NULL CHECK (seq > 0),
    sender_id       bigint REFERENCES users (id),
    client_msg_id   uuid,
    kind            text NOT NULL CHECK (kind IN ('text', 'file', 'system')),
    body            text NOT NULL CHECK (char_length(body) <= 4000),
    created_at      timestamptz NOT NULL,
    edited_at       timestamptz,
    deleted_at      timestamptz,
    event           jsonb,
    PRIMARY KEY (conversation_id, seq),
    FOREIGN KEY (org_id, conversation_id) REFERENCES conversations (org_id, id) ON DELETE CASCADE
);
-- A file's tombstone finds its message by id: file messages only, a small index.
CREATE INDEX messages_archive_file ON messages_archive (id) WHERE kind = 'file';

ALTER TABLE files DROP CONSTRAINT files_message_id_fkey;
ALTER TABLE uploads DROP CONSTRAINT uploads_message_id_fkey;

DO $$
BEGIN
    CREATE ROLE messenger_archiver NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are per cluster; another database of this cluster made it already
END $$;

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT messenger_archiver TO %I', current_user);
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO messenger_archiver;

ALTER TABLE messages_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages_archive FORCE ROW LEVEL SECURITY;

-- The application reads the archive as it reads messages, and writes nothing there.
GRANT SELECT ON messages_archive TO messenger_app;
CREATE POLICY app_read ON messages_archive FOR SELECT TO messenger_app
    USING (org_id = app_org_id() AND conversation_id IN (SELECT app_visible_conversation_ids()));
-- The gates read it (a file's tombstone) and make an archived file message a tombstone.
GRANT SELECT, UPDATE (body, deleted_at) ON messages_archive TO messenger_gate;
CREATE POLICY gate_read ON messages_archive FOR SELECT TO messenger_gate USING (true);
CREATE POLICY gate_tombstone ON messages_archive FOR UPDATE TO messenger_gate
    USING (kind = 'file') WITH CHECK (kind = 'file');
-- The archive step: moves messages out of messages into the archive, raises the boundary.
GRANT SELECT, DELETE ON messages TO messenger_archiver;
CREATE POLICY archiver_move ON messages FOR SELECT TO messenger_archiver USING (true);
CREATE POLICY archiver_delete ON messages FOR DELETE TO messenger_archiver USING (true);
GRANT SELECT, INSERT ON messages_archive TO messenger_archiver;
CREATE POLICY archiver_read ON messages_archive FOR SELECT TO messenger_archiver USING (true);
CREATE POLICY archiver_insert ON messages_archive FOR INSERT TO messenger_archiver WITH CHECK (true);
GRANT SELECT, UPDATE (archived_through_seq) ON conversations TO messenger_archiver;
CREATE POLICY archiver_read ON conversations FOR SELECT TO messenger_archiver USING (true);
CREATE POLICY archiver_boundary ON conversations FOR UPDATE TO messenger_archiver USING (true) WITH CHECK (true);

-- app_archive_candidates answers up to p_limit conversations with id above p_after, in id
-- order, whose oldest hot message is older than p_older_than and not their last: the ones
-- app_archive_conversation has work in. One index probe a conversation.
CREATE FUNCTION app_archive_candidates(p_older_than interval, p_after bigint, p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF app_user_id() IS NOT NULL OR app_org_id() IS NOT NULL THEN
        RAISE EXCEPTION 'the archive step acts as nobody' USING ERRCODE = '42501';
    END IF;
    IF p_older_than < interval '1 day' OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'archive: messages older than a day, at most 10000 conversations' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT c.id FROM conversations c
     WHERE c.id > p_after AND c.archived_through_seq + 1 < c.last_seq
       AND EXISTS (SELECT 1 FROM messages m
                    WHERE m.conversation_id = c.id AND m.seq = c.archived_through_seq + 1
                      AND m.created_at < now() - p_older_than)
     ORDER BY c.id LIMIT p_limit;
END $$;

-- app_archive_conversation moves up to p_batch of conversation p_conv's oldest hot
-- messages, the run of them from the boundary up to the last one older than p_older_than
-- (never the conversation's last message), into the archive, raises the boundary to it in
-- the same transaction, and answers how many it moved (0: nothing to do). Two at once on
-- one conversation move each row once: the DELETE's row locks decide, each inserts what it
-- deleted, and the boundary only rises.
CREATE FUNCTION app_archive_conversation(p_conv bigint, p_older_than interval, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_from  bigint;
    v_last  bigint;
    v_to    bigint;
    v_moved bigint;
BEGIN
    IF app_user_id() IS NOT NULL OR app_org_id() IS NOT NULL THEN
        RAISE EXCEPTION 'the archive step acts as nobody' USING ERRCODE = '42501';
    END IF;
    IF p_older_than < interval '1 day' OR p_batch NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'archive: messages older than a day, at most 10000 a batch' USING ERRCODE = '22023';
    END IF;
    SELECT c.archived_through_seq, c.last_seq INTO v_from, v_last FROM conversations c WHERE c.id = p_conv;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT max(x.seq) INTO v_to
      FROM (SELECT m.seq, m.created_at FROM messages m
             WHERE m.conversation_id = p_conv AND m.seq > v_from AND m.seq < v_last
             ORDER BY m.seq LIMIT p_batch) x
     WHERE x.created_at < now() - p_older_than;
    IF v_to IS NULL THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM messages m
         WHERE m.conversation_id = p_conv AND m.seq > v_from AND m.seq <= v_to
        RETURNING m.id, m.conversation_id, m.org_id, m.seq, m.sender_id, m.client_msg_id, m.kind, m.body,
                  m.created_at, m.edited_at, m.deleted_at, m.event
    )
    INSERT INTO messages_archive (id, conversation_id, org_id, seq, sender_id, client_msg_id, kind, body,
                                  created_at, edited_at, deleted_at, event)
    SELECT * FROM moved;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    UPDATE conversations SET archived_through_seq = GREATEST(archived_through_seq, v_to) WHERE id = p_conv;
    RETURN v_moved;
END $$;

ALTER FUNCTION app_archive_candidates(interval, bigint, integer) OWNER TO messenger_archiver;
ALTER FUNCTION app_archive_conversation(bigint, interval, integer) OWNER TO messenger_archiver;
REVOKE ALL ON FUNCTION app_archive_candidates(interval, bigint, integer),
    app_archive_conversation(bigint, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_archive_candidates(interval, bigint, integer),
    app_archive_conversation(bigint, interval, integer) TO messenger_app;

-- app_delete_file as in 013_files.sql, with the tombstone written where the message is:
-- hot, or else (moved meanwhile: the move's DELETE went first) the archive.
CREATE OR REPLACE FUNCTION app_delete_file(p_file uuid)
RETURNS TABLE (message_id bigint, conversation_id bigint, deleted boolean, tombstone boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    f           record;
    v_tombstone boolean := false;
BEGIN
    SELECT x.id, x.owner_id, x.org_id, x.message_id, x.conversation_id, x.state INTO f
      FROM files x WHERE x.id = p_file FOR UPDATE;
    IF NOT FOUND OR f.owner_id IS DISTINCT FROM app_user_id() OR f.org_id IS DISTINCT FROM app_org_id()
       OR f.message_id IS NULL OR f.state NOT IN ('clean', 'deleted') THEN
        RAISE EXCEPTION 'not a file the caller sent' USING ERRCODE = '42501';
    END IF;
    IF f.state = 'deleted' THEN
        RETURN QUERY SELECT f.message_id, f.conversation_id, false,
            EXISTS (SELECT 1 FROM messages m WHERE m.id = f.message_id AND m.deleted_at IS NOT NULL)
            OR EXISTS (SELECT 1 FROM messages_archive a
                        WHERE a.id = f.message_id AND a.kind = 'file' AND a.deleted_at IS NOT NULL);
        RETURN;
    END IF;
    UPDATE files SET state = 'deleted', updated_at = now() WHERE id = p_file;
    IF NOT EXISTS (SELECT 1 FROM files x WHERE x.message_id = f.message_id AND x.state = 'clean') THEN
        UPDATE messages SET deleted_at = now(), body = '' WHERE id = f.message_id;
        IF NOT FOUND THEN
            UPDATE messages_archive SET deleted_at = now(), body = ''
             WHERE id = f.message_id AND kind = 'file';
        END IF;
        v_tombstone := true;
    END IF;
    RETURN QUERY SELECT f.message_id, f.conversation_id, true, v_tombstone;
END $$;
