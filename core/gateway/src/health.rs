//! Reports of runs (`POST /v1/health`): after each backup and restore test the tenant side
//! says how it went — results, times, why a run looked like ransomware, never content — and
//! the gateway keeps each job's standing ([`crate::store::health`]) for the SP's tenant list
//! and the tenant's policy status, and tells the SP's notification channels what needs a
//! person (a failed run, a failed restore test, a suspicious run).
//!
//! Invariant: an account reports only for itself; text is bounded and rows per account are
//! capped, so a hostile tenant can neither fill the database nor speak for another account.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::policies::truncate;
use crate::session::{AppState, JsonBody, TenantSession};
use cloudkeep_api::health::{MAX_JOB_NAME, MAX_JOBS, MAX_MESSAGE, MAX_REASONS, RunReport};

/// The report routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new().route("/v1/health", post(report).get(own))
}

/// Checks and trims a report from an account.
pub(crate) fn checked(mut report: RunReport) -> Result<RunReport, ApiError> {
    if !matches!(report.kind.as_str(), "backup" | "restore-test") {
        return Err(ApiError::bad_request(
            "a run report's kind is backup or restore-test",
        ));
    }
    if !matches!(
        report.result.as_str(),
        "success" | "warning" | "failed" | "stopped"
    ) {
        return Err(ApiError::bad_request(
            "a run's result is success, warning, failed or stopped",
        ));
    }
    if report.job.trim().is_empty() || report.job.len() > MAX_JOB_NAME {
        return Err(ApiError::bad_request(format!(
            "a job's name is 1 to {MAX_JOB_NAME} bytes"
        )));
    }
    truncate(&mut report.message, MAX_MESSAGE);
    report.suspicious.truncate(MAX_REASONS.0);
    for reason in &mut report.suspicious {
        truncate(reason, MAX_REASONS.1);
    }
    // A clock far off (or a lie) cannot push a mark beyond a day ahead.
    let latest = cloudkeep_model::clock::now_ms() + 86_400_000;
    report.finished_ms = report.finished_ms.min(latest);
    Ok(report)
}

async fn report(
    State(state): AppState,
    session: TenantSession,
    req: JsonBody<RunReport>,
) -> Result<Json<()>, ApiError> {
    let report = checked(req.map(|Json(v)| v).map_err(from_rejection)?)?;
    if !state.db.report_run(session.tenant.id, &report).await? {
        return Err(ApiError::bad_request(format!(
            "this account already reports {MAX_JOBS} jobs; the gateway keeps no more"
        )));
    }
    crate::notify::run_reported(&state, (session.tenant.id, &session.tenant.login), &report).await;
    Ok(Json(()))
}

/// `GET /v1/health`: the standing of the account's own jobs.
async fn own(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<cloudkeep_api::health::JobHealth>>, ApiError> {
    Ok(Json(state.db.health_of(session.tenant.id).await?))
}
