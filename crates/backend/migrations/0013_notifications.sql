-- Notifications: channels, routing rules, and an outbox with one delivery row per channel.
--
-- An incident's status change and its notification event are written by the same statement:
-- the trigger below adds the event to the outbox in the transaction of the step, so an event
-- exists exactly when its step does. Delivery happens later, off the decision path, at least
-- once per (event, channel), with the event id as the receivers' idempotency key.

-- Where notifications go. `config` holds what may be shown (a URL without credentials, the
-- e-mail recipients); `secret` is write-only (a Slack webhook URL, a webhook signing secret,
-- an Alertmanager bearer token) and is never returned by the API.
CREATE TABLE notification_channels (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    type       text NOT NULL CHECK (type IN ('slack', 'webhook', 'alertmanager', 'email')),
    config     jsonb NOT NULL DEFAULT '{}'::jsonb,
    secret     text NULL,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER notification_channels_set_updated_at BEFORE UPDATE ON notification_channels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Which events reach which channels: event types (empty = every type) × minimum severity ×
-- namespace glob (`*` matches any run of characters; events without a namespace, such as a
-- global mode change, match only `*`).
CREATE TABLE notification_routes (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    event_types       text[] NOT NULL DEFAULT '{}',
    min_severity      text NOT NULL DEFAULT 'low'
                          CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    namespace_pattern text NOT NULL DEFAULT '*' CHECK (char_length(namespace_pattern) BETWEEN 1 AND 253),
    channel_ids       uuid[] NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER notification_routes_set_updated_at BEFORE UPDATE ON notification_routes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The outbox. `id` is the idempotency key every delivery of the event carries. `routed_at`
-- is set once the routing rules have turned the event into delivery rows.
CREATE TABLE notification_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type  text NOT NULL CHECK (event_type IN (
                    'opened', 'awaiting_approval', 'executing', 'resolved', 'failed',
                    'escalated', 'suppressed', 'rejected', 'expired', 'mode_changed', 'test')),
    incident_id uuid NULL,
    severity    text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    namespace   text NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    routed_at   timestamptz NULL
);
CREATE INDEX notification_events_unrouted_idx ON notification_events (created_at)
    WHERE routed_at IS NULL;
CREATE INDEX notification_events_created_idx ON notification_events (created_at DESC);

-- One row per (event, channel): pending until delivered, or dead once retries ran out.
CREATE TABLE notification_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NULL,
    delivered_at    timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, channel_id)
);
-- The claim asks each channel for its oldest due rows, and an incident's earlier events
-- still pending on the same channel.
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (channel_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_events_incident_idx ON notification_events (incident_id, created_at)
    WHERE incident_id IS NOT NULL;
CREATE INDEX notification_deliveries_dead_idx ON notification_deliveries (created_at DESC)
    WHERE status = 'dead';

-- An incident's status change becomes an outbox event in the same transaction. `verifying`
-- is an intermediate state nobody is paged for; every other status names an event type. The
-- step that made the change (appended by the same statement) gives the reason.
CREATE FUNCTION incident_notification() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    last_step record;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    kind := CASE NEW.status
        WHEN 'open' THEN 'opened'
        WHEN 'verifying' THEN NULL
        ELSE NEW.status
    END;
    IF kind IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT step, details INTO last_step FROM incident_events
     WHERE incident_id = NEW.id ORDER BY id DESC LIMIT 1;
    INSERT INTO notification_events (event_type, incident_id, severity, namespace, payload)
    VALUES (kind, NEW.id,
            CASE WHEN NEW.severity IN ('low', 'medium', 'high', 'critical')
                 THEN NEW.severity ELSE 'medium' END,
            NEW.namespace,
            jsonb_build_object(
                'incidentId', NEW.id,
                'status', NEW.status,
                'previousStatus', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
                'source', NEW.source,
                'kind', NEW.kind,
                'namespace', NEW.namespace,
                'deployment', NEW.deployment,
                'pod', NEW.pod,
                'severity', NEW.severity,
                'score', NEW.score,
                'recommendedAction', NEW.recommended_action,
                'actionType', NEW.action_type,
                'actionParams', NEW.action_params,
                'mode', NEW.mode,
                'decidedBy', NEW.decided_by,
                'correlationId', NEW.correlation_id,
                'approvalExpiresAt', NEW.approval_expires_at,
                'createdAt', NEW.created_at,
                'step', last_step.step,
                'reason', last_step.details ->> 'reason'));
    RETURN NULL;
END;
$$;
CREATE TRIGGER incidents_notification AFTER INSERT OR UPDATE OF status ON incidents
    FOR EACH ROW EXECUTE FUNCTION incident_notification();
