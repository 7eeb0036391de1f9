-- Alerts, AI prediction results and the logs table (backend.md §13.2).
-- Settings need no table: they live in users.preferences (0001).

-- Severity is the union vocabulary of §6.1 (the original, the dashboard and the AI engine each
-- used a different one); the API validates it, the CHECK keeps the table honest.
CREATE TABLE alerts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title       varchar(255) NOT NULL,
    description text,
    severity    varchar(20) NOT NULL DEFAULT 'info'
                CHECK (severity IN ('info', 'low', 'medium', 'warning', 'high', 'error', 'critical')),
    status      varchar(20) NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'acknowledged', 'resolved')),
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_severity_created_idx ON alerts (severity, created_at DESC);
CREATE INDEX alerts_status_created_idx ON alerts (status, created_at DESC);
CREATE INDEX alerts_created_idx ON alerts (created_at DESC);

-- request_payload holds only {type, metricsCount, logsCount}, never the raw metrics.
CREATE TABLE prediction_results (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prediction_type  varchar(50) NOT NULL,
    request_payload  jsonb DEFAULT '{}',
    response_payload jsonb DEFAULT '{}',
    score            double precision,
    severity         varchar(50),
    success          boolean NOT NULL DEFAULT true,
    error_message    text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prediction_results_type_created_idx ON prediction_results (prediction_type, created_at DESC);
CREATE INDEX prediction_results_created_idx ON prediction_results (created_at DESC);

CREATE TABLE logs (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp timestamptz NOT NULL DEFAULT now(),
    level     varchar(10) NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error', 'fatal')),
    service   varchar(100) NOT NULL,
    message   text NOT NULL,
    context   jsonb NOT NULL DEFAULT '{}',
    trace_id  varchar(64)
);
CREATE INDEX logs_timestamp_idx ON logs (timestamp DESC);
CREATE INDEX logs_service_timestamp_idx ON logs (service, timestamp DESC);
CREATE INDEX logs_level_timestamp_idx ON logs (level, timestamp DESC);
