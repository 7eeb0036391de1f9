-- The remediation decision path (spec README decision 1, contracts 7, 10, 11).
--
-- What the loop planned and did is kept on the incident itself (the timeline keeps the story):
-- the guardrails query `acted_at` (cooldown per target, cap per namespace per hour), the
-- approval routes read the planned action, and a restarted backend resumes verifications from
-- `verify_at`.

-- An Alertmanager alert without an `aegis_action` annotation, or an admin's incident without an
-- action, has no recommended action until the ai-engine has analysed its window.
ALTER TABLE incidents ALTER COLUMN recommended_action DROP NOT NULL;

ALTER TABLE incidents
    -- The executor action the loop chose (`scale_deployment`, `restart_pod`, ...).
    ADD COLUMN action_type       text        NULL,
    -- Its `actionParams`, as sent (or to be sent after approval).
    ADD COLUMN action_params     jsonb       NULL,
    -- The effective mode of the decision (`off`, `dry_run`, `approval`, `auto`).
    ADD COLUMN mode              text        NULL,
    -- The `policy_audit_logs` id of the self_healing evaluation, and the deciding policy.
    ADD COLUMN decision_id       uuid        NULL,
    ADD COLUMN policy_name       text        NULL,
    -- The executor's audit row for the action.
    ADD COLUMN executor_audit_id text        NULL,
    -- When an action against the cluster was committed to (cooldown and cap count these).
    ADD COLUMN acted_at          timestamptz NULL,
    -- When verification is due (status `verifying`).
    ADD COLUMN verify_at         timestamptz NULL,
    -- Who approved or rejected it.
    ADD COLUMN decided_by        text        NULL;

-- Cooldown per (namespace, deployment) and cap per namespace: both scan recent actions only.
CREATE INDEX incidents_acted_at_idx ON incidents (namespace, acted_at)
    WHERE acted_at IS NOT NULL;
