-- Operators: they approve and reject planned actions and switch the remediation mode, without
-- user administration. The role is seeded like the others, idempotently by name.
ALTER TABLE roles DROP CONSTRAINT roles_name_check;
ALTER TABLE roles ADD CONSTRAINT roles_name_check
    CHECK (name IN ('admin', 'user', 'auditor', 'service', 'operator'));
INSERT INTO roles (name, description, permissions) VALUES
    ('operator', 'Approves and rejects remediation, switches the remediation mode',
     '{"api":["read"],"remediation":["read","approve","reject","label","mode"]}')
ON CONFLICT (name) DO NOTHING;

-- Approvals expire: an incident waiting for approval past `approval_expires_at` becomes
-- `expired`, a closed status, so the next signal for its fingerprint opens a new incident.
-- `incident_is_open` and the open-fingerprint index are unchanged (expired is closed).
ALTER TABLE incidents DROP CONSTRAINT incidents_status_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_status_check CHECK (status IN (
    'open', 'awaiting_approval', 'executing', 'verifying',
    'resolved', 'rejected', 'failed', 'escalated', 'suppressed', 'expired'));
ALTER TABLE incidents ADD COLUMN approval_expires_at timestamptz NULL;
-- Incidents already waiting when this version starts get the default timeout from now.
UPDATE incidents SET approval_expires_at = now() + interval '30 minutes'
 WHERE status = 'awaiting_approval';
-- The expiry sweep reads only the incidents that wait.
CREATE INDEX incidents_approval_expires_idx ON incidents (approval_expires_at)
    WHERE status = 'awaiting_approval';
