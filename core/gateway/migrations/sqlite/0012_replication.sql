-- Cloud replication (issue 28): the SP's cloud hosts (each logs in with its own password and
-- reports what it has), the hardware plans sold on them, which tenants have each plan, and the
-- tenants' replicas on them.
-- Keep in step with ../postgres/0012_replication.sql.
CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    seen_ms INTEGER,
    -- What it reported last (cloudkeep_api::replication::HostFacts as JSON).
    facts TEXT,
    -- Where gateways reach it for replica data: address, certificate fingerprint, and the
    -- key they present (sealed with the gateways' secrets key).
    endpoint_address TEXT,
    endpoint_fingerprint TEXT,
    endpoint_key TEXT
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

-- A tenant's replica on one of its plans: what it is (ReplicaSpec as JSON), its replica points
-- as the host last reported them (JSON), the bytes it takes on the host, and its key when the
-- tenant lets the SP hold it (sealed with the gateways' secrets key; NULL once revoked).
CREATE TABLE replicas (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    plan_id INTEGER NOT NULL REFERENCES plans (id),
    spec TEXT NOT NULL,
    points TEXT NOT NULL DEFAULT '[]',
    stored INTEGER NOT NULL DEFAULT 0,
    key_sealed TEXT,
    -- What runs of it at failover (FailoverState as JSON), NULL when nothing does.
    running TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
