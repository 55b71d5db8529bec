//! Cloud repositories in the SP admin API (`/v1/admin/repos…`): list, add (a folder on the
//! gateway's machine, or a bucket of an S3-compatible object store, tried before it is
//! accepted), test an object store's connection without adding it, edit (title, capacity),
//! take out of service and back, and remove (refused while a quota is on it); and
//! [`check_placement`], the rule every new or grown tenant quota passes (the repository in
//! service, its capacity not exceeded). Every change is audited; an object store's
//! credentials are sealed before they reach the database and are never logged, audited or
//! sent back.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::auth::AdminSession;
use super::error::ApiError;
use super::session::JsonBody;
use crate::GatewayState;
use crate::storage::S3Credentials;
use crate::storage::s3::S3Bucket;
use crate::store::repos::NewRepo;
use cloudkeep_api::{
    CloudRepo, NewCloudRepo, ProbeStep, QuotaSpec, RepoEdit, S3Access, StorageProbe,
};
use cloudkeep_model::units::Limit;

type AppState = State<Arc<GatewayState>>;

/// The repository routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/repos", get(list_repos).post(add_repo))
        .route("/v1/admin/repos/test", post(test_repo))
        .route("/v1/admin/repos/{name}", put(edit_repo).delete(remove_repo))
}

fn body<T>(b: JsonBody<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(super::error::from_rejection)
}

async fn list_repos(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<CloudRepo>>, ApiError> {
    Ok(Json(state.db.repos().await?))
}

fn credentials(access: &S3Access) -> S3Credentials {
    S3Credentials {
        access_key: access.access_key.clone(),
        secret_key: zeroize::Zeroizing::new(access.secret_key.clone()),
    }
}

/// Tries an object store: each step, in order, until one fails.
async fn probe(access: &S3Access) -> Result<StorageProbe, ApiError> {
    access.target.check().map_err(ApiError::bad_request)?;
    if access.access_key.is_empty() || access.secret_key.is_empty() {
        return Err(ApiError::bad_request(
            "give both the access key and the secret key of the object store",
        ));
    }
    let (target, credentials) = (access.target.clone(), credentials(access));
    let (steps, object_lock) = tokio::task::spawn_blocking(move || {
        // Object lock first: the writes are tried as the gateway will make them there.
        let plain = S3Bucket::connect(&target, &credentials)?;
        let lock = plain.object_lock();
        let bucket = match &lock {
            Ok(lock) if lock.immutable() => S3Bucket::connect_with(&target, &credentials, true)?,
            _ => plain,
        };
        let steps = bucket.probe();
        let reached = steps.iter().all(|(_, outcome)| outcome.is_ok());
        Ok::<_, cloudkeep_repo::backend::StoreError>((steps, reached.then_some(lock)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut steps: Vec<ProbeStep> = steps
        .into_iter()
        .map(|(what, outcome)| ProbeStep {
            what,
            error: outcome.err(),
        })
        .collect();
    let object_lock = match object_lock {
        Some(Ok(lock)) => Some(lock),
        Some(Err(e)) => {
            // Whether data there can be made immutable must be known before it is used.
            steps.push(ProbeStep {
                what: "ask whether the bucket has object lock".to_owned(),
                error: Some(e),
            });
            None
        }
        None => None,
    };
    let ok = steps.len() >= 5 && steps.iter().all(|s| s.error.is_none());
    Ok(StorageProbe {
        steps,
        ok,
        object_lock,
    })
}

/// `POST /v1/admin/repos/test`: whether this gateway reaches an object store with these
/// credentials (nothing is kept).
async fn test_repo(
    State(_state): AppState,
    _admin: AdminSession,
    req: JsonBody<S3Access>,
) -> Result<Json<StorageProbe>, ApiError> {
    let access = body(req)?;
    Ok(Json(probe(&access).await?))
}

async fn add_repo(
    State(state): AppState,
    admin: AdminSession,
    req: JsonBody<NewCloudRepo>,
) -> Result<Json<CloudRepo>, ApiError> {
    let req = body(req)?;
    cloudkeep_model::names::check("cloud repository", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let repo = match &req.s3 {
        Some(access) => add_s3(&state, &req.name, access).await?,
        None => add_folder(&state, &req.name, &req.path).await?,
    };
    state
        .db
        .audit(&admin.name, "repo.add", &req.name, &repo.location)
        .await?;
    Ok(Json(repo))
}

async fn add_folder(state: &GatewayState, name: &str, folder: &str) -> Result<CloudRepo, ApiError> {
    let path = std::path::Path::new(folder);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "\"{folder}\" is not an absolute folder path on the gateway's machine"
        )));
    }
    cloudkeep_model::paths::create_private_dir(path).map_err(|e| {
        ApiError::bad_request(format!(
            "cannot use the folder {} on the gateway's machine: {e}",
            path.display()
        ))
    })?;
    if let Some(exposure) = cloudkeep_model::paths::exposed(path) {
        return Err(ApiError::bad_request(format!(
            "the folder {} can be read by other users of the gateway's machine ({exposure}); make it owner-only with \"{}\" (as the gateway's user) and add it again",
            path.display(),
            exposure.fix
        )));
    }
    Ok(state.db.add_repo(NewRepo::folder(name, folder)).await?)
}

async fn add_s3(
    state: &GatewayState,
    name: &str,
    access: &S3Access,
) -> Result<CloudRepo, ApiError> {
    let tried = probe(access).await?;
    if let Some(step) = tried.steps.iter().find(|s| s.error.is_some()) {
        return Err(ApiError::bad_request(format!(
            "the object store failed the connection test at \"{}\": {}",
            step.what,
            step.error.as_deref().unwrap_or_default()
        )));
    }
    let sealed = state.stores.seal_credentials(name, &credentials(access))?;
    let location = access.target.describe();
    Ok(state
        .db
        .add_repo(NewRepo {
            name,
            kind: "s3",
            location: &location,
            s3: Some(&access.target),
            secret: Some(&sealed),
            object_lock: tried.object_lock.as_ref(),
        })
        .await?)
}

/// `PUT /v1/admin/repos/{name}`: title, capacity, in service or not.
async fn edit_repo(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
    req: JsonBody<RepoEdit>,
) -> Result<Json<CloudRepo>, ApiError> {
    let edit = body(req)?;
    if let Some(title) = &edit.title
        && (title.chars().count() > 100 || title.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "a title is at most 100 characters, without control characters",
        ));
    }
    let repo = state.db.edit_repo(&name, &edit).await?;
    let mut detail = Vec::new();
    if let Some(title) = &edit.title {
        detail.push(format!("title \"{title}\""));
    }
    if let Some(capacity) = edit.capacity {
        detail.push(format!("capacity {capacity}"));
    }
    if let Some(on) = edit.in_service {
        detail.push(if on { "in service" } else { "out of service" }.to_owned());
    }
    state
        .db
        .audit(&admin.name, "repo.edit", &name, &detail.join(", "))
        .await?;
    Ok(Json(repo))
}

