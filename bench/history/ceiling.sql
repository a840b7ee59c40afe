-- make bench-history: the ceiling: the same transaction with SELECT 1 in it, as store.DB.InTx opens it: one transaction as the heavy
-- user (the identity settings of store.DB.InTx), its statements as store/*.go has them.
-- pgbench -D user=.. -D org=.. -D zone=.. -D thread=.. -D last=.. (bench/history.sh)
BEGIN;
SELECT set_config('app.user_id', :user, true), set_config('app.org_id', :org, true), set_config('app.zone_id', :zone, true);
SELECT 1;
COMMIT;
