//! Space reclamation on the gateway's side: packs a tenant's compaction drops, and the space
//! pass that removes what no restore point needs and measures what a compaction would free.
//!
//! The gateway cannot read a pack, but it knows in clear which chunk ids each pack carries and
//! which chunk ids every restore point — live or in the recycle bin — needs (its chunk set).
//! A pack may go only when every chunk of it that a point needs is also in another live pack.
//! Under insider protection such a pack (one holding data a point needs, copied elsewhere by
//! a compaction) is only *retired*: hidden from the tenant, its bytes in the recycle bin,
//! kept until the window ends; it is removed for good only after the same check is made once
//! more, so a tenant's credentials (or a compaction that lied about what its new packs hold)
//! cannot destroy data before the window ends. A pack holding nothing any point needs (its
//! points' window is over) goes at once.
//!
//! Invariant: a chunk a point row names is always in a live pack; retired packs are removed
//! only after the window and a fresh check; packs a running task may be about to reference
//! (any pack while the account has a task, and packs younger than a day) are never removed by
//! the pass on its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::GatewayState;
use crate::error::ApiError;
use crate::session::{AppState, JsonBody, TenantSession, area, blocking};
use crate::storage::Area;
use crate::store::space::PackChunks;
use cloudkeep_api::{DropReport, DropRequest, MAX_DROP_PACKS, PassReport, Quota, Tenant};
use cloudkeep_repo::backend::MetaKind;
use cloudkeep_repo::chunkset::ChunkSetFile;
use cloudkeep_repo::crypto::ChunkId;
use cloudkeep_repo::pack::PackId;

/// The tenant's routes of space reclamation, and the SP's pass over every account.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/repos/{repo}/packs/drop", post(drop_request))
        .route("/v1/repos/{repo}/retained-sets", get(retained_sets))
        .route("/v1/repos/{repo}/space", post(tenant_pass))
}

/// `POST /v1/repos/{repo}/packs/drop`: a compaction has copied the live data out of these
/// packs (see [`drop_packs`]). Needs a task and a running lease.
async fn drop_request(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
    headers: HeaderMap,
    req: JsonBody<DropRequest>,
) -> Result<Json<DropReport>, ApiError> {
    session.may_write()?;
    let req = req.map(|Json(v)| v).map_err(crate::error::from_rejection)?;
    if req.packs.len() > MAX_DROP_PACKS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_DROP_PACKS} packs per request"
        )));
    }
    let ids = pack_ids(&req.packs)?;
    crate::limits::require_task(&state, &session, &headers).await?;
    let (quota, _) = area(&state, &session, &repo).await?;
    crate::session::writable(&quota)?;
    let days = crate::session::protection_days(&session);
    let report = drop_packs(&state, &quota, days, &ids).await?;
    // What is reclaimable changed: measured again at once (the tenant's own pass is limited
    // to one a minute).
    if let Err(e) = pass(&state, &session.tenant, &quota).await {
        tracing::warn!(
            quota = quota.id,
            "space pass after a compaction failed: {e}"
        );
    }
    state
        .metrics
        .compaction(report.removed.len() + report.retired.len());
    tracing::info!(
        quota = quota.id,
        removed = report.removed.len(),
        retired = report.retired.len(),
        kept = report.kept.len(),
        "a compaction dropped packs"
    );
    Ok(Json(report))
}

/// `GET /v1/repos/{repo}/retained-sets`: the chunk sets of the points in the recycle bin,
/// whose data a compaction must keep though the tenant no longer lists them.
async fn retained_sets(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    let (quota, _) = area(&state, &session, &repo).await?;
    let mut sets: Vec<String> = state
        .db
        .points(quota.id, true)
        .await?
        .into_iter()
        .map(|p| p.set_name)
        .collect();
    sets.sort();
    sets.dedup();
    Ok(Json(sets))
}

