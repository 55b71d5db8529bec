//! Notifications: where this computer sends word of failed runs, failed restore tests and
//! suspicious runs (tenant mode), and where the gateway sends it for every tenant (SP mode).
//! The SMTP password goes in, never comes back.

use cloudkeep_api::notify::Channels;
use serde::Serialize;
use tauri::State;

use super::blocking;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// One channel's outcome of a test.
#[derive(Debug, Serialize)]
pub struct Tried {
    channel: String,
    error: Option<String>,
}

/// This computer's channels.
#[tauri::command]
pub async fn notify_get(state: State<'_, ConsoleState>) -> Result<Channels, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(cloudkeep_tenant::notify::channels(&ctx)?)).await
}

/// Sets this computer's channels (an email channel without a password keeps the kept one).
#[tauri::command]
pub async fn notify_set(
    state: State<'_, ConsoleState>,
    channels: Channels,
) -> Result<Channels, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(cloudkeep_tenant::notify::set_channels(&ctx, channels)?)).await
}

/// Sends a test notification from this computer to every channel.
#[tauri::command]
pub async fn notify_test(state: State<'_, ConsoleState>) -> Result<Vec<Tried>, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        Ok(cloudkeep_tenant::notify::test(&ctx)?
            .into_iter()
            .map(|(channel, error)| Tried {
                channel: channel.to_owned(),
                error,
            })
            .collect())
    })
    .await
}

/// The gateway's channels (SP mode).
#[tauri::command]
pub async fn sp_notify_get(state: State<'_, ConsoleState>) -> Result<Channels, CommandError> {
    Ok(state.sp_client().await?.notify_channels().await?)
}

/// Sets the gateway's channels (SP mode).
#[tauri::command]
pub async fn sp_notify_set(
    state: State<'_, ConsoleState>,
    channels: Channels,
) -> Result<Channels, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_notify_channels(&channels)
        .await?)
}

/// Sends a test notification from the gateway to every channel (SP mode).
#[tauri::command]
pub async fn sp_notify_test(state: State<'_, ConsoleState>) -> Result<Vec<Tried>, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .test_notify()
        .await?
        .into_iter()
        .map(|v| Tried {
            channel: v["channel"].as_str().unwrap_or("?").to_owned(),
            error: v["error"].as_str().map(str::to_owned),
        })
        .collect())
}
