//! Moving a tenant's quota, with its data, to another cloud repository, online
//! (`/v1/admin/moves`): the gateway that is asked copies every pack (live, retired and
//! damaged ones) and object of the quota's area into its area on the new repository, each
//! pack verified against its id once written, pass after pass while the tenant keeps
//! backing up; then freezes the quota's writes (they are answered "busy" and clients send
//! them again), waits for writes in flight, copies what is left, switches the quota to the
//! new repository in one statement (which ends the freeze) and, after a grace period for
//! reads in flight, removes the old copy. Progress is in the database for every console.
//!
//! Invariant: until the switch the old area is complete and in use; after it the new one
//! is complete (verified) and in use; a failure before the switch unfreezes the quota and
//! leaves it where it was.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::auth::AdminSession;
use super::error::ApiError;
use super::session::{JsonBody, blocking};
use crate::GatewayState;
use crate::storage::Area;
use cloudkeep_api::{CloudRepo, ErrorCode, MoveInfo, MoveRequest, Quota};
use cloudkeep_repo::backend::{MetaKind, StoreError};
use cloudkeep_repo::pack::PackId;

/// A copy pass that copied at most this many packs is the last before the switch.
const SETTLED: usize = 4;
/// Copy passes before the switch at most (a tenant writing faster than the copy is frozen
/// for the rest).
const MAX_PASSES: usize = 6;
/// How long the switch waits for writes admitted before the freeze to end.
const FREEZE_WAIT: Duration = Duration::from_secs(300);
/// How long the old copy stays after the switch, for reads that began before it.
pub const RELEASE_AFTER: Duration = Duration::from_secs(10);

/// The move routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/moves", get(list).post(start))
        .route("/v1/admin/moves/{id}", get(one))
}

async fn list(
    State(state): State<Arc<GatewayState>>,
    _admin: AdminSession,
) -> Result<Json<Vec<MoveInfo>>, ApiError> {
    Ok(Json(state.db.moves().await?))
}

async fn one(
    State(state): State<Arc<GatewayState>>,
    _admin: AdminSession,
    Path(id): Path<i64>,
) -> Result<Json<MoveInfo>, ApiError> {
    Ok(Json(state.db.move_info(id).await?))
}

/// `POST /v1/admin/moves`: starts a move (answers at once with its row; it runs on).
async fn start(
    State(state): State<Arc<GatewayState>>,
    admin: AdminSession,
    req: JsonBody<MoveRequest>,
) -> Result<Json<MoveInfo>, ApiError> {
    let req = req.map(|Json(v)| v).map_err(super::error::from_rejection)?;
    let (tenant, _) = state
        .db
        .tenant_by_login(&req.tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no tenant \"{}\"", req.tenant)))?;
    let quotas = state.db.quotas_of(tenant.id).await?;
    let quota = quotas
        .iter()
        .find(|q| q.repo_name == req.from)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "\"{}\" has no quota on cloud repository \"{}\"",
                req.tenant, req.from
            ))
        })?;
    if req.from == req.to {
        return Err(ApiError::bad_request(
            "the quota is on that repository already",
        ));
    }
    if quotas.iter().any(|q| q.repo_name == req.to) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "\"{}\" already has a quota on \"{}\": a tenant has one quota per repository",
                req.tenant, req.to
            ),
        ));
    }
    let to = state.db.repo_by_name(&req.to).await?;
    // The same rule as a new quota there: in service, within its capacity.
    super::repos::check_placement(
        &state,
        &cloudkeep_api::QuotaSpec {
            repo: to.name.clone(),
            friendly_name: Some(quota.friendly_name.clone()),
            bytes: quota.quota_bytes,
        },
        None,
    )
    .await?;
    let id = state
        .db
        .start_move(quota.id, &req.tenant, (&req.from, &req.to), &state.id)
        .await?;
    state
        .db
        .audit(
            &admin.name,
            "quota.move",
            &req.tenant,
            &format!("{} -> {}", req.from, req.to),
        )
        .await?;
    let mover = state.clone();
    tokio::spawn(async move {
        if let Err(e) = drive(&mover, id, &quota, &to).await {
            tracing::warn!(id, "moving a quota failed: {e}");
            let _ = mover.db.set_frozen(quota.id, false).await;
            let _ = mover.db.move_state(id, "failed", &e.message).await;
        }
    });
    Ok(Json(state.db.move_info(id).await?))
}

/// What a copy pass did.
#[derive(Debug, Default, Clone, Copy)]
struct Copied {
    packs: usize,
}