/// `POST /v1/repos/{repo}/space`: a space pass over the repository now (at most one a
/// minute; otherwise the last one's figures).
async fn tenant_pass(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
) -> Result<Json<PassReport>, ApiError> {
    let (quota, _) = area(&state, &session, &repo).await?;
    let recent = state
        .db
        .space_checked(quota.id)
        .await?
        .is_some_and(|t| t + 60_000 > crate::store::now_ms());
    if recent || session.may_write().is_err() {
        return Ok(Json(PassReport {
            reclaimable_bytes: quota.reclaimable_bytes,
            ..PassReport::default()
        }));
    }
    Ok(Json(pass(&state, &session.tenant, &quota).await?))
}

/// A day, in ms.
pub const DAY_MS: i64 = 86_400_000;

/// Packs younger than this are never removed by the pass on its own: an interrupted backup's
/// packs wait for its rerun to adopt them.
const YOUNG_MS: i64 = DAY_MS;

/// The chunk ids the points of a quota (live and in the recycle bin) need, each set read once.
async fn referenced(
    state: &GatewayState,
    quota: i64,
    store: &Area,
) -> Result<HashSet<ChunkId>, ApiError> {
    let mut names: Vec<String> = state
        .db
        .points(quota, false)
        .await?
        .into_iter()
        .chain(state.db.points(quota, true).await?)
        .map(|p| p.set_name)
        .collect();
    names.sort();
    names.dedup();
    let mut bases: HashMap<String, Vec<ChunkId>> = HashMap::new();
    let mut live = HashSet::new();
    for name in names {
        let set = load_set(store, &name).await?;
        match &set.base {
            None => live.extend(set.added),
            Some(base) => {
                if !bases.contains_key(base) {
                    let full = load_set(store, base).await?;
                    // A base is a full set; anything else keeps everything it names.
                    let mut ids = full.added;
                    ids.extend(full.removed);
                    bases.insert(base.clone(), ids);
                }
                let base_ids = &bases[base];
                match set.apply(base_ids) {
                    Ok(ids) => live.extend(ids),
                    Err(_) => {
                        live.extend(base_ids.iter().copied());
                        live.extend(set.added);
                    }
                }
            }
        }
    }
    Ok(live)
}

async fn load_set(store: &Area, name: &str) -> Result<ChunkSetFile, ApiError> {
    let (store, file) = (store.clone(), name.to_owned());
    let bytes = blocking(move || store.get_meta(MetaKind::ChunkSet, &file)).await?;
    ChunkSetFile::decode(&bytes)
        .map_err(|e| ApiError::internal(format!("stored chunk set {name} does not parse: {e}")))
}

/// The retired packs among `packs` that hold a chunk a point needs and no live pack has.
fn still_needed<'a>(packs: &'a [PackChunks], needed: &HashSet<ChunkId>) -> HashSet<&'a str> {
    let live: HashSet<&ChunkId> = packs
        .iter()
        .filter(|p| p.retired_ms.is_none())
        .flat_map(|p| &p.chunks)
        .collect();
    packs
        .iter()
        .filter(|p| p.retired_ms.is_some())
        .filter(|p| {
            p.chunks
                .iter()
                .any(|c| needed.contains(c) && !live.contains(c))
        })
        .map(|p| p.id.as_str())
        .collect()
}

/// Removes a pack's file and then its row.
async fn remove_pack(
    state: &GatewayState,
    quota: i64,
    store: &Area,
    id: &str,
) -> Result<(), ApiError> {
    let pack = crate::session::pack_id(id)?;
    let remover = store.clone();
    blocking(move || remover.delete_pack(&pack)).await?;
    state.db.remove_retired_pack(quota, id).await?;
    Ok(())
}

