-- The audit chain's deletions and anchors can no longer be steered from a session.
--
-- Before: a DELETE was allowed whenever the session setting `aegis.retention` was `on`, which
-- any holder of the table's write role could set, and `/audit/verify` trusted the newest
-- anchor blindly. So the newest rows could be deleted without a trace, and one forged anchor
-- row turned a detected gap into a valid chain.
--
-- Now:
-- * a row may be deleted only when a retention anchor covers it (`chain_seq <= after_seq`);
-- * an anchor is checked when it is written: it names a row that exists with that hash, it
--   moves past the previous anchor, its `purged_rows` counts the rows between the two, and it
--   never covers the newest row, so the chain's head always stays in the table;
-- * anchors cannot be changed or deleted;
-- * `purge_audit_logs()` writes its anchor first, then deletes what it covers.
-- Together: rows leave the table only from the old end, through an anchor that was true when
-- written. What a database owner can still do (disable triggers) is caught outside the
-- database: the head's sequence and hash go out with every Loki line and as a metric.

CREATE OR REPLACE FUNCTION audit_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tail_seq  bigint;
    tail_hash char(64);
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.chain_seq IS NULL OR OLD.chain_seq > COALESCE(
               (SELECT max(after_seq) FROM audit_chain_anchors), 0) THEN
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

CREATE FUNCTION audit_anchor_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prev_seq  bigint;
    head_seq  bigint;
    row_hash  char(64);
    between_n bigint;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'audit_chain_anchors rows cannot be changed or deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(7235001);
    SELECT max(after_seq) INTO prev_seq FROM audit_chain_anchors;
    SELECT max(chain_seq) INTO head_seq FROM action_audit_logs;
    SELECT hash INTO row_hash FROM action_audit_logs WHERE chain_seq = NEW.after_seq;
    IF row_hash IS NULL OR row_hash IS DISTINCT FROM NEW.after_hash THEN
        RAISE EXCEPTION 'an anchor must name a row in the chain with its hash'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.after_seq <= COALESCE(prev_seq, 0) THEN
        RAISE EXCEPTION 'an anchor must move past the previous one (%)', prev_seq
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.after_seq >= head_seq THEN
        RAISE EXCEPTION 'an anchor never covers the newest row of the chain'
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT count(*) INTO between_n FROM action_audit_logs
     WHERE chain_seq > COALESCE(prev_seq, 0) AND chain_seq <= NEW.after_seq;
    IF NEW.purged_rows IS DISTINCT FROM between_n THEN
        RAISE EXCEPTION 'purged_rows must count the rows the anchor covers (%)', between_n
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.created_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_chain_anchors_guard
    BEFORE INSERT OR UPDATE OR DELETE ON audit_chain_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_anchor_guard();

CREATE TRIGGER audit_chain_anchors_no_truncate
    BEFORE TRUNCATE ON audit_chain_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_guard_truncate();

CREATE OR REPLACE FUNCTION purge_audit_logs(retention_days integer DEFAULT 90) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    cutoff   timestamptz := now() - make_interval(days => retention_days);
    head       bigint;
    first_kept bigint;
    upto       bigint;
    upto_h   char(64);
    covered  bigint;
    removed  bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7235001);
    SELECT max(chain_seq) INTO head FROM action_audit_logs;
    -- Everything before the first row inside the retention window, but never the head: it
    -- stays as the chain's end.
    SELECT min(chain_seq) INTO first_kept FROM action_audit_logs
     WHERE chain_seq IS NOT NULL AND created_at >= cutoff;
    upto := LEAST(COALESCE(first_kept, head + 1), head) - 1;
    IF upto IS NULL OR upto <= COALESCE((SELECT max(after_seq) FROM audit_chain_anchors), 0) THEN
        RETURN 0;
    END IF;
    SELECT hash INTO upto_h FROM action_audit_logs WHERE chain_seq = upto;
    SELECT count(*) INTO covered FROM action_audit_logs
     WHERE chain_seq > COALESCE((SELECT max(after_seq) FROM audit_chain_anchors), 0)
       AND chain_seq <= upto;
    INSERT INTO audit_chain_anchors (after_seq, after_hash, purged_rows)
    VALUES (upto, upto_h, covered);
    DELETE FROM action_audit_logs WHERE chain_seq <= upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;

DO $$
BEGIN
    REVOKE EXECUTE ON FUNCTION purge_audit_logs(integer) FROM PUBLIC;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'revoke on purge_audit_logs skipped';
END
$$;
