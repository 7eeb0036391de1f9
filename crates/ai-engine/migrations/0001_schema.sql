-- The ai-engine schema of ai-engine.md §8.1 (the original's 01-schema.sql), kept column for
-- column so existing queries and dashboards work; made re-runnable with IF NOT EXISTS.
-- Port additions are marked [PORT].

CREATE TABLE IF NOT EXISTS prediction_history (
    id                  SERIAL PRIMARY KEY,
    timestamp           TIMESTAMPTZ NOT NULL DEFAULT now(),
    model_type          VARCHAR(50) NOT NULL CHECK (model_type IN ('anomaly', 'failure')),
    input_data          JSONB NOT NULL,
    prediction          JSONB NOT NULL,
    severity_score      NUMERIC(5, 4) CHECK (severity_score >= 0 AND severity_score <= 1),
    confidence_score    NUMERIC(5, 4) CHECK (confidence_score >= 0 AND confidence_score <= 1),
    recommended_action  VARCHAR(100),
    actual_outcome      VARCHAR(50),
    feedback_score      INTEGER CHECK (feedback_score >= 1 AND feedback_score <= 5),
    execution_time_ms   INTEGER,
    model_version       VARCHAR(50),
    features            JSONB,
    metadata            JSONB DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS idx_prediction_history_timestamp ON prediction_history (timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_prediction_history_model_type ON prediction_history (model_type);
CREATE INDEX IF NOT EXISTS idx_prediction_history_severity ON prediction_history (severity_score DESC);
CREATE INDEX IF NOT EXISTS idx_prediction_history_action ON prediction_history (recommended_action);
CREATE INDEX IF NOT EXISTS idx_prediction_history_metadata ON prediction_history USING GIN (metadata);
CREATE INDEX IF NOT EXISTS idx_prediction_history_features ON prediction_history USING GIN (features);

-- Long format: one row per metric name (§8.3 E7 pivots it).
CREATE TABLE IF NOT EXISTS model_metrics (
    id                          SERIAL PRIMARY KEY,
    timestamp                   TIMESTAMPTZ NOT NULL DEFAULT now(),
    model_type                  VARCHAR(50) NOT NULL,
    model_version               VARCHAR(50) NOT NULL,
    metric_name                 VARCHAR(100) NOT NULL,
    metric_value                NUMERIC(10, 6) NOT NULL,
    dataset_size                INTEGER,
    training_duration_seconds   INTEGER,
    metadata                    JSONB DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS idx_model_metrics_type_version ON model_metrics (model_type, model_version, timestamp DESC);

-- [PORT] The random forest's classes: `none` = 0, then the failure types of §6.5 in order.
CREATE TABLE IF NOT EXISTS failure_classes (
    id      INTEGER PRIMARY KEY,
    name    VARCHAR(100) NOT NULL UNIQUE
);
INSERT INTO failure_classes (id, name) VALUES
    (0, 'none'),
    (1, 'high_error_rate'),
    (2, 'connection_timeout'),
    (3, 'service_down'),
    (4, 'unhandled_exception'),
    (5, 'unknown'),
    (6, 'high_latency'),
    (7, 'memory_leak')
ON CONFLICT (id) DO NOTHING;

-- Anomaly baselines (model_type 'anomaly', label NULL, source 'request') and labelled failure
-- windows (model_type 'failure', label = failure_classes.id).
CREATE TABLE IF NOT EXISTS training_data (
    id                  SERIAL PRIMARY KEY,
    timestamp           TIMESTAMPTZ NOT NULL DEFAULT now(),
    model_type          VARCHAR(50) NOT NULL,
    features            JSONB NOT NULL,
    label               INTEGER,
    source              VARCHAR(100),
    is_validated        BOOLEAN DEFAULT false,
    validation_score    NUMERIC(5, 4),
    metadata            JSONB DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS idx_training_data_type_time ON training_data (model_type, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_training_data_signature ON training_data ((metadata ->> 'signature'), id DESC)
    WHERE model_type = 'anomaly';

CREATE TABLE IF NOT EXISTS anomaly_detections (
    id                  SERIAL PRIMARY KEY,
    prediction_id       INTEGER REFERENCES prediction_history (id) ON DELETE CASCADE,
    anomaly_score       NUMERIC(5, 4) NOT NULL CHECK (anomaly_score >= 0 AND anomaly_score <= 1),
    is_anomaly          BOOLEAN NOT NULL,
    severity            VARCHAR(20) CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    affected_metrics    TEXT[],
    affected_services   TEXT[],
    root_cause_analysis JSONB,
    recommended_actions JSONB DEFAULT '[]',
    false_positive      BOOLEAN DEFAULT false,
    resolved_at         TIMESTAMPTZ,
    resolution_notes    TEXT
);

CREATE TABLE IF NOT EXISTS failure_predictions (
    id                      SERIAL PRIMARY KEY,
    prediction_id           INTEGER REFERENCES prediction_history (id) ON DELETE CASCADE,
    failure_probability     NUMERIC(5, 4) NOT NULL CHECK (failure_probability >= 0 AND failure_probability <= 1),
    failure_type            VARCHAR(100),
    predicted_failure_time  TIMESTAMPTZ,
    affected_components     TEXT[],
    severity                VARCHAR(20) CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    recommended_actions     JSONB,
    actual_failure_occurred BOOLEAN,
    actual_failure_time     TIMESTAMPTZ,
    prediction_accuracy     NUMERIC(5, 4)
);

CREATE TABLE IF NOT EXISTS feature_store (
    id              SERIAL PRIMARY KEY,
    feature_name    VARCHAR(255) NOT NULL,
    feature_value   NUMERIC,
    entity_id       VARCHAR(255) NOT NULL,
    entity_type     VARCHAR(100) NOT NULL,
    timestamp       TIMESTAMPTZ NOT NULL DEFAULT now(),
    version         INTEGER DEFAULT 1,
    metadata        JSONB DEFAULT '{}',
    UNIQUE (feature_name, entity_id, entity_type, timestamp)
);

CREATE TABLE IF NOT EXISTS model_registry (
    id                  SERIAL PRIMARY KEY,
    model_name          VARCHAR(255) NOT NULL,
    model_type          VARCHAR(50) NOT NULL,
    version             VARCHAR(50) NOT NULL,
    algorithm           VARCHAR(100),
    hyperparameters     JSONB,
    performance_metrics JSONB,
    training_date       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deployed_date       TIMESTAMPTZ,
    status              VARCHAR(20) DEFAULT 'training' CHECK (status IN ('training', 'deployed', 'retired')),
    model_path          VARCHAR(500),
    created_by          VARCHAR(255),
    notes               TEXT,
    UNIQUE (model_name, version)
);

-- Resolving an anomaly clears its false-positive flag (the original's trigger, kept).
CREATE OR REPLACE FUNCTION anomaly_resolved_not_false_positive() RETURNS trigger AS $$
BEGIN
    IF NEW.resolved_at IS NOT NULL AND OLD.resolved_at IS NULL THEN
        NEW.false_positive := false;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS trg_anomaly_resolved ON anomaly_detections;
CREATE TRIGGER trg_anomaly_resolved BEFORE UPDATE ON anomaly_detections
    FOR EACH ROW EXECUTE FUNCTION anomaly_resolved_not_false_positive();

CREATE OR REPLACE VIEW recent_predictions AS
SELECT ph.*,
       CASE WHEN ad.id IS NOT NULL THEN 'anomaly'
            WHEN fp.id IS NOT NULL THEN 'failure'
            ELSE ph.model_type END AS category
FROM prediction_history ph
LEFT JOIN anomaly_detections ad ON ad.prediction_id = ph.id
LEFT JOIN failure_predictions fp ON fp.prediction_id = ph.id
WHERE ph.timestamp >= now() - INTERVAL '24 hours';

CREATE OR REPLACE VIEW model_performance_summary AS
SELECT model_type,
       date_trunc('hour', timestamp) AS hour,
       count(*) AS predictions,
       avg(confidence_score) AS avg_confidence,
       avg(execution_time_ms) AS avg_execution_time_ms
FROM prediction_history
WHERE timestamp >= now() - INTERVAL '7 days'
GROUP BY model_type, date_trunc('hour', timestamp);

-- Only predictions with a recorded outcome are archived (the original's rule, kept).
CREATE OR REPLACE FUNCTION archive_old_predictions(retention_days INTEGER DEFAULT 90) RETURNS INTEGER AS $$
DECLARE
    removed INTEGER;
BEGIN
    DELETE FROM prediction_history
    WHERE timestamp < now() - make_interval(days => retention_days)
      AND actual_outcome IS NOT NULL;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$ LANGUAGE plpgsql;
