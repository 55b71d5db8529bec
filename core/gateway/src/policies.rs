//! Backup policies at the gateway: a tenant publishes a policy (`PUT /v1/policies/{id}`) and
//! reads the status of its computers (`GET /v1/policies/{id}/status`) and a computer's
//! sessions (`GET /v1/policies/{id}/computers/{computer}/sessions`); the agent of a
//! managed subtenant pulls its policy (`GET /v1/agent/policy`), says which revision it
//! applies (`POST /v1/agent/heartbeat`) and reports its sessions (`POST /v1/agent/sessions`).
//!
//! Invariant: a tenant reaches only its own policies and computers; an agent only its own
//! policy and its own reports.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::session::{AppState, JsonBody, TenantSession, only_tenants};
use crate::store::policies::{Member, StoredPolicy};
use cloudkeep_api::policy::{
    AgentHeartbeat, AgentReport, ComputerStatus, PolicyDoc, PolicySpec, RestoreOrder,
    RestoreOrderRequest, RestoreOrderUpdate,
};

/// Longest policy document accepted.
const MAX_DOCUMENT: usize = 64 << 10;
/// Longest text field of a report.
const MAX_MESSAGE: usize = 4 << 10;

/// The policy routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route(
            "/v1/policies/{id}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route("/v1/policies/{id}/status", get(status))
        .route(
            "/v1/policies/{id}/computers/{computer}/sessions",
            get(computer_sessions),
        )
        .route("/v1/agent/policy", get(agent_policy))
        .route("/v1/agent/heartbeat", post(heartbeat))
        .route("/v1/agent/sessions", post(report))
        .route(
            "/v1/policies/{id}/restores",
            get(list_orders).post(order_restore),
        )
        .route("/v1/agent/restores", get(agent_orders))
        .route(
            "/v1/agent/restores/{order}",
            axum::routing::put(update_order),
        )
}

/// `POST /v1/policies/{id}/restores`: the tenant orders a restore for one of the policy's
/// computers; its agent carries it out on its next cycle. Restores stay allowed after a lease
/// ended (within the grace period), as every restore does.
async fn order_restore(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
    req: JsonBody<RestoreOrderRequest>,
) -> Result<Json<RestoreOrder>, ApiError> {
    only_tenants(&session)?;
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    let member = member_named(&state, &session, &id, &req.computer).await?;
    if req.point.is_empty()
        || req.point.len() > 64
        || !req.point.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::bad_request(
            "name the restore point by its id (or a prefix of it) or \"latest\"",
        ));
    }
    if !["overwrite", "skip", "keep-both"].contains(&req.conflict.as_str()) {
        return Err(ApiError::bad_request(
            "existing files: overwrite, skip or keep-both",
        ));
    }
    let too_long = |s: &String| s.len() > MAX_MESSAGE;
    if req.paths.len() > 1_000
        || req.paths.iter().any(too_long)
        || req.to.as_ref().is_some_and(too_long)
    {
        return Err(ApiError::bad_request(
            "at most 1,000 paths of at most 4 KiB each",
        ));
    }
    let order = state
        .db
        .add_restore_order(
            (member.subtenant_id, session.tenant.id),
            &req.point,
            &req.paths,
            req.to.as_deref(),
            &req.conflict,
        )
        .await?;
    state
        .db
        .restore_orders(session.tenant.id, &id)
        .await?
        .into_iter()
        .find(|o| o.id == order)
        .map(Json)
        .ok_or_else(|| ApiError::internal("the order just stored is not there"))
}