/// Drops packs `ids` of `quota` for a compaction of the tenant's: each is retired at once
/// (so no other drop counts on it as the live copy of a chunk), then the ones holding a chunk
/// a point needs that no live pack has are given back, and the rest are kept until the
/// insider-protection window ends (`protection_days` > 0, as far as the recycle bin — never
/// more than the quota — takes them) or removed now.
pub async fn drop_packs(
    state: &GatewayState,
    quota: &Quota,
    protection_days: i64,
    ids: &[String],
) -> Result<DropReport, ApiError> {
    let store = state.store_for(quota).await?;
    let retired = state.db.retire_packs(quota.id, ids).await?;
    let mut report = DropReport::default();
    let retired_ids: HashSet<&str> = retired.iter().map(|(id, _)| id.as_str()).collect();
    for id in ids.iter().filter(|id| !retired_ids.contains(id.as_str())) {
        if state.db.pack_size(quota.id, id).await?.is_some() {
            report.kept.push((
                id.clone(),
                "it is marked damaged: it stays until its intact blobs are salvaged".into(),
            ));
        } else {
            // Gone already (or retired by an earlier compaction): nothing to do.
            report.removed.push(id.clone());
        }
    }
    if retired.is_empty() {
        return Ok(report);
    }
    let packs = state.db.packs_with_chunks(quota.id).await?;
    let needed = referenced(state, quota.id, &store).await?;
    let keep = still_needed(&packs, &needed);
    // Packs holding nothing any point needs go now: only data a point needs is protected.
    let holds_needed: HashSet<&str> = packs
        .iter()
        .filter(|p| p.chunks.iter().any(|c| needed.contains(c)))
        .map(|p| p.id.as_str())
        .collect();
    // (cap, bytes in that recycle bin now): every pack just retired counts until it is
    // given back or removed below.
    let (limit, mut in_bin) = match recycle_cap(state, quota).await? {
        Some((limit, recycled)) => (Some(limit), recycled),
        None => (None, 0),
    };
    for (id, bytes) in &retired {
        if keep.contains(id.as_str()) {
            state.db.unretire_pack(quota.id, id).await?;
            in_bin -= bytes;
            report.kept.push((
                id.clone(),
                "it holds data a restore point needs that no other pack has".into(),
            ));
        } else if protection_days > 0 && holds_needed.contains(id.as_str()) {
            if limit.is_some_and(|limit| in_bin > limit) {
                state.db.unretire_pack(quota.id, id).await?;
                in_bin -= bytes;
                report.kept.push((
                    id.clone(),
                    "the recycle bin already holds as much as the quota; it frees up as insider protection runs out".into(),
                ));
            } else {
                report.retired.push(id.clone());
            }
        } else {
            remove_pack(state, quota.id, &store, id).await?;
            in_bin -= bytes;
            report.removed.push(id.clone());
        }
    }
    Ok(report)
}

/// What bounds a quota's recycle bin, and what it holds now: the quota itself, or for a
/// subtenant sharing its tenant's quota, the tenant's (whose figures include the
/// subtenant's). `None`: unbounded (an unlimited quota all the way up).
async fn recycle_cap(state: &GatewayState, quota: &Quota) -> Result<Option<(i64, i64)>, ApiError> {
    let bytes = |limit: u64| i64::try_from(limit).unwrap_or(i64::MAX);
    let own = state
        .db
        .quotas_of(quota.tenant_id)
        .await?
        .into_iter()
        .find(|q| q.id == quota.id);
    if let Some(q) = &own
        && let cloudkeep_model::units::Limit::Bytes(limit) = q.quota_bytes
    {
        return Ok(Some((bytes(limit), q.recycle_bytes)));
    }
    let Some(parent) = state.db.tenant(quota.tenant_id).await?.parent else {
        return Ok(None);
    };
    Ok(state
        .db
        .quotas_of(parent)
        .await?
        .into_iter()
        .find(|q| q.repo_id == quota.repo_id)
        .and_then(|q| match q.quota_bytes {
            cloudkeep_model::units::Limit::Bytes(limit) => Some((bytes(limit), q.recycle_bytes)),
            cloudkeep_model::units::Limit::Unlimited => None,
        }))
}

