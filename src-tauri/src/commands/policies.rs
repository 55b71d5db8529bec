//! Backup policies (tenant mode): list, create, change, delete; add, remove and enroll
//! computers; read the computers' results from the provider (sync). Each is one call into
//! `core::tenant::policies`, on a blocking thread.

use std::path::PathBuf;

use cloudkeep_api::policy::{AgentReport, PolicySpec};
use cloudkeep_tenant::policies::{self, Policy, PolicyComputer};
use tauri::State;

use super::blocking;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// Every policy with its computers and their last synced status.
#[tauri::command]
pub async fn policies_list(state: State<'_, ConsoleState>) -> Result<Vec<Policy>, CommandError> {
    Ok(state.ctx.state().policies().await?)
}

/// What the New policy wizard starts from (core's template, the CLI's defaults too).
#[tauri::command]
pub fn policy_template(repo: String) -> PolicySpec {
    PolicySpec::template(repo)
}

/// Creates a policy at `provider` (published there) with its encryption password.
#[tauri::command]
pub async fn policy_create(
    state: State<'_, ConsoleState>,
    name: String,
    provider: String,
    spec: PolicySpec,
    password: String,
) -> Result<Policy, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::create(&ctx, &name, &provider, spec, &password)?)).await
}

/// Replaces a policy's settings; the agents apply them on their next cycle.
#[tauri::command]
pub async fn policy_update(
    state: State<'_, ConsoleState>,
    name: String,
    spec: PolicySpec,
) -> Result<Policy, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::edit(&ctx, &name, spec)?)).await
}

/// Deletes a policy; its computers' subtenants are disabled, or deleted `with_data`.
#[tauri::command]
pub async fn policy_delete(
    state: State<'_, ConsoleState>,
    name: String,
    with_data: bool,
) -> Result<(), CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::delete(&ctx, &name, with_data)?)).await
}

/// Adds a computer (its managed subtenant, repository and agent key).
#[tauri::command]
pub async fn policy_add_computer(
    state: State<'_, ConsoleState>,
    policy: String,
    computer: String,
) -> Result<PolicyComputer, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::add_computer(&ctx, &policy, &computer)?)).await
}

/// Removes a computer: its subtenant disabled, or deleted with its points.
#[tauri::command]
pub async fn policy_remove_computer(
    state: State<'_, ConsoleState>,
    policy: String,
    computer: String,
    delete: bool,
) -> Result<(), CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::remove_computer(&ctx, &policy, &computer, delete)?)).await
}

/// Writes a computer's enrollment file to `path` (chosen with the save dialog); returns the
/// one-time code to show.
#[tauri::command]
pub async fn policy_enroll_file(
    state: State<'_, ConsoleState>,
    policy: String,
    computer: String,
    path: PathBuf,
) -> Result<String, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::enroll_file(&ctx, &policy, &computer, &path)?)).await
}

/// The sessions a computer's agent reported, newest first.
#[tauri::command]
pub async fn policy_computer_sessions(
    state: State<'_, ConsoleState>,
    policy: String,
    computer: String,
) -> Result<Vec<AgentReport>, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::computer_sessions(&ctx, &policy, &computer)?)).await
}

/// Reads the computers' results from the provider.
#[tauri::command]
pub async fn policy_sync(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Policy, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(policies::sync(&ctx, &name)?)).await
}
