//! Cloud replication at the gateway: the SP's cloud hosts and hardware plans in the admin API
//! (`/v1/admin/hosts…`, `/v1/admin/plans…`, `/v1/admin/replicas`), the hosts' own API
//! (`/v1/host/login`, `/v1/host/facts` — the heartbeat that carries what a host has — and
//! `/v1/host/endpoint`, where the host listens for replica data), the plans a tenant sees
//! (`/v1/replication/plans`), and the tenant's replicas (`/v1/replicas…`): made on a plan it
//! has within what the plan has, each cycle's changed blocks relayed as they arrive to the
//! plan's host (throttled like backups, bounded by the plan's storage), removed, and the key
//! the SP holds given back or revoked.
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
use crate::store::replication::ReplicaRow;
use cloudkeep_api::ErrorCode;
use cloudkeep_api::replication::{
    AddedHost, CycleReport, Escrow, HostEndpoint, HostFacts, HostView, NewHost, NewReplica,
    PlanSpec, PlanStorage, PlanUse, PlanView, ReplicaView, TenantPlan,
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
        .route("/v1/host/endpoint", put(host_endpoint))
        .route("/v1/replicas", get(list_replicas).post(add_replica))
        .route(
            "/v1/replicas/{name}",
            get(get_replica).delete(remove_replica),
        )
        .route(
            "/v1/replicas/{name}/cycle",
            put(cycle).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/replicas/{name}/escrow", put(escrow).delete(revoke))
        .route("/v1/admin/replicas", get(admin_replicas))
        .route("/v1/replicas/{name}/failover", post(failover))
        .route("/v1/replicas/{name}/undo", post(undo))
        .route("/v1/replicas/{name}/permanent", post(permanent))
        .route(
            "/v1/replicas/{name}/failback",
            post(failback).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/replicas/{name}/failback/done", post(failback_done))
        .route("/v1/replicas/{name}/console", get(console))
        .route("/v1/replicas/{name}/probe", get(probe))
        .route("/v1/networks/{plan}/{network}/join", get(join_network))
        .route(
            "/v1/admin/replicas/{tenant}/{name}/failover",
            post(admin_failover),
        )
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
    let replicas = state.db.replicas(Some(tenant.id)).await?;
    Ok(Json(
        plans
            .into_iter()
            .map(|view| TenantPlan {
                used: plan_use(&view.plan, &replicas),
                plan: view.plan,
            })
            .collect(),
    ))
}

/// What `replicas` use of `plan`: the bytes they take per pool, and the CPUs and memory of
/// those that run.
fn plan_use(plan: &PlanSpec, replicas: &[ReplicaRow]) -> PlanUse {
    let mut used = PlanUse::default();
    for r in replicas.iter().filter(|r| r.plan.name == plan.name) {
        if let Some(state) = &r.view.state {
            used.cpu = used.cpu.saturating_add(state.running.spec.cpu);
            used.memory = used.memory.saturating_add(state.running.spec.memory);
            used.running += 1;
        }
        let pool = &r.view.spec.pool;
        match used.storage.iter_mut().find(|s| &s.pool == pool) {
            Some(s) => s.bytes = s.bytes.saturating_add(r.view.stored),
            None => used.storage.push(PlanStorage {
                pool: pool.clone(),
                bytes: r.view.stored,
            }),
        }
    }
    used
}

/// `PUT /v1/host/endpoint`: where the host listens for its gateways; its relay key is sealed
/// before the database keeps it.
async fn host_endpoint(
    State(state): AppState,
    host: HostSession,
    req: JsonBody<HostEndpoint>,
) -> Result<Json<()>, ApiError> {
    let mut endpoint = body(req)?;
    if endpoint.address.len() > 300 || endpoint.fingerprint.len() > 200 {
        return Err(ApiError::bad_request(
            "an endpoint's address or fingerprint is too long",
        ));
    }
    if !cloudkeep_api::replication::is_key(&endpoint.key) {
        return Err(ApiError::bad_request(
            "a host's relay key is 64 hexadecimal digits",
        ));
    }
    endpoint.key = state.stores.seal_secret(RELAY_LABEL, &endpoint.key)?;
    state.db.set_host_endpoint(host.id, &endpoint).await?;
    Ok(Json(()))
}

/// What a host's relay key is sealed as.
const RELAY_LABEL: &str = "cloudkeep host relay key";
/// What a replica key the SP holds is sealed as.
const REPLICA_LABEL: &str = "cloudkeep replica key";

/// The tenant a session acts for in replication: tenants only (a subtenant's replicas would be
/// its tenant's plan's).
fn replica_owner(session: &TenantSession) -> Result<i64, ApiError> {
    if session.parent.is_some() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "replicas belong to tenants: sign in as the tenant to manage them",
        ));
    }
    Ok(session.tenant.id)
}

