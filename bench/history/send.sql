-- bench/archive.sh: one send of the heavy user to one of the ten big groups (ids 1 to 10,
-- the thread among them), as the server runs a batch of one (store.InsertMessages: the
-- gate app_send_batch, acting as nobody): timed before and while the archive step moves
-- those same conversations' old messages.
-- pgbench -D user=.. -D org=..
\set c random(1, 10)
BEGIN;
SELECT s.outcome, s.message_id, s.message_seq, s.message_at, s.zone_id, s.members
  FROM app_send_batch(ARRAY[:c]::bigint[], ARRAY[:user]::bigint[], ARRAY[:org]::bigint[],
                      ARRAY[gen_random_uuid()], ARRAY['보관 중에 보내는 메시지'], ARRAY[false]) s;
COMMIT;
