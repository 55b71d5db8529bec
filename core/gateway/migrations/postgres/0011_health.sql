-- How each account's jobs stand (issue 27): their last backup, restore tests and any run that
-- looked like ransomware, as the tenant side reports them after each run. No content: job
-- names, results, times and reasons. Keep in step with ../sqlite/0011_health.sql.
CREATE TABLE job_health (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job TEXT NOT NULL,
    backup_ms BIGINT,
    backup_result TEXT,
    tested_ms BIGINT,
    test_result TEXT,
    test_message TEXT NOT NULL DEFAULT '',
    proven_ms BIGINT,
    proven_point_ms BIGINT,
    suspicious_ms BIGINT,
    suspicious TEXT NOT NULL DEFAULT '[]',
    -- When the SP's channels were last told of this job (a cap per account and hour).
    notified_ms BIGINT,
    PRIMARY KEY (tenant_id, job)
);