/// The link to the host that keeps `row`.
async fn link(state: &GatewayState, host: &str) -> Result<crate::hostlink::HostLink, ApiError> {
    let endpoint = state.db.host_endpoint(host).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::HostUnavailable,
            format!("cloud host {host} has not said where it listens yet: the SP must start it (cloudkeep host run)"),
        )
    })?;
    let key = state.stores.open_secret(RELAY_LABEL, &endpoint.key)?;
    crate::hostlink::HostLink::new(host, &endpoint, key)
}

fn replica_path(row: &ReplicaRow) -> String {
    format!("/v1/replicas/{}/{}", row.view.tenant, row.view.spec.name)
}

async fn list_replicas(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<ReplicaView>>, ApiError> {
    let owner = replica_owner(&session)?;
    let rows = state.db.replicas(Some(owner)).await?;
    Ok(Json(rows.into_iter().map(|r| r.view).collect()))
}

async fn get_replica(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}

async fn admin_replicas(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<ReplicaView>>, ApiError> {
    let rows = state.db.replicas(None).await?;
    Ok(Json(rows.into_iter().map(|r| r.view).collect()))
}

/// `POST /v1/replicas`: a replica on a plan the tenant has, refused when it could never start
/// or its disks could never fit; its encrypted base made on the plan's host.
async fn add_replica(
    State(state): AppState,
    session: TenantSession,
    req: JsonBody<NewReplica>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    session.may_write()?;
    let req = body(req)?;
    let spec = &req.spec;
    cloudkeep_model::names::check("replica", &spec.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for d in &spec.disks {
        cloudkeep_model::names::check("disk", &d.name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    spec.check().map_err(ApiError::bad_request)?;
    if !cloudkeep_api::replication::is_key(&req.key) {
        return Err(ApiError::bad_request(
            "a replica key is 64 hexadecimal digits",
        ));
    }
    let plan = state
        .db
        .plans_of(owner)
        .await?
        .into_iter()
        .find(|p| p.plan.name == spec.plan)
        .ok_or_else(|| ApiError::not_found(format!("you have no hardware plan \"{}\"", spec.plan)))?
        .plan;
    let allowed = plan.storage_on(&spec.pool);
    if allowed == 0 {
        return Err(ApiError::bad_request(format!(
            "hardware plan {} has no storage on pool {}",
            plan.name, spec.pool
        )));
    }
    let taken = state
        .db
        .plan_stored(owner, &plan.name, &spec.pool, 0)
        .await?;
    if spec.size() > allowed.saturating_sub(taken) {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "the replica's disks hold {} MiB; hardware plan {} has {} MiB on pool {} and your replicas take {} MiB of it",
                spec.size() >> 20,
                plan.name,
                allowed >> 20,
                spec.pool,
                taken >> 20
            ),
        ));
    }
    PlanUse::default()
        .admits(
            &plan,
            cloudkeep_api::replication::ReplicaNeeds {
                cpu: spec.cpu,
                memory: spec.memory,
            },
        )
        .map_err(ApiError::bad_request)?;
    let sealed = if req.escrow {
        Some(state.stores.seal_secret(REPLICA_LABEL, &req.key)?)
    } else {
        None
    };
    let row = state.db.add_replica(owner, spec, sealed.as_deref()).await?;
    let made = async {
        let host = link(&state, &plan.host).await?;
        host.send::<()>(
            host.request(reqwest::Method::POST, &replica_path(&row))
                .header(cloudkeep_api::replication::KEY_HEADER, &req.key)
                .json(&serde_json::json!({"pool": spec.pool, "disks": spec.disks})),
        )
        .await
    }
    .await;
    if let Err(e) = made {
        state.db.remove_replica(row.id).await?;
        return Err(e);
    }
    Ok(Json(row.view))
}

/// `PUT /v1/replicas/{name}/cycle`: the cycle's block stream, relayed to the host as it
/// arrives; the new replica point recorded when the host made it.
async fn cycle(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<CycleReport>, ApiError> {
    let owner = replica_owner(&session)?;
    session.may_write()?;
    let row = state.db.replica(owner, &name).await?;
    let key = key_header(&headers, "with the cycle")?;
    if let Some(failed) = &row.view.state
        && failed.mode != "test"
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            match failed.mode.as_str() {
                "failback" => format!(
                    "replica {name} is being failed back: replication resumes once it ends (cloudkeep replica failback {name})"
                ),
                "permanent" => format!(
                    "replica {name} was failed over permanently: it is the machine now, replication has ended"
                ),
                _ => format!(
                    "replica {name} is failed over: replication waits until it is failed back or undone"
                ),
            },
        ));
    }
    let spec = &row.view.spec;
    let taken = state
        .db
        .plan_stored(owner, &row.plan.name, &spec.pool, 0)
        .await?;
    let left = row.plan.storage_on(&spec.pool).saturating_sub(taken);
    if left == 0 {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "your replicas fill hardware plan {}'s storage on pool {}: remove a replica or ask for more",
                row.plan.name, spec.pool
            ),
        ));
    }
    let host = link(&state, &row.plan.host).await?;
    let stream = throttled(body.into_data_stream(), state.bucket_for(&session).await);
    let report: CycleReport = host
        .send(
            host.stream_request(
                reqwest::Method::PUT,
                &format!(
                    "{}/cycle?pool={}&limit={left}&keep={}",
                    replica_path(&row),
                    spec.pool,
                    spec.keep
                ),
            )
            .header(cloudkeep_api::replication::KEY_HEADER, &key)
            .body(reqwest::Body::wrap_stream(stream)),
        )
        .await?;
    let mut points = row.view.points.clone();
    points.push(report.point.clone());
    let keep = spec.keep.max(1) as usize;
    if points.len() > keep {
        points.drain(..points.len() - keep);
    }
    state
        .db
        .record_replica(row.id, &points, report.stored)
        .await?;
    Ok(Json(report))
}

