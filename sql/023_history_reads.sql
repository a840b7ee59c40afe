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
