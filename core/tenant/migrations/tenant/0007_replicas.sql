-- Replicas this computer sends (issue 28): which provider, the replica as made there
-- (ReplicaSpec as JSON), where each of its disks is read on this computer (JSON), and how the
-- last cycle went. Its key is in the secrets, its blocks' fingerprints in a file of the data
-- home.
CREATE TABLE replicas (
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    sources TEXT NOT NULL,
    last_ms INTEGER,
    last_result TEXT,
    last_message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (provider, name)
);
