//! How a tenant's backups stand, as the gateway keeps it for the tenant and its service
//! provider: after each backup and restore test the tenant side reports the result of the run
//! (`POST /v1/health`) — never content: the job's name, results, times, why a run looked like
//! ransomware. The SP reads it per tenant (`TenantView::health`), a tenant for its policies'
//! computers (`ComputerStatus::health`).

use serde::{Deserialize, Serialize};

/// `POST /v1/health`: what one run of a job said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The job (or the computer's job, for an agent).
    pub job: String,
    /// `backup` or `restore-test`.
    pub kind: String,
    /// `success`, `warning`, `failed` or `stopped`.
    pub result: String,
    /// When it ended, ms since the epoch.
    pub finished_ms: i64,
    /// A restore test: the time of the point it tested.
    #[serde(default)]
    pub point_time_ms: Option<i64>,
    /// A backup that looked like ransomware: why (empty: an ordinary run).
    #[serde(default)]
    pub suspicious: Vec<String>,
    /// A run that did not succeed: what a person reads first.
    #[serde(default)]
    pub message: String,
}

/// Most jobs one account has standing kept for; a report for another job is refused.
pub const MAX_JOBS: i64 = 500;
/// Longest job name kept.
pub const MAX_JOB_NAME: usize = 255;
/// Longest message kept.
pub const MAX_MESSAGE: usize = 1024;
/// Most reasons kept, and the longest of each.
pub const MAX_REASONS: (usize, usize) = (10, 300);

/// A job's standing at the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHealth {
    /// The account that reported it (`tenant`, `tenant/subtenant`).
    pub login: String,
    /// The job.
    pub job: String,
    /// Its last backup: when it ended.
    pub backup_ms: Option<i64>,
    /// And how.
    pub backup_result: Option<String>,
    /// Its newest restore test: when it ended.
    pub tested_ms: Option<i64>,
    /// And how (`success`, `warning`, `failed`).
    pub test_result: Option<String>,
    /// The newest test's message (which file failed).
    pub test_message: String,
    /// When a restore test last proved it restorable.
    pub proven_ms: Option<i64>,
    /// The time of the point that test proved.
    pub proven_point_ms: Option<i64>,
    /// Its newest run that looked like ransomware: when it ended.
    pub suspicious_ms: Option<i64>,
    /// And why.
    pub suspicious: Vec<String>,
}

/// Days a suspicious run stays shown.
pub const SUSPICIOUS_SHOWN_DAYS: i64 = 30;

/// What a tenant's jobs (its own and its subtenants') say together, for a list of tenants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Jobs reported.
    pub jobs: usize,
    /// The oldest of their last proofs: every job was proven restorable since then (`None`
    /// when one never was).
    pub proven_since_ms: Option<i64>,
    /// Jobs whose newest restore test failed.
    pub failed_tests: usize,
    /// Jobs with a run that looked like ransomware in the last [`SUSPICIOUS_SHOWN_DAYS`].
    pub suspicious: usize,
}

impl Standing {
    /// Sums up `rows` at `now_ms`.
    pub fn of(rows: &[JobHealth], now_ms: i64) -> Self {
        let recent = now_ms - SUSPICIOUS_SHOWN_DAYS * 86_400_000;
        Self {
            jobs: rows.len(),
            proven_since_ms: rows
                .iter()
                .map(|r| r.proven_ms)
                .try_fold(i64::MAX, |oldest, p| p.map(|p| oldest.min(p)))
                .filter(|_| !rows.is_empty()),
            failed_tests: rows
                .iter()
                .filter(|r| r.test_result.as_deref() == Some("failed"))
                .count(),
            suspicious: rows
                .iter()
                .filter(|r| r.suspicious_ms.is_some_and(|at| at >= recent))
                .count(),
        }
    }

    /// One phrase for people: `proven since 2026-12-01 04:00`, `restore test FAILED (1 job)`
    /// (a failed test, never "proven", until a test passes again).
    pub fn text(&self, date: impl Fn(i64) -> String) -> String {
        let jobs = |n: usize| {
            if n == 1 {
                "1 job".to_owned()
            } else {
                format!("{n} jobs")
            }
        };
        let mut parts = Vec::new();
        if self.suspicious > 0 {
            parts.push(format!("SUSPICIOUS runs ({})", jobs(self.suspicious)));
        }
        if self.failed_tests > 0 {
            parts.push(format!("restore test FAILED ({})", jobs(self.failed_tests)));
        } else {
            parts.push(match (self.jobs, self.proven_since_ms) {
                (0, _) => "nothing reported".to_owned(),
                (_, Some(ms)) => format!("proven since {}", date(ms)),
                (_, None) => "not all proven".to_owned(),
            });
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_stands_as_its_least_proven_job() {
        let day = 86_400_000;
        let now = 100 * day;
        let row = |proven: Option<i64>, test: &str, suspicious: Option<i64>| JobHealth {
            proven_ms: proven,
            test_result: Some(test.into()),
            suspicious_ms: suspicious,
            ..JobHealth::default()
        };
        let s = Standing::of(
            &[
                row(Some(90 * day), "success", None),
                row(Some(95 * day), "success", Some(60 * day)),
            ],
            now,
        );
        assert_eq!(s.proven_since_ms, Some(90 * day));
        assert_eq!(
            (s.failed_tests, s.suspicious),
            (0, 0),
            "a suspicious run long ago is not shown"
        );
        let s = Standing::of(
            &[
                row(Some(90 * day), "failed", Some(99 * day)),
                row(None, "success", None),
            ],
            now,
        );
        assert_eq!(s.proven_since_ms, None, "one job never proven");
        assert_eq!((s.failed_tests, s.suspicious), (1, 1));
        assert_eq!(
            s.text(|ms| ms.to_string()),
            "SUSPICIOUS runs (1 job); restore test FAILED (1 job)"
        );
        assert_eq!(
            Standing::of(&[], now).text(|ms| ms.to_string()),
            "nothing reported"
        );
    }
}
