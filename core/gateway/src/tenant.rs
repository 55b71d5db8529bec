//! The tenant API (`/v1/…` outside `/v1/admin`): login for tenants and `tenant/subtenant`
//! accounts, the tenant's cloud repositories, subtenant management, and each quota's data:
//! small objects (keyring, index files, chunk sets, locks), chunk presence, streamed pack
//! upload with size, hash and quota checks, and restore points (commit checked
//! against the stored chunks; delete into the recycle bin under insider protection). Pack
//! reads are in [`super::packread`].
//!
//! Invariant: every call is scoped by the account taken from the session, never from the
//! request; another account's objects are `not_found`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;

use super::auth::{self, Peer};
use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::session::{
    AppState, JsonBody, TenantSession, area, area_and_pack, blocking, check_account, only_tenants,
    pack_id, protection_days, remove_areas,
};
use crate::storage::{Area, PackUpload as Upload};
use crate::store::accounts::Realm;
use crate::store::data::object_cap;
use cloudkeep_api::{
    CHUNK_LENS_HEADER, CHUNKS_HEADER, ErrorCode, LoginRequest, LoginResponse, MAX_PRESENCE_BATCH,
    NewSubtenant, PresenceRequest, PresenceResponse, Quota, RepoInfo, SubtenantChange,
    TenantSettings,
};
use cloudkeep_model::units::Limit;
use cloudkeep_repo::backend::{MetaKind, StoreError};
use cloudkeep_repo::chunkset::ChunkSetFile;
use cloudkeep_repo::crypto::ChunkId;
use cloudkeep_repo::pack::PackId;

/// Uploads are written in pieces of this size.
const WRITE_BUFFER: usize = 8 << 20;

/// The tenant routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/repos", get(list_repos))
        .route("/v1/subtenants", get(list_subtenants).post(add_subtenant))
        .route(
            "/v1/subtenants/{name}",
            axum::routing::delete(delete_subtenant).put(set_subtenant),
        )
        .route("/v1/repos/{repo}/objects/{kind}", get(list_objects))
        .route(
            "/v1/repos/{repo}/objects/{kind}/{name}",
            get(get_object).put(put_object).delete(delete_object).layer(
                axum::extract::DefaultBodyLimit::max(
                    cloudkeep_repo::backend::MAX_META_LEN as usize,
                ),
            ),
        )
        .route("/v1/repos/{repo}/chunks/present", post(chunks_present))
        .route("/v1/repos/{repo}/packs", get(list_packs))
        .route(
            "/v1/repos/{repo}/packs/{id}",
            put(upload_pack)
                .get(super::packread::read_pack)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/repos/{repo}/reads", post(super::packread::read_ranges))
        .route("/v1/repos/{repo}/points", get(list_points))
        .route(
            "/v1/repos/{repo}/points/{name}",
            get(get_point).put(commit_point).delete(delete_point),
        )
}

async fn login(
    State(state): AppState,
    axum::Extension(peer): axum::Extension<Peer>,
    req: JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    let ip = peer.0.ip();
    state.bans.check(&state.db, ip).await?;
    if let Some(message) = state.db.maintenance().await? {
        return Err(ApiError::new(
            ErrorCode::Maintenance,
            format!("the service provider is doing maintenance: {message}"),
        ));
    }
    if state.db.gateway_draining(&state.id).await? {
        return Err(ApiError::new(
            ErrorCode::Draining,
            format!(
                "gateway {} is drained for maintenance and takes no new sessions; log in through another gateway of your provider",
                state.id
            ),
        ));
    }
    let found = state.db.tenant_by_login(&req.user).await?;
    let ok = match &found {
        Some((_, hash)) => auth::password_matches(req.password, hash.clone()).await?,
        None => false,
    };
    let Some((tenant, _)) = found.filter(|_| ok) else {
        state.bans.failed(&state.db, ip).await;
        return Err(auth::wrong_credentials());
    };
    state.bans.succeeded(&state.db, ip).await;
    // An ended lease still lets the tenant in to restore; its writes are refused.
    check_account(&state, &tenant).await?;
    Ok(Json(
        auth::open_session(&state, Realm::Tenant, tenant.id).await?,
    ))
}

async fn logout(State(state): AppState, headers: HeaderMap) -> Result<Json<()>, ApiError> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        state.db.delete_session(token.trim()).await?;
    }
    Ok(Json(()))
}

