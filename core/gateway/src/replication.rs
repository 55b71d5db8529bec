//! Cloud replication at the gateway: the SP's cloud hosts and hardware plans in the admin API
//! (`/v1/admin/hosts…`, `/v1/admin/plans…`), the hosts' own API (`/v1/host/login`, and
//! `/v1/host/facts`, the heartbeat that carries what a host has), and the plans a tenant
//! sees (`/v1/replication/plans`).
//!
//! A host is an account of its own realm: its password is made here, returned once and kept
//! only as a hash; a failed host login counts towards the address's ban like any other. A
//! plan is checked against what its host last reported before it is kept, so a plan no
//! replica could ever run on is refused when it is made. Every change is audited.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::auth::{self, AdminSession, Peer};
use super::error::{ApiError, from_rejection};
use super::policies::truncate;
use super::session::{JsonBody, TenantSession};
use crate::GatewayState;
use crate::store::accounts::Realm;
use cloudkeep_api::replication::{
    AddedHost, HostFacts, HostView, NewHost, PlanSpec, PlanUse, PlanView, TenantPlan,
};
use cloudkeep_api::{LoginRequest, LoginResponse};

type AppState = State<Arc<GatewayState>>;

/// The most storage pools a host may report (more is a hostile or broken host).
const MAX_POOLS: usize = 64;

/// The replication routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/hosts", get(list_hosts).post(add_host))
        .route("/v1/admin/hosts/{name}", axum::routing::delete(remove_host))
        .route("/v1/admin/plans", get(list_plans).post(add_plan))
        .route("/v1/admin/plans/{name}", axum::routing::delete(remove_plan))
        .route(
            "/v1/admin/plans/{name}/tenants/{login}",
            put(subscribe).delete(unsubscribe),
        )
        .route("/v1/host/login", post(host_login))
        .route("/v1/host/facts", put(host_facts))
        .route("/v1/replication/plans", get(tenant_plans))
}

fn body<T>(b: JsonBody<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(from_rejection)
}

/// A cloud host's session, taken from the request.
#[derive(Debug, Clone)]
pub struct HostSession {
    /// Host id.
    pub id: i64,
    /// Host name.
    pub name: String,
}

impl FromRequestParts<Arc<GatewayState>> for HostSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, Self::Rejection> {
        let token = auth::bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("log in as a cloud host first (no session token was sent)")
        })?;
        let id = state
            .db
            .session_subject(token, Realm::Host)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the session has expired or is not a cloud host's; log in again",
                )
            })?;
        let name = state
            .db
            .host_name(id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the cloud host was removed"))?;
        Ok(Self { id, name })
    }
}

