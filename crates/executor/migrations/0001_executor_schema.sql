-- The executor's database (executor.md §7, spec/README.md "Executor audit" and "Loki shipping").
--
-- Schema decisions:
-- * `action_audit_logs` is the snake_case schema of the original infra SQL plus
--   `correlation_id` and the hash-chain columns `chain_seq`, `prev_hash`, `hash`.
-- * One BEFORE trigger enforces the status machine (pending -> in_progress -> completed|failed,
--   pending -> rejected; rejected rows may be inserted already final), freezes every final row and,
--   when a row reaches its final status, links it into the hash chain under a transaction-scoped
--   advisory lock so that concurrent finals chain in commit order without gaps.
-- * DELETE is refused unless the session setting `aegis.retention` is `on`, which only
--   `purge_audit_logs()` sets; the purge writes an anchor row so `/audit/verify` can start from it.
-- * Grants alone do not bind a superuser, so the triggers are the guard. The application role
--   `aegis_executor_app` is created idempotently and gets SELECT, INSERT, UPDATE only.
-- * The hash is computed in SQL (`audit_canonical`) so that the writer and the verifier share one
--   definition of the canonical row, independent of client-side JSON key order.

CREATE TABLE action_audit_logs (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    action_type        varchar(50)  NOT NULL CHECK (action_type IN
                           ('restart_pod', 'scale_deployment', 'rollback_deployment', 'delete_pod', 'update_config')),
    status             varchar(20)  NOT NULL CHECK (status IN
                           ('pending', 'in_progress', 'completed', 'failed', 'rejected')),
    namespace          varchar(255) NOT NULL,
    resource_type      varchar(50)  NOT NULL,
    resource_name      varchar(255) NOT NULL,
    action_params      jsonb        NOT NULL,
    requested_by       varchar(255),
    policy_decision    jsonb,
    execution_duration integer,
    error_message      text,
    result             jsonb,
    ip_address         inet,
    signature          text,
    created_at         timestamptz  NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    correlation_id     varchar(64),
    chain_seq          bigint UNIQUE,
    prev_hash          char(64),
    hash               char(64)
);

CREATE INDEX idx_audit_namespace ON action_audit_logs (namespace);
CREATE INDEX idx_audit_action_type ON action_audit_logs (action_type);
CREATE INDEX idx_audit_status ON action_audit_logs (status);
CREATE INDEX idx_audit_created_at ON action_audit_logs (created_at DESC);
CREATE INDEX idx_audit_requested_by ON action_audit_logs (requested_by);
CREATE INDEX idx_audit_resource ON action_audit_logs (resource_type, resource_name);
CREATE INDEX idx_audit_ns_created ON action_audit_logs (namespace, created_at DESC);
CREATE INDEX idx_audit_type_status_created ON action_audit_logs (action_type, status, created_at DESC);
CREATE INDEX idx_audit_correlation ON action_audit_logs (correlation_id);
CREATE INDEX idx_audit_action_params ON action_audit_logs USING gin (action_params);
CREATE INDEX idx_audit_result ON action_audit_logs USING gin (result);
CREATE INDEX idx_audit_policy_decision ON action_audit_logs USING gin (policy_decision);

-- Where `/audit/verify` starts: the newest anchor says which chain_seq the chain continues after
-- and which hash the next row must name as prev_hash. Without an anchor the chain starts at
-- chain_seq 1 with 64 zeros.
CREATE TABLE audit_chain_anchors (
    id           bigserial PRIMARY KEY,
    after_seq    bigint      NOT NULL,
    after_hash   char(64)    NOT NULL,
    purged_rows  bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The canonical text of a row: every column except the hash itself, in a fixed order.
CREATE FUNCTION audit_canonical(r action_audit_logs) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        r.id::text, r.chain_seq, r.action_type, r.status, r.namespace, r.resource_type,
        r.resource_name, r.action_params, r.requested_by, r.policy_decision,
        r.execution_duration, r.error_message, r.result, r.ip_address::text, r.signature,
        to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        to_char(r.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        r.correlation_id
    )::text
$$;

CREATE FUNCTION audit_row_hash(prev char(64), r action_audit_logs) RETURNS char(64)
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(prev || audit_canonical(r), 'UTF8')), 'hex')::char(64)
$$;

