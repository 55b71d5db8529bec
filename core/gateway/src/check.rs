//! What the database says against what the storage holds, reconciled. The gateway never
//! trusts its tables alone for what is stored:
//!
//! - **At start** ([`reclaim_own`]): the reservations a killed run of this gateway left are
//!   given back, with whatever their unfinished writes left on disk; every quota's figures
//!   are recounted from its rows.
//! - **The SP's storage check** (`POST /v1/admin/check`, `cloudkeep sp check [--deep]`):
//!   reservations of gateways that died are reclaimed; every pack row is checked against its
//!   file (present, right length, and with `deep` re-read and hashed): a lost pack is
//!   forgotten (its chunks count as absent, so the tenant's next backup sends them again), a
//!   changed one is marked damaged (still readable, so the tenant salvages what is intact);
//!   pack files no row knows and temporary files of dead writes are removed; missing point,
//!   index and chunk-set files are reported; figures are recounted.
//! - **A tenant's verify** (`POST /v1/repos/{repo}/packs/{id}/check`): the tenant found a
//!   pack it cannot use; the gateway looks itself (it never takes the tenant's word) and
//!   forgets it when it is missing, or sets it aside when its bytes no longer match its id.
//!
//! A storage area whose cloud repository folder is missing (a disk not mounted) is never
//! taken for lost data: it is reported and left alone.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};

use super::auth::AdminSession;
use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::session::{AppState, JsonBody, TenantSession, area_and_pack, blocking, pack_id};
use crate::storage::Area;
use crate::store::now_ms;
use crate::store::reservations::Reservation;
use cloudkeep_api::{
    CheckReport, CheckRequest, PackCheck, PackHealth, PackIssue, Quota, RecountRow,
};
use cloudkeep_repo::backend::MetaKind;
use cloudkeep_repo::backend::folder::LEFTOVER_AGE;
use cloudkeep_repo::pack::PackId;

/// A pack file no row knows is removed only once it is this old: an upload renames its file
/// into place just before it records the row.
const ORPHAN_AGE: Duration = Duration::from_secs(600);
/// A reservation older than this belongs to no live write (uploads are cut off long before).
const RESERVATION_LIFE: Duration = Duration::from_secs(6 * 3600);
/// A gateway silent this long is dead; its reservations are reclaimed.
const GATEWAY_SILENCE: Duration = Duration::from_secs(600);

/// The routes: the SP's check and a tenant's pack check.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/check", post(admin_check))
        .route("/v1/repos/{repo}/packs/{id}/check", post(tenant_check))
}

/// At start: gives back what a killed run of this gateway had reserved (and removes what its
/// unfinished writes left), then recounts every quota. Returns the report.
pub async fn reclaim_own(state: &GatewayState) -> Result<CheckReport, ApiError> {
    let mut report = CheckReport::default();
    let dead = state.db.reservations_of(&state.id).await?;
    reclaim(state, dead, &mut report).await?;
    recount_all(state, &mut report).await?;
    Ok(report)
}

async fn admin_check(
    State(state): AppState,
    admin: AdminSession,
    req: JsonBody<CheckRequest>,
) -> Result<Json<CheckReport>, ApiError> {
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    let report = storage_check(&state, req.deep).await?;
    state
        .db
        .audit(
            &admin.name,
            "storage.check",
            if req.deep { "deep" } else { "quick" },
            &format!(
                "{} packs checked, {} lost, {} damaged, {} orphans removed, {} reservations reclaimed, {} quotas recounted",
                report.packs_checked,
                report.lost.len(),
                report.damaged.len(),
                report.orphans_removed,
                report.reservations_reclaimed,
                report.recounted.len()
            ),
        )
        .await?;
    Ok(Json(report))
}

/// The SP's storage check (see the module doc).
pub async fn storage_check(state: &GatewayState, deep: bool) -> Result<CheckReport, ApiError> {
    let mut report = CheckReport::default();
    let now = now_ms();
    let dead = state
        .db
        .dead_reservations(
            now - RESERVATION_LIFE.as_millis() as i64,
            now - GATEWAY_SILENCE.as_millis() as i64,
        )
        .await?;
    reclaim(state, dead, &mut report).await?;
    for (login, quota) in every_quota(state).await? {
        let label = format!("{login}/{}", quota.friendly_name);
        let repo = state.db.repo_by_name(&quota.repo_name).await?;
        if !reachable(&repo) {
            report.unavailable.push(label);
            continue;
        }
        report.quotas += 1;
        let store = state.store_for(&quota).await?;
        check_area(state, &login, &quota, &store, deep, &mut report).await?;
    }
    recount_all(state, &mut report).await?;
    Ok(report)
}

