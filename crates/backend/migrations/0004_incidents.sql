-- Remediation incidents (spec README decision 1, contracts 4, 5, 8, 10).
--
-- An incident is opened by the first signal with a given fingerprint; later signals with the
-- same fingerprint join it (timeline event `signal`) while it is still "open-ish".

CREATE TABLE incidents (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Contract 8: Alertmanager's own fingerprint, or the first 16 hex chars of
    -- sha256(kind|namespace|deployment|pod|recommendedAction). Not unique on its own: a
    -- resolved incident may be followed by a new one with the same fingerprint.
    fingerprint        text NOT NULL,
    -- Contract 10 statuses; text + CHECK rather than an enum so adding a status is a plain
    -- constraint swap in a later migration.
    status             text NOT NULL DEFAULT 'open' CHECK (status IN (
                           'open', 'awaiting_approval', 'executing', 'verifying',
                           'resolved', 'rejected', 'failed', 'escalated', 'suppressed')),
    source             text NOT NULL,
    kind               text NOT NULL,
    namespace          text NOT NULL,
    deployment         text NOT NULL,
    pod                text NULL,
    severity           text NOT NULL,
    score              double precision NOT NULL,
    confidence         double precision NOT NULL,
    recommended_action text NOT NULL,
    -- Contract 5: the W3C trace id (32 lowercase hex chars). Nullable because incidents may
    -- later be opened by paths that carry no trace (and to match the other tables).
    correlation_id     char(32) NULL CHECK (correlation_id ~ '^[0-9a-f]{32}$'),
    -- The first signal as received; later signals are kept in the timeline.
    signal             jsonb NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz NULL
);

-- At most one "open-ish" incident per fingerprint. This is what makes deduplication race-free:
-- two concurrent signals both try `INSERT ... ON CONFLICT DO NOTHING`, exactly one wins and the
-- other joins the winner. The predicate must stay in sync with `OPEN_STATUSES` in
-- `src/db/incidents.rs` (the ON CONFLICT clause repeats it).
CREATE UNIQUE INDEX incidents_open_fingerprint_key
    ON incidents (fingerprint)
    WHERE status IN ('open', 'awaiting_approval', 'executing', 'verifying');

-- The list API: newest first, optionally filtered by status and namespace.
CREATE INDEX incidents_created_at_idx ON incidents (created_at DESC, id DESC);
CREATE INDEX incidents_status_idx ON incidents (status);
CREATE INDEX incidents_namespace_idx ON incidents (namespace);

-- The timeline: one row per loop step (`signal`, later `decision`, `execute`, `verify`, ...).
-- bigserial gives a total order even for events within the same microsecond.
CREATE TABLE incident_events (
    id          bigserial PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    step        text NOT NULL,
    -- The incident status after this step.
    status      text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, id);