/// `stream`'s chunks, each taken from the tenant's bandwidth `bucket` first (when it has one).
fn throttled<S, E>(
    stream: S,
    bucket: Option<Arc<crate::limits::Bucket>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, E>>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>>,
{
    futures_util::StreamExt::then(stream, move |chunk| {
        let bucket = bucket.clone();
        async move {
            if let (Ok(bytes), Some(bucket)) = (&chunk, &bucket) {
                bucket.take(bytes.len()).await;
            }
            chunk
        }
    })
}

/// The lowest host port a tenant's public address rule may take (the ones below are the
/// host's own services').
const FIRST_PUBLIC_PORT: u16 = 1024;

/// Starts `row` at its host with `key`: the plan's CPUs and memory checked against what its
/// other replicas use, the ports against the rules of every replica that runs.
async fn start_replica(
    state: &GatewayState,
    row: &ReplicaRow,
    req: &cloudkeep_api::replication::FailoverRequest,
    key: &str,
) -> Result<ReplicaView, ApiError> {
    use cloudkeep_api::replication::{FailoverState, ReplicaNeeds, StartSpec};
    if let Some(running) = &row.view.state {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "replica {} already runs ({}); undo that first",
                row.view.spec.name, running.mode
            ),
        ));
    }
    let spec = &row.view.spec;
    let siblings = state.db.replicas(Some(row.tenant_id)).await?;
    plan_use(&row.plan, &siblings)
        .admits(
            &row.plan,
            ReplicaNeeds {
                cpu: spec.cpu,
                memory: spec.memory,
            },
        )
        .map_err(|e| ApiError::new(ErrorCode::QuotaExceeded, e))?;
    let taken: Vec<u16> = state
        .db
        .replicas(None)
        .await?
        .iter()
        .filter_map(|r| r.view.state.as_ref())
        .flat_map(|s| s.running.spec.ports.iter().map(|p| p.port))
        .collect();
    if req.ports.len() > 16 {
        return Err(ApiError::bad_request(
            "a replica has at most 16 public address rules",
        ));
    }
    if let Some(n) = req.network {
        plan_network(&row.plan, n)?;
        if !req.ports.is_empty() || !req.probes.is_empty() {
            return Err(ApiError::bad_request(
                "a replica on your own network is reached there (through your network extension appliance): public address rules and watched ports are for the provider's NAT",
            ));
        }
    }
    if req.probes.len() > cloudkeep_api::replication::MAX_PROBES || req.probes.contains(&0) {
        return Err(ApiError::bad_request(format!(
            "a replica has at most {} watched ports, each 1 to 65535",
            cloudkeep_api::replication::MAX_PROBES
        )));
    }
    for rule in &req.ports {
        if rule.port < FIRST_PUBLIC_PORT || rule.to == 0 {
            return Err(ApiError::bad_request(format!(
                "public port {} is not one a replica may take: give {FIRST_PUBLIC_PORT} to 65535",
                rule.port
            )));
        }
        if taken.contains(&rule.port) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "public port {} is taken by another running replica",
                    rule.port
                ),
            ));
        }
    }
    let start = StartSpec {
        point: req.point,
        test: req.test,
        cpu: spec.cpu,
        memory: spec.memory,
        internet: row.plan.internet,
        probes: req.probes.clone(),
        network: req.network,
        mac: spec.mac.clone(),
        ports: req
            .ports
            .iter()
            .map(|p| cloudkeep_api::replication::PortRule {
                // The SP's address: every address of the host.
                address: "0.0.0.0".into(),
                port: p.port,
                to: p.to,
            })
            .collect(),
    };
    let host = link(state, &row.plan.host).await?;
    let running: cloudkeep_api::replication::Running = host
        .send(
            host.request(
                reqwest::Method::POST,
                &format!("{}/start?pool={}", replica_path(row), spec.pool),
            )
            .header(cloudkeep_api::replication::KEY_HEADER, key)
            .json(&start),
        )
        .await?;
    let mode = if req.test { "test" } else { "failover" };
    state
        .db
        .set_replica_state(
            row.id,
            Some(&FailoverState {
                mode: mode.into(),
                running,
            }),
        )
        .await?;
    Ok(state.db.replica(row.tenant_id, &spec.name).await?.view)
}

