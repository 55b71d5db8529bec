//! The recycle bin (insider protection): restore points a tenant deleted stay, invisible to
//! it and not counted in its quota, for its `keep_deleted_days`; the SP can list them, give
//! one back to the tenant, or purge it, and the gateway purges expired ones by itself.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::AdminSession;
use super::error::ApiError;
use crate::GatewayState;
use crate::store::now_ms;
use cloudkeep_api::{Quota, RecycledPoint, RecycledRef};
use cloudkeep_repo::backend::MetaKind;

const DAY_MS: i64 = 86_400_000;

/// The recycle-bin routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/recycle-bin", get(list))
        .route("/v1/admin/recycle-bin/restore", post(restore))
        .route("/v1/admin/recycle-bin/purge", post(purge))
}

/// Every recycled point with its account, repository and purge date.
pub async fn recycled(state: &GatewayState) -> Result<Vec<(Quota, i64, RecycledPoint)>, ApiError> {
    let mut quotas = std::collections::HashMap::new();
    for tenant in state.db.tenants().await? {
        let keep = crate::session::account_keep_days(state, &tenant).await?;
        for q in state.db.quotas_of(tenant.id).await? {
            quotas.insert(q.id, (q, tenant.login.clone(), keep));
        }
    }
    let mut out = Vec::new();
    for (quota_id, point) in state.db.recycle_bin().await? {
        let Some((quota, login, keep)) = quotas.get(&quota_id) else {
            continue;
        };
        let deleted = point.deleted_ms.unwrap_or_default();
        out.push((
            quota.clone(),
            point.bytes,
            RecycledPoint {
                tenant: login.clone(),
                repo: quota.friendly_name.clone(),
                point: point.name,
                time_ns: point.time_ns,
                deleted_ms: deleted,
                purge_after_ms: deleted + keep * DAY_MS,
            },
        ));
    }
    Ok(out)
}

async fn find(state: &GatewayState, r: &RecycledRef) -> Result<(Quota, i64), ApiError> {
    recycled(state)
        .await?
        .into_iter()
        .find(|(_, _, p)| p.tenant == r.tenant && p.repo == r.repo && p.point == r.point)
        .map(|(q, bytes, _)| (q, bytes))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "restore point {} of {} is not in the recycle bin",
                r.point, r.tenant
            ))
        })
}

/// Removes a recycled point for good: its row and its recycle-bin bytes, then its file (a
/// crash in between leaves a file no row names, which the storage check removes — never a
/// listed point without its file).
pub async fn purge_point(
    state: &GatewayState,
    quota: &Quota,
    point: &str,
    bytes: i64,
) -> Result<(), ApiError> {
    let store = state.store_for(quota).await?;
    state.db.purge_point(quota.id, point).await?;
    state.db.drop_recycled(quota.id, bytes).await?;
    let name = point.to_owned();
    tokio::task::spawn_blocking(move || store.delete_meta(MetaKind::Point, &name))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(())
}

/// Purges every recycled point whose protection has run out; returns how many.
pub async fn purge_expired(state: &GatewayState) -> Result<usize, ApiError> {
    let now = now_ms();
    let mut purged = 0;
    for (quota, bytes, p) in recycled(state).await? {
        if p.purge_after_ms <= now {
            purge_point(state, &quota, &p.point, bytes).await?;
            state
                .db
                .audit("gateway", "recycle.expire", &p.tenant, &p.point)
                .await?;
            purged += 1;
        }
    }
    Ok(purged)
}

async fn list(
    State(state): State<Arc<GatewayState>>,
    _admin: AdminSession,
) -> Result<Json<Vec<RecycledPoint>>, ApiError> {
    Ok(Json(
        recycled(&state)
            .await?
            .into_iter()
            .map(|(_, _, p)| p)
            .collect(),
    ))
}

async fn restore(
    State(state): State<Arc<GatewayState>>,
    admin: AdminSession,
    r: crate::session::JsonBody<RecycledRef>,
) -> Result<Json<()>, ApiError> {
    let r = r.map(|Json(v)| v).map_err(super::error::from_rejection)?;
    let (quota, bytes) = find(&state, &r).await?;
    state.db.restore_point(quota.id, &r.point).await?;
    state.db.shift_to_recycle(quota.id, -bytes).await?;
    state
        .db
        .audit(&admin.name, "recycle.restore", &r.tenant, &r.point)
        .await?;
    Ok(Json(()))
}

async fn purge(
    State(state): State<Arc<GatewayState>>,
    admin: AdminSession,
    r: crate::session::JsonBody<RecycledRef>,
) -> Result<Json<()>, ApiError> {
    let r = r.map(|Json(v)| v).map_err(super::error::from_rejection)?;
    let (quota, bytes) = find(&state, &r).await?;
    purge_point(&state, &quota, &r.point, bytes).await?;
    state
        .db
        .audit(&admin.name, "recycle.purge", &r.tenant, &r.point)
        .await?;
    Ok(Json(()))
}
