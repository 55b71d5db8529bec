//! The tenant's scheduler, run by `cloudkeep daemon` (and by the console while it is open):
//! every pass runs each job whose schedule is due, one after another, so a job never runs
//! twice at once (a failed run is retried as the job says); runs missed while the computer was
//! off happen once at the next pass. A job's repository health check and its restore test run on
//! their own schedules; replicas' cycles on theirs (every N minutes).

use chrono::{DateTime, Local, TimeZone};

use super::TenantContext;
use super::TenantError;
use super::jobs::{Job, SessionRecord};
use super::runner;
use cloudkeep_api::replication::CycleReport;
use cloudkeep_model::schedule::{is_due, next_after};

/// How often a running daemon says so.
pub const DAEMON_BEAT: std::time::Duration = std::time::Duration::from_secs(20);

/// A daemon that has not said so for this long is not running.
pub const DAEMON_GONE_MS: i64 = 90_000;

/// Notes that `cloudkeep daemon` runs now (it beats every [`DAEMON_BEAT`], also during a
/// long run); the console then leaves scheduled runs to it, so none starts twice.
pub fn daemon_beat(home: &cloudkeep_model::paths::DataHome) -> std::io::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    cloudkeep_model::paths::write_private_file(&home.daemon_heartbeat(), now.to_string().as_bytes())
}

/// When the daemon of this data folder last said it runs, if ever.
pub fn daemon_seen_ms(home: &cloudkeep_model::paths::DataHome) -> Option<i64> {
    std::fs::read_to_string(home.daemon_heartbeat())
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// Whether the daemon of this data folder runs now (it beat lately, `now_ms`).
pub fn daemon_running(home: &cloudkeep_model::paths::DataHome, now_ms: i64) -> bool {
    daemon_seen_ms(home).is_some_and(|seen| now_ms - seen < DAEMON_GONE_MS)
}

fn local(ms: i64) -> Option<DateTime<Local>> {
    Local.timestamp_millis_opt(ms).single()
}

/// What is due: a job's backup, its repository health check or its restore test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Due {
    /// The job.
    pub job: String,
    /// `backup`, `health-check` or `restore-test`.
    pub kind: String,
}

/// The last start of a `kind` session of `job` in `sessions`.
fn last_of(sessions: &[SessionRecord], job: &str, kind: &str) -> Option<DateTime<Local>> {
    sessions
        .iter()
        .filter(|s| s.job == job && s.kind == kind)
        .map(|s| s.started_ms)
        .max()
        .and_then(local)
}

/// The next scheduled backup of `job` after its last one (or its creation): in the past when
/// it is due now (a missed run); `None` for a manual job.
pub fn next_run(job: &Job, sessions: &[SessionRecord]) -> Option<DateTime<Local>> {
    let since = last_of(sessions, &job.name, "backup").or_else(|| local(job.created_ms))?;
    next_after(&job.spec.schedule, &since)
}

/// The backups, health checks and restore tests due at `now`, given the jobs and their sessions.
pub fn due_at(jobs: &[Job], sessions: &[SessionRecord], now: DateTime<Local>) -> Vec<Due> {
    let mut due = Vec::new();
    for job in jobs {
        let Some(created) = local(job.created_ms) else {
            continue;
        };
        // A restore test needs a point to test: a job that never made one is not tested.
        let has_point = sessions
            .iter()
            .any(|s| s.job == job.name && s.kind == "backup" && s.point.is_some());
        for (kind, schedule) in [
            ("backup", &job.spec.schedule),
            ("health-check", &job.spec.health_check),
            ("restore-test", &job.spec.restore_test),
        ] {
            if kind == "restore-test" && !has_point {
                continue;
            }
            if is_due(schedule, last_of(sessions, &job.name, kind), created, &now) {
                due.push(Due {
                    job: job.name.clone(),
                    kind: kind.into(),
                });
            }
        }
    }
    due
}

