-- The kill switch: the remediation mode, set at run time through the API, globally (scope
-- `*`) and per namespace (scope = the namespace). Every replica reads it before each decision,
-- so a change applies everywhere at the next decision. The global row is seeded from
-- REMEDIATION_MODE the first time a backend starts on this database.
CREATE TABLE remediation_modes (
    scope      text PRIMARY KEY CHECK (scope = '*' OR scope ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
    mode       text NOT NULL CHECK (mode IN ('off', 'dry_run', 'approval', 'auto')),
    reason     text NULL CHECK (char_length(reason) <= 1000),
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
