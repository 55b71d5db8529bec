//! The SP admin API (`/v1/admin/…`, its own realm of accounts): cloud repositories, tenants and
//! subtenants with their settings and quotas, maintenance mode, the gateway list, usage, the
//! audit log and the certificate. Every change is written to the audit log.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::{self, AdminSession, Peer};
use super::error::{ApiError, from_rejection};
use super::tls;
use crate::GatewayState;
use crate::store::accounts::Realm;
use cloudkeep_api::AuditEntry;
use cloudkeep_api::GatewaySettings;
use cloudkeep_api::{
    CertGenerate, CertImport, ErrorCode, GatewayEntry, LoginRequest, LoginResponse,
    MaintenanceMode, NewPassword, NewTenant, QuotaSpec, TenantSettings, TenantView, UsageRow,
};

type AppState = State<Arc<GatewayState>>;
type Body<T> = Result<Json<T>, JsonRejection>;

fn body<T>(b: Body<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(from_rejection)
}

/// The admin routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/login", post(login))
        .route("/v1/admin/tenants", get(list_tenants).post(add_tenant))
        .route(
            "/v1/admin/tenants/{login}",
            get(show_tenant).delete(delete_tenant),
        )
        .route("/v1/admin/tenants/{login}/settings", put(set_settings))
        .route("/v1/admin/tenants/{login}/quotas", put(set_quota))
        .route("/v1/admin/tenants/{login}/password", post(set_password))
        .route(
            "/v1/admin/maintenance",
            get(get_maintenance).put(set_maintenance),
        )
        .route("/v1/admin/gateways", get(list_gateways))
        .route("/v1/admin/gateways/{id}/drain", put(drain_gateway))
        .route(
            "/v1/admin/settings",
            get(get_settings).put(set_gateway_settings),
        )
        .route("/v1/admin/admins", get(list_admins).post(add_admin))
        .route(
            "/v1/admin/admins/{name}",
            axum::routing::delete(remove_admin),
        )
        .route("/v1/admin/admins/{name}/password", post(set_admin_password))
        .route("/v1/admin/usage", get(usage))
        .route("/v1/admin/space", post(space_pass))
        .route("/v1/admin/audit", get(audit_log))
        .route("/v1/admin/cert", get(cert_show))
        .route("/v1/admin/cert/generate", post(cert_generate))
        .route("/v1/admin/cert/import", post(cert_import))
        .route("/v1/admin/cert/next", get(cert_next_show).post(cert_next))
        .route("/v1/admin/cert/rollover", post(cert_rollover))
}

async fn login(
    State(state): AppState,
    axum::Extension(peer): axum::Extension<Peer>,
    req: Body<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let req = body(req)?;
    let ip = peer.0.ip();
    state.bans.check(&state.db, ip).await?;
    let admin = state.db.admin_by_name(&req.user).await?;
    let ok = match &admin {
        Some(a) => auth::password_matches(req.password, a.password_hash.clone()).await?,
        None => false,
    };
    let Some(admin) = admin.filter(|_| ok) else {
        state.bans.failed(&state.db, ip).await;
        return Err(auth::wrong_credentials());
    };
    state.bans.succeeded(&state.db, ip).await;
    Ok(Json(
        auth::open_session(&state, Realm::Admin, admin.id).await?,
    ))
}

async fn list_tenants(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    let mut out = Vec::new();
    let health = state.db.all_health().await?;
    let now = cloudkeep_model::clock::now_ms();
    for tenant in state.db.tenants().await? {
        let quotas = state.db.quotas_of(tenant.id).await?;
        let own: Vec<_> = health
            .iter()
            .filter(|h| h.login == tenant.login)
            .cloned()
            .collect();
        // A tenant stands with its subtenants (its policies' computers among them).
        let family: Vec<_> = health
            .iter()
            .filter(|h| {
                h.login == tenant.login
                    || (tenant.parent.is_none()
                        && h.login
                            .strip_prefix(tenant.login.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            })
            .cloned()
            .collect();
        out.push(TenantView {
            tenant,
            quotas,
            health: own,
            standing: cloudkeep_api::health::Standing::of(&family, now),
        });
    }
    Ok(Json(out))
}

async fn tenant_id(state: &GatewayState, login: &str) -> Result<i64, ApiError> {
    state
        .db
        .tenant_by_login(login)
        .await?
        .map(|(t, _)| t.id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "there is no tenant \"{login}\"; list them with \"sp tenant list\""
            ))
        })
}

