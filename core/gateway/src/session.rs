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
use crate::storage::s3::S3Bucket;
use crate::storage::{Area, S3Credentials, folder_area, s3_area};
use crate::store::now_ms;
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
            let area = state.store_for(&quota).await?;
            state.stores.forget(quota.id).await;
            blocking(move || area.remove_all()).await?;
        }
    }
    Ok(())
}

/// The session's quota named `repo` and its storage area.
pub(crate) async fn area(
    state: &GatewayState,
    session: &TenantSession,
    repo: &str,
) -> Result<(Quota, Area), ApiError> {
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
) -> Result<(Quota, Area, Option<u64>), ApiError> {
    let found = state.db.quota_and_pack(session.tenant.id, repo, id).await?;
    let (quota, pack) = found.ok_or_else(|| no_repo(repo))?;
    let store = state.store_for(&quota).await?;
    Ok((quota, store, pack))
}

pub(crate) fn no_repo(repo: &str) -> ApiError {
    ApiError::not_found(format!("you have no cloud repository \"{repo}\""))
}

pub(crate) fn store_err(e: StoreError) -> ApiError {
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

/// Open storage areas per quota, and object-store clients per repository. A folder area is
/// opened once per gateway process (opening removes its temporary files, which must never
/// happen under an upload in flight); a bucket's client (its connection pool) serves every
/// area of its repository.
#[derive(Debug, Default)]
pub struct Stores {
    areas: tokio::sync::Mutex<HashMap<(i64, String), Area>>,
    buckets: tokio::sync::Mutex<HashMap<String, Arc<S3Bucket>>>,
    /// The gateways' secrets key (`gateway.toml`): opens object-store credentials.
    secrets_key: Option<zeroize::Zeroizing<[u8; 32]>>,
}

impl Stores {
    /// Stores that open object-store credentials with `secrets_key`.
    pub fn new(secrets_key: Option<zeroize::Zeroizing<[u8; 32]>>) -> Self {
        Self {
            secrets_key,
            ..Self::default()
        }
    }

    /// Forgets the client of repository `repo` and its open areas (what its bucket said of
    /// object lock changed: the next client is made to match).
    pub async fn forget_repo(&self, repo: &str) {
        self.buckets.lock().await.remove(repo);
        self.areas.lock().await.retain(|(_, name), _| name != repo);
    }

    /// Forgets the open areas of a quota (its data was removed or moved).
    pub async fn forget(&self, quota: i64) {
        self.areas.lock().await.retain(|(id, _), _| *id != quota);
    }

    /// Seals a secret for the database (hex), bound to `label` (what it is).
    pub fn seal_secret(&self, label: &str, secret: &str) -> Result<String, ApiError> {
        let key = self.secrets_key.as_ref().ok_or_else(no_secrets_key)?;
        cloudkeep_repo::crypto::seal_with_key(key, label.as_bytes(), secret.as_bytes())
            .map(hex::encode)
            .map_err(ApiError::internal)
    }

    /// Opens a secret [`Self::seal_secret`] sealed under `label`.
    pub fn open_secret(&self, label: &str, sealed: &str) -> Result<String, ApiError> {
        let key = self.secrets_key.as_ref().ok_or_else(no_secrets_key)?;
        let wrong = || {
            ApiError::internal(format!(
                "the stored {label} does not open with this gateway's secrets key: set it again"
            ))
        };
        let bytes = hex::decode(sealed).map_err(|_| wrong())?;
        let text = cloudkeep_repo::crypto::open_with_key(key, label.as_bytes(), &bytes)
            .map_err(|_| wrong())?;
        String::from_utf8(text.to_vec()).map_err(|_| wrong())
    }

    /// Seals object-store credentials for the database (hex), bound to the repository's name.
    pub fn seal_credentials(&self, repo: &str, access: &S3Credentials) -> Result<String, ApiError> {
        let key = self.secrets_key.as_ref().ok_or_else(no_secrets_key)?;
        let text =
            zeroize::Zeroizing::new(format!("{}\n{}", access.access_key, *access.secret_key));
        cloudkeep_repo::crypto::seal_with_key(key, repo.as_bytes(), text.as_bytes())
            .map(hex::encode)
            .map_err(ApiError::internal)
    }

    fn open_credentials(&self, repo: &str, sealed: &str) -> Result<S3Credentials, ApiError> {
        let key = self.secrets_key.as_ref().ok_or_else(no_secrets_key)?;
        let wrong = || {
            ApiError::internal(format!(
                "the credentials of cloud repository \"{repo}\" do not open with this gateway's secrets key: copy secrets_key from the gateway.toml of the gateway that added it"
            ))
        };
        let bytes = hex::decode(sealed).map_err(|_| wrong())?;
        let text = cloudkeep_repo::crypto::open_with_key(key, repo.as_bytes(), &bytes)
            .map_err(|_| wrong())?;
        let text = std::str::from_utf8(&text).map_err(|_| wrong())?;
        let (access_key, secret_key) = text.split_once('\n').ok_or_else(wrong)?;
        Ok(S3Credentials {
            access_key: access_key.to_owned(),
            secret_key: zeroize::Zeroizing::new(secret_key.to_owned()),
        })
    }
}

fn no_secrets_key() -> ApiError {
    ApiError::internal(
        "this gateway has no secrets key for object-storage credentials: run it once with a gateway.toml written by this version",
    )
}

/// Refuses a write while the quota is being switched to another repository: the client
/// sends it again a moment later, when it lands in the new one.
pub(crate) fn writable(quota: &Quota) -> Result<(), ApiError> {
    if quota.moving {
        return Err(ApiError::new(
            ErrorCode::Busy,
            format!(
                "\"{}\" is being moved to other storage by your service provider; this write succeeds when sent again in a few seconds",
                quota.friendly_name
            ),
        ));
    }
    Ok(())
}

impl GatewayState {
    /// The storage area of a quota (on the repository it is on now: after a move, the new
    /// one's).
    pub async fn store_for(&self, quota: &Quota) -> Result<Area, ApiError> {
        let key = (quota.id, quota.repo_name.clone());
        let mut areas = self.stores.areas.lock().await;
        if let Some(area) = areas.get(&key) {
            return Ok(area.clone());
        }
        let repo = self.db.repo_by_name(&quota.repo_name).await?;
        let area = self.open_area(&repo, quota.id).await?;
        areas.insert(key, area.clone());
        Ok(area)
    }

    /// Quota `quota_id`'s area in repository `repo`, opened (not kept: a move's target).
    pub async fn open_area(
        &self,
        repo: &cloudkeep_api::CloudRepo,
        quota_id: i64,
    ) -> Result<Area, ApiError> {
        Ok(match &repo.s3 {
            None => {
                let path = folder_area(repo, quota_id);
                Arc::new(blocking(move || FolderStore::open(path)).await?)
            }
            Some(target) => {
                let bucket = self.bucket(&repo.name, target).await?;
                Arc::new(bucket.area(s3_area(target, quota_id)))
            }
        })
    }

    /// The client of an object-storage repository, made once per process.
    pub async fn bucket(
        &self,
        repo: &str,
        target: &cloudkeep_api::S3Target,
    ) -> Result<Arc<S3Bucket>, ApiError> {
        let mut buckets = self.stores.buckets.lock().await;
        if let Some(bucket) = buckets.get(repo) {
            return Ok(bucket.clone());
        }
        let sealed = self.db.repo_secret(repo).await?.ok_or_else(|| {
            ApiError::internal(format!("cloud repository \"{repo}\" has no credentials"))
        })?;
        let credentials = self.stores.open_credentials(repo, &sealed)?;
        let locked = self
            .db
            .repo_by_name(repo)
            .await?
            .object_lock
            .is_some_and(|lock| lock.immutable());
        let bucket =
            Arc::new(S3Bucket::connect_with(target, &credentials, locked).map_err(store_err)?);
        buckets.insert(repo.to_owned(), bucket.clone());
        Ok(bucket)
    }
}
