//! How each account's jobs stand ([`cloudkeep_api::health`]): one row per account and job,
//! updated by the reports of its runs. A backup sets the last backup (and, when it looked like
//! ransomware, the suspicious mark); a restore test sets the newest test and, when it passed,
//! when the job was last proven restorable. Marks are never cleared by later reports: a
//! suspicious run stays shown for its days, a proof stays until a newer one.
//!
//! Invariant: a row belongs to the account that reported it; an account keeps at most
//! [`MAX_JOBS`] rows, so a hostile tenant cannot fill the SP's database.

use sqlx::Row;

use super::{Db, DbError};
use cloudkeep_api::health::{JobHealth, MAX_JOBS, RunReport};

const COLUMNS: &str = "t.name, t.parent_id, h.job, h.backup_ms, h.backup_result, h.tested_ms, \
     h.test_result, h.test_message, h.proven_ms, h.proven_point_ms, h.suspicious_ms, h.suspicious";

/// Whether the report was kept: `false` when the account has [`MAX_JOBS`] other jobs.
pub type Kept = bool;

impl Db {
    /// Applies `report` (already checked and trimmed) to `tenant`'s row of its job.
    ///
    /// One statement at a time, each its own transaction, the first a write: a transaction
    /// that read before it wrote could not be retried when another connection wrote in
    /// between (SQLite's WAL answers such an upgrade with an immediate "busy"). Each update
    /// only ever moves its mark forward, so their order does not matter.
    pub async fn report_run(&self, tenant: i64, report: &RunReport) -> Result<Kept, DbError> {
        sqlx::query(
            "INSERT INTO job_health (tenant_id, job) SELECT $1, $2 \
             WHERE (SELECT COUNT(*) FROM job_health WHERE tenant_id = $1) < $3 \
             ON CONFLICT (tenant_id, job) DO NOTHING",
        )
        .bind(tenant)
        .bind(&report.job)
        .bind(MAX_JOBS)
        .execute(self.pool())
        .await?;
        let kept: i64 =
            sqlx::query("SELECT COUNT(*) FROM job_health WHERE tenant_id = $1 AND job = $2")
                .bind(tenant)
                .bind(&report.job)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?;
        if kept == 0 {
            return Ok(false);
        }
        let at = report.finished_ms;
        if report.kind == "restore-test" {
            sqlx::query(
                "UPDATE job_health SET tested_ms = $3, test_result = $4, test_message = $5 \
                 WHERE tenant_id = $1 AND job = $2 AND (tested_ms IS NULL OR tested_ms <= $3)",
            )
            .bind(tenant)
            .bind(&report.job)
            .bind(at)
            .bind(&report.result)
            .bind(&report.message)
            .execute(self.pool())
            .await?;
            if report.result == "success" {
                sqlx::query(
                    "UPDATE job_health SET proven_ms = $3, proven_point_ms = $4 \
                     WHERE tenant_id = $1 AND job = $2 AND (proven_ms IS NULL OR proven_ms <= $3)",
                )
                .bind(tenant)
                .bind(&report.job)
                .bind(at)
                .bind(report.point_time_ms)
                .execute(self.pool())
                .await?;
            }
        } else {
            sqlx::query(
                "UPDATE job_health SET backup_ms = $3, backup_result = $4 \
                 WHERE tenant_id = $1 AND job = $2 AND (backup_ms IS NULL OR backup_ms <= $3)",
            )
            .bind(tenant)
            .bind(&report.job)
            .bind(at)
            .bind(&report.result)
            .execute(self.pool())
            .await?;
            if !report.suspicious.is_empty() {
                sqlx::query(
                    "UPDATE job_health SET suspicious_ms = $3, suspicious = $4 \
                     WHERE tenant_id = $1 AND job = $2 AND (suspicious_ms IS NULL OR suspicious_ms <= $3)",
                )
                .bind(tenant)
                .bind(&report.job)
                .bind(at)
                .bind(serde_json::to_string(&report.suspicious).unwrap_or_else(|_| "[]".into()))
                .execute(self.pool())
                .await?;
            }
        }
        Ok(true)
    }

    /// Whether the SP's channels may be told of `job` of `tenant` now (`now_ms`), and notes it
    /// when they may: at most `per_hour` notifications per account and hour, so a tenant
    /// reporting failures in a loop cannot flood the SP's mailbox. One statement.
    pub async fn may_notify(
        &self,
        tenant: i64,
        job: &str,
        now_ms: i64,
        per_hour: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE job_health SET notified_ms = $3 WHERE tenant_id = $1 AND job = $2 \
             AND (SELECT COUNT(*) FROM job_health WHERE tenant_id = $1 AND notified_ms > $4) < $5",
        )
        .bind(tenant)
        .bind(job)
        .bind(now_ms)
        .bind(now_ms - 3_600_000)
        .bind(per_hour)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The rows of `tenant` alone.
    pub async fn health_of(&self, tenant: i64) -> Result<Vec<JobHealth>, DbError> {
        self.health_where("h.tenant_id = $1", tenant).await
    }

    /// The rows of every account, each under its login.
    pub async fn all_health(&self) -> Result<Vec<JobHealth>, DbError> {
        self.health_where("$1 = $1", 0).await
    }

    async fn health_where(&self, filter: &str, value: i64) -> Result<Vec<JobHealth>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, p.name FROM job_health h JOIN tenants t ON t.id = h.tenant_id \
             LEFT JOIN tenants p ON p.id = t.parent_id WHERE {filter} ORDER BY h.tenant_id, h.job"
        ))
        .bind(value)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0)?;
                let parent: Option<String> = r.try_get(12)?;
                Ok(JobHealth {
                    login: match parent {
                        Some(p) => format!("{p}/{name}"),
                        None => name,
                    },
                    job: r.try_get(2)?,
                    backup_ms: r.try_get(3)?,
                    backup_result: r.try_get(4)?,
                    tested_ms: r.try_get(5)?,
                    test_result: r.try_get(6)?,
                    test_message: r.try_get(7)?,
                    proven_ms: r.try_get(8)?,
                    proven_point_ms: r.try_get(9)?,
                    suspicious_ms: r.try_get(10)?,
                    suspicious: serde_json::from_str(&r.try_get::<String, _>(11)?)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}