async fn list_repos(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<RepoInfo>>, ApiError> {
    let lease = session
        .parent
        .as_ref()
        .unwrap_or(&session.tenant)
        .settings
        .lease_until_ms;
    let restore_until = session.restore_only.as_ref().map(|r| r.restore_until_ms);
    let keep_days = crate::session::protection_days(&session);
    let quotas = state.db.quotas_of(session.tenant.id).await?;
    Ok(Json(
        quotas
            .into_iter()
            .map(|q| RepoInfo {
                free_bytes: q.free(),
                name: q.friendly_name,
                quota_bytes: q.quota_bytes,
                used_bytes: q.used_bytes,
                lease_until_ms: lease,
                restore_until_ms: restore_until,
                reclaimable_bytes: q.reclaimable_bytes,
                recycle_bytes: q.recycle_bytes,
                keep_deleted_days: Some(keep_days),
            })
            .collect(),
    ))
}

async fn list_subtenants(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<cloudkeep_api::TenantView>>, ApiError> {
    only_tenants(&session)?;
    let mut out = Vec::new();
    for tenant in state.db.subtenants(session.tenant.id).await? {
        let quotas = state.db.quotas_of(tenant.id).await?;
        let health = state.db.health_of(tenant.id).await?;
        out.push(cloudkeep_api::TenantView {
            tenant,
            quotas,
            health,
            standing: Default::default(),
        });
    }
    Ok(Json(out))
}

async fn add_subtenant(
    State(state): AppState,
    session: TenantSession,
    req: JsonBody<NewSubtenant>,
) -> Result<Json<cloudkeep_api::TenantView>, ApiError> {
    only_tenants(&session)?;
    session.may_write()?;
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    let quotas = state.db.quotas_of(session.tenant.id).await?;
    let own = quotas
        .iter()
        .find(|q| q.friendly_name == req.repo)
        .ok_or_else(|| {
            ApiError::not_found(format!("you have no cloud repository \"{}\"", req.repo))
        })?;
    if let Limit::Bytes(want) = req.quota_bytes
        && !own.free().allows(want)
    {
        // Checked again, atomically, when the quota is carved; this says how much is left.
        return Err(does_not_fit(req.quota_bytes, own));
    }
    let hash = auth::hash_new_password(req.password).await?;
    let spec = cloudkeep_api::QuotaSpec {
        repo: own.repo_name.clone(),
        friendly_name: Some(own.friendly_name.clone()),
        bytes: req.quota_bytes,
    };
    let tenant = state
        .db
        .add_tenant(
            Some(session.tenant.id),
            &req.name,
            &hash,
            &TenantSettings::default(),
            &[spec],
            req.policy.is_some(),
        )
        .await
        .map_err(|e| match e {
            crate::store::DbError::QuotaFull(_) => does_not_fit(req.quota_bytes, own),
            other => other.into(),
        })?;
    if let Some(member) = &req.policy {
        let added = state
            .db
            .add_member(
                tenant.id,
                session.tenant.id,
                &member.policy_id,
                &member.computer,
            )
            .await;
        if let Err(e) = added {
            // All or nothing: no managed subtenant without its policy.
            state.db.delete_tenant(tenant.id).await?;
            return Err(e.into());
        }
    }
    let quotas = state.db.quotas_of(tenant.id).await?;
    let health = state.db.health_of(tenant.id).await?;
    Ok(Json(cloudkeep_api::TenantView {
        tenant,
        quotas,
        health,
        standing: Default::default(),
    }))
}

/// A subtenant quota that does not fit what is left of the tenant's `own`.
fn does_not_fit(bytes: Limit, own: &Quota) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "a quota of {bytes} does not fit: {} of \"{}\" is free after your data and your subtenants' quotas",
            own.free(),
            own.friendly_name
        ),
    )
}

async fn set_subtenant(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    req: JsonBody<SubtenantChange>,
) -> Result<Json<cloudkeep_api::TenantView>, ApiError> {
    only_tenants(&session)?;
    session.may_write()?;
    let change = req.map(|Json(v)| v).map_err(from_rejection)?;
    let login = format!("{}/{name}", session.tenant.login);
    let (sub, _) = state
        .db
        .tenant_by_login(&login)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("you have no subtenant \"{name}\"")))?;
    if let Some(bytes) = change.quota_bytes {
        let current = state.db.quotas_of(sub.id).await?;
        let quota = current
            .first()
            .ok_or_else(|| ApiError::not_found(format!("\"{name}\" has no quota")))?;
        let spec = cloudkeep_api::QuotaSpec {
            repo: quota.repo_name.clone(),
            friendly_name: Some(quota.friendly_name.clone()),
            bytes,
        };
        state.db.set_subtenant_quota(sub.id, &spec).await?;
    }
    if let Some(enabled) = change.enabled {
        let mut settings = sub.settings.clone();
        settings.enabled = enabled;
        state.db.update_tenant(sub.id, &settings).await?;
        if !enabled {
            state.db.delete_sessions_of(Realm::Tenant, sub.id).await?;
        }
    }
    if let Some(password) = change.password {
        let hash = auth::hash_new_password(password).await?;
        state.db.set_tenant_password(sub.id, &hash).await?;
        state.db.delete_sessions_of(Realm::Tenant, sub.id).await?;
    }
    Ok(Json(cloudkeep_api::TenantView {
        tenant: state.db.tenant(sub.id).await?,
        quotas: state.db.quotas_of(sub.id).await?,
        health: state.db.health_of(sub.id).await?,
        standing: Default::default(),
    }))
}

