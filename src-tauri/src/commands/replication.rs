//! Cloud replication in SP mode: cloud hosts (added with their connection details shown
//! once and saved owner-only, listed with what each reported, removed) and hardware plans
//! (made, listed with their tenants, given to tenants and taken back, removed).

use cloudkeep_api::handoff::Handoff;
use cloudkeep_api::replication::{HostView, PlanSpec, PlanView};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::state::ConsoleState;

/// A host just added: the host and its connection details (with the password, this once).
#[derive(Debug, Serialize)]
pub struct AddedHostView {
    /// The host.
    pub host: HostView,
    /// Its connection details.
    pub details: Handoff,
    /// The details as one text, as saved.
    pub text: String,
}

/// The cloud hosts.
#[tauri::command]
pub async fn sp_hosts(state: State<'_, ConsoleState>) -> Result<Vec<HostView>, CommandError> {
    Ok(state.sp_client().await?.hosts().await?)
}

/// Adds a cloud host; its connection details come back this once.
#[tauri::command]
pub async fn sp_host_add(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<AddedHostView, CommandError> {
    let (host, details) = state.sp_client().await?.add_host(&name).await?;
    Ok(AddedHostView {
        host,
        text: details.host_text(),
        details,
    })
}

/// Saves a host's connection details to `path`, readable by its owner only.
#[tauri::command]
pub async fn sp_host_details_save(details: Handoff, path: String) -> Result<(), CommandError> {
    cloudkeep_model::paths::write_private_file(
        std::path::Path::new(&path),
        details.host_text().as_bytes(),
    )
    .map_err(|e| CommandError::invalid(format!("cannot write {path}: {e}; choose another folder")))
}

/// Removes a cloud host no plan is on.
#[tauri::command]
pub async fn sp_host_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<HostView>, CommandError> {
    Ok(state.sp_client().await?.remove_host(&name).await?)
}

/// The hardware plans with their tenants.
#[tauri::command]
pub async fn sp_plans(state: State<'_, ConsoleState>) -> Result<Vec<PlanView>, CommandError> {
    Ok(state.sp_client().await?.plans().await?)
}

/// Makes a hardware plan.
#[tauri::command]
pub async fn sp_plan_add(
    state: State<'_, ConsoleState>,
    plan: PlanSpec,
) -> Result<PlanView, CommandError> {
    Ok(state.sp_client().await?.add_plan(&plan).await?)
}

/// Removes a hardware plan no tenant has.
#[tauri::command]
pub async fn sp_plan_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<PlanView>, CommandError> {
    Ok(state.sp_client().await?.remove_plan(&name).await?)
}

/// Gives a tenant a hardware plan, or takes it away.
#[tauri::command]
pub async fn sp_plan_subscription(
    state: State<'_, ConsoleState>,
    plan: String,
    tenant: String,
    subscribe: bool,
) -> Result<PlanView, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_subscription(&plan, &tenant, subscribe)
        .await?)
}