/// `GET /v1/policies/{id}/restores`: the orders for the policy's computers, newest first.
async fn list_orders(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<Vec<RestoreOrder>>, ApiError> {
    only_tenants(&session)?;
    Ok(Json(state.db.restore_orders(session.tenant.id, &id).await?))
}

/// `GET /v1/agent/restores`: the orders this computer's agent is to carry out.
async fn agent_orders(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<Vec<RestoreOrder>>, ApiError> {
    let member = membership(&state, &session).await?;
    Ok(Json(state.db.pending_orders(member.subtenant_id).await?))
}

/// `PUT /v1/agent/restores/{order}`: the agent's progress on one of its orders.
async fn update_order(
    State(state): AppState,
    session: TenantSession,
    Path(order): Path<i64>,
    req: JsonBody<RestoreOrderUpdate>,
) -> Result<Json<()>, ApiError> {
    let member = membership(&state, &session).await?;
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    if !["running", "done", "failed"].contains(&req.state.as_str())
        || req.message.len() > MAX_MESSAGE
    {
        return Err(ApiError::bad_request(
            "an order's state is running, done or failed, with a message of at most 4 KiB",
        ));
    }
    if !state
        .db
        .update_order(member.subtenant_id, order, &req.state, &req.message)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "there is no restore order {order}"
        )));
    }
    Ok(Json(()))
}

/// The policy's computer `computer` of the session's tenant.
async fn member_named(
    state: &GatewayState,
    session: &TenantSession,
    id: &str,
    computer: &str,
) -> Result<Member, ApiError> {
    state
        .db
        .members(session.tenant.id, id)
        .await?
        .into_iter()
        .find(|m| m.computer == computer)
        .ok_or_else(|| {
            ApiError::not_found(format!("policy \"{id}\" has no computer \"{computer}\""))
        })
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "a policy id is 1 to 64 letters, digits or dashes",
        ))
    }
}

fn doc_of(stored: StoredPolicy) -> Result<PolicyDoc, ApiError> {
    let spec: PolicySpec = serde_json::from_str(&stored.document).map_err(|e| {
        ApiError::internal(format!(
            "the stored policy \"{}\" cannot be read ({e}); publish it again",
            stored.name
        ))
    })?;
    Ok(PolicyDoc {
        id: stored.id,
        name: stored.name,
        revision: stored.revision,
        spec,
    })
}

