-- One row per failure episode of a workload, as the Kubernetes watcher reported it. An
-- episode is open (ended_at NULL) from the first signal until the workload has been free of
-- failures for the quiet period; at most one is open per workload, whichever replica leads.
-- cleared_at is set while the failure is gone, so that its return within the episode is
-- reported once more (the backend's verification relies on it).
CREATE TABLE watch_episodes (
    id BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    deployment TEXT NOT NULL,
    failure TEXT NOT NULL,
    recommended_action TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_signal_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    signals INTEGER NOT NULL DEFAULT 1,
    cleared_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX watch_episodes_one_open
    ON watch_episodes (namespace, deployment) WHERE ended_at IS NULL;

CREATE INDEX watch_episodes_recent ON watch_episodes (namespace, deployment, ended_at DESC);