/// `POST /v1/replicas/{name}/failover`: the replica started from a point with the tenant's key.
async fn failover(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    req: JsonBody<cloudkeep_api::replication::FailoverRequest>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let req = body(req)?;
    let row = state.db.replica(owner, &name).await?;
    let key = key_header(&headers, "to start it")?;
    Ok(Json(start_replica(&state, &row, &req, &key).await?))
}

/// `POST /v1/admin/replicas/{tenant}/{name}/failover`: the SP starts a tenant's replica on its
/// behalf with the key the tenant let it hold.
async fn admin_failover(
    State(state): AppState,
    admin: AdminSession,
    Path((tenant, name)): Path<(String, String)>,
    req: JsonBody<cloudkeep_api::replication::FailoverRequest>,
) -> Result<Json<ReplicaView>, ApiError> {
    let req = body(req)?;
    let (account, _) = state
        .db
        .tenant_by_login(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant}")))?;
    let row = state.db.replica(account.id, &name).await?;
    let sealed = row.key_sealed.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            format!("{tenant} revoked the key of replica {name}: only the tenant can start it"),
        )
    })?;
    let key = zeroize::Zeroizing::new(state.stores.open_secret(REPLICA_LABEL, &sealed)?);
    let view = start_replica(&state, &row, &req, &key).await?;
    state
        .db
        .audit(
            &admin.name,
            if req.test {
                "replica.test_failover"
            } else {
                "replica.failover"
            },
            &tenant,
            &name,
        )
        .await?;
    Ok(Json(view))
}