/// The move, start to end.
async fn drive(
    state: &Arc<GatewayState>,
    id: i64,
    quota: &Quota,
    to: &CloudRepo,
) -> Result<(), ApiError> {
    let from = state.store_for(quota).await?;
    let target = state.open_area(to, quota.id).await?;
    for pass in 1..=MAX_PASSES {
        let copied = copy_pass(state, id, quota, (&from, &target), false).await?;
        tracing::info!(id, pass, packs = copied.packs, "move: copy pass");
        if copied.packs <= SETTLED {
            break;
        }
    }
    // The switch: writes wait (clients send them again), those admitted before end, the
    // rest is copied, and the quota changes repository in one statement.
    state.db.move_state(id, "switching", "").await?;
    state.db.set_frozen(quota.id, true).await?;
    let waited = std::time::Instant::now();
    while state.db.writes_in_flight(quota.id).await? > 0 {
        if waited.elapsed() > FREEZE_WAIT {
            return Err(ApiError::internal(
                "writes in flight did not end within 5 minutes; the move was called off (start it again)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    copy_pass(state, id, quota, (&from, &target), true).await?;
    state.db.switch_quota(quota.id, to.id).await?;
    state.db.move_state(id, "releasing", "").await?;
    tokio::time::sleep(RELEASE_AFTER).await;
    blocking(move || from.remove_all()).await?;
    state.db.move_state(id, "done", "").await?;
    Ok(())
}

/// Copies what the target lacks: every pack the database knows for the quota (retired and
/// damaged ones too) and every object the old area holds. Each pack is checked against its
/// id before (a damaged one is copied as it is, and stays marked) and after it is written.
async fn copy_pass(
    state: &Arc<GatewayState>,
    id: i64,
    quota: &Quota,
    (from, to): (&Area, &Area),
    last: bool,
) -> Result<Copied, ApiError> {
    let rows = state.db.packs_with_retired(quota.id).await?;
    let lister = to.clone();
    let present: std::collections::HashSet<PackId> = blocking(move || lister.list_packs())
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let packs_total = rows.len() as i64;
    let bytes_total: i64 = rows.iter().map(|(p, _)| p.bytes).sum();
    let (mut packs_done, mut bytes_done) = (0i64, 0i64);
    let mut copied = Copied::default();
    let mut reported = std::time::Instant::now();
    for (row, _) in &rows {
        let Some(pack) = PackId::from_hex(&row.id) else {
            continue;
        };
        if !present.contains(&pack) {
            let is_damaged = row.damaged;
            let (from, to) = (from.clone(), to.clone());
            blocking(move || copy_pack(&*from, &*to, &pack, is_damaged)).await?;
            copied.packs += 1;
        }
        packs_done += 1;
        bytes_done += row.bytes;
        if reported.elapsed() > Duration::from_millis(500) {
            state
                .db
                .move_progress(id, (packs_total, packs_done), (bytes_total, bytes_done))
                .await?;
            reported = std::time::Instant::now();
        }
    }
    state
        .db
        .move_progress(id, (packs_total, packs_done), (bytes_total, bytes_done))
        .await?;
    if last {
        // What went since an earlier pass copied it (packs a compaction dropped) goes from
        // the target too: no row will ever name it.
        let known: std::collections::HashSet<PackId> = rows
            .iter()
            .filter_map(|(r, _)| PackId::from_hex(&r.id))
            .collect();
        for pack in present.into_iter().filter(|p| !known.contains(p)) {
            let remover = to.clone();
            blocking(move || remover.delete_pack(&pack)).await?;
        }
    }
    let (from, to) = (from.clone(), to.clone());
    blocking(move || copy_objects(&*from, &*to, last)).await?;
    Ok(copied)
}

/// One pack, read whole, checked, written and read back.
fn copy_pack(
    from: &dyn crate::storage::AreaStore,
    to: &dyn crate::storage::AreaStore,
    pack: &PackId,
    damaged: bool,
) -> Result<(), StoreError> {
    let len = from.pack_len(pack)?;
    let bytes = from.read_range(pack, 0, len)?;
    let intact = blake3::hash(&bytes).as_bytes() == &pack.0;
    if !intact && !damaged {
        return Err(StoreError::Refused {
            code: None,
            message: format!(
                "pack {pack} no longer matches its id in the old repository: run the storage check (sp check --deep), then move again"
            ),
        });
    }
    to.put_pack(pack, &bytes, &[])?;
    if intact && to.pack_matches_id(pack)? != Some(true) {
        return Err(StoreError::Refused {
            code: None,
            message: format!("pack {pack} did not read back intact from the new repository"),
        });
    }
    Ok(())
}

/// Every object of every kind the target lacks or holds differently; on the `last` pass
/// (writes frozen), objects the old area no longer has are removed from the target.
fn copy_objects(
    from: &dyn crate::storage::AreaStore,
    to: &dyn crate::storage::AreaStore,
    last: bool,
) -> Result<(), StoreError> {
    for kind in MetaKind::ALL {
        let names = from.list_meta(kind)?;
        if last {
            for gone in to.list_meta(kind)?.iter().filter(|n| !names.contains(n)) {
                to.delete_meta(kind, gone)?;
            }
        }
        for name in names {
            let bytes = match from.get_meta(kind, &name) {
                Ok(bytes) => bytes,
                // Removed meanwhile (a lock released): nothing to copy.
                Err(StoreError::NotFoundMeta { .. }) => continue,
                Err(e) => return Err(e),
            };
            match to.get_meta(kind, &name) {
                Ok(there) if there == bytes => {}
                Ok(_) | Err(StoreError::NotFoundMeta { .. }) => to.put_meta(kind, &name, &bytes)?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