async fn delete_subtenant(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<()>, ApiError> {
    only_tenants(&session)?;
    session.may_write()?;
    let login = format!("{}/{name}", session.tenant.login);
    let (sub, _) = state
        .db
        .tenant_by_login(&login)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("you have no subtenant \"{name}\"")))?;
    let keep_days = crate::session::keep_days(&sub, Some(&session.tenant));
    if keep_days > 0 {
        for quota in state.db.quotas_of(sub.id).await? {
            let kept = state.db.points(quota.id, false).await?.len()
                + state.db.points(quota.id, true).await?.len();
            if kept > 0 {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "\"{name}\" holds {kept} restore points that insider protection keeps for {keep_days} days after they are deleted; disable it now, delete its restore points, and delete it once the recycle bin has purged them (or ask your service provider)"
                    ),
                ));
            }
        }
    }
    remove_areas(&state, &[sub.id]).await?;
    state.db.delete_tenant(sub.id).await?;
    Ok(Json(()))
}

fn too_large(rejection: BytesRejection) -> ApiError {
    ApiError::bad_request(format!(
        "the request body cannot be taken: {}",
        rejection.body_text()
    ))
}

/// The object kind a path names (`keyring`, `index`, `sets`, `locks`).
pub fn kind_of(kind: &str) -> Result<MetaKind, ApiError> {
    crate::storage::meta_kind(kind).ok_or_else(|| {
        ApiError::not_found(format!(
            "no object kind \"{kind}\"; use keyring, index, sets or locks"
        ))
    })
}

fn quota_full(quota: &Quota) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "the cloud repository \"{}\" is full ({} of {} used); delete old restore points or ask your service provider for more space",
            quota.friendly_name,
            cloudkeep_model::units::human_bytes(quota.used_bytes.max(0) as u64),
            quota.quota_bytes
        ),
    )
}

async fn list_objects(
    State(state): AppState,
    session: TenantSession,
    Path((repo, kind)): Path<(String, String)>,
) -> Result<Json<Vec<String>>, ApiError> {
    let meta = kind_of(&kind)?;
    let (quota, store) = area(&state, &session, &repo).await?;
    if meta == MetaKind::Lock {
        drop_stale_locks(&state, &quota, &store).await?;
    }
    Ok(Json(state.db.objects(quota.id, &kind).await?))
}

async fn get_object(
    State(state): AppState,
    session: TenantSession,
    Path((repo, kind, name)): Path<(String, String, String)>,
) -> Result<Vec<u8>, ApiError> {
    let meta = kind_of(&kind)?;
    let (_, store) = area(&state, &session, &repo).await?;
    blocking(move || store.get_meta(meta, &name)).await
}

/// Checks a small object before it is stored: content-addressed kinds must match their name,
/// and every kind must parse.
pub fn check_object(meta: MetaKind, name: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let bad = |reason: String| ApiError::bad_request(reason);
    match meta {
        MetaKind::Keyring => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| bad("the keyring is not UTF-8 JSON".into()))?;
            cloudkeep_repo::crypto::Keyring::from_json(text).map_err(|e| bad(e.to_string()))?;
            if name != "keyring" {
                return Err(bad("the keyring object is named \"keyring\"".into()));
            }
        }
        MetaKind::Index | MetaKind::ChunkSet => {
            if blake3::hash(bytes).to_hex().as_str() != name {
                return Err(bad(format!(
                    "the object's name must be the BLAKE3 of its bytes, not \"{name}\""
                )));
            }
            if meta == MetaKind::ChunkSet {
                ChunkSetFile::decode(bytes)
                    .map_err(|e| bad(format!("the chunk set is not valid: {e}")))?;
            }
        }
        MetaKind::Lock => {
            if bytes.len() > 4096 {
                return Err(bad("a lock object is at most 4 KiB".into()));
            }
        }
        MetaKind::Point => return Err(bad("restore points are committed under /points".into())),
    }
    Ok(())
}