/// `POST /v1/replicas/{name}/undo`: a test failover ended, or a failover undone: the machine
/// stopped, what it wrote thrown away, replication goes on.
async fn undo(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    match row.view.state.as_ref().map(|s| s.mode.as_str()) {
        None => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("replica {name} does not run"),
            ));
        }
        Some("permanent") => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("replica {name} was failed over permanently: it is the machine now"),
            ));
        }
        Some("failback") => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "replica {name} is being failed back: what its machine wrote is its newest point now; finish with cloudkeep replica failback {name}"
                ),
            ));
        }
        Some(_) => {}
    }
    let host = link(&state, &row.plan.host).await?;
    host.send::<Option<cloudkeep_api::replication::Running>>(host.request(
        reqwest::Method::POST,
        &format!("{}/stop?pool={}", replica_path(&row), row.view.spec.pool),
    ))
    .await?;
    state.db.set_replica_state(row.id, None).await?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}

/// `POST /v1/replicas/{name}/failback`: the failed-over machine halted at its host and what
/// it wrote made the newest point; the answer streams (throttled like a restore) the blocks
/// that differ from the tenant's fingerprints (the request body). The replica stays in
/// `failback` — no cycle, no undo — until the tenant says every block is written.
async fn failback(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<axum::response::Response, ApiError> {
    use cloudkeep_api::replication::{FAILBACK_HEADER, FailbackHead, prints};
    let owner = replica_owner(&session)?;
    session.may_write()?;
    let row = state.db.replica(owner, &name).await?;
    let key = key_header(&headers, "to fail it back")?;
    let Some(mut current) = row
        .view
        .state
        .clone()
        .filter(|s| s.mode == "failover" || s.mode == "failback")
    else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            match row.view.state.as_ref().map(|s| s.mode.as_str()) {
                None => format!("replica {name} is not failed over: there is nothing to fail back"),
                Some("test") => format!(
                    "replica {name} runs as a test failover: end it (its writes are thrown away)"
                ),
                Some(_) => format!(
                    "replica {name} was failed over permanently: it is the machine now; make a new replica of it to bring it home"
                ),
            },
        ));
    };
    let sizes: Vec<u64> = row.view.spec.disks.iter().map(|d| d.size).collect();
    let want = prints::encoded_len(&sizes);
    let fingerprints = axum::body::to_bytes(body, want + 1)
        .await
        .map_err(|_| ApiError::bad_request("the failback's fingerprints are too long"))?;
    if fingerprints.len() != want {
        return Err(ApiError::bad_request(
            "the failback's fingerprints are not those of this replica's disks",
        ));
    }
    let host = link(&state, &row.plan.host).await?;
    // Marked before the host is asked: the host may take the machine's writes into a point
    // and still fail (a wrong key), and from then on an undo would mix them with the tenant's
    // disks. Only a failback finishes it.
    current.mode = "failback".into();
    state.db.set_replica_state(row.id, Some(&current)).await?;
    let resp = host
        .answer(
            host.stream_request(
                reqwest::Method::POST,
                &format!(
                    "{}/failback?pool={}&keep={}",
                    replica_path(&row),
                    row.view.spec.pool,
                    row.view.spec.keep
                ),
            )
            .header(cloudkeep_api::replication::KEY_HEADER, &key)
            .body(fingerprints),
        )
        .await?;
    let head_text = resp
        .headers()
        .get(FAILBACK_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let head: FailbackHead = serde_json::from_str(&head_text).map_err(|e| {
        ApiError::new(
            ErrorCode::HostUnavailable,
            format!(
                "cloud host {} answered a failback this gateway cannot read: {e}",
                row.plan.host
            ),
        )
    })?;
    state
        .db
        .record_replica(row.id, &head.points, head.stored)
        .await?;
    let stream = throttled(resp.bytes_stream(), state.bucket_for(&session).await);
    axum::response::Response::builder()
        .header(FAILBACK_HEADER, head_text)
        .header(axum::http::header::CONTENT_TYPE, "application/octet-stream")
        .body(axum::body::Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// `POST /v1/replicas/{name}/failback/done`: the tenant wrote every block back; replication
/// resumes from the point the failback made.
async fn failback_done(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    if row.view.state.as_ref().map(|s| s.mode.as_str()) != Some("failback") {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("replica {name} is not being failed back"),
        ));
    }
    state.db.set_replica_state(row.id, None).await?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}

