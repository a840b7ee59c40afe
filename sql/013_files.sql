-- Files: photos and documents sent to a conversation, scanned before anyone but their
-- uploader sees them.
--
-- An upload (one or more files and a caption) is not a message until every file of it is
-- clean: the scan and thumbnail jobs record verdicts and variants acting as nobody, then
-- store the file message acting as the uploader. The application's role inserts only its
-- own upload and that upload's files, in one transaction, in state 'uploaded'; every later
-- change (state, verdict, variants, message, tombstone, dismissal) goes through a gate:
--
--   app_file_job            what a job needs of an upload (keys, the uploader): jobs only
--   app_file_scanning       an upload's files are being scanned: jobs only
--   app_record_scan         a verdict (file_scans), the file's state; infected ends the upload: jobs only
--   app_set_variants        a clean image's thumbnails and display size: jobs only
--   app_fail_upload         an upload that cannot become a message: jobs only
--   app_file_objects        the storage key of a deleted, infected or failed file: jobs only
--   app_store_file_message  the file message of an upload whose files are all clean: its uploader
--   app_delete_file         a sent file deleted, its message a tombstone when none is left: its sender
--   app_dismiss_upload      an infected or failed upload hidden from its thread: its uploader

CREATE TABLE uploads (
    id              uuid PRIMARY KEY,
    conversation_id bigint NOT NULL,
    org_id          bigint NOT NULL,
    uploader_id     bigint NOT NULL,
    client_msg_id   uuid NOT NULL,
    caption         text NOT NULL DEFAULT '' CHECK (char_length(caption) <= 4000),
    state           text NOT NULL DEFAULT 'scanning' CHECK (state IN ('scanning', 'clean', 'infected', 'failed')),
    message_id      bigint REFERENCES messages (id) ON DELETE SET NULL,
    dismissed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, conversation_id) REFERENCES conversations (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, uploader_id) REFERENCES users (org_id, id),
    UNIQUE (uploader_id, client_msg_id),
    UNIQUE (id, conversation_id, uploader_id, org_id)
);
-- A thread's pending bubbles: my uploads to it that are not a message and not dismissed.
CREATE INDEX uploads_pending ON uploads (uploader_id, conversation_id, created_at)
    WHERE message_id IS NULL AND dismissed_at IS NULL;