async fn put_object(
    State(state): AppState,
    session: TenantSession,
    Path((repo, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<()>, ApiError> {
    let body = body.map_err(too_large)?;
    let meta = kind_of(&kind)?;
    if meta != MetaKind::Lock {
        // A restore takes locks; everything else a backup writes is refused once a lease ends.
        session.may_write()?;
    }
    if !cloudkeep_repo::backend::valid_meta_name(&name) {
        return Err(ApiError::bad_request(format!(
            "\"{name}\" is not a valid object name"
        )));
    }
    check_object(meta, &name, &body)?;
    super::limits::require_task(&state, &session, &headers).await?;
    let (quota, store) = area(&state, &session, &repo).await?;
    crate::session::writable(&quota)?;
    if meta == MetaKind::Lock {
        drop_stale_locks(&state, &quota, &store).await?;
    }
    let old = state.db.object_size(quota.id, &kind, &name).await?;
    if old.is_none() && state.db.object_count(quota.id, &kind).await? >= object_cap(&kind) {
        let what_to_do = if meta == MetaKind::Lock {
            "they go when the backups, restores and checks holding them end (or within two minutes of their process stopping): try again then"
        } else {
            "delete old restore points (and ask your service provider to collect what they used)"
        };
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "\"{}\" already holds {} {kind} objects, the most a repository may; {what_to_do}",
                quota.friendly_name,
                object_cap(&kind)
            ),
        ));
    }
    let old = old.unwrap_or(0);
    let body = if meta == MetaKind::Keyring {
        super::keyring::accept(&state, &session, &quota, &store, &body).await?
    } else {
        body.to_vec()
    };
    let len = body.len() as i64;
    let grow = len - old;
    let reservation = if grow > 0 {
        let object = format!("{kind}/{name}");
        Some(
            state
                .db
                .reserve_for(quota.id, "object", &object, grow, &state.id)
                .await?
                .ok_or_else(|| quota_full(&quota))?,
        )
    } else {
        None
    };
    let write_name = name.clone();
    state.metrics.received(&session.tenant.login, len as u64);
    if let Err(e) = blocking(move || store.put_meta(meta, &write_name, &body)).await {
        if let Some(reservation) = &reservation {
            state.db.cancel(reservation).await?;
        }
        return Err(e);
    }
    state
        .db
        .put_object(
            quota.id,
            (&kind, &name),
            len,
            (meta == MetaKind::Lock)
                .then(|| headers.get(cloudkeep_api::TASK_HEADER))
                .flatten()
                .and_then(|v| v.to_str().ok()),
            reservation.as_deref().map(|r| (r, grow)),
        )
        .await?;
    if old > len {
        state.db.release(quota.id, old - len).await?;
    }
    Ok(Json(()))
}

async fn delete_object(
    State(state): AppState,
    session: TenantSession,
    Path((repo, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<()>, ApiError> {
    let meta = kind_of(&kind)?;
    if meta != MetaKind::Lock {
        session.may_write()?;
    }
    super::limits::require_task(&state, &session, &headers).await?;
    let (quota, store) = area(&state, &session, &repo).await?;
    crate::session::writable(&quota)?;
    if state
        .db
        .object_size(quota.id, &kind, &name)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "there is no {kind} object \"{name}\""
        )));
    }
    match meta {
        MetaKind::Keyring => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the keyring cannot be deleted",
            ));
        }
        MetaKind::ChunkSet => {
            // A set that a point (live or in the recycle bin) needs stays.
            let mut points = state.db.points(quota.id, false).await?;
            points.extend(state.db.points(quota.id, true).await?);
            for p in points {
                if p.set_name == name {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("chunk set {name} is used by restore point {}", p.name),
                    ));
                }
                let bytes_store = store.clone();
                let set_name = p.set_name.clone();
                let set =
                    blocking(move || bytes_store.get_meta(MetaKind::ChunkSet, &set_name)).await?;
                if ChunkSetFile::decode(&set)
                    .ok()
                    .and_then(|s| s.base)
                    .as_deref()
                    == Some(name.as_str())
                {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("chunk set {name} is the base of restore point {}", p.name),
                    ));
                }
            }
        }
        MetaKind::Index if protection_days(&session) > 0 => {
            // An index file tells where a point's chunks are; under insider protection it is
            // only hidden (a compaction replaced it) and kept until the window ends.
            state.db.retire_object(quota.id, &kind, &name).await?;
            return Ok(Json(()));
        }
        _ => {}
    }
    // The row goes first: a crash after it leaves a file no row names (the storage check
    // removes it), never a listed object whose file is gone.
    if let Some(size) = state.db.delete_object(quota.id, &kind, &name).await? {
        state.db.release(quota.id, size).await?;
    }
    blocking(move || store.delete_meta(meta, &name)).await?;
    Ok(Json(()))
}

