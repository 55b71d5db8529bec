//! After each backup and restore test: the gateway is told how it went (for the SP's view and
//! the tenant's policy status; results, never content), and this computer's notification
//! channels — set with `cloudkeep notify set` or the console's Settings — get what needs a
//! person: a failed run, a failed restore test, a run that looked like ransomware. A run that
//! failed because the gateway is out of reach is still notified from here.
//!
//! Both are best effort with a deadline: neither ever fails or holds up the run it reports.
//! The SMTP password lives in the secrets (the OS keyring), never in the state database.

use std::time::Duration;

use cloudkeep_api::health::RunReport;
use cloudkeep_api::notify::{Channels, Event};

use super::TenantContext;
use super::TenantError;
use super::jobs::{Job, SessionRecord, Target};

const CHANNELS: &str = "notify_channels";
const SMTP_PASSWORD: &str = "notify-smtp-password";
/// How long telling the gateway may take.
const REPORT_DEADLINE: Duration = Duration::from_secs(20);

/// This computer's channels (the SMTP password left out).
pub fn channels(ctx: &TenantContext) -> Result<Channels, TenantError> {
    Ok(match ctx.block_on(ctx.state().setting(CHANNELS))? {
        Some(text) => serde_json::from_str(&text).map_err(|e| TenantError::Damaged {
            what: "the notification settings".into(),
            reason: e.to_string(),
            fix: "set them again",
        })?,
        None => Channels::default(),
    })
}

/// The channels with the SMTP password: what sending uses.
fn usable(ctx: &TenantContext) -> Result<Channels, TenantError> {
    let mut c = channels(ctx)?;
    if let Some(email) = &mut c.email {
        email.password = ctx.secrets().get(SMTP_PASSWORD)?;
    }
    Ok(c)
}

/// Sets this computer's channels: an email channel without a password keeps the one kept,
/// an empty one removes it. Returns them as kept (no password).
pub fn set_channels(ctx: &TenantContext, mut new: Channels) -> Result<Channels, TenantError> {
    cloudkeep_notify::check(&new).map_err(|e| TenantError::Invalid(e.to_string()))?;
    match new.email.as_mut().map(|e| e.password.take()) {
        Some(Some(p)) if !p.is_empty() => {
            ctx.secrets().set(SMTP_PASSWORD, &p)?;
        }
        Some(Some(_)) | None => ctx.secrets().remove(SMTP_PASSWORD)?,
        Some(None) => {}
    }
    let text = serde_json::to_string(&new).map_err(|e| TenantError::Invalid(e.to_string()))?;
    ctx.block_on(
        ctx.state()
            .set_setting(CHANNELS, (!new.is_empty()).then_some(text.as_str())),
    )?;
    Ok(new)
}

/// Sends a test notification to every channel: each channel and its error, if any.
pub fn test(ctx: &TenantContext) -> Result<Vec<(&'static str, Option<String>)>, TenantError> {
    let channels = usable(ctx)?;
    if channels.is_empty() {
        return Err(TenantError::Invalid(
            "no notification channel is set; set an email or a webhook first".into(),
        ));
    }
    let event = Event {
        kind: "test".into(),
        source: source(),
        account: cloudkeep_repo::lock::hostname(),
        job: "(none)".into(),
        at_ms: cloudkeep_model::clock::now_ms(),
        message: "A test of this computer's Cloudkeep notifications: they reach you.".into(),
    };
    Ok(ctx
        .block_on(cloudkeep_notify::send(&channels, &event))
        .into_iter()
        .map(|d| (d.channel, d.outcome.err().map(|e| e.to_string())))
        .collect())
}

fn source() -> String {
    format!("tenant (computer {})", cloudkeep_repo::lock::hostname())
}

/// What a recorded session says to the gateway and the channels; `None` for a kind neither
/// hears of (restores, exports, health checks).
pub fn report_of(session: &SessionRecord) -> Option<RunReport> {
    if !matches!(session.kind.as_str(), "backup" | "restore-test") {
        return None;
    }
    Some(RunReport {
        job: session.job.clone(),
        kind: session.kind.clone(),
        result: session.result.clone(),
        finished_ms: session.finished_ms,
        point_time_ms: session
            .stats
            .get("point_time_ms")
            .and_then(serde_json::Value::as_i64),
        suspicious: super::anomaly::reasons_of(session).unwrap_or_default(),
        message: session.message.clone(),
    })
}

/// Tells the gateway (a provider's job run under the provider's own login: the tenant's, or
/// an agent's) and the channels about `session` of `job`. Never fails: problems are logged.
pub fn session_ended(ctx: &TenantContext, job: &Job, session: &SessionRecord) {
    let Some(report) = report_of(session) else {
        return;
    };
    if let Target::Provider {
        provider,
        account: None,
        ..
    } = &job.spec.target
    {
        let told = ctx.block_on(async {
            tokio::time::timeout(REPORT_DEADLINE, async {
                let (client, _) =
                    super::providers::connect(ctx.state(), ctx.secrets(), provider).await?;
                Ok::<_, TenantError>(client.report_run(&report).await?)
            })
            .await
        });
        match told {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(job = %job.name, "the run's result was not reported to the provider: {e}")
            }
            Err(_) => {
                tracing::warn!(job = %job.name, "the run's result was not reported to the provider: no answer in time")
            }
        }
    }
    let Some(event) = Event::for_run(&source(), &cloudkeep_repo::lock::hostname(), &report) else {
        return;
    };
    match usable(ctx) {
        Ok(channels) if channels.is_empty() => {}
        Ok(channels) => {
            ctx.block_on(cloudkeep_notify::send(&channels, &event));
        }
        Err(e) => tracing::warn!("the notification settings cannot be read: {e}"),
    }
}
