//! The service provider's notifications: where they go (`GET`/`PUT /v1/admin/notify`, a test
//! with `POST /v1/admin/notify/test`) and what is sent — every tenant's failed runs, failed
//! restore tests and suspicious runs, as their reports arrive ([`crate::health`]).
//!
//! The channels are gateway-wide settings shared by every gateway on the database; the SMTP
//! password is sealed with the gateways' secrets key, never stored or shown in the clear.
//! Sending happens after the report is answered: a slow mail server never holds up a tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::auth::AdminSession;
use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::session::{AppState, JsonBody};
use cloudkeep_api::health::RunReport;
use cloudkeep_api::notify::{Channels, Event};

const CHANNELS: &str = "notify_channels";
const SMTP_PASSWORD: &str = "notify_smtp_password";
/// What the SMTP password is sealed as (bound into its encryption).
const PASSWORD_LABEL: &str = "the notification SMTP password";

/// The notification routes.
pub fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/v1/admin/notify", get(show).put(set))
        .route("/v1/admin/notify/test", post(test))
}

/// The channels as stored (the SMTP password left out).
async fn stored(state: &GatewayState) -> Result<Channels, ApiError> {
    Ok(match state.db.setting(CHANNELS).await? {
        Some(text) => serde_json::from_str(&text).map_err(ApiError::internal)?,
        None => Channels::default(),
    })
}

/// The channels with the SMTP password opened: what sending uses.
async fn usable(state: &GatewayState) -> Result<Channels, ApiError> {
    let mut channels = stored(state).await?;
    if let Some(email) = &mut channels.email
        && let Some(sealed) = state.db.setting(SMTP_PASSWORD).await?
    {
        email.password = Some(state.stores.open_secret(PASSWORD_LABEL, &sealed)?);
    }
    Ok(channels)
}

async fn show(State(state): AppState, _admin: AdminSession) -> Result<Json<Channels>, ApiError> {
    Ok(Json(stored(&state).await?))
}

/// Sets the channels; an email channel without a password keeps the stored one, an empty
/// password removes it.
async fn set(
    State(state): AppState,
    admin: AdminSession,
    req: JsonBody<Channels>,
) -> Result<Json<Channels>, ApiError> {
    let mut channels = req.map(|Json(v)| v).map_err(from_rejection)?;
    cloudkeep_notify::check(&channels).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match channels.email.as_mut().map(|e| e.password.take()) {
        Some(Some(password)) if !password.is_empty() => {
            let sealed = state.stores.seal_secret(PASSWORD_LABEL, &password)?;
            state.db.set_setting(SMTP_PASSWORD, Some(&sealed)).await?;
        }
        Some(Some(_)) | None => state.db.set_setting(SMTP_PASSWORD, None).await?,
        Some(None) => {}
    }
    let text = serde_json::to_string(&channels).map_err(ApiError::internal)?;
    state
        .db
        .set_setting(CHANNELS, (!channels.is_empty()).then_some(text.as_str()))
        .await?;
    state
        .db
        .audit(
            &admin.name,
            "notify-set",
            "notifications",
            "channels changed",
        )
        .await?;
    Ok(Json(channels))
}

/// One channel's outcome of a test.
#[derive(Debug, Serialize)]
struct Tried {
    channel: &'static str,
    error: Option<String>,
}

async fn test(State(state): AppState, admin: AdminSession) -> Result<Json<Vec<Tried>>, ApiError> {
    let channels = usable(&state).await?;
    if channels.is_empty() {
        return Err(ApiError::bad_request(
            "no notification channel is set; set an email or a webhook first",
        ));
    }
    let event = Event {
        kind: "test".into(),
        source: format!("service provider (gateway {})", state.id),
        account: admin.name.clone(),
        job: "(none)".into(),
        at_ms: cloudkeep_model::clock::now_ms(),
        message: "A test of the service provider's notifications: they reach you.".into(),
    };
    let out = cloudkeep_notify::send(&channels, &event).await;
    Ok(Json(
        out.into_iter()
            .map(|d| Tried {
                channel: d.channel,
                error: d.outcome.err().map(|e| e.to_string()),
            })
            .collect(),
    ))
}

/// Most notifications the SP's channels get about one account in an hour.
pub const PER_ACCOUNT_HOUR: i64 = 10;

/// Sends what `login`'s report calls for to the SP's channels, in the background; at most
/// [`PER_ACCOUNT_HOUR`] per account and hour (the rest stay in the account's standing).
pub async fn run_reported(
    state: &Arc<GatewayState>,
    (tenant, login): (i64, &str),
    report: &RunReport,
) {
    let Some(event) = Event::for_run(
        &format!("service provider (gateway {})", state.id),
        login,
        report,
    ) else {
        return;
    };
    let channels = match usable(state).await {
        Ok(c) if c.is_empty() => return,
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("notification channels cannot be read: {}", e.message);
            return;
        }
    };
    let now = cloudkeep_model::clock::now_ms();
    match state
        .db
        .may_notify(tenant, &report.job, now, PER_ACCOUNT_HOUR)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                account = login,
                "notification not sent: {PER_ACCOUNT_HOUR} about this account in the last hour already"
            );
            return;
        }
        Err(e) => {
            tracing::warn!("notification cap cannot be read: {e}");
            return;
        }
    }
    tokio::spawn(async move {
        cloudkeep_notify::send(&channels, &event).await;
    });
}
