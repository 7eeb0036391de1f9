-- The cooldown guardrail reads the latest action on one deployment. It used to filter every
-- acted-on incident of the namespace, ever, by deployment: each loop then cost a heap visit per
-- past action (13 ms after 5,400 actions in one namespace, growing without bound). This index
-- answers it with one probe; the per-hour cap reads `incidents_acted_at_idx` and stops at the
-- cap (`db::incidents::reserve_action`).
CREATE INDEX incidents_deployment_acted_at_idx
    ON incidents (namespace, deployment, acted_at DESC)
    WHERE acted_at IS NOT NULL;