/// `POST /v1/replicas/{name}/permanent`: a failover made permanent — the replica is the
/// machine now; replication of it has ended.
async fn permanent(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    let Some(mut current) = row.view.state.clone().filter(|s| s.mode == "failover") else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("replica {name} is not failed over (a test failover cannot be made permanent)"),
        ));
    };
    current.mode = "permanent".into();
    state.db.set_replica_state(row.id, Some(&current)).await?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}

/// `GET /v1/replicas/{name}/console`: the end of the running replica's serial console.
async fn console(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    let host = link(&state, &row.plan.host).await?;
    let answer: serde_json::Value = host
        .send(host.request(
            reqwest::Method::GET,
            &format!("{}/console?pool={}", replica_path(&row), row.view.spec.pool),
        ))
        .await?;
    Ok(Json(answer))
}

/// `?port=N`.
#[derive(Debug, serde::Deserialize)]
struct PortQuery {
    port: u16,
}

/// `GET /v1/replicas/{name}/probe?port=N`: whether a watched port of the running replica
/// answers (a failover plan waits on it).
async fn probe(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<PortQuery>,
) -> Result<Json<cloudkeep_api::replication::ProbeAnswer>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    let host = link(&state, &row.plan.host).await?;
    let answer = host
        .send(host.request(
            reqwest::Method::GET,
            &format!(
                "{}/probe?pool={}&port={}",
                replica_path(&row),
                row.view.spec.pool,
                q.port
            ),
        ))
        .await?;
    Ok(Json(answer))
}

/// Refuses network `n` when `plan` has not that many.
fn plan_network(plan: &PlanSpec, n: u8) -> Result<(), ApiError> {
    if u32::from(n) >= plan.networks {
        return Err(ApiError::bad_request(format!(
            "hardware plan {} has {} networks: give network 0 to {}",
            plan.name,
            plan.networks,
            plan.networks.saturating_sub(1)
        )));
    }
    Ok(())
}

