-- Backup policies a tenant publishes for its agents, which managed subtenant runs which
-- policy, and the sessions agents report. The policy document is JSON the gateway stores
-- and hands out but does not interpret (no secrets in it). Keep in step with
-- ../sqlite/0005_policies.sql.

CREATE TABLE policies (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    revision BIGINT NOT NULL,
    document TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One row per managed subtenant: its policy and computer, and what its agent last said.
CREATE TABLE policy_members (
    subtenant_id BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    computer TEXT NOT NULL,
    applied_revision BIGINT NOT NULL DEFAULT 0,
    next_run_ms BIGINT,
    seen_ms BIGINT,
    UNIQUE (tenant_id, policy_id, computer)
);

CREATE TABLE agent_sessions (
    id BIGSERIAL PRIMARY KEY,
    subtenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL,
    result TEXT NOT NULL,
    report TEXT NOT NULL
);

CREATE INDEX agent_sessions_by_account ON agent_sessions (subtenant_id, finished_ms);