/// `DELETE /v1/admin/repos/{name}`: refused while any quota is on it. A folder's or bucket
/// prefix's data is left where it is (nothing of a tenant's remains once its quotas are
/// gone).
async fn remove_repo(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
) -> Result<Json<Vec<CloudRepo>>, ApiError> {
    state.db.remove_repo(&name).await?;
    state
        .db
        .audit(&admin.name, "repo.remove", &name, "")
        .await?;
    Ok(Json(state.db.repos().await?))
}

/// The rule for placing quota `spec` of an account that has `had` bytes on that repository
/// now (`None`: a new quota there): a new quota only on a repository in service, and no more
/// quota handed out in all than the repository's capacity.
pub async fn check_placement(
    state: &GatewayState,
    spec: &QuotaSpec,
    had: Option<Limit>,
) -> Result<(), ApiError> {
    let repo = state.db.repo_by_name(&spec.repo).await?;
    if had.is_none() && !repo.in_service {
        return Err(ApiError::bad_request(format!(
            "cloud repository \"{}\" is out of service and takes no new quotas: choose another, or put it back in service",
            repo.name
        )));
    }
    if let (Limit::Bytes(capacity), Limit::Bytes(wanted)) = (repo.capacity, spec.bytes) {
        let before = match had {
            Some(Limit::Bytes(n)) => n,
            _ => 0,
        };
        let given = state.db.repo_quota_total(repo.id).await?;
        let after = given.saturating_sub(before).saturating_add(wanted);
        if after > capacity {
            return Err(ApiError::new(
                cloudkeep_api::ErrorCode::QuotaExceeded,
                format!(
                    "cloud repository \"{}\" can hand out {} in all and {} is given already: this quota does not fit; raise its capacity or choose another repository",
                    repo.name,
                    cloudkeep_model::units::human_bytes(capacity),
                    cloudkeep_model::units::human_bytes(given.saturating_sub(before))
                ),
            ));
        }
    }
    Ok(())
}
