-- A model version names the metric types it was trained on (`iforest-<types>-<n>`), which can
-- exceed 50 characters; a history row that did not fit failed its whole batch. Text has no
-- such limit, and the recommended action gets the same treatment. The view that selects
-- `ph.*` pins the column types, so it is dropped and recreated around the change.
DROP VIEW IF EXISTS recent_predictions;
ALTER TABLE prediction_history ALTER COLUMN model_version TYPE text;
ALTER TABLE prediction_history ALTER COLUMN recommended_action TYPE text;
ALTER TABLE model_metrics ALTER COLUMN model_version TYPE text;
CREATE VIEW recent_predictions AS
SELECT ph.*,
       CASE WHEN ad.id IS NOT NULL THEN 'anomaly'
            WHEN fp.id IS NOT NULL THEN 'failure'
            ELSE ph.model_type END AS category
FROM prediction_history ph
LEFT JOIN anomaly_detections ad ON ad.prediction_id = ph.id
LEFT JOIN failure_predictions fp ON fp.prediction_id = ph.id
WHERE ph.timestamp >= now() - INTERVAL '24 hours';
