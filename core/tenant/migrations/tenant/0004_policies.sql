-- Backup policies (their settings as JSON, the provider they publish to), their computers
-- (each a managed subtenant and a job the tenant browses and restores through), and what
-- the last synchronization from the provider said.

CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    synced_ms INTEGER,
    status TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE policy_computers (
    policy TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    computer TEXT NOT NULL,
    login TEXT NOT NULL,
    job TEXT NOT NULL,
    added_ms INTEGER NOT NULL,
    PRIMARY KEY (policy, computer)
);