async fn add_tenant(
    State(state): AppState,
    admin: AdminSession,
    req: Body<NewTenant>,
) -> Result<Json<TenantView>, ApiError> {
    let req = body(req)?;
    let (parent, name) = match req.name.split_once('/') {
        Some((parent, name)) => (Some(tenant_id(&state, parent).await?), name.to_owned()),
        None => (None, req.name.clone()),
    };
    if parent.is_none() {
        for spec in &req.quotas {
            super::repos::check_placement(&state, spec, None).await?;
        }
    }
    let hash = auth::hash_new_password(req.password).await?;
    let tenant = state
        .db
        .add_tenant(parent, &name, &hash, &req.settings, &req.quotas, false)
        .await?;
    let quotas = state.db.quotas_of(tenant.id).await?;
    let detail = quotas
        .iter()
        .map(|q| format!("{}={}", q.friendly_name, q.quota_bytes))
        .collect::<Vec<_>>()
        .join(", ");
    state
        .db
        .audit(&admin.name, "tenant.create", &tenant.login, &detail)
        .await?;
    let health = state.db.health_of(tenant.id).await?;
    Ok(Json(TenantView {
        tenant,
        quotas,
        health,
        standing: Default::default(),
    }))
}

async fn show_tenant(
    State(state): AppState,
    _admin: AdminSession,
    Path(login): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let id = tenant_id(&state, &login).await?;
    Ok(Json(TenantView {
        tenant: state.db.tenant(id).await?,
        quotas: state.db.quotas_of(id).await?,
        health: state.db.health_of(id).await?,
        standing: Default::default(),
    }))
}

async fn set_settings(
    State(state): AppState,
    admin: AdminSession,
    Path(login): Path<String>,
    req: Body<TenantSettings>,
) -> Result<Json<TenantView>, ApiError> {
    let settings = body(req)?;
    let id = tenant_id(&state, &login).await?;
    let before = state.db.tenant(id).await?;
    state.db.update_tenant(id, &settings).await?;
    if !settings.enabled {
        // Disabled: refused at the next request, not only at the next login.
        state.db.delete_sessions_of(Realm::Tenant, id).await?;
    }
    let action = match (before.settings.enabled, settings.enabled) {
        (true, false) => "tenant.disable",
        (false, true) => "tenant.enable",
        _ => "tenant.edit",
    };
    state.db.audit(&admin.name, action, &login, "").await?;
    Ok(Json(TenantView {
        tenant: state.db.tenant(id).await?,
        quotas: state.db.quotas_of(id).await?,
        health: state.db.health_of(id).await?,
        standing: Default::default(),
    }))
}

async fn set_quota(
    State(state): AppState,
    admin: AdminSession,
    Path(login): Path<String>,
    req: Body<QuotaSpec>,
) -> Result<Json<TenantView>, ApiError> {
    let spec = body(req)?;
    let id = tenant_id(&state, &login).await?;
    if state.db.tenant(id).await?.parent.is_some() {
        // Carved from its tenant's quota, or sharing it: the tenant's figures follow.
        state.db.set_subtenant_quota(id, &spec).await?;
    } else {
        let had = state
            .db
            .quotas_of(id)
            .await?
            .into_iter()
            .find(|q| q.repo_name == spec.repo)
            .map(|q| q.quota_bytes);
        super::repos::check_placement(&state, &spec, had).await?;
        state.db.set_quota(id, &spec).await?;
    }
    state
        .db
        .audit(
            &admin.name,
            "tenant.quota",
            &login,
            &format!("{}={}", spec.repo, spec.bytes),
        )
        .await?;
    Ok(Json(TenantView {
        tenant: state.db.tenant(id).await?,
        quotas: state.db.quotas_of(id).await?,
        health: state.db.health_of(id).await?,
        standing: Default::default(),
    }))
}

