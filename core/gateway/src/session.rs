//! What every tenant-API handler shares: the session extractor ([`TenantSession`]: the
//! account taken from the token, still enabled, its lease not expired), the session's quota
//! and its storage area, and running storage work off the async threads ([`blocking`]).
//!
//! Invariant: every call is scoped by the account taken from the session, never from the
//! request; another account's repository is `not_found` ([`no_repo`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;

use crate::GatewayState;
use crate::auth;
use crate::error::ApiError;
use crate::store::now_ms;
use crate::tenant_area;
use cloudkeep_api::{ErrorCode, LeaseState, Quota, Tenant};
use cloudkeep_repo::backend::StoreError;
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::pack::PackId;

pub(crate) type AppState = State<Arc<GatewayState>>;

pub(crate) type JsonBody<T> = Result<Json<T>, JsonRejection>;

/// A tenant's (or subtenant's) session, checked on every request: the account must still be
/// enabled and its lease (its tenant's, for a subtenant) running — or ended less than the SP's
/// grace period ago, when it may restore but not back up ([`TenantSession::may_write`]).
#[derive(Debug, Clone)]
pub struct TenantSession {
    /// The account.
    pub tenant: Tenant,
    /// A subtenant's tenant (its lease and bandwidth apply to the subtenant too).
    pub parent: Option<Tenant>,
    /// Set when a lease has ended within the grace period: writes are refused, reads work.
    pub restore_only: Option<RestoreOnly>,
}

/// An account whose lease ended less than the grace period ago.
#[derive(Debug, Clone)]
pub struct RestoreOnly {
    /// The account whose lease ended (the subtenant's tenant, perhaps).
    pub login: String,
    /// When the lease ended.
    pub ended_ms: i64,
    /// When restores stop too.
    pub restore_until_ms: i64,
}

impl TenantSession {
    /// Refuses a write (a pack, an index, a point, a deletion, a subtenant or policy change)
    /// once the lease has ended; lock objects and tasks stay allowed, a restore needs them.
    pub fn may_write(&self) -> Result<(), ApiError> {
        match &self.restore_only {
            Some(r) => Err(ApiError::new(
                ErrorCode::LeaseExpired,
                format!(
                    "the lease of \"{}\" ended on {}: backups are refused, restores and browsing work until {}; contact your service provider to extend it",
                    r.login,
                    cloudkeep_model::units::date_time_text(r.ended_ms),
                    cloudkeep_model::units::date_time_text(r.restore_until_ms)
                ),
            )),
            None => Ok(()),
        }
    }
}

/// What an account may do now: `Ok(None)` everything, `Ok(Some(..))` read only (its lease,
/// or its tenant's, ended within the grace period; the earliest end of restores wins), `Err`
/// nothing.
async fn access(
    state: &GatewayState,
    tenant: &Tenant,
    parent: Option<&Tenant>,
) -> Result<Option<RestoreOnly>, ApiError> {
    let now = now_ms();
    let mut restore_only: Option<RestoreOnly> = None;
    for account in std::iter::once(tenant).chain(parent) {
        if !account.settings.enabled {
            return Err(ApiError::new(
                ErrorCode::AccountDisabled,
                format!(
                    "the account \"{}\" is disabled; contact your service provider",
                    account.login
                ),
            ));
        }
        if account.settings.lease_at(now, u32::MAX) == LeaseState::Running {
            continue;
        }
        // Only an ended lease asks the database for the grace period.
        let grace = state.db.lease_grace_days().await?;
        match account.settings.lease_at(now, grace) {
            LeaseState::Running => {}
            LeaseState::RestoreOnly {
                ended_ms,
                restore_until_ms,
            } => {
                if restore_only
                    .as_ref()
                    .is_none_or(|r| restore_until_ms < r.restore_until_ms)
                {
                    restore_only = Some(RestoreOnly {
                        login: account.login.clone(),
                        ended_ms,
                        restore_until_ms,
                    });
                }
            }
            LeaseState::Over { ended_ms } => {
                return Err(ApiError::new(
                    ErrorCode::LeaseExpired,
                    format!(
                        "the lease of \"{}\" ended on {} and its time for restores is over too; contact your service provider to extend it",
                        account.login,
                        cloudkeep_model::units::date_time_text(ended_ms)
                    ),
                ));
            }
        }
    }
    Ok(restore_only)
}

/// Whether `tenant` may log in (and with what access).
pub(crate) async fn check_account(
    state: &GatewayState,
    tenant: &Tenant,
) -> Result<Option<RestoreOnly>, ApiError> {
    let parent = match tenant.parent {
        Some(id) => Some(state.db.tenant(id).await?),
        None => None,
    };
    access(state, tenant, parent.as_ref()).await
}

impl FromRequestParts<Arc<GatewayState>> for TenantSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, Self::Rejection> {
        let token = auth::bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("log in first (no session token was sent)"))?;
        // One statement: this runs before every request, pack range reads included.
        let (tenant, parent) = state.db.tenant_session(token).await?.ok_or_else(|| {
            ApiError::unauthorized("the session has expired or its account is gone; log in again")
        })?;
        let (tenant, parent) = match parts.headers.get(cloudkeep_api::ACT_AS_HEADER) {
            None => (tenant, parent),
            Some(sub) => act_as(state, tenant, parent, sub).await?,
        };
        let restore_only = access(state, &tenant, parent.as_ref()).await?;
        if tenant
            .last_activity_ms
            .is_none_or(|t| now_ms() - t > 60_000)
        {
            state.db.touch_tenant(tenant.id).await?;
        }
        Ok(Self {
            tenant,
            parent,
            restore_only,
        })
    }
}