CREATE FUNCTION audit_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tail_seq  bigint;
    tail_hash char(64);
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('aegis.retention', true) IS DISTINCT FROM 'on' THEN
            RAISE EXCEPTION 'action_audit_logs rows cannot be deleted (only by purge_audit_logs)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;

    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('pending', 'rejected') THEN
            RAISE EXCEPTION 'audit rows are inserted as pending or rejected, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.chain_seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL THEN
            RAISE EXCEPTION 'chain columns are assigned by the database'
                USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        IF OLD.status IN ('completed', 'failed', 'rejected') THEN
            RAISE EXCEPTION 'audit row % is final (%) and cannot change', OLD.id, OLD.status
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT ((OLD.status = 'pending' AND NEW.status IN ('in_progress', 'rejected', 'failed'))
             OR (OLD.status = 'in_progress' AND NEW.status IN ('completed', 'failed'))) THEN
            RAISE EXCEPTION 'audit status cannot go from % to %', OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.id IS DISTINCT FROM OLD.id
           OR NEW.action_type IS DISTINCT FROM OLD.action_type
           OR NEW.namespace IS DISTINCT FROM OLD.namespace
           OR NEW.resource_type IS DISTINCT FROM OLD.resource_type
           OR NEW.resource_name IS DISTINCT FROM OLD.resource_name
           OR NEW.action_params IS DISTINCT FROM OLD.action_params
           OR NEW.requested_by IS DISTINCT FROM OLD.requested_by
           OR NEW.policy_decision IS DISTINCT FROM OLD.policy_decision
           OR NEW.ip_address IS DISTINCT FROM OLD.ip_address
           OR NEW.signature IS DISTINCT FROM OLD.signature
           OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.correlation_id IS DISTINCT FROM OLD.correlation_id
           OR NEW.chain_seq IS DISTINCT FROM OLD.chain_seq
           OR NEW.prev_hash IS DISTINCT FROM OLD.prev_hash
           OR NEW.hash IS DISTINCT FROM OLD.hash THEN
            RAISE EXCEPTION 'only status, result, error_message, execution_duration and completed_at may change'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    IF NEW.status IN ('completed', 'failed', 'rejected') THEN
        -- Serialise chain appends; the lock is held until this transaction ends, so the next
        -- final row sees this one as the tail.
        PERFORM pg_advisory_xact_lock(7235001);
        SELECT chain_seq, hash INTO tail_seq, tail_hash
          FROM action_audit_logs WHERE chain_seq IS NOT NULL
         ORDER BY chain_seq DESC LIMIT 1;
        IF tail_seq IS NULL THEN
            SELECT after_seq, after_hash INTO tail_seq, tail_hash
              FROM audit_chain_anchors ORDER BY id DESC LIMIT 1;
        END IF;
        NEW.chain_seq := COALESCE(tail_seq, 0) + 1;
        NEW.prev_hash := COALESCE(tail_hash, repeat('0', 64));
        NEW.hash := audit_row_hash(NEW.prev_hash, NEW);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER action_audit_logs_guard
    BEFORE INSERT OR UPDATE OR DELETE ON action_audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_guard();

CREATE FUNCTION audit_guard_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'action_audit_logs cannot be truncated' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER action_audit_logs_no_truncate
    BEFORE TRUNCATE ON action_audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_guard_truncate();

-- One row per failed or rejected action (executor.md §7.2).
CREATE TABLE execution_errors (
    id             bigserial PRIMARY KEY,
    audit_log_id   uuid        NOT NULL REFERENCES action_audit_logs (id) ON DELETE CASCADE,
    error_code     varchar(50),
    error_category varchar(30) NOT NULL CHECK (error_category IN
                       ('validation', 'authorization', 'kubernetes_api', 'timeout', 'network', 'unknown')),
    error_message  text        NOT NULL,
    error_stack    text,
    recoverable    boolean     NOT NULL DEFAULT false,
    retry_count    integer     NOT NULL DEFAULT 0,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    metadata       jsonb
);
CREATE INDEX idx_execution_errors_audit ON execution_errors (audit_log_id);