async fn set_password(
    State(state): AppState,
    admin: AdminSession,
    Path(login): Path<String>,
    req: Body<NewPassword>,
) -> Result<Json<()>, ApiError> {
    let req = body(req)?;
    let id = tenant_id(&state, &login).await?;
    if state.db.tenant(id).await?.managed {
        // Its agent holds the password in its enrollment: only the tenant, who can enroll
        // the computer again, may change it.
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "\"{login}\" is the managed subtenant of a computer in its tenant's backup policy; only the tenant can change its password"
            ),
        ));
    }
    let hash = auth::hash_new_password(req.password).await?;
    state.db.set_tenant_password(id, &hash).await?;
    state.db.delete_sessions_of(Realm::Tenant, id).await?;
    state
        .db
        .audit(&admin.name, "tenant.password", &login, "")
        .await?;
    Ok(Json(()))
}

#[derive(Debug, Deserialize)]
struct DeleteOptions {
    #[serde(default)]
    with_data: bool,
}

async fn delete_tenant(
    State(state): AppState,
    admin: AdminSession,
    Path(login): Path<String>,
    Query(options): Query<DeleteOptions>,
) -> Result<Json<()>, ApiError> {
    let id = tenant_id(&state, &login).await?;
    // Its replicas live on cloud hosts, outside every storage area: removed there first, or
    // the deletion waits (their records would go and leave their disks behind).
    let replicas = state.db.replicas(Some(id)).await?;
    if !replicas.is_empty() && !options.with_data {
        return Err(ApiError::new(
            cloudkeep_api::ErrorCode::Conflict,
            format!(
                "{login} has {} replicas on your cloud hosts: delete it with its data (they are removed from the hosts too), or have the tenant remove them first",
                replicas.len()
            ),
        ));
    }
    for replica in &replicas {
        super::replication::remove_at_host(&state, replica).await?;
        state.db.remove_replica(replica.id).await?;
    }
    if options.with_data {
        let mut accounts = vec![id];
        accounts.extend(state.db.subtenants(id).await?.into_iter().map(|t| t.id));
        crate::session::remove_areas(&state, &accounts).await?;
    }
    state.db.delete_tenant(id).await?;
    state
        .db
        .audit(
            &admin.name,
            "tenant.delete",
            &login,
            if options.with_data {
                "with data"
            } else {
                "data kept"
            },
        )
        .await?;
    Ok(Json(()))
}