async fn put_policy(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
    req: JsonBody<PolicyDoc>,
) -> Result<Json<PolicyDoc>, ApiError> {
    only_tenants(&session)?;
    session.may_write()?;
    check_id(&id)?;
    let doc = req.map(|Json(v)| v).map_err(from_rejection)?;
    if doc.id != id {
        return Err(ApiError::bad_request(
            "the policy's id does not match the address",
        ));
    }
    cloudkeep_model::names::check("policy", &doc.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let document = serde_json::to_string(&doc.spec)
        .map_err(|e| ApiError::bad_request(format!("the policy cannot be stored: {e}")))?;
    if document.len() > MAX_DOCUMENT {
        return Err(ApiError::bad_request(
            "the policy is too large; name fewer sources and excludes",
        ));
    }
    let stored = state
        .db
        .put_policy(session.tenant.id, &id, &doc.name, &document)
        .await?;
    Ok(Json(doc_of(stored)?))
}

async fn get_policy(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<PolicyDoc>, ApiError> {
    only_tenants(&session)?;
    let stored = state
        .db
        .policy(session.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("you have no policy \"{id}\"")))?;
    Ok(Json(doc_of(stored)?))
}

async fn delete_policy(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<()>, ApiError> {
    only_tenants(&session)?;
    session.may_write()?;
    if !state.db.delete_policy(session.tenant.id, &id).await? {
        return Err(ApiError::not_found(format!("you have no policy \"{id}\"")));
    }
    Ok(Json(()))
}

fn parse_report(json: &str) -> Option<AgentReport> {
    serde_json::from_str(json).ok()
}

async fn status(
    State(state): AppState,
    session: TenantSession,
    Path(id): Path<String>,
) -> Result<Json<Vec<ComputerStatus>>, ApiError> {
    only_tenants(&session)?;
    let mut out = Vec::new();
    for member in state.db.members(session.tenant.id, &id).await? {
        let sub = state.db.tenant(member.subtenant_id).await?;
        let quota = state.db.quotas_of(sub.id).await?.into_iter().next();
        let last = state
            .db
            .agent_sessions(sub.id, 1, false)
            .await?
            .first()
            .and_then(|r| parse_report(r));
        let last_success = state
            .db
            .agent_sessions(sub.id, 1, true)
            .await?
            .first()
            .and_then(|r| parse_report(r));
        out.push(ComputerStatus {
            computer: member.computer,
            login: sub.login,
            enabled: sub.settings.enabled,
            quota_bytes: quota
                .as_ref()
                .map_or(cloudkeep_model::units::Limit::Unlimited, |q| q.quota_bytes),
            used_bytes: quota.as_ref().map_or(0, |q| q.used_bytes),
            applied_revision: member.applied_revision,
            seen_ms: member.seen_ms,
            next_run_ms: member.next_run_ms,
            last,
            last_success,
            // A computer's subtenant runs one job: its agent's.
            health: state.db.health_of(sub.id).await?.into_iter().next(),
        });
    }
    Ok(Json(out))
}

/// Most reports one request returns.
const MAX_REPORTS: i64 = 100;

async fn computer_sessions(
    State(state): AppState,
    session: TenantSession,
    Path((id, computer)): Path<(String, String)>,
) -> Result<Json<Vec<AgentReport>>, ApiError> {
    only_tenants(&session)?;
    let member = member_named(&state, &session, &id, &computer).await?;
    let reports = state
        .db
        .agent_sessions(member.subtenant_id, MAX_REPORTS, false)
        .await?;
    Ok(Json(
        reports.iter().filter_map(|r| parse_report(r)).collect(),
    ))
}

/// The membership of the session's account: only managed subtenants have one.
async fn membership(state: &GatewayState, session: &TenantSession) -> Result<Member, ApiError> {
    state.db.member(session.tenant.id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "\"{}\" is not a computer of a backup policy; enroll this agent with the file its tenant produced",
            session.tenant.login
        ))
    })
}

async fn agent_policy(
    State(state): AppState,
    session: TenantSession,
) -> Result<Json<PolicyDoc>, ApiError> {
    let member = membership(&state, &session).await?;
    let stored = state
        .db
        .policy(member.tenant_id, &member.policy_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("this computer's backup policy was deleted; ask your administrator")
        })?;
    Ok(Json(doc_of(stored)?))
}

async fn heartbeat(
    State(state): AppState,
    session: TenantSession,
    req: JsonBody<AgentHeartbeat>,
) -> Result<Json<()>, ApiError> {
    let member = membership(&state, &session).await?;
    let beat = req.map(|Json(v)| v).map_err(from_rejection)?;
    state
        .db
        .agent_seen(member.subtenant_id, beat.revision, beat.next_run_ms)
        .await?;
    Ok(Json(()))
}

async fn report(
    State(state): AppState,
    session: TenantSession,
    req: JsonBody<AgentReport>,
) -> Result<Json<()>, ApiError> {
    let member = membership(&state, &session).await?;
    let mut report = req.map(|Json(v)| v).map_err(from_rejection)?;
    if !matches!(
        report.result.as_str(),
        "success" | "warning" | "failed" | "stopped"
    ) {
        return Err(ApiError::bad_request(
            "a session's result is success, warning, failed or stopped",
        ));
    }
    truncate(&mut report.message, MAX_MESSAGE);
    truncate(&mut report.host, 255);
    if let Some(point) = &report.point
        && (point.len() > 128 || !point.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ApiError::bad_request("a restore point id is hex"));
    }
    let json = serde_json::to_string(&report)
        .map_err(|e| ApiError::bad_request(format!("the report cannot be stored: {e}")))?;
    state
        .db
        .add_agent_session(
            member.subtenant_id,
            report.started_ms,
            report.finished_ms,
            &report.result,
            &json,
        )
        .await?;
    Ok(Json(()))
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
