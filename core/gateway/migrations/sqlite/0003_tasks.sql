-- Running tasks (backups, restores) per account, for the max-concurrent-tasks limit. A task
-- that stops beating its heartbeat expires. Keep in step with ../postgres/0003_tasks.sql.

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

CREATE INDEX tasks_by_tenant ON tasks (tenant_id);
