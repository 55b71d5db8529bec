//! The tenant's subtenants at one of its providers: list, create (with a quota carved from
//! the tenant's), change quota, disable or enable, delete.

use cloudkeep_api::TenantView;
use cloudkeep_api::{NewSubtenant, SubtenantChange};
use cloudkeep_client::tenant::TenantClient;
use cloudkeep_tenant::providers;
use tauri::State;

use crate::error::CommandError;
use crate::state::ConsoleState;

async fn connect(state: &ConsoleState, provider: &str) -> Result<TenantClient, CommandError> {
    Ok(
        providers::connect(state.ctx.state(), state.ctx.secrets(), provider)
            .await?
            .0,
    )
}

/// The subtenants at `provider`.
#[tauri::command]
pub async fn subtenants_list(
    state: State<'_, ConsoleState>,
    provider: String,
) -> Result<Vec<TenantView>, CommandError> {
    Ok(connect(&state, &provider).await?.subtenants().await?)
}

/// Creates a subtenant.
#[tauri::command]
pub async fn subtenant_add(
    state: State<'_, ConsoleState>,
    provider: String,
    subtenant: NewSubtenant,
) -> Result<TenantView, CommandError> {
    Ok(connect(&state, &provider)
        .await?
        .add_subtenant(&subtenant)
        .await?)
}

/// Changes a subtenant's quota, state or password.
#[tauri::command]
pub async fn subtenant_set(
    state: State<'_, ConsoleState>,
    provider: String,
    name: String,
    change: SubtenantChange,
) -> Result<TenantView, CommandError> {
    Ok(connect(&state, &provider)
        .await?
        .set_subtenant(&name, &change)
        .await?)
}

/// Deletes a subtenant and its data.
#[tauri::command]
pub async fn subtenant_delete(
    state: State<'_, ConsoleState>,
    provider: String,
    name: String,
) -> Result<(), CommandError> {
    Ok(connect(&state, &provider)
        .await?
        .delete_subtenant(&name)
        .await?)
}
