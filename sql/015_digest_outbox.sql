-- The email digest's sending state and its one-click unsubscribe (notif-mail).
--
-- SMTP is outside the database, so a digest cannot be sent and recorded atomically. The job
-- records first what it is about to send (digest_outbox: the Message-ID and the marks it
-- covers), commits, sends, then moves the marks to digest_marks and deletes the outbox row
-- in one transaction. A crash or an SMTP failure between the two leaves the row: the retry
-- sends again with the SAME Message-ID (mailboxes drop a copy with an id they have), so the
-- failure modes are "sent again as the same message", never "lost" and never two different
-- digests for the same messages.
CREATE TABLE digest_outbox (
    user_id    bigint PRIMARY KEY,
    org_id     bigint NOT NULL,
    message_id text NOT NULL CHECK (message_id ~ '^<[A-Za-z0-9._-]{1,100}@[A-Za-z0-9.-]{1,200}>$'),
    -- {"<conversation id>": <seq covered>, ...}: what the message shows
    marks      jsonb NOT NULL CHECK (jsonb_typeof(marks) = 'object'),
    started_at timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 1 CHECK (attempts BETWEEN 1 AND 1000),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

-- An unsubscribe link works once: the SHA-256 of its nonce, kept until the token expires.
CREATE TABLE digest_unsubscribes (
    nonce_hash bytea PRIMARY KEY CHECK (octet_length(nonce_hash) = 32),
    user_id    bigint NOT NULL,
    org_id     bigint NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

ALTER TABLE digest_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE digest_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE digest_unsubscribes ENABLE ROW LEVEL SECURITY;
ALTER TABLE digest_unsubscribes FORCE ROW LEVEL SECURITY;

GRANT SELECT, INSERT, UPDATE, DELETE ON digest_outbox TO messenger_app;
CREATE POLICY app_own ON digest_outbox TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id());

GRANT SELECT, INSERT ON digest_unsubscribes TO messenger_app;
CREATE POLICY app_own ON digest_unsubscribes TO messenger_app
    USING (user_id = app_user_id() AND org_id = app_org_id())
    WITH CHECK (user_id = app_user_id() AND org_id = app_org_id() AND used_at <= now() + interval '1 minute');