/// Removes lock objects whose task has ended or expired: their process is gone (killed, or
/// on a computer that never came back), so they hold nothing any more.
async fn drop_stale_locks(
    state: &GatewayState,
    quota: &Quota,
    store: &Area,
) -> Result<(), ApiError> {
    for (name, bytes) in state.db.stale_locks(quota.id).await? {
        let (remover, file) = (store.clone(), name.clone());
        blocking(move || remover.delete_meta(MetaKind::Lock, &file)).await?;
        if state
            .db
            .delete_object(quota.id, "locks", &name)
            .await?
            .is_some()
        {
            state.db.release(quota.id, bytes).await?;
        }
        tracing::info!(quota = quota.id, lock = %name, "removed a lock whose task is gone");
    }
    Ok(())
}

async fn chunks_present(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
    req: JsonBody<PresenceRequest>,
) -> Result<Json<PresenceResponse>, ApiError> {
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    if req.ids.len() > MAX_PRESENCE_BATCH {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_PRESENCE_BATCH} ids per query"
        )));
    }
    let ids = req
        .ids
        .iter()
        .map(|id| {
            ChunkId::from_hex(id).ok_or_else(|| {
                ApiError::bad_request(format!("\"{id}\" is not a chunk id (64 hex digits)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (quota, _) = area(&state, &session, &repo).await?;
    Ok(Json(PresenceResponse {
        present: state.db.chunks_present(quota.id, &ids).await?,
    }))
}

async fn list_packs(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
) -> Result<Json<Vec<cloudkeep_api::PackInfo>>, ApiError> {
    let (quota, _) = area(&state, &session, &repo).await?;
    let rows = state.db.packs(quota.id).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// `PUT /v1/repos/{repo}/packs/{id}`: body = the pack's chunk ids (32 bytes each, as many as
/// the `x-cloudkeep-chunks` header says) followed by the pack. Streamed to a temporary file,
/// checked against its declared length and its id (BLAKE3), counted against the quota before a
/// byte is stored, and made visible only when complete.
///
/// An answer given before the body was read (refused, or the pack is already stored) first
/// reads the body to its end: over HTTP/1.1 a server that closes with unread bytes resets
/// the connection, and the client would see "connection reset" instead of the reason.
async fn upload_pack(
    State(state): AppState,
    session: Result<TenantSession, ApiError>,
    Path((repo, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<()>, ApiError> {
    let login = session
        .as_ref()
        .map(|s| s.tenant.login.clone())
        .unwrap_or_default();
    let admitted = match session {
        Ok(session) => match session.may_write() {
            Ok(()) => admit_pack(&state, &session, &repo, &id, &headers).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let upload = match admitted {
        Ok(Some(upload)) => upload,
        Ok(None) => {
            drain(body).await;
            return Ok(Json(()));
        }
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let (quota, pack_len) = (&upload.quota, upload.pack_len);
    let stored = receive_pack(
        &upload.store,
        &upload.pack,
        &upload.reservation,
        body,
        (upload.ids_len, pack_len),
        upload.bucket.clone(),
        std::time::Duration::from_secs(state.limits.body_idle_secs.max(1)),
    )
    .await;
    match stored {
        Ok(declared) => {
            let (chunk_ids, lens) = declared_chunks(&declared, declared_entry(&headers) == 36);
            let recorded = state
                .db
                .add_pack(
                    quota.id,
                    &id,
                    pack_len as i64,
                    (&chunk_ids, lens.as_deref()),
                    Some(&upload.reservation),
                )
                .await;
            if let Err(e) = recorded {
                // The file is in place but no row names it: the storage check removes it.
                state.db.cancel(&upload.reservation).await?;
                return Err(e.into());
            }
            state.metrics.received(&login, pack_len + upload.ids_len);
            Ok(Json(()))
        }
        Err(e) => {
            state.db.cancel(&upload.reservation).await?;
            Err(e)
        }
    }
}

/// An upload let in: its bytes are reserved in the quota.
struct PackUpload {
    quota: Quota,
    reservation: String,
    store: Area,
    pack: PackId,
    ids_len: u64,
    pack_len: u64,
    bucket: Option<Arc<super::limits::Bucket>>,
}

/// The checks before a pack's bytes are read: its headers, the task, the quota. `None`: the
/// pack is already stored.
async fn admit_pack(
    state: &GatewayState,
    session: &TenantSession,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Option<PackUpload>, ApiError> {
    let pack = pack_id(id)?;
    let (ids_len, pack_len) = upload_lengths(headers)?;
    super::limits::require_task(state, session, headers).await?;
    let (quota, store, stored) = area_and_pack(state, session, repo, id).await?;
    if stored.is_some() {
        return Ok(None);
    }
    crate::session::writable(&quota)?;
    if state.db.object_count(quota.id, "packs").await? >= object_cap("packs") {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "\"{}\" already holds {} packs, the most a repository may",
                quota.friendly_name,
                object_cap("packs")
            ),
        ));
    }
    let bucket = state.bucket_for(session).await;
    let reservation = state
        .db
        .reserve_for(quota.id, "pack", id, pack_len as i64, &state.id)
        .await?
        .ok_or_else(|| quota_full(&quota))?;
    Ok(Some(PackUpload {
        quota,
        reservation,
        store,
        pack,
        ids_len,
        pack_len,
        bucket,
    }))
}

/// The lengths of a pack upload's two parts, from its headers: the chunk ids (32 bytes each,
/// as many as `x-cloudkeep-chunks` says) and the pack (the rest of `Content-Length`, at most
/// [`cloudkeep_repo::pack::MAX_PACK_LEN`]).
pub fn upload_lengths(headers: &HeaderMap) -> Result<(u64, u64), ApiError> {
    let declared: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("a pack upload needs a Content-Length"))?;
    let count: u64 = headers
        .get(CHUNKS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("a pack upload needs the {CHUNKS_HEADER} header"))
        })?;
    let ids_len = count
        .checked_mul(declared_entry(headers))
        .filter(|&n| n < declared)
        .ok_or_else(|| ApiError::bad_request("the chunk count does not fit the body"))?;
    let pack_len = declared - ids_len;
    if pack_len > cloudkeep_repo::pack::MAX_PACK_LEN {
        return Err(ApiError::bad_request(format!(
            "a pack is at most {} bytes",
            cloudkeep_repo::pack::MAX_PACK_LEN
        )));
    }
    Ok((ids_len, pack_len))
}

/// Bytes per declared chunk of a pack upload: its id, and its stored length when the client
/// sends lengths ([`CHUNK_LENS_HEADER`]).
fn declared_entry(headers: &HeaderMap) -> u64 {
    if headers.get(CHUNK_LENS_HEADER).is_some_and(|v| v == "1") {
        36
    } else {
        32
    }
}

/// The chunk ids of a pack upload's declared part, and their stored lengths when sent.
fn declared_chunks(raw: &[u8], with_lens: bool) -> (Vec<ChunkId>, Option<Vec<u32>>) {
    let count = raw.len() / if with_lens { 36 } else { 32 };
    let ids = raw[..count * 32]
        .chunks_exact(32)
        .map(|id| {
            let mut one = [0u8; 32];
            one.copy_from_slice(id);
            ChunkId(one)
        })
        .collect();
    let lens = with_lens.then(|| {
        raw[count * 32..]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    });
    (ids, lens)
}

/// Reads and drops what is left of a request body: at most a pack's worth of ids and bytes,
/// for at most [`DRAIN_FOR`], so a refused client cannot hold the connection.
async fn drain(body: Body) {
    drain_stream(&mut body.into_data_stream()).await;
}

/// [`drain`] of a body already partly read.
async fn drain_stream(stream: &mut axum::body::BodyDataStream) {
    let limit = cloudkeep_repo::pack::MAX_PACK_LEN + (1 << 20);
    let mut seen: u64 = 0;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while let Some(Ok(frame)) = stream.next().await {
            seen += frame.len() as u64;
            if seen > limit {
                break;
            }
        }
    })
    .await;
}

/// How long a refused upload's body is read before the connection is dropped.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// An upload in progress and the hash of what it holds so far.
type Writer = (Box<dyn Upload>, blake3::Hasher);
/// A buffer being hashed and written on a blocking thread.
type WriteJob = tokio::task::JoinHandle<Result<Writer, StoreError>>;

/// Hands `buffer` to a blocking thread that hashes and writes it.
fn flush(buffer: Vec<u8>, writer: &mut Option<Writer>) -> Result<WriteJob, ApiError> {
    let (mut upload, mut hasher) = writer
        .take()
        .ok_or_else(|| ApiError::internal("the upload's writer was lost"))?;
    Ok(tokio::task::spawn_blocking(move || {
        hasher.update(&buffer);
        if let Err(e) = upload.write(&buffer) {
            upload.abort();
            return Err(e);
        }
        Ok((upload, hasher))
    }))
}

/// Waits for a write job.
async fn written(job: WriteJob) -> Result<Writer, ApiError> {
    job.await
        .map_err(ApiError::internal)?
        .map_err(super::session::store_err)
}

/// Streams an upload's body (`lens`: the bytes of chunk ids, then of the pack) into the
/// storage area ([`PackUpload`]: a temporary file, or a multipart upload), checks it and
/// makes it visible; a body that stops sending for `idle` is cut off.
async fn receive_pack(
    store: &Area,
    pack: &PackId,
    reservation: &str,
    body: Body,
    (ids_len, pack_len): (u64, u64),
    bucket: Option<Arc<super::limits::Bucket>>,
    idle: std::time::Duration,
) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let begin_store = store.clone();
    let name = reservation.to_owned();
    let id = *pack;
    let upload = match blocking(move || begin_store.begin_upload(&name, &id)).await {
        Ok(upload) => upload,
        Err(e) => {
            drain_stream(&mut stream).await;
            return Err(e);
        }
    };
    // The upload, while no write job holds it (for aborting on failure).
    let mut writer: Option<Writer> = Some((upload, blake3::Hasher::new()));
    let mut pending: Option<WriteJob> = None;
    let result: Result<(Vec<u8>, Box<dyn Upload>), ApiError> = async {
        // Frames are gathered into large buffers; each full buffer is hashed and written on a
        // blocking thread while the next one arrives (one hand-off per 8 MiB, not per frame).
        let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BUFFER);
        let mut ids = Vec::with_capacity(ids_len as usize);
        let mut received: u64 = 0;
        loop {
            let frame = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "the upload sent nothing for {} s and was cut off; send it again",
                        idle.as_secs()
                    )));
                }
            };
            let frame = frame.map_err(|e| ApiError::bad_request(format!("the upload was cut off: {e}")))?;
            if let Some(bucket) = &bucket {
                bucket.take(frame.len()).await;
            }
            let mut data: &[u8] = &frame;
            if (ids.len() as u64) < ids_len {
                let take = ((ids_len - ids.len() as u64) as usize).min(data.len());
                ids.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            received += data.len() as u64;
            if received > pack_len {
                return Err(ApiError::bad_request("the upload is longer than declared"));
            }
            buffer.extend_from_slice(data);
            if buffer.len() >= WRITE_BUFFER {
                if let Some(job) = pending.take() {
                    writer = Some(written(job).await?);
                }
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(WRITE_BUFFER));
                pending = Some(flush(full, &mut writer)?);
            }
        }
        if let Some(job) = pending.take() {
            writer = Some(written(job).await?);
        }
        if received != pack_len || (ids.len() as u64) != ids_len {
            return Err(ApiError::bad_request(format!(
                "the upload was cut off: {received} of {pack_len} pack bytes arrived; send it again"
            )));
        }
        let last = flush(buffer, &mut writer)?;
        let (upload, hasher) = written(last).await?;
        if hasher.finalize().as_bytes() != &pack.0 {
            writer = Some((upload, blake3::Hasher::new()));
            return Err(ApiError::bad_request(
                "the pack's bytes do not match its id (BLAKE3); it was damaged on the way: send it again",
            ));
        }
        Ok((ids, upload))
    }
    .await;
    match result {
        Ok((ids, upload)) => {
            blocking(move || upload.finish()).await?;
            Ok(ids)
        }
        Err(e) => {
            // A write job still running holds the upload: wait for it, then abort.
            if let Some(job) = pending.take()
                && let Ok(Ok(w)) = job.await
            {
                writer = Some(w);
            }
            if let Some((upload, _)) = writer.take() {
                let _ = tokio::task::spawn_blocking(move || upload.abort()).await;
            }
            // A failure of ours (a full disk) is answered after the rest of the body is read,
            // so that the client sees the reason, not a reset connection; a client that
            // stopped sending or sent too much is not waited for.
            if e.code != ErrorCode::BadRequest {
                drain_stream(&mut stream).await;
            }
            Err(e)
        }
    }
}

