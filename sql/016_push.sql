-- Web push: what the metrics may know of push_subscriptions without seeing any row.

-- app_push_subscription_count answers how many subscriptions are stored (the gauge
-- messenger_push_subscriptions): jobs and metrics only, never inside a user's transaction.
CREATE FUNCTION app_push_subscription_count() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM app_refuse_inside_user();
    RETURN (SELECT count(*) FROM push_subscriptions);
END $$;
ALTER FUNCTION app_push_subscription_count() OWNER TO messenger_gate;
REVOKE ALL ON FUNCTION app_push_subscription_count() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_push_subscription_count() TO messenger_app;
