-- Backup jobs (their settings as JSON) and the sessions they ran (results, statistics,
-- per-file warnings).

CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    result TEXT NOT NULL,
    point TEXT,
    stats TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_by_job ON sessions (job, started_ms);