/// One space pass over `quota` of `tenant`: retired packs and index files whose window is
/// over go (a pack only after a fresh check — one still needed is given back); packs no point
/// needs are dropped when the account runs no task and they are a day old; what a compaction
/// would free is measured and recorded.
pub async fn pass(
    state: &GatewayState,
    tenant: &Tenant,
    quota: &Quota,
) -> Result<PassReport, ApiError> {
    let store = state.store_for(quota).await?;
    let days = crate::session::account_keep_days(state, tenant).await?;
    let now = crate::store::now_ms();
    let mut report = PassReport::default();
    let packs = state.db.packs_with_chunks(quota.id).await?;
    let needed = referenced(state, quota.id, &store).await?;

    // 1. Retired packs: given back if still needed, removed once their window is over.
    let keep = still_needed(&packs, &needed);
    for p in packs.iter().filter(|p| p.retired_ms.is_some()) {
        if keep.contains(p.id.as_str()) {
            state.db.unretire_pack(quota.id, &p.id).await?;
            tracing::warn!(quota = quota.id, pack = %p.id, "a retired pack held data a restore point needs: given back");
        } else if p.retired_ms.unwrap_or(now) + days * DAY_MS <= now {
            remove_pack(state, quota.id, &store, &p.id).await?;
            report.removed_bytes += p.bytes;
        }
    }
    for (kind, name, retired_ms) in state.db.retired_objects(quota.id).await? {
        // Only index files are ever retired.
        if kind == "index" && retired_ms + days * DAY_MS <= now {
            let meta = MetaKind::Index;
            if let Some(size) = state.db.delete_object(quota.id, &kind, &name).await? {
                state.db.release(quota.id, size).await?;
            }
            let remover = store.clone();
            blocking(move || remover.delete_meta(meta, &name)).await?;
        }
    }

    // 2. Live packs no point needs, and the dead share of the others.
    let busy = state.db.account_busy(tenant.id).await?;
    let mut dead = Vec::new();
    for p in packs.iter().filter(|p| p.retired_ms.is_none()) {
        let used = p.chunks.iter().filter(|c| needed.contains(*c)).count();
        if used == 0 && !busy && p.created_ms + YOUNG_MS <= now {
            dead.push(p.id.clone());
        } else if used == 0 {
            report.reclaimable_bytes += p.bytes;
        } else {
            report.reclaimable_bytes += p.unneeded_bytes(|c| !needed.contains(c));
        }
    }
    if !dead.is_empty() {
        let bytes: HashMap<&str, i64> = packs.iter().map(|p| (p.id.as_str(), p.bytes)).collect();
        let dropped = drop_packs(state, quota, days, &dead).await?;
        report.removed_bytes += dropped
            .removed
            .iter()
            .map(|id| bytes[id.as_str()])
            .sum::<i64>();
        report.retired_bytes += dropped
            .retired
            .iter()
            .map(|id| bytes[id.as_str()])
            .sum::<i64>();
        for (id, _) in &dropped.kept {
            report.reclaimable_bytes += bytes.get(id.as_str()).copied().unwrap_or(0);
        }
    }
    state
        .db
        .set_reclaimable(quota.id, report.reclaimable_bytes)
        .await?;
    Ok(report)
}

/// A space pass over every quota of every account; returns the bytes removed and retired.
pub async fn pass_all(state: &GatewayState) -> Result<PassReport, ApiError> {
    let mut total = PassReport::default();
    for tenant in state.db.tenants().await? {
        for quota in state.db.quotas_of(tenant.id).await? {
            match pass(state, &tenant, &quota).await {
                Ok(r) => {
                    total.removed_bytes += r.removed_bytes;
                    total.retired_bytes += r.retired_bytes;
                    total.reclaimable_bytes += r.reclaimable_bytes;
                }
                Err(e) => tracing::warn!(quota = quota.id, "space pass failed: {e}"),
            }
        }
    }
    state
        .metrics
        .space_pass(total.removed_bytes, total.retired_bytes);
    Ok(total)
}

/// The pack ids of a request, checked.
pub fn pack_ids(ids: &[String]) -> Result<Vec<String>, ApiError> {
    ids.iter()
        .map(|id| crate::session::pack_id(id).map(|p: PackId| p.to_hex()))
        .collect()
}