-- Retention (executor.md §7.6): deletes final rows older than `retention_days` from the start of
-- the chain only (so the remaining chain has no gap), and writes an anchor for /audit/verify.
CREATE FUNCTION purge_audit_logs(retention_days integer DEFAULT 90) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    cutoff   timestamptz := now() - make_interval(days => retention_days);
    upto     bigint;
    upto_h   char(64);
    removed  bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7235001);
    SELECT min(chain_seq) INTO upto FROM action_audit_logs
     WHERE chain_seq IS NOT NULL AND created_at >= cutoff;
    IF upto IS NULL THEN
        SELECT max(chain_seq) INTO upto FROM action_audit_logs;
    ELSE
        upto := upto - 1;
    END IF;
    IF upto IS NULL OR upto < 1 THEN
        RETURN 0;
    END IF;
    SELECT hash INTO upto_h FROM action_audit_logs WHERE chain_seq = upto;
    IF upto_h IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM set_config('aegis.retention', 'on', true);
    DELETE FROM action_audit_logs WHERE chain_seq <= upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('aegis.retention', 'off', true);
    IF removed > 0 THEN
        INSERT INTO audit_chain_anchors (after_seq, after_hash, purged_rows)
        VALUES (upto, upto_h, removed);
    END IF;
    RETURN removed;
END
$$;

-- Per-action rate limits (executor.md §6.4): fixed windows shared by every replica.
CREATE TABLE rate_limit_tracking (
    id              bigserial PRIMARY KEY,
    action_type     varchar(50)  NOT NULL,
    namespace       varchar(255) NOT NULL,
    requested_by    varchar(255) NOT NULL,
    window_start    timestamptz  NOT NULL,
    window_end      timestamptz  NOT NULL,
    request_count   integer      NOT NULL DEFAULT 0,
    last_request_at timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (action_type, namespace, requested_by, window_start)
);

CREATE FUNCTION cleanup_rate_limit_windows() RETURNS bigint
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM rate_limit_tracking WHERE window_end < now() - interval '1 day' RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- v2 nonces (executor.md §5.7), shared by every replica; purged after twice the allowed skew.
CREATE TABLE signature_nonces (
    nonce   text PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_signature_nonces_seen ON signature_nonces (seen_at);

-- Loki outbox (spec/README.md "Loki shipping"): one row per line, written in the same
-- transaction as the audit change it describes, marked shipped only after Loki answered 2xx.
CREATE TABLE loki_outbox (
    id           bigserial PRIMARY KEY,
    audit_id     uuid        NOT NULL,
    labels       jsonb       NOT NULL,
    line         text        NOT NULL,
    timestamp_ns bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    shipped_at   timestamptz,
    attempts     integer     NOT NULL DEFAULT 0
);
CREATE INDEX idx_loki_outbox_pending ON loki_outbox (id) WHERE shipped_at IS NULL;

-- The application role (executor.md §7.3): created idempotently; roles are cluster-wide, so
-- concurrent migrations of several databases may race, and a migrating user without CREATEROLE
-- leaves role management to the platform.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aegis_executor_app') THEN
        CREATE ROLE aegis_executor_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN
        RAISE NOTICE 'role aegis_executor_app not created here';
END
$$;

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE ON action_audit_logs TO aegis_executor_app;
    GRANT SELECT, INSERT ON execution_errors, audit_chain_anchors TO aegis_executor_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_tracking, signature_nonces, loki_outbox
        TO aegis_executor_app;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO aegis_executor_app;
    REVOKE EXECUTE ON FUNCTION purge_audit_logs(integer) FROM PUBLIC;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'grants to aegis_executor_app skipped';
END
$$;
