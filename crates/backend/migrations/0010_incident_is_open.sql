-- Which statuses are open, said once in the database: the partial unique index that keeps one
-- open incident per fingerprint, and the statements that must name that index's predicate
-- (`ON CONFLICT ... WHERE`, the join of a signal to its open incident), all call this function.
-- The statements are literals checked at compile time, so they cannot format the open set in
-- from the remediation domain; a status added to the domain's open set changes this function
-- and rebuilds the index in the same migration.
--
-- IMMUTABLE, so an index may use it; a single SQL expression, so the planner inlines it and
-- proves a statement's predicate against the index's as it did with the literal list.
CREATE FUNCTION incident_is_open(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT status IN ('open', 'awaiting_approval', 'executing', 'verifying') $$;

DROP INDEX incidents_open_fingerprint_key;
CREATE UNIQUE INDEX incidents_open_fingerprint_key
    ON incidents (fingerprint)
    WHERE incident_is_open(status);
