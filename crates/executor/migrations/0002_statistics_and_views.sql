-- Auxiliary objects of the original executor database (executor.md §7.2), fixed:
-- * `action_statistics` is filled when a row reaches a terminal status (UPDATE to
--   completed/failed, or INSERT of a rejected row), not on INSERT of `pending` rows as the
--   original's trigger did (which therefore never fired);
-- * `daily_action_summary` is refreshed hourly by the executor (`refresh_action_summary()`).

CREATE TABLE action_statistics (
    id             bigserial PRIMARY KEY,
    date           date         NOT NULL,
    action_type    varchar(50)  NOT NULL,
    namespace      varchar(255) NOT NULL,
    status         varchar(20)  NOT NULL,
    count          integer      NOT NULL DEFAULT 0,
    total_duration bigint       NOT NULL DEFAULT 0,
    avg_duration   numeric(12, 2),
    min_duration   integer,
    max_duration   integer,
    UNIQUE (date, action_type, namespace, status)
);

CREATE FUNCTION update_action_statistics() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d integer := COALESCE(NEW.execution_duration, 0);
BEGIN
    IF NEW.status NOT IN ('completed', 'failed', 'rejected') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    INSERT INTO action_statistics AS s
        (date, action_type, namespace, status, count, total_duration, avg_duration,
         min_duration, max_duration)
    VALUES ((NEW.created_at AT TIME ZONE 'UTC')::date, NEW.action_type, NEW.namespace,
            NEW.status, 1, d, d, d, d)
    ON CONFLICT (date, action_type, namespace, status) DO UPDATE SET
        count = s.count + 1,
        total_duration = s.total_duration + d,
        avg_duration = (s.total_duration + d)::numeric / (s.count + 1),
        min_duration = LEAST(s.min_duration, d),
        max_duration = GREATEST(s.max_duration, d);
    RETURN NULL;
END
$$;

CREATE TRIGGER action_audit_logs_statistics
    AFTER INSERT OR UPDATE OF status ON action_audit_logs
    FOR EACH ROW EXECUTE FUNCTION update_action_statistics();

CREATE VIEW recent_actions AS
    SELECT * FROM action_audit_logs
     WHERE created_at > now() - interval '24 hours'
     ORDER BY created_at DESC;

CREATE VIEW failed_actions AS
    SELECT a.id, a.action_type, a.namespace, a.resource_type, a.resource_name, a.status,
           a.error_message, a.created_at, e.error_category, e.recoverable
      FROM action_audit_logs a
      LEFT JOIN execution_errors e ON e.audit_log_id = a.id
     WHERE a.status IN ('failed', 'rejected')
     ORDER BY a.created_at DESC;

CREATE VIEW namespace_statistics AS
    SELECT namespace,
           count(*) AS total_actions,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'rejected') AS rejected,
           avg(execution_duration) AS avg_duration
      FROM action_audit_logs
     WHERE created_at > now() - interval '7 days'
     GROUP BY namespace;

CREATE VIEW actions_by_hour AS
    SELECT date_trunc('hour', created_at) AS hour, action_type, count(*) AS actions
      FROM action_audit_logs
     WHERE created_at > now() - interval '7 days'
     GROUP BY 1, 2
     ORDER BY 1 DESC;

CREATE FUNCTION get_action_success_rate(p_action_type varchar, p_namespace varchar, p_days integer DEFAULT 7)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) FILTER (WHERE status IN ('completed', 'failed')) = 0 THEN NULL
                ELSE round(100.0 * count(*) FILTER (WHERE status = 'completed')
                           / count(*) FILTER (WHERE status IN ('completed', 'failed')), 2) END
      FROM action_audit_logs
     WHERE action_type = p_action_type AND namespace = p_namespace
       AND created_at > now() - make_interval(days => p_days)
$$;

CREATE MATERIALIZED VIEW daily_action_summary AS
    SELECT (created_at AT TIME ZONE 'UTC')::date AS date, action_type, namespace, status,
           count(*) AS actions, avg(execution_duration) AS avg_duration
      FROM action_audit_logs
     GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX daily_action_summary_key
    ON daily_action_summary (date, action_type, namespace, status);

CREATE FUNCTION refresh_action_summary() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY daily_action_summary;
END
$$;

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE ON action_statistics TO aegis_executor_app;
    GRANT SELECT ON recent_actions, failed_actions, namespace_statistics, actions_by_hour,
        daily_action_summary TO aegis_executor_app;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO aegis_executor_app;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'grants to aegis_executor_app skipped';
END
$$;
