-- What each quota's area of a cloud repository holds, in clear: packs and the chunk ids they
-- carry (as the tenant declared them), small objects (keyring, index files, chunk sets) and
-- restore points (deleted_ms set: in the recycle bin). Keep in step with ../postgres/0002_data.sql.

CREATE TABLE packs (
    quota_id INTEGER NOT NULL REFERENCES quotas (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (quota_id, id)
);

CREATE TABLE chunks (
    quota_id INTEGER NOT NULL REFERENCES quotas (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    pack TEXT NOT NULL,
    PRIMARY KEY (quota_id, id, pack)
);

CREATE INDEX chunks_by_pack ON chunks (quota_id, pack);

CREATE TABLE objects (
    quota_id INTEGER NOT NULL REFERENCES quotas (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (quota_id, kind, name)
);

CREATE TABLE points (
    quota_id INTEGER NOT NULL REFERENCES quotas (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    set_name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    deleted_ms INTEGER,
    PRIMARY KEY (quota_id, name)
);