CREATE TABLE files (
    id              uuid PRIMARY KEY,
    upload_id       uuid NOT NULL,
    position        smallint NOT NULL CHECK (position BETWEEN 0 AND 99),
    conversation_id bigint NOT NULL,
    org_id          bigint NOT NULL,
    owner_id        bigint NOT NULL,
    message_id      bigint REFERENCES messages (id) ON DELETE SET NULL,
    -- An original's key as storage.NewKey makes it: never a thumbnail's, never another's.
    storage_key     text NOT NULL UNIQUE
                    CHECK (storage_key ~ '^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/original$'),
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    content_type    text NOT NULL CHECK (char_length(content_type) BETWEEN 1 AND 200),
    size            bigint NOT NULL CHECK (size >= 0),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width           integer NOT NULL DEFAULT 0 CHECK (width >= 0),
    height          integer NOT NULL DEFAULT 0 CHECK (height >= 0),
    state           text NOT NULL DEFAULT 'uploaded'
                    CHECK (state IN ('uploaded', 'scanning', 'clean', 'infected', 'failed', 'deleted')),
    scanned         boolean NOT NULL DEFAULT false,
    variants        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(variants) = 'array'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A file belongs to its upload's conversation and uploader.
    FOREIGN KEY (upload_id, conversation_id, owner_id, org_id)
        REFERENCES uploads (id, conversation_id, uploader_id, org_id) ON DELETE CASCADE,
    UNIQUE (upload_id, position),
    CONSTRAINT files_name_plain
        CHECK (name !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
);
-- A page's messages' files.
CREATE INDEX files_message ON files (message_id, position) WHERE message_id IS NOT NULL;

-- Every scan of a file, kept after the bytes are gone (an infected file's record).
CREATE TABLE file_scans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id     uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    org_id      bigint NOT NULL REFERENCES organizations (id),
    scanner     text NOT NULL CHECK (char_length(scanner) <= 200),
    verdict     text NOT NULL CHECK (verdict IN ('clean', 'infected', 'error', 'skipped')),
    signature   text NOT NULL DEFAULT '' CHECK (char_length(signature) <= 500),
    error       text NOT NULL DEFAULT '' CHECK (char_length(error) <= 500),
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    scanned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_scans_file ON file_scans (file_id, scanned_at);

ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE uploads FORCE ROW LEVEL SECURITY;
ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
ALTER TABLE file_scans ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_scans FORCE ROW LEVEL SECURITY;

-- The application: its own uploads, inserted with what the user chose (state, message and
-- dismissal are the gates'), where it may post.
GRANT SELECT ON uploads, files TO messenger_app;
GRANT INSERT (id, conversation_id, org_id, uploader_id, client_msg_id, caption) ON uploads TO messenger_app;
GRANT INSERT (id, upload_id, position, conversation_id, org_id, owner_id, storage_key, name, content_type,
              size, sha256, width, height) ON files TO messenger_app;
CREATE POLICY app_own ON uploads FOR SELECT TO messenger_app
    USING (uploader_id = app_user_id() AND org_id = app_org_id());
CREATE POLICY app_create ON uploads FOR INSERT TO messenger_app
    WITH CHECK (uploader_id = app_user_id() AND org_id = app_org_id() AND state = 'scanning'
                AND message_id IS NULL AND dismissed_at IS NULL AND app_may_post(conversation_id));
-- A file: its owner always; anyone else once it is clean, in a message, and they are an
-- active member of its conversation (leaving ends access).
CREATE POLICY app_read ON files FOR SELECT TO messenger_app
    USING (org_id = app_org_id()
           AND (owner_id = app_user_id()
                OR (state = 'clean' AND message_id IS NOT NULL AND app_is_member(conversation_id))));
-- Files join only an upload this very transaction created (never one already scanned).
CREATE POLICY app_create ON files FOR INSERT TO messenger_app
    WITH CHECK (owner_id = app_user_id() AND org_id = app_org_id() AND state = 'uploaded'
                AND message_id IS NULL AND NOT scanned AND variants = '[]'
                AND EXISTS (SELECT 1 FROM uploads u
                             WHERE u.id = upload_id AND u.xmin = pg_current_xact_id()::xid));

GRANT SELECT, INSERT, UPDATE ON uploads, files TO messenger_gate;
GRANT SELECT, INSERT ON file_scans TO messenger_gate;
CREATE POLICY gate_all ON uploads TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_all ON files TO messenger_gate USING (true) WITH CHECK (true);
CREATE POLICY gate_all ON file_scans TO messenger_gate USING (true) WITH CHECK (true);

-- Messages: the application sends text only; a file message comes from its upload
-- (app_store_file_message), a tombstone from app_delete_file.
DROP POLICY app_send ON messages;
CREATE POLICY app_send ON messages FOR INSERT TO messenger_app
    WITH CHECK (org_id = app_org_id() AND sender_id = app_user_id() AND kind = 'text');
CREATE POLICY gate_file ON messages FOR INSERT TO messenger_gate WITH CHECK (kind = 'file');
GRANT UPDATE (body, deleted_at) ON messages TO messenger_gate;
CREATE POLICY gate_tombstone ON messages FOR UPDATE TO messenger_gate
    USING (kind = 'file') WITH CHECK (kind = 'file');

-- app_file_job answers an upload and its files for a job, acting as nobody.
CREATE FUNCTION app_file_job(p_upload uuid)
RETURNS TABLE (uploader_id bigint, org_id bigint, zone_id bigint, conversation_id bigint, upload_state text,
               message_id bigint, file_id uuid, storage_key text, content_type text, name text, size bigint,
               width integer, height integer, state text, variants jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN QUERY
    SELECT u.uploader_id, u.org_id, coalesce(us.zone_id, 0::bigint), u.conversation_id, u.state,
           coalesce(u.message_id, 0::bigint), f.id, f.storage_key, f.content_type, f.name, f.size,
           f.width, f.height, f.state, f.variants
      FROM uploads u
      JOIN users us ON us.id = u.uploader_id
      JOIN files f ON f.upload_id = u.id
     WHERE u.id = p_upload
     ORDER BY f.position;
END $$;

-- app_file_scanning marks an upload's files not yet scanned as being scanned.
CREATE FUNCTION app_file_scanning(p_upload uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    UPDATE files f SET state = 'scanning', updated_at = now()
      FROM uploads u
     WHERE u.id = p_upload AND f.upload_id = u.id AND u.state = 'scanning' AND f.state = 'uploaded';
END $$;

-- app_record_scan records a scan of a file (every attempt, an error too) and, for a verdict
-- while its upload is still scanning, the file's state: clean ('skipped': no scanner, dev
-- only, stored as unscanned) or infected, which ends the upload (its other files failed)
-- with an audit entry in the uploader's name. It answers the upload's state and whether
-- every file of it is clean now.
CREATE FUNCTION app_record_scan(p_file uuid, p_scanner text, p_verdict text, p_signature text,
                                p_error text, p_duration_ms integer)
RETURNS TABLE (upload_state text, all_clean boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    f record;
    u record;
BEGIN
    PERFORM app_refuse_inside_user();
    SELECT x.id, x.upload_id, x.org_id, x.state, x.name INTO f FROM files x WHERE x.id = p_file;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no file %', p_file USING ERRCODE = '42501';
    END IF;
    -- Verdicts of one upload are recorded one after another.
    SELECT x.id, x.state, x.uploader_id, x.conversation_id, x.org_id INTO u
      FROM uploads x WHERE x.id = f.upload_id FOR UPDATE;
    INSERT INTO file_scans (file_id, org_id, scanner, verdict, signature, error, duration_ms)
    VALUES (p_file, f.org_id, left(p_scanner, 200), p_verdict, left(coalesce(p_signature, ''), 500),
            left(coalesce(p_error, ''), 500), greatest(p_duration_ms, 0));
    IF p_verdict <> 'error' AND u.state = 'scanning' AND f.state IN ('uploaded', 'scanning') THEN
        IF p_verdict = 'infected' THEN
            UPDATE files SET state = 'infected', updated_at = now() WHERE id = p_file;
            UPDATE files SET state = 'failed', updated_at = now()
             WHERE upload_id = u.id AND id <> p_file AND state IN ('uploaded', 'scanning', 'clean');
            UPDATE uploads SET state = 'infected', updated_at = now() WHERE id = u.id;
            INSERT INTO audit_log (org_id, conversation_id, actor_id, action, details)
            VALUES (u.org_id, u.conversation_id, u.uploader_id, 'file.infected',
                    jsonb_build_object('upload_id', u.id, 'file_id', p_file, 'name', f.name,
                                       'signature', p_signature, 'scanner', p_scanner));
            u.state := 'infected';
        ELSE
            UPDATE files SET state = 'clean', scanned = (p_verdict = 'clean'), updated_at = now() WHERE id = p_file;
        END IF;
    END IF;
    RETURN QUERY SELECT u.state::text,
        u.state = 'scanning' AND NOT EXISTS (SELECT 1 FROM files x WHERE x.upload_id = u.id AND x.state <> 'clean');
END $$;

-- app_set_variants records a clean image's thumbnails and display size before its message.
CREATE FUNCTION app_set_variants(p_file uuid, p_variants jsonb, p_width integer, p_height integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    IF jsonb_typeof(p_variants) IS DISTINCT FROM 'array' OR jsonb_array_length(p_variants) > 3 THEN
        RAISE EXCEPTION 'variants are an array of at most 3' USING ERRCODE = '22023';
    END IF;
    UPDATE files SET variants = p_variants, width = p_width, height = p_height, updated_at = now()
     WHERE id = p_file AND state = 'clean' AND message_id IS NULL;
    RETURN FOUND;
END $$;

-- app_fail_upload ends an upload that cannot become a message (a file could not be read).
CREATE FUNCTION app_fail_upload(p_upload uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    UPDATE uploads SET state = 'failed', updated_at = now()
     WHERE id = p_upload AND state = 'scanning' AND message_id IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE files SET state = 'failed', updated_at = now()
     WHERE upload_id = p_upload AND state IN ('uploaded', 'scanning', 'clean');
    RETURN true;
END $$;

-- app_file_objects answers the storage key of a file whose bytes are to go (deleted,
-- infected or failed): what the delete job removes, whatever its arguments claim.
CREATE FUNCTION app_file_objects(p_file uuid) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN (SELECT f.storage_key FROM files f
             WHERE f.id = p_file AND f.state IN ('deleted', 'infected', 'failed'));
END $$;

-- app_store_file_message stores the file message of the caller's upload once every file of
-- it is clean: kind 'file', the caption as body, the upload's client_msg_id, numbered by
-- the trigger (which checks again that the caller may post there). Idempotent: an upload
-- that is a message already answers it (created false). A caller who may no longer post
-- there (left, removed, moved) gets no message: the upload fails.
CREATE FUNCTION app_store_file_message(p_upload uuid)
RETURNS TABLE (message_id bigint, created boolean, upload_state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    u     record;
    v_msg bigint;
BEGIN
    SELECT x.id, x.uploader_id, x.org_id, x.conversation_id, x.client_msg_id, x.caption, x.state, x.message_id
      INTO u FROM uploads x WHERE x.id = p_upload FOR UPDATE;
    IF NOT FOUND OR u.uploader_id IS DISTINCT FROM app_user_id() OR u.org_id IS DISTINCT FROM app_org_id() THEN
        RAISE EXCEPTION 'not an upload of the caller' USING ERRCODE = '42501';
    END IF;
    IF u.message_id IS NOT NULL OR u.state <> 'scanning' THEN
        RETURN QUERY SELECT u.message_id, false, u.state;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM files f WHERE f.upload_id = p_upload AND f.state <> 'clean')
       OR NOT EXISTS (SELECT 1 FROM files f WHERE f.upload_id = p_upload) THEN
        RAISE EXCEPTION 'upload % is not clean', p_upload USING ERRCODE = '42501';
    END IF;
    -- The caller's membership is share-locked until the commit, as a send's is: a leave
    -- waits for this message or comes before it, and then there is none.
    PERFORM 1 FROM conversation_participants p
      WHERE p.conversation_id = u.conversation_id AND p.user_id = u.uploader_id AND p.left_at IS NULL FOR SHARE;
    IF NOT FOUND OR NOT app_may_post(u.conversation_id)
       OR EXISTS (SELECT 1 FROM messages m WHERE m.sender_id = u.uploader_id AND m.client_msg_id = u.client_msg_id) THEN
        UPDATE uploads SET state = 'failed', updated_at = now() WHERE id = p_upload;
        UPDATE files SET state = 'failed', updated_at = now() WHERE upload_id = p_upload;
        RETURN QUERY SELECT NULL::bigint, false, 'failed'::text;
        RETURN;
    END IF;
    INSERT INTO messages AS m (conversation_id, org_id, sender_id, client_msg_id, kind, body)
    VALUES (u.conversation_id, u.org_id, u.uploader_id, u.client_msg_id, 'file', u.caption)
    RETURNING m.id INTO v_msg;
    UPDATE files SET message_id = v_msg, updated_at = now() WHERE upload_id = p_upload;
    UPDATE uploads SET message_id = v_msg, state = 'clean', updated_at = now() WHERE id = p_upload;
    RETURN QUERY SELECT v_msg, true, 'clean'::text;
END $$;

-- app_delete_file deletes a file the caller sent: its message becomes a tombstone (no
-- body, deleted_at) when no clean file of it is left. It answers the message, its
-- conversation and whether it is a tombstone now; deleted false when the file was
-- deleted already.
CREATE FUNCTION app_delete_file(p_file uuid)
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
            EXISTS (SELECT 1 FROM messages m WHERE m.id = f.message_id AND m.deleted_at IS NOT NULL);
        RETURN;
    END IF;
    UPDATE files SET state = 'deleted', updated_at = now() WHERE id = p_file;
    IF NOT EXISTS (SELECT 1 FROM files x WHERE x.message_id = f.message_id AND x.state = 'clean') THEN
        UPDATE messages SET deleted_at = now(), body = '' WHERE id = f.message_id;
        v_tombstone := true;
    END IF;
    RETURN QUERY SELECT f.message_id, f.conversation_id, true, v_tombstone;
END $$;

-- app_dismiss_upload hides one of the caller's infected or failed uploads from its thread.
CREATE FUNCTION app_dismiss_upload(p_upload uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE uploads SET dismissed_at = now(), updated_at = now()
     WHERE id = p_upload AND uploader_id = app_user_id() AND org_id = app_org_id()
       AND state IN ('infected', 'failed') AND dismissed_at IS NULL;
    RETURN FOUND;
END $$;

ALTER FUNCTION app_file_job(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_file_scanning(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_record_scan(uuid, text, text, text, text, integer) OWNER TO messenger_gate;
ALTER FUNCTION app_set_variants(uuid, jsonb, integer, integer) OWNER TO messenger_gate;
ALTER FUNCTION app_fail_upload(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_file_objects(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_store_file_message(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_delete_file(uuid) OWNER TO messenger_gate;
ALTER FUNCTION app_dismiss_upload(uuid) OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_file_job(uuid), app_file_scanning(uuid),
    app_record_scan(uuid, text, text, text, text, integer), app_set_variants(uuid, jsonb, integer, integer),
    app_fail_upload(uuid), app_file_objects(uuid), app_store_file_message(uuid), app_delete_file(uuid),
    app_dismiss_upload(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_file_job(uuid), app_file_scanning(uuid),
    app_record_scan(uuid, text, text, text, text, integer), app_set_variants(uuid, jsonb, integer, integer),
    app_fail_upload(uuid), app_file_objects(uuid), app_store_file_message(uuid), app_delete_file(uuid),
    app_dismiss_upload(uuid) TO messenger_app;
