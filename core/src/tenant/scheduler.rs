//! The tenant's scheduler, run by `cloudkeep daemon` (and by the console while it is open):
//! every pass runs each job whose schedule is due, one after another, so a job never runs
//! twice at once (a failed run is retried as the job says); runs missed while the computer was
//! off happen once at the next pass. A job's repository health check runs on its own schedule.

use chrono::{DateTime, Local, TimeZone};

use super::TenantError;
use super::jobs::SessionRecord;
use super::runner;
use super::schedule::is_due;
use super::state::TenantState;
use crate::paths::DataHome;

fn local(ms: i64) -> Option<DateTime<Local>> {
    Local.timestamp_millis_opt(ms).single()
}

/// Runs every job due at `now` once; returns the sessions they recorded.
pub fn run_due(home: &DataHome, now: DateTime<Local>) -> Result<Vec<SessionRecord>, TenantError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TenantError::Io(e.to_string()))?;
    let (jobs, sessions) = rt.block_on(async {
        let state = TenantState::open(home).await?;
        Ok::<_, TenantError>((state.jobs().await?, state.sessions(None).await?))
    })?;
    drop(rt);
    let mut ran = Vec::new();
    for job in jobs {
        let last = sessions
            .iter()
            .filter(|s| s.job == job.name && s.kind == "backup")
            .map(|s| s.started_ms)
            .max()
            .and_then(local);
        let Some(created) = local(job.created_ms) else {
            continue;
        };
        if is_due(&job.spec.schedule, last, created, &now) {
            tracing::info!(job = %job.name, "running scheduled job");
            let (session, _) = runner::run_job_scheduled(home, &job.name, &|_| {})?;
            ran.push(session);
        }
        let last_check = sessions
            .iter()
            .filter(|s| s.job == job.name && s.kind == "health-check")
            .map(|s| s.started_ms)
            .max()
            .and_then(local);
        if is_due(&job.spec.health_check, last_check, created, &now) {
            tracing::info!(job = %job.name, "running the scheduled health check");
            ran.push(runner::check_job(home, &job.name)?);
        }
    }
    Ok(ran)
}