/// Runs every job due at `now` once; returns the sessions they recorded.
pub fn run_due(
    ctx: &TenantContext,
    now: DateTime<Local>,
) -> Result<Vec<SessionRecord>, TenantError> {
    let state = ctx.state();
    let (jobs, sessions) = ctx.block_on(async {
        Ok::<_, TenantError>((state.jobs().await?, state.sessions(None).await?))
    })?;
    let mut ran = Vec::new();
    for due in due_at(&jobs, &sessions, now) {
        if due.kind == "backup" {
            tracing::info!(job = %due.job, "running scheduled job");
            let (session, _) = runner::run_job_scheduled(
                ctx,
                &due.job,
                runner::Watch::progress(&|_| {}),
                &cloudkeep_repo::engine::Cancel::default(),
            )?;
            ran.push(session);
        } else if due.kind == "restore-test" {
            tracing::info!(job = %due.job, "running the scheduled restore test");
            let (session, _) = super::restoretest::restore_test_job(
                ctx,
                &due.job,
                None,
                runner::Watch::progress(&|_| {}),
                &cloudkeep_repo::engine::Cancel::default(),
            )?;
            ran.push(session);
        } else {
            tracing::info!(job = %due.job, "running the scheduled health check");
            ran.push(runner::check_job(ctx, &due.job)?);
        }
    }
    Ok(ran)
}

/// A replica's name and how its scheduled cycle went.
pub type ReplicaRun = (String, Result<CycleReport, TenantError>);

/// Runs a cycle of every replica whose schedule is due at `now_ms`, one after another; each
/// replica's name and how its cycle went (a failed one is recorded and tried again at its
/// next time).
pub fn run_due_replicas(ctx: &TenantContext, now_ms: i64) -> Result<Vec<ReplicaRun>, TenantError> {
    let all = ctx.block_on(super::replicas::list(ctx.state()))?;
    let mut ran = Vec::new();
    for job in all.iter().filter(|j| j.is_due(now_ms)) {
        tracing::info!(replica = %job.spec.name, "running the scheduled replication cycle");
        let outcome = super::replicas::run_cycle(ctx, job, &|_, _| {});
        if let Err(e) = &outcome {
            tracing::warn!(replica = %job.spec.name, "scheduled replication cycle failed: {e}");
        }
        ran.push((job.spec.name.clone(), outcome));
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(restore_test: &str, created_ms: i64) -> Job {
        let spec = serde_json::from_value(serde_json::json!({
            "sources": ["/data"],
            "excludes": [],
            "target": {"kind": "folder", "path": "/repo"},
            "schedule": {"kind": "manual"},
            "retention": {"keep_last": 3, "keep_days": null, "weekly": 0, "monthly": 0, "yearly": 0},
            "encrypted": false,
            "compression": "default",
            "restore_test": cloudkeep_model::schedule::Schedule::parse(restore_test).unwrap(),
        }))
        .unwrap();
        Job {
            name: "docs".into(),
            spec,
            created_ms,
        }
    }

    fn session(kind: &str, started_ms: i64) -> SessionRecord {
        SessionRecord {
            id: 1,
            job: "docs".into(),
            kind: kind.into(),
            started_ms,
            finished_ms: started_ms,
            result: "success".into(),
            point: None,
            stats: serde_json::json!({}),
            warnings: serde_json::json!([]),
            message: String::new(),
            log: Vec::new(),
        }
    }

    /// A job's restore test runs on its own schedule once the job has a point, once when
    /// missed, not again until due.
    #[test]
    fn a_restore_test_is_due_on_its_own_schedule() {
        let now = Local::now();
        let hour = 3_600_000;
        let created = now.timestamp_millis() - 3 * hour;
        let jobs = [job("every:1h", created)];
        assert!(due_at(&jobs, &[], now).is_empty(), "no point to test yet");
        let mut backed_up = session("backup", now.timestamp_millis() - 2 * hour);
        backed_up.point = Some("ab".repeat(32));
        let due = due_at(&jobs, std::slice::from_ref(&backed_up), now);
        assert_eq!(
            due,
            [Due {
                job: "docs".into(),
                kind: "restore-test".into()
            }],
            "a manual backup is never due; the missed test once"
        );
        let tested = [
            backed_up.clone(),
            session("restore-test", now.timestamp_millis() - hour / 2),
        ];
        assert!(
            due_at(&jobs, &tested, now).is_empty(),
            "tested half an hour ago"
        );
        // Health checks do not count as tests.
        let other = [
            backed_up.clone(),
            session("health-check", now.timestamp_millis() - hour / 2),
        ];
        assert_eq!(due_at(&jobs, &other, now).len(), 1);
        assert!(due_at(&[job("manual", created)], &[backed_up], now).is_empty());
    }
}