/// A tenant's session acting for its own subtenant `sub` ([`cloudkeep_api::ACT_AS_HEADER`]):
/// the subtenant, with the tenant as its parent. A subtenant acts for no one, and a name is
/// only ever looked up below the session's own tenant.
async fn act_as(
    state: &GatewayState,
    tenant: Tenant,
    parent: Option<Tenant>,
    sub: &axum::http::HeaderValue,
) -> Result<(Tenant, Option<Tenant>), ApiError> {
    if parent.is_some() || tenant.parent.is_some() {
        return Err(ApiError::unauthorized(
            "a subtenant cannot act for another account; log in as the tenant",
        ));
    }
    let name = sub
        .to_str()
        .ok()
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| ApiError::bad_request("the subtenant to act for is not a name"))?;
    let login = format!("{}/{name}", tenant.login);
    let (sub, _) = state
        .db
        .tenant_by_login(&login)
        .await?
        .filter(|(t, _)| t.parent == Some(tenant.id))
        .ok_or_else(|| ApiError::not_found(format!("there is no subtenant \"{login}\"")))?;
    Ok((sub, Some(tenant)))
}

pub(crate) fn only_tenants(session: &TenantSession) -> Result<(), ApiError> {
    if session.tenant.parent.is_some() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "only the tenant itself manages subtenants, not a subtenant",
        ));
    }
    Ok(())
}

/// Removes the stored data of every quota of `accounts` (their storage areas), before the
/// accounts themselves are deleted.
pub(crate) async fn remove_areas(state: &GatewayState, accounts: &[i64]) -> Result<(), ApiError> {
    for account in accounts {
        for quota in state.db.quotas_of(*account).await? {
            state.stores.0.lock().await.remove(&quota.id);
            let repo = state.db.repo_by_name(&quota.repo_name).await?;
            let area = tenant_area(&repo, quota.id);
            match tokio::fs::remove_dir_all(&area).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ApiError::internal(format!(
                        "removing {}: {e}",
                        area.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The session's quota named `repo` and its storage area.
pub(crate) async fn area(
    state: &GatewayState,
    session: &TenantSession,
    repo: &str,
) -> Result<(Quota, Arc<FolderStore>), ApiError> {
    let quota = state.db.quota_named(session.tenant.id, repo).await?;
    let quota = quota.ok_or_else(|| no_repo(repo))?;
    let store = state.store_for(&quota).await?;
    Ok((quota, store))
}

/// [`area`] and the size of its pack `id` if it is stored, in one statement (pack reads and
/// uploads run it once per request).
pub(crate) async fn area_and_pack(
    state: &GatewayState,
    session: &TenantSession,
    repo: &str,
    id: &str,
) -> Result<(Quota, Arc<FolderStore>, Option<u64>), ApiError> {
    let found = state.db.quota_and_pack(session.tenant.id, repo, id).await?;
    let (quota, pack) = found.ok_or_else(|| no_repo(repo))?;
    let store = state.store_for(&quota).await?;
    Ok((quota, store, pack))
}

pub(crate) fn no_repo(repo: &str) -> ApiError {
    ApiError::not_found(format!("you have no cloud repository \"{repo}\""))
}

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } | StoreError::NotFoundMeta { .. } => {
            ApiError::not_found(e.to_string())
        }
        StoreError::BadName { .. }
        | StoreError::OutOfRange { .. }
        | StoreError::TooLarge { .. } => ApiError::bad_request(e.to_string()),
        StoreError::Io { source, .. } if crate::error::is_full(&source) => ApiError::storage_full(),
        StoreError::Io { .. } | StoreError::Refused { .. } => ApiError::internal(e),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(store_err)
}

/// The insider protection of an account: its own days or its tenant's, the longer. The one
/// rule the recycle bin, the keyring, subtenant deletion and space reclamation all apply.
pub(crate) fn keep_days(tenant: &Tenant, parent: Option<&Tenant>) -> i64 {
    parent
        .map_or(0, |p| p.settings.keep_deleted_days)
        .max(tenant.settings.keep_deleted_days)
}

/// [`keep_days`] of a session's account.
pub(crate) fn protection_days(session: &TenantSession) -> i64 {
    keep_days(&session.tenant, session.parent.as_ref())
}

/// [`keep_days`] of an account read from the database (its tenant looked up).
pub(crate) async fn account_keep_days(
    state: &GatewayState,
    tenant: &Tenant,
) -> Result<i64, ApiError> {
    let parent = match tenant.parent {
        Some(parent) => Some(state.db.tenant(parent).await?),
        None => None,
    };
    Ok(keep_days(tenant, parent.as_ref()))
}

pub(crate) fn pack_id(id: &str) -> Result<PackId, ApiError> {
    PackId::from_hex(id)
        .ok_or_else(|| ApiError::bad_request(format!("\"{id}\" is not a pack id (64 hex digits)")))
}

/// Open folder stores per quota: opening one removes its temporary files, which must never
/// happen under an upload in flight, so each is opened once per gateway process.
#[derive(Debug, Default)]
pub struct Stores(tokio::sync::Mutex<HashMap<i64, Arc<FolderStore>>>);

impl GatewayState {
    /// The storage area of a quota.
    pub async fn store_for(&self, quota: &Quota) -> Result<Arc<FolderStore>, ApiError> {
        let mut stores = self.stores.0.lock().await;
        if let Some(store) = stores.get(&quota.id) {
            return Ok(store.clone());
        }
        let repo = self.db.repo_by_name(&quota.repo_name).await?;
        let path = tenant_area(&repo, quota.id);
        let store = Arc::new(blocking(move || FolderStore::open(path)).await?);
        stores.insert(quota.id, store.clone());
        Ok(store)
    }
}
