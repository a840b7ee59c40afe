-- messages_conversation_created (conversation_id, created_at DESC) served no query: every
-- read of a conversation's messages goes by seq, through UNIQUE (conversation_id, seq),
-- and nothing filters or orders messages by their time. It cost every send an index
-- insertion, its buffers and its WAL. Lookups by conversation alone use the seq index.
DROP INDEX messages_conversation_created;
