-- Cloud replication (issue 28): the SP's cloud hosts (each logs in with its own password and
-- reports what it has), the hardware plans sold on them and which tenants have each plan.
-- Keep in step with ../postgres/0012_replication.sql.
CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    seen_ms INTEGER,
    -- What it reported last (cloudkeep_api::replication::HostFacts as JSON).
    facts TEXT
);

CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    host_id INTEGER NOT NULL REFERENCES hosts (id),
    cpu INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    networks INTEGER NOT NULL,
    internet INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE plan_storage (
    plan_id INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    pool TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (plan_id, pool)
);

CREATE TABLE plan_tenants (
    plan_id INTEGER NOT NULL REFERENCES plans (id),
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (plan_id, tenant_id)
);
