//! Per-tenant limits enforced by the gateways together: the bandwidth limit (one token bucket
//! per account in the shared database, for all of its transfers on every gateway) and the max-concurrent-tasks limit (tasks
//! started, renewed and ended through `/v1/tasks`; writes need a live task).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, post};
use axum::{Json, Router};

use super::error::ApiError;
use crate::GatewayState;
use crate::session::TenantSession;
use cloudkeep_api::{ErrorCode, NewTask, TASK_HEADER, TASK_KINDS, TaskInfo};

/// How long a task lives without a heartbeat.
pub const TASK_TTL: Duration = Duration::from_secs(120);

/// An account's bandwidth limit on this gateway: bytes are taken from the account's one
/// bucket in the shared database ([`crate::store::Db::take_bandwidth`]) a lease at a time (a
/// twentieth of a second's worth), so that every gateway together holds the rate; bursts of
/// a tenth of a second.
#[derive(Debug)]
pub struct Bucket {
    db: crate::store::Db,
    owner: i64,
    rate: i64,
    burst: i64,
    lease: i64,
    /// Tokens leased and not used yet.
    held: tokio::sync::Mutex<i64>,
}

impl Bucket {
    /// The bucket of account `owner`, limited to `rate` bytes per second.
    pub fn new(db: crate::store::Db, owner: i64, rate: u64) -> Self {
        let rate = i64::try_from(rate.max(1)).unwrap_or(i64::MAX);
        Self {
            db,
            owner,
            rate,
            burst: (rate / 10).max(64 << 10),
            lease: (rate / 20).max(16 << 10),
            held: tokio::sync::Mutex::new(0),
        }
    }

    /// Takes `n` bytes' worth of tokens, waiting as long as the rate requires.
    pub async fn take(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        // Held across the wait: this gateway's transfers of the account queue in turn.
        let mut held = self.held.lock().await;
        if *held >= n {
            *held -= n;
            return;
        }
        let want = (n - *held).max(self.lease);
        let wait = match self
            .db
            .take_bandwidth(self.owner, self.rate, self.burst, want)
            .await
        {
            Ok(left) => {
                *held += want - n;
                if left < 0 {
                    -left as f64 / self.rate as f64
                } else {
                    0.0
                }
            }
            Err(e) => {
                // Without the database the limit is kept here alone, never dropped.
                tracing::warn!("bandwidth bucket: {e}; limiting this gateway alone");
                *held = 0;
                n as f64 / self.rate as f64
            }
        };
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait.min(60.0))).await;
        }
    }
}

/// The buckets of the tenants that have a limit.
#[derive(Debug, Default)]
pub struct Buckets(tokio::sync::Mutex<HashMap<(i64, i64), Arc<Bucket>>>);

impl GatewayState {
    /// The bucket that limits the session's transfers (its account's limit, else its tenant's),
    /// if any.
    pub async fn bucket_for(&self, session: &TenantSession) -> Option<Arc<Bucket>> {
        let tenant = &session.tenant;
        let (owner, rate) = match &session.parent {
            _ if tenant.settings.bandwidth_bps > 0 => (tenant.id, tenant.settings.bandwidth_bps),
            Some(p) => (p.id, p.settings.bandwidth_bps),
            None => (tenant.id, 0),
        };
        if rate <= 0 {
            return None;
        }
        let mut buckets = self.buckets.0.lock().await;
        Some(
            buckets
                .entry((owner, rate))
                .or_insert_with(|| Arc::new(Bucket::new(self.db.clone(), owner, rate as u64)))
                .clone(),
        )
    }
}

/// The task routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/tasks", post(start))
        .route("/v1/tasks/{id}/renew", post(renew))
        .route("/v1/tasks/{id}", delete(end))
}

async fn start(
    State(state): State<Arc<GatewayState>>,
    session: TenantSession,
    req: crate::session::JsonBody<NewTask>,
) -> Result<Json<TaskInfo>, ApiError> {
    let req = req.map(|Json(v)| v).map_err(super::error::from_rejection)?;
    if !TASK_KINDS.contains(&req.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "a task is one of {}, not \"{}\"",
            TASK_KINDS.join(", "),
            req.kind.chars().take(40).collect::<String>()
        )));
    }
    let tenant = &session.tenant;
    let mut limits = vec![(tenant.id, tenant.login.clone(), tenant.settings.max_tasks)];
    if let Some(parent) = tenant.parent {
        let p = state.db.tenant(parent).await?;
        limits.push((p.id, p.login, p.settings.max_tasks));
    }
    let mut raw = [0u8; 16];
    cloudkeep_repo::crypto::random_bytes(&mut raw).map_err(ApiError::internal)?;
    let id = hex::encode(raw);
    let ttl = TASK_TTL.as_millis() as i64;
    match state
        .db
        .start_task(&id, tenant.id, tenant.parent, &req.kind, ttl, &limits)
        .await?
    {
        Ok(()) => Ok(Json(TaskInfo {
            id,
            expires_ms: crate::store::now_ms() + ttl,
        })),
        Err(limit) => Err(ApiError::new(
            ErrorCode::TooManyTasks,
            format!(
                "\"{}\" already runs {} tasks, its limit; this one can start when one of them ends (retry later)",
                limit.account, limit.max
            ),
        )),
    }
}

async fn renew(
    State(state): State<Arc<GatewayState>>,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<TaskInfo>, ApiError> {
    let ttl = TASK_TTL.as_millis() as i64;
    if !state.db.renew_task(&id, session.tenant.id, ttl).await? {
        return Err(ApiError::not_found(
            "the task has ended or expired; start a new one",
        ));
    }
    Ok(Json(TaskInfo {
        id,
        expires_ms: crate::store::now_ms() + ttl,
    }))
}

async fn end(
    State(state): State<Arc<GatewayState>>,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<()>, ApiError> {
    state.db.end_task(&id, session.tenant.id).await?;
    Ok(Json(()))
}

/// Requires a live task for a write (renewing it).
pub async fn require_task(
    state: &GatewayState,
    session: &TenantSession,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let id = headers
        .get(TASK_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request(format!("writes belong to a task: start one with POST /v1/tasks and send its id in {TASK_HEADER}")))?;
    if !state
        .db
        .renew_task(id, session.tenant.id, TASK_TTL.as_millis() as i64)
        .await?
    {
        return Err(ApiError::bad_request(
            "the task has ended or expired; start a new one",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bucket_holds_the_rate() {
        let tmp = tempfile::tempdir().unwrap();
        let db = crate::store::Db::open(&tmp.path().join("meta.db").display().to_string())
            .await
            .unwrap();
        let bucket = Bucket::new(db, 1, 1 << 20);
        let started = std::time::Instant::now();
        for _ in 0..16 {
            bucket.take(64 * 1024).await;
        }
        // 1 MiB at 1 MiB/s after a burst of 100 KiB: at least 0.85 s.
        assert!(
            started.elapsed() >= Duration::from_millis(850),
            "{:?}",
            started.elapsed()
        );
    }
}
