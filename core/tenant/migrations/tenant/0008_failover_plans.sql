-- Failover plans (issue 28): the order replicas start in, each step's wait (FailoverPlan's
-- steps and time per step as JSON), and how the plan last ran. Replicas get a schedule: a
-- cycle every N minutes when the daemon runs (NULL: only when asked).
CREATE TABLE failover_plans (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    last_ms INTEGER,
    last_message TEXT NOT NULL DEFAULT ''
);

ALTER TABLE replicas ADD COLUMN every_minutes INTEGER;