async fn get_maintenance(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<MaintenanceMode>, ApiError> {
    Ok(Json(MaintenanceMode {
        message: state.db.maintenance().await?,
    }))
}

async fn set_maintenance(
    State(state): AppState,
    admin: AdminSession,
    req: Body<MaintenanceMode>,
) -> Result<Json<MaintenanceMode>, ApiError> {
    let req = body(req)?;
    let message = req.message.map(|m| m.trim().to_owned());
    if message.as_deref() == Some("") {
        return Err(ApiError::bad_request(
            "give the message tenants will see while maintenance mode is on",
        ));
    }
    state.db.set_maintenance(message.as_deref()).await?;
    let (action, detail) = match &message {
        Some(m) => ("maintenance.on", m.as_str()),
        None => ("maintenance.off", ""),
    };
    state
        .db
        .audit(&admin.name, action, "gateway", detail)
        .await?;
    Ok(Json(MaintenanceMode { message }))
}

async fn get_settings(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<GatewaySettings>, ApiError> {
    Ok(Json(GatewaySettings {
        lease_grace_days: state.db.lease_grace_days().await?,
    }))
}

/// Longest grace period after a lease ends, in days (ten years).
const MAX_LEASE_GRACE_DAYS: u32 = 3650;

async fn set_gateway_settings(
    State(state): AppState,
    admin: AdminSession,
    req: Body<GatewaySettings>,
) -> Result<Json<GatewaySettings>, ApiError> {
    let req = body(req)?;
    if req.lease_grace_days > MAX_LEASE_GRACE_DAYS {
        return Err(ApiError::bad_request(format!(
            "give a grace period of 0 to {MAX_LEASE_GRACE_DAYS} days"
        )));
    }
    state.db.set_lease_grace_days(req.lease_grace_days).await?;
    state
        .db
        .audit(
            &admin.name,
            "settings.lease_grace_days",
            "gateway",
            &req.lease_grace_days.to_string(),
        )
        .await?;
    Ok(Json(req))
}

async fn list_gateways(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<GatewayEntry>>, ApiError> {
    Ok(Json(state.db.gateways().await?))
}

/// `PUT /v1/admin/gateways/{id}/drain`: drains a gateway for maintenance (it refuses new
/// sessions, which clients take to the next gateway; sessions running on it finish), or puts
/// it back in service.
async fn drain_gateway(
    State(state): AppState,
    admin: AdminSession,
    Path(id): Path<String>,
    req: Body<cloudkeep_api::DrainRequest>,
) -> Result<Json<Vec<GatewayEntry>>, ApiError> {
    let req = body(req)?;
    if !state.db.set_draining(&id, req.draining).await? {
        return Err(ApiError::not_found(format!(
            "there is no gateway \"{id}\" in the gateway list"
        )));
    }
    let action = if req.draining {
        "gateway.drain"
    } else {
        "gateway.resume"
    };
    state.db.audit(&admin.name, action, &id, "").await?;
    Ok(Json(state.db.gateways().await?))
}

async fn usage(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<UsageRow>>, ApiError> {
    let mut rows = Vec::new();
    for tenant in state.db.tenants().await? {
        for q in state.db.quotas_of(tenant.id).await? {
            rows.push(UsageRow {
                tenant: tenant.login.clone(),
                repo: q.repo_name,
                friendly_name: q.friendly_name,
                quota_bytes: q.quota_bytes,
                used_bytes: q.used_bytes,
                recycle_bytes: q.recycle_bytes,
                reclaimable_bytes: q.reclaimable_bytes,
                points: state.db.point_count(q.id).await?,
                last_activity_ms: tenant.last_activity_ms,
            });
        }
    }
    Ok(Json(rows))
}

/// `POST /v1/admin/space`: recycled points whose protection ran out purged, then a space pass
/// over every account now (both also run by themselves).
async fn space_pass(
    State(state): AppState,
    admin: AdminSession,
) -> Result<Json<cloudkeep_api::PassReport>, ApiError> {
    super::recycle::purge_expired(&state).await?;
    let report = super::space::pass_all(&state).await?;
    state
        .db
        .audit(
            &admin.name,
            "space.pass",
            "*",
            &format!(
                "removed {} bytes, retired {} bytes",
                report.removed_bytes, report.retired_bytes
            ),
        )
        .await?;
    Ok(Json(report))
}

/// `GET /v1/admin/admins`: every SP admin.
async fn list_admins(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<cloudkeep_api::AdminView>>, ApiError> {
    Ok(Json(
        state
            .db
            .admins()
            .await?
            .into_iter()
            .map(|(name, created_ms)| cloudkeep_api::AdminView { name, created_ms })
            .collect(),
    ))
}

/// `POST /v1/admin/admins {user, password}`: another SP admin.
async fn add_admin(
    State(state): AppState,
    admin: AdminSession,
    req: Body<LoginRequest>,
) -> Result<Json<cloudkeep_api::AdminView>, ApiError> {
    let req = body(req)?;
    cloudkeep_model::names::check("admin", &req.user)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let hash = auth::hash_new_password(req.password).await?;
    state.db.add_admin(&req.user, &hash).await?;
    state
        .db
        .audit(&admin.name, "admin.add", &req.user, "")
        .await?;
    Ok(Json(cloudkeep_api::AdminView {
        name: req.user,
        created_ms: crate::store::now_ms(),
    }))
}

/// `DELETE /v1/admin/admins/{name}`: removes another SP admin (never oneself, never the last).
async fn remove_admin(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
) -> Result<Json<()>, ApiError> {
    if name == admin.name {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot remove yourself; another SP admin can",
        ));
    }
    match state.db.delete_admin(&name).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::not_found(format!(
                "there is no SP admin \"{name}\""
            )));
        }
        Err(crate::store::DbError::Invalid(message)) => {
            return Err(ApiError::new(ErrorCode::Conflict, message));
        }
        Err(e) => return Err(e.into()),
    }
    state
        .db
        .audit(&admin.name, "admin.remove", &name, "")
        .await?;
    Ok(Json(()))
}

