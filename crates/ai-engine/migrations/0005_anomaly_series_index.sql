-- Anomaly models are kept per series (workload × signature) and rebuilt from their newest
-- stored windows when a series is not in memory: one index scan per rebuild.
CREATE INDEX IF NOT EXISTS idx_training_data_series
    ON training_data ((metadata ->> 'signature'), (metadata ->> 'series'), id DESC)
    WHERE model_type = 'anomaly';