async fn list_hosts(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<HostView>>, ApiError> {
    Ok(Json(state.db.hosts().await?))
}

/// `POST /v1/admin/hosts {name}`: a new host and the password it logs in with, once.
async fn add_host(
    State(state): AppState,
    admin: AdminSession,
    req: JsonBody<NewHost>,
) -> Result<Json<AddedHost>, ApiError> {
    let req = body(req)?;
    cloudkeep_model::names::check("cloud host", &req.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut raw = [0u8; 24];
    cloudkeep_repo::crypto::random_bytes(&mut raw).map_err(ApiError::internal)?;
    let password = hex::encode(raw);
    let hash = auth::hash_new_password(password.clone()).await?;
    let host = state.db.add_host(&req.name, &hash).await?;
    state
        .db
        .audit(&admin.name, "host.add", &req.name, "")
        .await?;
    Ok(Json(AddedHost { host, password }))
}

async fn remove_host(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    state.db.remove_host(&name).await?;
    state
        .db
        .audit(&admin.name, "host.remove", &name, "")
        .await?;
    Ok(Json(state.db.hosts().await?))
}

async fn list_plans(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<PlanView>>, ApiError> {
    Ok(Json(state.db.plans().await?))
}

/// `POST /v1/admin/plans`: a plan, checked alone and against what its host reported.
async fn add_plan(
    State(state): AppState,
    admin: AdminSession,
    req: JsonBody<PlanSpec>,
) -> Result<Json<PlanView>, ApiError> {
    let plan = body(req)?;
    cloudkeep_model::names::check("hardware plan", &plan.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    plan.check().map_err(ApiError::bad_request)?;
    let host = state.db.host(&plan.host).await?;
    let Some(facts) = &host.facts else {
        return Err(ApiError::bad_request(format!(
            "cloud host {} has not reported yet: start `cloudkeep host run` on it with its connection details, then make the plan",
            plan.host
        )));
    };
    plan.fits_host(facts).map_err(ApiError::bad_request)?;
    let view = state.db.add_plan(&plan).await?;
    let detail = format!(
        "host {} · {} CPUs · {} MiB · {} networks{}",
        plan.host,
        plan.cpu,
        plan.memory >> 20,
        plan.networks,
        if plan.internet { " · internet" } else { "" }
    );
    state
        .db
        .audit(&admin.name, "plan.add", &plan.name, &detail)
        .await?;
    Ok(Json(view))
}

async fn remove_plan(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
) -> Result<Json<Vec<PlanView>>, ApiError> {
    state.db.remove_plan(&name).await?;
    state
        .db
        .audit(&admin.name, "plan.remove", &name, "")
        .await?;
    Ok(Json(state.db.plans().await?))
}

async fn subscribe(
    State(state): AppState,
    admin: AdminSession,
    Path((name, login)): Path<(String, String)>,
) -> Result<Json<PlanView>, ApiError> {
    let view = state.db.subscribe(&name, &login).await?;
    state
        .db
        .audit(&admin.name, "plan.subscribe", &login, &name)
        .await?;
    Ok(Json(view))
}

async fn unsubscribe(
    State(state): AppState,
    admin: AdminSession,
    Path((name, login)): Path<(String, String)>,
) -> Result<Json<PlanView>, ApiError> {
    let view = state.db.unsubscribe(&name, &login).await?;
    state
        .db
        .audit(&admin.name, "plan.unsubscribe", &login, &name)
        .await?;
    Ok(Json(view))
}

/// `POST /v1/host/login`: a cloud host's session (12 hours, like every session).
async fn host_login(
    State(state): AppState,
    axum::Extension(peer): axum::Extension<Peer>,
    req: JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let req = body(req)?;
    let ip = peer.0.ip();
    state.bans.check(&state.db, ip).await?;
    let found = state.db.host_login(&req.user).await?;
    let ok = match &found {
        Some((_, hash)) => auth::password_matches(req.password, hash.clone()).await?,
        None => false,
    };
    let Some((id, _)) = found.filter(|_| ok) else {
        state.bans.failed(&state.db, ip).await;
        return Err(auth::wrong_credentials());
    };
    state.bans.succeeded(&state.db, ip).await;
    Ok(Json(auth::open_session(&state, Realm::Host, id).await?))
}

/// `PUT /v1/host/facts`: the heartbeat of a host, with what it has now.
async fn host_facts(
    State(state): AppState,
    host: HostSession,
    req: JsonBody<HostFacts>,
) -> Result<Json<()>, ApiError> {
    let mut facts = body(req)?;
    if facts.pools.len() > MAX_POOLS {
        return Err(ApiError::bad_request(format!(
            "a host reports at most {MAX_POOLS} storage pools"
        )));
    }
    for text in [&mut facts.hostname, &mut facts.os, &mut facts.version] {
        truncate(text, 200);
    }
    if let Some(qemu) = &mut facts.qemu {
        truncate(qemu, 200);
    }
    for pool in &mut facts.pools {
        cloudkeep_model::names::check("storage pool", &pool.name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        truncate(&mut pool.path, 1024);
    }
    state.db.set_host_facts(host.id, &facts).await?;
    Ok(Json(()))
}

/// `GET /v1/replication/plans`: the plans the tenant has, with their use. A subtenant sees
/// its tenant's.
async fn tenant_plans(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<TenantPlan>>, ApiError> {
    let tenant = session.parent.as_ref().unwrap_or(&session.tenant);
    let plans = state.db.plans_of(tenant.id).await?;
    Ok(Json(
        plans
            .into_iter()
            .map(|view| TenantPlan {
                plan: view.plan,
                used: PlanUse::default(),
            })
            .collect(),
    ))
}
