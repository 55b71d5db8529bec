-- Quota accounting that can be neither dodged nor leaked. Keep in step with
-- ../sqlite/0006_accounting.sql.
--
-- carved_bytes: what a tenant's quota has given its subtenants as fixed quotas; a tenant's
-- own writes must fit in quota_bytes - carved_bytes. A subtenant that shares its tenant's
-- quota (quota_bytes -1) is charged on both rows, so the tenant's used_bytes includes it.
ALTER TABLE quotas ADD COLUMN carved_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE quotas SET carved_bytes = (
    SELECT COALESCE(SUM(c.quota_bytes), 0) FROM quotas c JOIN tenants t ON t.id = c.tenant_id
    WHERE t.parent_id = quotas.tenant_id AND c.repo_id = quotas.repo_id AND c.quota_bytes > 0
);

UPDATE quotas SET
    used_bytes = used_bytes + (
        SELECT COALESCE(SUM(c.used_bytes), 0) FROM quotas c JOIN tenants t ON t.id = c.tenant_id
        WHERE t.parent_id = quotas.tenant_id AND c.repo_id = quotas.repo_id AND c.quota_bytes < 0
    ),
    recycle_bytes = recycle_bytes + (
        SELECT COALESCE(SUM(c.recycle_bytes), 0) FROM quotas c JOIN tenants t ON t.id = c.tenant_id
        WHERE t.parent_id = quotas.tenant_id AND c.repo_id = quotas.repo_id AND c.quota_bytes < 0
    );

-- Bytes reserved for a write in flight (a pack upload, a small object, a restore point),
-- so that a gateway killed mid-write gives them back when it starts again (or the SP's
-- storage check does, for a gateway that never comes back) instead of leaking them.
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    quota_id BIGINT NOT NULL REFERENCES quotas (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    gateway_id TEXT NOT NULL,
    started_ms BIGINT NOT NULL
);

CREATE INDEX reservations_by_quota ON reservations (quota_id);
CREATE INDEX reservations_by_gateway ON reservations (gateway_id);

-- A pack whose stored bytes no longer match its id (found by the SP's deep check): kept and
-- readable, so the tenant can salvage its intact blobs, but its chunks count as absent.
ALTER TABLE packs ADD COLUMN damaged_ms BIGINT;

-- The task a lock object was written under: when that task ends or expires (its process is
-- gone, on whichever computer), the lock is stale and the gateway removes it.
ALTER TABLE objects ADD COLUMN task_id TEXT;