/// Whether a repository's storage can be looked at: a folder repository whose folder is
/// there (an unmounted disk is not created anew), an object store always (it answers for
/// itself). The object store's quotas were once skipped here as "unavailable": its leftover
/// sweep and the abort of a dead writer's multipart upload never ran.
fn reachable(repo: &cloudkeep_api::accounts::CloudRepo) -> bool {
    repo.s3.is_some() || std::path::Path::new(&repo.location).is_dir()
}

/// Every quota with its account's login.
async fn every_quota(state: &GatewayState) -> Result<Vec<(String, Quota)>, ApiError> {
    let mut out = Vec::new();
    for tenant in state.db.tenants().await? {
        for quota in state.db.quotas_of(tenant.id).await? {
            out.push((tenant.login.clone(), quota));
        }
    }
    Ok(out)
}

/// Gives back dead reservations, first removing what their writes left unrecorded.
async fn reclaim(
    state: &GatewayState,
    dead: Vec<Reservation>,
    report: &mut CheckReport,
) -> Result<(), ApiError> {
    for r in dead {
        if let Some(quota) = quota_by_id(state, r.quota_id).await? {
            let repo = state.db.repo_by_name(&quota.repo_name).await?;
            if reachable(&repo) {
                let store = state.store_for(&quota).await?;
                remove_unrecorded(state, &quota, &store, &r).await?;
            }
        }
        state.db.cancel(&r.id).await?;
        report.reservations_reclaimed += 1;
        report.reserved_bytes_returned += r.bytes;
        tracing::info!(
            quota = r.quota_id,
            kind = %r.kind,
            bytes = r.bytes,
            gateway = %r.gateway_id,
            "gave back the reservation of a write that died"
        );
    }
    Ok(())
}

async fn quota_by_id(state: &GatewayState, id: i64) -> Result<Option<Quota>, ApiError> {
    Ok(every_quota(state)
        .await?
        .into_iter()
        .map(|(_, q)| q)
        .find(|q| q.id == id))
}

/// Removes the file a dead write of `r` left, unless a row records it (then it is stored).
async fn remove_unrecorded(
    state: &GatewayState,
    quota: &Quota,
    store: &Area,
    r: &Reservation,
) -> Result<(), ApiError> {
    match r.kind.as_str() {
        "pack" => {
            let (remover, reservation) = (store.clone(), r.id.clone());
            blocking(move || remover.remove_upload(&reservation)).await?;
            if let Some(pack) = PackId::from_hex(&r.name)
                && state.db.pack_size(quota.id, &r.name).await?.is_none()
            {
                let store = store.clone();
                blocking(move || store.delete_pack(&pack)).await?;
            }
        }
        "point" => {
            let recorded = state
                .db
                .points(quota.id, false)
                .await?
                .into_iter()
                .chain(state.db.points(quota.id, true).await?)
                .any(|p| p.name == r.name);
            if !recorded {
                let (store, name) = (store.clone(), r.name.clone());
                blocking(move || {
                    cloudkeep_repo::backend::RepoBackend::delete_meta(
                        &*store,
                        MetaKind::Point,
                        &name,
                    )
                })
                .await?;
            }
        }
        // A small object replaces its file atomically: the file holds the old or the new
        // bytes, and its row is recounted; nothing to remove.
        _ => {}
    }
    Ok(())
}