/// `GET /v1/networks/{plan}/{network}/join`: a network extension appliance's layer-2 tunnel
/// (an HTTP/1.1 upgrade) to the tenant's network `network` of a hardware plan it has, relayed
/// to the plan's host over the gateway's pinned link. Frames pass through as they are; the
/// tenant's bandwidth limit applies to what it sends.
async fn join_network(
    State(state): AppState,
    session: TenantSession,
    Path((plan, network)): Path<(String, u8)>,
    req: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use cloudkeep_api::replication::L2_UPGRADE;
    let owner = replica_owner(&session)?;
    session.may_write()?;
    let asked = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    if asked != Some(L2_UPGRADE) {
        return Err(ApiError::bad_request(format!(
            "a network is joined with Upgrade: {L2_UPGRADE} (cloudkeep nea run)"
        )));
    }
    let view = state
        .db
        .plans_of(owner)
        .await?
        .into_iter()
        .find(|p| p.plan.name == plan)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "hardware plan {plan} is not one your provider gave you (cloudkeep replica plans)"
            ))
        })?;
    plan_network(&view.plan, network)?;
    let host = link(&state, &view.plan.host).await?;
    let resp = host
        .answer(
            host.stream_request(
                reqwest::Method::GET,
                &format!("/v1/networks/{}/{network}/join", session.tenant.login),
            )
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, L2_UPGRADE),
        )
        .await?;
    if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
        return Err(ApiError::new(
            ErrorCode::HostUnavailable,
            format!(
                "cloud host {} did not open the network ({})",
                view.plan.host,
                resp.status()
            ),
        ));
    }
    let to_host = resp.upgrade().await.map_err(|e| {
        ApiError::new(
            ErrorCode::HostUnavailable,
            format!(
                "cloud host {} did not open the network: {e}",
                view.plan.host
            ),
        )
    })?;
    let from_tenant = hyper::upgrade::on(req);
    let bucket = state.bucket_for(&session).await;
    tokio::spawn(async move {
        let Ok(upgraded) = from_tenant.await else {
            return;
        };
        let tenant = hyper_util::rt::TokioIo::new(upgraded);
        let (mut tenant_read, mut tenant_write) = tokio::io::split(tenant);
        let (mut host_read, mut host_write) = tokio::io::split(to_host);
        let up = async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match tenant_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(bucket) = &bucket {
                    bucket.take(n).await;
                }
                if host_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = host_write.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut host_read, &mut tenant_write).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tenant_write).await;
        };
        // Either side ending ends the tunnel.
        tokio::select! {
            () = up => {}
            () = down => {}
        }
    });
    axum::response::Response::builder()
        .status(axum::http::StatusCode::SWITCHING_PROTOCOLS)
        .header(axum::http::header::CONNECTION, "upgrade")
        .header(axum::http::header::UPGRADE, L2_UPGRADE)
        .body(axum::body::Body::empty())
        .map_err(ApiError::internal)
}

/// Stops and removes `row`'s disks at its host (its record stays: the caller removes it).
pub(crate) async fn remove_at_host(state: &GatewayState, row: &ReplicaRow) -> Result<(), ApiError> {
    let host = link(state, &row.plan.host).await?;
    host.send::<()>(host.request(
        reqwest::Method::DELETE,
        &format!("{}?pool={}", replica_path(row), row.view.spec.pool),
    ))
    .await
}

/// The replica key a request carries (`x-cloudkeep-replica-key`), checked.
fn key_header(headers: &axum::http::HeaderMap, what: &str) -> Result<String, ApiError> {
    headers
        .get(cloudkeep_api::replication::KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| cloudkeep_api::replication::is_key(k))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("send the replica's key {what}")))
}

/// `DELETE /v1/replicas/{name}`: the replica's disks removed from its host, then its record.
async fn remove_replica(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<Vec<ReplicaView>>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    remove_at_host(&state, &row).await?;
    state.db.remove_replica(row.id).await?;
    let rows = state.db.replicas(Some(owner)).await?;
    Ok(Json(rows.into_iter().map(|r| r.view).collect()))
}

/// `PUT /v1/replicas/{name}/escrow {key}`: the SP may hold the key again.
async fn escrow(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
    req: JsonBody<Escrow>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let req = body(req)?;
    if !cloudkeep_api::replication::is_key(&req.key) {
        return Err(ApiError::bad_request(
            "a replica key is 64 hexadecimal digits",
        ));
    }
    let row = state.db.replica(owner, &name).await?;
    let sealed = state.stores.seal_secret(REPLICA_LABEL, &req.key)?;
    state.db.set_replica_key(row.id, Some(&sealed)).await?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}

/// `DELETE /v1/replicas/{name}/escrow`: the SP forgets the key; only the tenant can then
/// start the replica.
async fn revoke(
    State(state): AppState,
    session: TenantSession,
    Path(name): Path<String>,
) -> Result<Json<ReplicaView>, ApiError> {
    let owner = replica_owner(&session)?;
    let row = state.db.replica(owner, &name).await?;
    state.db.set_replica_key(row.id, None).await?;
    Ok(Json(state.db.replica(owner, &name).await?.view))
}
