-- Cloudkeep gateway metadata, SQLite. Times are milliseconds since the epoch (INTEGER);
-- flags are 0/1 INTEGER; sizes are bytes. Keep in step with ../postgres/0001_gateway.sql.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE repos (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- parent_id 0: a tenant; otherwise the tenant a subtenant belongs to.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    lease_until_ms INTEGER,
    max_tasks INTEGER NOT NULL DEFAULT 0,
    bandwidth_bps INTEGER NOT NULL DEFAULT 0,
    keep_deleted_days INTEGER NOT NULL DEFAULT 0,
    managed INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    last_activity_ms INTEGER,
    UNIQUE (parent_id, name)
);

-- quota_bytes -1: unlimited (a subtenant sharing its tenant's quota).
CREATE TABLE quotas (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repo_id INTEGER NOT NULL REFERENCES repos (id),
    friendly_name TEXT NOT NULL,
    quota_bytes INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    recycle_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, repo_id),
    UNIQUE (tenant_id, friendly_name)
);

-- realm 'admin' (subject = admins.id) or 'tenant' (subject = tenants.id).
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    subject_id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

CREATE TABLE gateways (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_time ON audit (time_ms);
