-- Policy engine (backend.md §5, §13.2): policies, the policy-set revision and the append-only
-- evaluation audit log.

CREATE TABLE policies (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Unique (F18): the seed command and the API use the name as the policy's identity.
    name             varchar(255) NOT NULL UNIQUE,
    description      text,
    type             varchar(32)  NOT NULL
        CHECK (type IN ('api_access', 'self_healing', 'data_access', 'resource_limit')),
    effect           varchar(10)  NOT NULL DEFAULT 'deny' CHECK (effect IN ('allow', 'deny')),
    conditions       jsonb        NOT NULL DEFAULT '{}',
    actions          text[]       NOT NULL,
    resources        text[]       NOT NULL,
    priority         integer      NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000),
    is_active        boolean      NOT NULL DEFAULT true,
    -- spec/README.md "Policy conditions": guardrail mode, self_healing policies only.
    remediation_mode varchar(16)
        CHECK (remediation_mode IN ('off', 'dry_run', 'approval', 'auto')),
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX policies_type_active_idx ON policies (type, is_active);
CREATE INDEX policies_priority_idx ON policies (priority DESC);
CREATE TRIGGER policies_set_updated_at BEFORE UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row: a counter bumped by every statement that changes `policies` (deletes included,
-- which max(updated_at) would miss). Replicas compare it with the revision their compiled set
-- was built from and reload when it moved; it also seeds the Redis cache-version counter
-- (`policy:version`) when Redis lost it.
CREATE TABLE policy_revision (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO policy_revision (id, revision) VALUES (true, 0);

CREATE FUNCTION bump_policy_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE policy_revision SET revision = revision + 1, updated_at = now() WHERE id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER policies_bump_revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_revision();

-- One row per evaluation (§5.7), cache hits included. id = the decisionId returned to the
-- caller (generated before the row is written, so batch retries are idempotent).
CREATE TABLE policy_audit_logs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Caller-supplied, not necessarily a UUID.
    user_id          varchar(255),
    action           varchar(255) NOT NULL,
    resource         text         NOT NULL,
    result           varchar(10)  NOT NULL CHECK (result IN ('allow', 'deny', 'error')),
    reason           text,
    -- context.metadata only (or {}).
    context          jsonb        NOT NULL DEFAULT '{}',
    applied_policies jsonb        NOT NULL DEFAULT '[]',
    -- Text, not INET: callers send arbitrary strings.
    ip_address       varchar(64),
    user_agent       text,
    -- W3C trace id of the request that asked (contract 5); never part of the cache key.
    correlation_id   varchar(64),
    created_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX policy_audit_logs_user_created_idx ON policy_audit_logs (user_id, created_at DESC);
CREATE INDEX policy_audit_logs_action_created_idx ON policy_audit_logs (action, created_at DESC);
CREATE INDEX policy_audit_logs_result_idx ON policy_audit_logs (result);
CREATE INDEX policy_audit_logs_created_idx ON policy_audit_logs (created_at DESC);
CREATE INDEX policy_audit_logs_correlation_idx ON policy_audit_logs (correlation_id)
    WHERE correlation_id IS NOT NULL;

-- Append-only: no UPDATE or DELETE, whoever asks (grants alone do not bind a superuser).
CREATE FUNCTION forbid_policy_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policy_audit_logs is append-only';
END;
$$;
CREATE TRIGGER policy_audit_logs_append_only BEFORE UPDATE OR DELETE ON policy_audit_logs
    FOR EACH ROW EXECUTE FUNCTION forbid_policy_audit_change();
