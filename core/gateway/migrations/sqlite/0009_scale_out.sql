-- Object-storage cloud repositories, managed repositories and stateless gateways (issue 26). Keep in step with
-- ../postgres/0009_scale_out.sql.
-- s3: the object store as JSON (endpoint, bucket, prefix, region), NULL for a folder.
-- secret: its credentials sealed (XChaCha20-Poly1305, hex) under the secrets key of the
-- gateways' configuration; the database alone never reveals them.
ALTER TABLE repos ADD COLUMN s3 TEXT;
ALTER TABLE repos ADD COLUMN secret TEXT;
-- What SP operators read instead of the name; the name stays the stable key.
ALTER TABLE repos ADD COLUMN title TEXT NOT NULL DEFAULT '';
-- 0: out of service (no new tenant quotas on it).
ALTER TABLE repos ADD COLUMN in_service INTEGER NOT NULL DEFAULT 1;
-- Most bytes of quota the repository may hand out in all, -1 for no limit.
ALTER TABLE repos ADD COLUMN capacity INTEGER NOT NULL DEFAULT -1;

-- Stateless gateways: what every gateway of an SP enforces together.
-- Failed logins per address and the bans they caused (a fixed window from window_ms).
CREATE TABLE bans (
    ip TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_ms INTEGER NOT NULL,
    banned_until_ms INTEGER NOT NULL
);
-- One token bucket per limited account: tokens may go negative (transfers wait off the debt).
CREATE TABLE bandwidth (
    owner_id INTEGER PRIMARY KEY,
    tokens INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- A gateway drained for maintenance takes no new sessions; its load, as it last reported.
ALTER TABLE gateways ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN connections INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN requests_per_min INTEGER NOT NULL DEFAULT 0;

-- A quota being switched to another repository: writes are answered "busy, retry" while 1.
ALTER TABLE quotas ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;
-- Moves of a tenant's quota, with its data, to another cloud repository, done online by one
-- gateway: copying (repeated while the tenant writes), switching (writes wait), releasing
-- (the old area removed), done or failed.
CREATE TABLE moves (
    id INTEGER PRIMARY KEY,
    quota_id INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    from_repo TEXT NOT NULL,
    to_repo TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    state TEXT NOT NULL,
    packs_total INTEGER NOT NULL DEFAULT 0,
    packs_done INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    started_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX moves_by_quota ON moves (quota_id);
