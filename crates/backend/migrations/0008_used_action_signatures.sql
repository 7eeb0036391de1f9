-- Signatures already used on POST /executor/action, for its replay guard
-- (routes/executor.rs). The guard lives here rather than in Redis so that it never fails
-- open: while it cannot be checked, the action is refused. A signed timestamp older than the
-- accepted skew is refused before the guard, so a row is needed only until expires_at (twice
-- the skew); expired rows are removed by the next insert.
CREATE TABLE used_action_signatures (
    signature  TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX used_action_signatures_expires_at_idx ON used_action_signatures (expires_at);