/// Checks one storage area against its rows.
async fn check_area(
    state: &GatewayState,
    login: &str,
    quota: &Quota,
    store: &Area,
    deep: bool,
    report: &mut CheckReport,
) -> Result<(), ApiError> {
    let issue = |pack: &str, what: String| PackIssue {
        tenant: login.to_owned(),
        repo: quota.friendly_name.clone(),
        pack: pack.to_owned(),
        what,
    };
    let lister = store.clone();
    let files: std::collections::HashMap<PackId, u64> = blocking(move || lister.list_packs())
        .await?
        .into_iter()
        .collect();
    // Retired packs too: they are kept for insider protection, never "files no row knows".
    let rows = state.db.packs_with_retired(quota.id).await?;
    // Every recorded pack gone at once is a wrong mount, prefix or bucket far more often than
    // lost data: reported, nothing forgotten (the next check, storage back, finds them).
    if files.is_empty() && !rows.is_empty() {
        report
            .unavailable
            .push(format!("{login}/{}", quota.friendly_name));
        return Ok(());
    }
    let mut known = std::collections::HashSet::new();
    for (row, retired) in rows {
        report.packs_checked += 1;
        let Some(pack) = PackId::from_hex(&row.id) else {
            continue;
        };
        known.insert(pack);
        match files.get(&pack) {
            None if retired => {
                state.db.remove_retired_pack(quota.id, &row.id).await?;
                report.lost.push(issue(
                    &row.id,
                    "missing from the storage: a pack kept for insider protection (its data had been copied by a compaction); forgotten".into(),
                ));
            }
            None => {
                state.db.forget_pack(quota.id, &row.id).await?;
                report.lost.push(issue(
                    &row.id,
                    "missing from the storage: forgotten, so the tenant's next backup sends its data again"
                        .into(),
                ));
            }
            Some(&len) if len != row.bytes.max(0) as u64 => {
                if state.db.mark_damaged(quota.id, &row.id).await? {
                    report.damaged.push(issue(
                        &row.id,
                        format!("{len} bytes stored, {} recorded: marked damaged, so the tenant salvages what is intact", row.bytes),
                    ));
                }
            }
            Some(&len) if deep && !row.damaged => {
                let hasher = store.clone();
                let matches = blocking(move || hasher.pack_matches_id(&pack)).await?;
                report.bytes_hashed += len;
                if matches == Some(false) && state.db.mark_damaged(quota.id, &row.id).await? {
                    report.damaged.push(issue(
                        &row.id,
                        "its bytes no longer match its id: marked damaged, so the tenant salvages what is intact".into(),
                    ));
                }
            }
            Some(_) => {}
        }
    }
    // Files no row knows: a write a crash cut between its file and its row.
    let reserved: std::collections::HashSet<String> = state
        .db
        .reservations_in(quota.id)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    for (pack, len) in files {
        if known.contains(&pack) || reserved.contains(&pack.to_hex()) {
            continue;
        }
        let old = store
            .pack_modified(&pack)
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= ORPHAN_AGE);
        if old {
            let remover = store.clone();
            blocking(move || remover.delete_pack(&pack)).await?;
            report.orphans_removed += 1;
            report.orphan_bytes += len;
        }
    }
    let cleaner = store.clone();
    report.temp_bytes_removed += blocking(move || cleaner.remove_leftovers(LEFTOVER_AGE)).await?;
    // Objects a point depends on, and the points themselves.
    let mut wanted: Vec<(MetaKind, String, String)> = Vec::new();
    for (kind, meta) in [("index", MetaKind::Index), ("sets", MetaKind::ChunkSet)] {
        for name in state.db.objects(quota.id, kind).await? {
            wanted.push((meta, name, format!("the {kind} object's file is missing")));
        }
    }
    for recycled in [false, true] {
        for point in state.db.points(quota.id, recycled).await? {
            wanted.push((
                MetaKind::Point,
                point.name,
                "the restore point's file is missing".into(),
            ));
        }
    }
    let looker = store.clone();
    let missing = blocking(move || {
        let mut missing = Vec::new();
        for (meta, name, what) in wanted {
            if !looker.has_meta(meta, &name)? {
                missing.push((name, what));
            }
        }
        Ok(missing)
    })
    .await?;
    for (name, what) in missing {
        report.missing_objects.push(issue(&name, what));
    }
    Ok(())
}

/// Recounts every quota; reports those that had drifted.
async fn recount_all(state: &GatewayState, report: &mut CheckReport) -> Result<(), ApiError> {
    // Subtenants first: a tenant's recount adds its shared subtenants' figures.
    let mut quotas = every_quota(state).await?;
    quotas.sort_by_key(|(login, _)| !login.contains('/'));
    for (login, quota) in quotas {
        let recount = state.db.recount(quota.id).await?;
        if recount.drifted() {
            tracing::warn!(
                account = %login,
                repo = %quota.friendly_name,
                "quota figures corrected: used {} -> {}, recycle bin {} -> {}",
                recount.used_before,
                recount.used_after,
                recount.recycle_before,
                recount.recycle_after
            );
            report.recounted.push(RecountRow {
                tenant: login,
                repo: quota.friendly_name,
                used: (recount.used_before, recount.used_after),
                recycle: (recount.recycle_before, recount.recycle_after),
            });
        }
    }
    Ok(())
}

/// `POST /v1/repos/{repo}/packs/{id}/check`: the tenant could not use this pack.
async fn tenant_check(
    State(state): AppState,
    session: TenantSession,
    Path((repo, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<PackCheck>, ApiError> {
    let pack = pack_id(&id)?;
    super::limits::require_task(&state, &session, &headers).await?;
    let (quota, store, stored) = area_and_pack(&state, &session, &repo, &id).await?;
    let Some(len) = stored else {
        return Err(ApiError::not_found(format!("pack {id} is not stored")));
    };
    // The check re-reads the pack: paid for like a read of it.
    if let Some(bucket) = state.bucket_for(&session).await {
        bucket
            .take(usize::try_from(len).unwrap_or(usize::MAX))
            .await;
    }
    let checker = store.clone();
    let health = blocking(move || checker.set_aside(&pack)).await?;
    if health != PackHealth::Intact {
        state.db.forget_pack(quota.id, &id).await?;
        tracing::warn!(
            account = %session.tenant.login,
            repo = %quota.friendly_name,
            pack = %id,
            "a tenant's verify found a pack {health:?}: forgotten"
        );
    }
    Ok(Json(PackCheck { health }))
}