/// `POST /v1/admin/admins/{name}/password {password}`: a new password for an SP admin (its
/// sessions end; for oneself too).
async fn set_admin_password(
    State(state): AppState,
    admin: AdminSession,
    Path(name): Path<String>,
    req: Body<NewPassword>,
) -> Result<Json<()>, ApiError> {
    let req = body(req)?;
    let hash = auth::hash_new_password(req.password).await?;
    let Some(target) = state.db.admin_by_name(&name).await? else {
        return Err(ApiError::not_found(format!(
            "there is no SP admin \"{name}\""
        )));
    };
    state.db.set_admin_password(&name, &hash).await?;
    state.db.delete_sessions_of(Realm::Admin, target.id).await?;
    state
        .db
        .audit(&admin.name, "admin.password", &name, "")
        .await?;
    Ok(Json(()))
}

async fn audit_log(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(state.db.audit_log(1000).await?))
}

async fn cert_show(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<tls::CertInfo>, ApiError> {
    state.certs.info().map(Json).map_err(ApiError::internal)
}

async fn install_cert(
    state: &GatewayState,
    admin: &AdminSession,
    action: &str,
    pair: tls::PemPair,
) -> Result<Json<tls::CertInfo>, ApiError> {
    let info = tls::CertStore::install(&state.data_dir, &pair)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .certs
        .reload_if_changed()
        .map_err(ApiError::internal)?;
    state
        .db
        .audit(&admin.name, action, "certificate", &info.fingerprint)
        .await?;
    tracing::info!(fingerprint = %info.fingerprint, "serving a new certificate");
    Ok(Json(info))
}

async fn cert_generate(
    State(state): AppState,
    admin: AdminSession,
    req: Body<CertGenerate>,
) -> Result<Json<tls::CertInfo>, ApiError> {
    let req = body(req)?;
    let pair =
        tls::generate_self_signed(&req.names).map_err(|e| ApiError::bad_request(e.to_string()))?;
    install_cert(&state, &admin, "cert.generate", pair).await
}

/// `GET /v1/admin/cert/next`: the certificate announced to be served next, if any.
async fn cert_next_show(
    State(state): AppState,
    _admin: AdminSession,
) -> Result<Json<Option<tls::CertInfo>>, ApiError> {
    Ok(Json(state.certs.next_info().map_err(ApiError::internal)?))
}

/// `POST /v1/admin/cert/next {names}`: generates the next self-signed certificate and
/// announces it (signed with the current key); it is served after `rollover`.
async fn cert_next(
    State(state): AppState,
    admin: AdminSession,
    req: Body<CertGenerate>,
) -> Result<Json<tls::CertInfo>, ApiError> {
    let req = body(req)?;
    let pair =
        tls::generate_self_signed(&req.names).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let info = tls::CertStore::install_next(&state.data_dir, &pair)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .db
        .audit(&admin.name, "cert.next", "certificate", &info.fingerprint)
        .await?;
    Ok(Json(info))
}

/// `POST /v1/admin/cert/rollover`: serves the announced certificate now.
async fn cert_rollover(
    State(state): AppState,
    admin: AdminSession,
) -> Result<Json<tls::CertInfo>, ApiError> {
    let info = state
        .certs
        .roll_over(&state.data_dir)
        .map_err(|e| ApiError::new(ErrorCode::Conflict, e.to_string()))?;
    state
        .db
        .audit(
            &admin.name,
            "cert.rollover",
            "certificate",
            &info.fingerprint,
        )
        .await?;
    tracing::info!(fingerprint = %info.fingerprint, "serving the announced certificate");
    Ok(Json(info))
}

async fn cert_import(
    State(state): AppState,
    admin: AdminSession,
    req: Body<CertImport>,
) -> Result<Json<tls::CertInfo>, ApiError> {
    let req = body(req)?;
    let pair = tls::PemPair {
        chain: req.chain,
        key: req.key,
    };
    install_cert(&state, &admin, "cert.import", pair).await
}
