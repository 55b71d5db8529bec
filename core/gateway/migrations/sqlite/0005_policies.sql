-- Backup policies a tenant publishes for its agents, which managed subtenant runs which
-- policy, and the sessions agents report. The policy document is JSON the gateway stores
-- and hands out but does not interpret (no secrets in it). Keep in step with
-- ../postgres/0005_policies.sql.

CREATE TABLE policies (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    document TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One row per managed subtenant: its policy and computer, and what its agent last said.
CREATE TABLE policy_members (
    subtenant_id INTEGER PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL,
    policy_id TEXT NOT NULL,
    computer TEXT NOT NULL,
    applied_revision INTEGER NOT NULL DEFAULT 0,
    next_run_ms INTEGER,
    seen_ms INTEGER,
    UNIQUE (tenant_id, policy_id, computer)
);

CREATE TABLE agent_sessions (
    id INTEGER PRIMARY KEY,
    subtenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    result TEXT NOT NULL,
    report TEXT NOT NULL
);

CREATE INDEX agent_sessions_by_account ON agent_sessions (subtenant_id, finished_ms);
