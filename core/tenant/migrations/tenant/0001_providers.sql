-- The tenant's own state (SQLite in the user's data folder): service providers with their
-- pinned certificates and gateway lists, and what the last scan of their repositories found.

CREATE TABLE providers (
    name TEXT PRIMARY KEY,
    addresses TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    user TEXT NOT NULL,
    added_ms INTEGER NOT NULL,
    repos TEXT NOT NULL DEFAULT '[]',
    scanned_ms INTEGER
);