async fn list_points(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
) -> Result<Json<Vec<cloudkeep_api::PointInfo>>, ApiError> {
    let (quota, _) = area(&state, &session, &repo).await?;
    let rows = state.db.points(quota.id, false).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

async fn get_point(
    State(state): AppState,
    session: TenantSession,
    Path((repo, name)): Path<(String, String)>,
) -> Result<Vec<u8>, ApiError> {
    let (quota, store) = area(&state, &session, &repo).await?;
    if !state
        .db
        .points(quota.id, false)
        .await?
        .iter()
        .any(|p| p.name == name)
    {
        return Err(ApiError::not_found(format!(
            "there is no restore point {name}"
        )));
    }
    blocking(move || store.get_meta(MetaKind::Point, &name)).await
}

/// The ids a stored chunk set lists (resolving a delta against its base), hex.
/// The chunk ids a point with chunk set `name` needs checked: every id of the set, or, for a
/// delta whose full base set a committed point already names (so its chunks were checked
/// and are kept), only the ids the delta adds.
async fn ids_to_check(
    state: &GatewayState,
    quota: i64,
    store: &Area,
    name: &str,
) -> Result<Vec<ChunkId>, ApiError> {
    if state.db.set_committed(quota, name).await? {
        return Ok(Vec::new());
    }
    let load = |name: String| {
        let store = store.clone();
        async move {
            let bytes = blocking(move || store.get_meta(MetaKind::ChunkSet, &name)).await?;
            ChunkSetFile::decode(&bytes)
                .map_err(|e| ApiError::bad_request(format!("chunk set: {e}")))
        }
    };
    let set = load(name.to_owned()).await?;
    let ids = match &set.base {
        None => set.added,
        Some(base_name) => {
            let base = load(base_name.clone()).await?;
            if base.base.is_some() {
                return Err(ApiError::bad_request(
                    "a chunk set's base must be a full set",
                ));
            }
            let all = set
                .apply(&base.added)
                .map_err(|e| ApiError::bad_request(format!("chunk set: {e}")))?;
            if state.db.set_committed(quota, base_name).await? {
                set.added
            } else {
                all
            }
        }
    };
    Ok(ids)
}

/// `PUT /v1/repos/{repo}/points/{name}`: commits a restore point. Refused unless its chunk set
/// is stored and every chunk it lists is in a stored pack; the point becomes visible at once,
/// whole, or not at all.
async fn commit_point(
    State(state): AppState,
    session: TenantSession,
    Path((repo, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<()>, ApiError> {
    session.may_write()?;
    let body = body.map_err(too_large)?;
    super::limits::require_task(&state, &session, &headers).await?;
    if blake3::hash(&body).to_hex().as_str() != name {
        return Err(ApiError::bad_request(
            "a restore point's name must be the BLAKE3 of its bytes",
        ));
    }
    let (time_ns, set) = cloudkeep_repo::repo::point_clear_part(&body)
        .map_err(|e| ApiError::bad_request(format!("the restore point is not valid: {e}")))?;
    let (quota, store) = area(&state, &session, &repo).await?;
    crate::session::writable(&quota)?;
    if state
        .db
        .object_size(quota.id, "sets", &set)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the point's chunk set {set} is not stored; upload it first"),
        ));
    }
    let ids = ids_to_check(&state, quota.id, &store, &set).await?;
    let present = state.db.chunks_present(quota.id, &ids).await?;
    let missing: Vec<&ChunkId> = ids
        .iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(id, _)| id)
        .collect();
    if let Some(first) = missing.first() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "refusing the restore point: {} of its {} chunks are not stored (first: {first}); upload them and commit again",
                missing.len(),
                ids.len()
            ),
        ));
    }
    if state
        .db
        .points(quota.id, false)
        .await?
        .iter()
        .any(|p| p.name == name)
    {
        return Ok(Json(())); // committed already (a retry)
    }
    if state.db.object_count_points(quota.id).await? >= object_cap("points") {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "\"{}\" already holds {} restore points, the most a repository may; delete old ones first",
                quota.friendly_name,
                object_cap("points")
            ),
        ));
    }
    let len = body.len() as i64;
    let reservation = state
        .db
        .reserve_for(quota.id, "point", &name, len, &state.id)
        .await?
        .ok_or_else(|| quota_full(&quota))?;
    let write_name = name.clone();
    if let Err(e) = blocking(move || store.put_meta(MetaKind::Point, &write_name, &body)).await {
        state.db.cancel(&reservation).await?;
        return Err(e);
    }
    if let Err(e) = state
        .db
        .add_point(quota.id, &name, time_ns, &set, len, Some(&reservation))
        .await
    {
        state.db.cancel(&reservation).await?;
        return Err(e.into());
    }
    crate::object_lock::after_commit(state.clone(), quota, protection_days(&session));
    Ok(Json(()))
}

async fn delete_point(
    State(state): AppState,
    session: TenantSession,
    Path((repo, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<()>, ApiError> {
    session.may_write()?;
    super::limits::require_task(&state, &session, &headers).await?;
    let (quota, store) = area(&state, &session, &repo).await?;
    crate::session::writable(&quota)?;
    let Some(point) = state
        .db
        .points(quota.id, false)
        .await?
        .into_iter()
        .find(|p| p.name == name)
    else {
        return Err(ApiError::not_found(format!(
            "there is no restore point {name}"
        )));
    };
    if protection_days(&session) > 0 {
        // Insider protection: gone for the tenant, kept by the SP for `keep_days`.
        state.db.recycle_point(quota.id, &name).await?;
        state.db.shift_to_recycle(quota.id, point.bytes).await?;
    } else {
        // Row first, file second (see `delete_object`).
        state.db.purge_point(quota.id, &point.name).await?;
        state.db.release(quota.id, point.bytes).await?;
        blocking(move || store.delete_meta(MetaKind::Point, &name)).await?;
    }
    Ok(Json(()))
}
