-- How each account's jobs stand (issue 27): their last backup, restore tests and any run that
-- looked like ransomware, as the tenant side reports them after each run. No content: job
-- names, results, times and reasons. Keep in step with ../postgres/0011_health.sql.
CREATE TABLE job_health (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job TEXT NOT NULL,
    backup_ms INTEGER,
    backup_result TEXT,
    tested_ms INTEGER,
    test_result TEXT,
    test_message TEXT NOT NULL DEFAULT '',
    proven_ms INTEGER,
    proven_point_ms INTEGER,
    suspicious_ms INTEGER,
    suspicious TEXT NOT NULL DEFAULT '[]',
    -- When the SP's channels were last told of this job (a cap per account and hour).
    notified_ms INTEGER,
    PRIMARY KEY (tenant_id, job)
);
