//! SP mode: connecting to a gateway as SP admin through the same certificate trust step (the
//! session is saved, shared with `cloudkeep sp`), and the admin API: tenants (the New tenant
//! wizard, settings, quotas, password, delete), cloud repositories, gateways, the certificate
//! (show, generate, import PEM files), usage (CSV export), the recycle bin, maintenance and
//! the storage check.

use cloudkeep_api::{CertInfo, RecycledRef};
use cloudkeep_api::{
    CloudRepo, GatewayEntry, MaintenanceMode, NewTenant, RecycledPoint, TenantView, UsageRow,
    usage_csv,
};
use cloudkeep_api::{QuotaSpec, TenantSettings};
use cloudkeep_client::{SpClient, SpSession};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::state::ConsoleState;

/// The SP admin session as the page sees it (never the token).
#[derive(Debug, Serialize)]
pub struct SpConnection {
    /// `host:port`.
    pub gateway: String,
    /// Admin name.
    pub user: String,
    /// The pinned certificate.
    pub fingerprint: String,
}

impl From<&SpSession> for SpConnection {
    fn from(s: &SpSession) -> Self {
        Self {
            gateway: s.gateway.clone(),
            user: s.user.clone(),
            fingerprint: s.fingerprint.clone(),
        }
    }
}

/// The saved SP admin session, if any.
#[tauri::command]
pub fn sp_session(state: State<'_, ConsoleState>) -> Option<SpConnection> {
    SpSession::load(&state.home).ok().map(|s| (&s).into())
}

/// Logs in as SP admin (trust step as for a provider: `trust` is the fingerprint confirmed).
#[tauri::command]
pub async fn sp_connect(
    state: State<'_, ConsoleState>,
    gateway: String,
    user: String,
    password: String,
    trust: Option<String>,
) -> Result<SpConnection, CommandError> {
    connect(
        &state,
        gateway.trim(),
        user.trim(),
        &password,
        trust.as_deref(),
    )
    .await
}

/// Logs in as an SP admin and keeps the session (saved, and this console's client).
async fn connect(
    state: &ConsoleState,
    gateway: &str,
    user: &str,
    password: &str,
    trust: Option<&str>,
) -> Result<SpConnection, CommandError> {
    let saved = SpSession::load(&state.home).ok();
    let session = SpSession::log_in(gateway, user, password, trust, saved.as_ref()).await?;
    session.save(&state.home)?;
    *state.sp.lock().await = Some(SpClient::from_session(&session)?);
    Ok((&session).into())
}

/// Opens the lab as its service provider: starts it when it is not running and signs in
/// with its SP admin account (kept owner-only in the lab's folder), its certificate pinned
/// as the lab gave it — no password to look up, no second trust step.
#[tauri::command]
pub async fn lab_sp_connect(state: State<'_, ConsoleState>) -> Result<SpConnection, CommandError> {
    let lab = crate::background::start_lab(&state).await?;
    let accounts = &lab.accounts;
    connect(
        &state,
        &lab.address,
        &accounts.admin_user,
        &accounts.admin_password,
        Some(&lab.fingerprint),
    )
    .await
}

/// Forgets the SP admin session.
#[tauri::command]
pub async fn sp_disconnect(state: State<'_, ConsoleState>) -> Result<(), CommandError> {
    *state.sp.lock().await = None;
    cloudkeep_client::SpSession::forget(&state.home)?;
    Ok(())
}

/// Every tenant and subtenant with quotas and settings.
#[tauri::command]
pub async fn sp_tenants(state: State<'_, ConsoleState>) -> Result<Vec<TenantView>, CommandError> {
    Ok(state.sp_client().await?.tenants().await?)
}

/// Creates a tenant (or `tenant/sub`).
#[tauri::command]
pub async fn sp_tenant_add(
    state: State<'_, ConsoleState>,
    tenant: NewTenant,
) -> Result<TenantView, CommandError> {
    Ok(state.sp_client().await?.add_tenant(&tenant).await?)
}

/// Replaces a tenant's settings (description, state, lease, tasks, bandwidth, protection).
#[tauri::command]
pub async fn sp_tenant_settings(
    state: State<'_, ConsoleState>,
    login: String,
    settings: TenantSettings,
) -> Result<TenantView, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_settings(&login, &settings)
        .await?)
}

/// Sets or adds a quota of a tenant.
#[tauri::command]
pub async fn sp_tenant_quota(
    state: State<'_, ConsoleState>,
    login: String,
    quota: QuotaSpec,
) -> Result<TenantView, CommandError> {
    Ok(state.sp_client().await?.set_quota(&login, &quota).await?)
}

/// Sets a tenant's password.
#[tauri::command]
pub async fn sp_tenant_password(
    state: State<'_, ConsoleState>,
    login: String,
    password: String,
) -> Result<(), CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_password(&login, &password)
        .await?)
}

/// Deletes a tenant (with its data when asked).
#[tauri::command]
pub async fn sp_tenant_delete(
    state: State<'_, ConsoleState>,
    login: String,
    with_data: bool,
) -> Result<(), CommandError> {
    Ok(state
        .sp_client()
        .await?
        .delete_tenant(&login, with_data)
        .await?)
}

/// A strong random password for a new account.
#[tauri::command]
pub fn sp_generate_password() -> Result<String, CommandError> {
    cloudkeep_repo::crypto::generate_password().map_err(CommandError::failed)
}

/// The cloud repositories.
#[tauri::command]
pub async fn sp_repos(state: State<'_, ConsoleState>) -> Result<Vec<CloudRepo>, CommandError> {
    Ok(state.sp_client().await?.repos().await?)
}

/// Adds a cloud repository: a folder on the gateway's machine, or (`s3` given) a bucket of an
/// object store, which the gateway tests before adding it.
#[tauri::command]
pub async fn sp_repo_add(
    state: State<'_, ConsoleState>,
    name: String,
    path: String,
    s3: Option<cloudkeep_api::S3Access>,
) -> Result<CloudRepo, CommandError> {
    let client = state.sp_client().await?;
    Ok(match s3 {
        Some(access) => client.add_s3_repo(&name, &access).await?,
        None => client.add_repo(&name, &path).await?,
    })
}

/// Whether the gateway reaches an object store with these credentials (the wizard's "Test
/// connection"); nothing is kept.
#[tauri::command]
pub async fn sp_repo_test(
    state: State<'_, ConsoleState>,
    s3: cloudkeep_api::S3Access,
) -> Result<cloudkeep_api::StorageProbe, CommandError> {
    Ok(state.sp_client().await?.test_s3(&s3).await?)
}

/// Changes a cloud repository's title, capacity or service state.
#[tauri::command]
pub async fn sp_repo_edit(
    state: State<'_, ConsoleState>,
    name: String,
    edit: cloudkeep_api::RepoEdit,
) -> Result<CloudRepo, CommandError> {
    Ok(state.sp_client().await?.edit_repo(&name, &edit).await?)
}

/// Removes a cloud repository no quota is on.
#[tauri::command]
pub async fn sp_repo_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<CloudRepo>, CommandError> {
    Ok(state.sp_client().await?.remove_repo(&name).await?)
}

/// Starts moving a tenant's quota, with its data, to another cloud repository.
#[tauri::command]
pub async fn sp_move_start(
    state: State<'_, ConsoleState>,
    request: cloudkeep_api::MoveRequest,
) -> Result<cloudkeep_api::MoveInfo, CommandError> {
    Ok(state.sp_client().await?.start_move(&request).await?)
}

/// Moves of quotas between repositories, newest first, with their progress.
#[tauri::command]
pub async fn sp_moves(
    state: State<'_, ConsoleState>,
) -> Result<Vec<cloudkeep_api::MoveInfo>, CommandError> {
    Ok(state.sp_client().await?.moves().await?)
}

/// Drains a gateway for maintenance (no new sessions; running ones finish) or puts it back
/// in service; the gateway list after the change.
#[tauri::command]
pub async fn sp_gateway_drain(
    state: State<'_, ConsoleState>,
    id: String,
    draining: bool,
) -> Result<Vec<GatewayEntry>, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .drain_gateway(&id, draining)
        .await?)
}

/// The gateways with their last heartbeat.
#[tauri::command]
pub async fn sp_gateways(
    state: State<'_, ConsoleState>,
) -> Result<Vec<GatewayEntry>, CommandError> {
    Ok(state.sp_client().await?.gateways().await?)
}

/// The certificate the gateways serve.
#[tauri::command]
pub async fn sp_cert(state: State<'_, ConsoleState>) -> Result<CertInfo, CommandError> {
    Ok(state.sp_client().await?.cert().await?)
}

/// Pins a certificate the admin just installed, in the saved session and this console.
async fn pin_installed(state: &ConsoleState, info: &CertInfo) -> Result<(), CommandError> {
    SpSession::pin_installed(&state.home, &info.fingerprint)?;
    *state.sp.lock().await = None;
    Ok(())
}

/// Generates a new self-signed certificate for `names` and serves it.
#[tauri::command]
pub async fn sp_cert_generate(
    state: State<'_, ConsoleState>,
    names: Vec<String>,
) -> Result<CertInfo, CommandError> {
    let info = state.sp_client().await?.cert_generate(names).await?;
    pin_installed(&state, &info).await?;
    Ok(info)
}

/// Every SP admin.
#[tauri::command]
pub async fn sp_admins(
    state: State<'_, ConsoleState>,
) -> Result<Vec<cloudkeep_api::AdminView>, CommandError> {
    Ok(state.sp_client().await?.admins().await?)
}

/// Adds an SP admin.
#[tauri::command]
pub async fn sp_admin_add(
    state: State<'_, ConsoleState>,
    name: String,
    password: String,
) -> Result<cloudkeep_api::AdminView, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .add_admin(name.trim(), &password)
        .await?)
}

/// Removes another SP admin (never oneself, never the last).
#[tauri::command]
pub async fn sp_admin_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<(), CommandError> {
    Ok(state.sp_client().await?.remove_admin(&name).await?)
}

/// Sets an SP admin's password (its sessions end).
#[tauri::command]
pub async fn sp_admin_password(
    state: State<'_, ConsoleState>,
    name: String,
    password: String,
) -> Result<(), CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_admin_password(&name, &password)
        .await?)
}

/// The certificate announced to be served next, if any.
#[tauri::command]
pub async fn sp_cert_next_info(
    state: State<'_, ConsoleState>,
) -> Result<Option<CertInfo>, CommandError> {
    Ok(state.sp_client().await?.cert_next_info().await?)
}

/// Generates the next self-signed certificate for `names` and announces it (signed with the
/// current key): tenants and agents learn it and follow the rollover by themselves.
#[tauri::command]
pub async fn sp_cert_next(
    state: State<'_, ConsoleState>,
    names: Vec<String>,
) -> Result<CertInfo, CommandError> {
    Ok(state.sp_client().await?.cert_next(names).await?)
}

/// Serves the announced certificate now.
#[tauri::command]
pub async fn sp_cert_rollover(state: State<'_, ConsoleState>) -> Result<CertInfo, CommandError> {
    let info = state.sp_client().await?.cert_rollover().await?;
    pin_installed(&state, &info).await?;
    Ok(info)
}

/// Imports a CA-signed chain and its key from PEM files (chosen with the file dialog).
#[tauri::command]
pub async fn sp_cert_import(
    state: State<'_, ConsoleState>,
    chain_path: String,
    key_path: String,
) -> Result<CertInfo, CommandError> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| CommandError::invalid(format!("cannot read {path}: {e}")))
    };
    let (chain, key) = (read(&chain_path)?, read(&key_path)?);
    let info = state.sp_client().await?.cert_import(chain, key).await?;
    pin_installed(&state, &info).await?;
    Ok(info)
}

/// Use per tenant and repository.
#[tauri::command]
pub async fn sp_usage(state: State<'_, ConsoleState>) -> Result<Vec<UsageRow>, CommandError> {
    Ok(state.sp_client().await?.usage().await?)
}

/// Writes the usage table as CSV to `path` (chosen with the save dialog); returns the rows
/// written.
#[tauri::command]
pub async fn sp_usage_export(
    state: State<'_, ConsoleState>,
    path: String,
) -> Result<usize, CommandError> {
    let rows = state.sp_client().await?.usage().await?;
    std::fs::write(&path, usage_csv(&rows))
        .map_err(|e| CommandError::invalid(format!("cannot write {path}: {e}")))?;
    Ok(rows.len())
}

/// The connection details to hand tenant `login` (with `password` when it was just set).
#[tauri::command]
pub async fn sp_tenant_handoff(
    state: State<'_, ConsoleState>,
    login: String,
    password: Option<String>,
) -> Result<HandoffView, CommandError> {
    let handoff = state.sp_client().await?.handoff(&login, password).await?;
    Ok(HandoffView {
        text: handoff.text(),
        handoff,
    })
}

/// Saves the connection details of `login` to `path`, readable by its owner only (it may
/// hold the password).
#[tauri::command]
pub async fn sp_tenant_handoff_save(
    state: State<'_, ConsoleState>,
    login: String,
    password: Option<String>,
    path: String,
) -> Result<(), CommandError> {
    let handoff = state.sp_client().await?.handoff(&login, password).await?;
    cloudkeep_model::paths::write_private_file(
        std::path::Path::new(&path),
        handoff.text().as_bytes(),
    )
    .map_err(|e| CommandError::invalid(format!("cannot write {path}: {e}; choose another folder")))
}

/// Connection details with their text as printed and saved.
#[derive(Debug, serde::Serialize)]
pub struct HandoffView {
    /// The details.
    #[serde(flatten)]
    pub handoff: cloudkeep_api::handoff::Handoff,
    /// As one text.
    pub text: String,
}

/// Reclaims space now: expired recycle-bin points purged, packs no point needs removed (kept
/// until insider protection ends where it is on), what compactions would free measured.
#[tauri::command]
pub async fn sp_reclaim(
    state: State<'_, ConsoleState>,
) -> Result<cloudkeep_api::PassReport, CommandError> {
    Ok(state.sp_client().await?.space_pass().await?)
}

/// The recycle bin: deleted points kept by insider protection.
#[tauri::command]
pub async fn sp_recycle_bin(
    state: State<'_, ConsoleState>,
) -> Result<Vec<RecycledPoint>, CommandError> {
    Ok(state.sp_client().await?.recycle_bin().await?)
}

/// Gives a deleted point back to its tenant.
#[tauri::command]
pub async fn sp_recycle_restore(
    state: State<'_, ConsoleState>,
    point: RecycledRef,
) -> Result<(), CommandError> {
    Ok(state.sp_client().await?.recycle_restore(&point).await?)
}

/// Purges a deleted point for good.
#[tauri::command]
pub async fn sp_recycle_purge(
    state: State<'_, ConsoleState>,
    point: RecycledRef,
) -> Result<(), CommandError> {
    Ok(state.sp_client().await?.recycle_purge(&point).await?)
}

/// Maintenance mode.
#[tauri::command]
pub async fn sp_maintenance(
    state: State<'_, ConsoleState>,
) -> Result<MaintenanceMode, CommandError> {
    Ok(state.sp_client().await?.maintenance().await?)
}

/// Turns maintenance on (with the message tenants see) or off (`None`).
#[tauri::command]
pub async fn sp_set_maintenance(
    state: State<'_, ConsoleState>,
    message: Option<String>,
) -> Result<MaintenanceMode, CommandError> {
    let message = message.filter(|m| !m.trim().is_empty());
    Ok(state
        .sp_client()
        .await?
        .set_maintenance(message.as_deref())
        .await?)
}

/// What the SP sets for every tenant: the lease grace period.
#[tauri::command]
pub async fn sp_settings(
    state: State<'_, ConsoleState>,
) -> Result<cloudkeep_api::GatewaySettings, CommandError> {
    Ok(state.sp_client().await?.gateway_settings().await?)
}

/// Sets how many days after its lease ends a tenant may still restore (not back up).
#[tauri::command]
pub async fn sp_set_settings(
    state: State<'_, ConsoleState>,
    lease_grace_days: u32,
) -> Result<cloudkeep_api::GatewaySettings, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_gateway_settings(&cloudkeep_api::GatewaySettings { lease_grace_days })
        .await?)
}

/// The storage check: the database against the storage, reconciled (`deep` re-reads every
/// pack).
#[tauri::command]
pub async fn sp_check(
    state: State<'_, ConsoleState>,
    deep: bool,
) -> Result<cloudkeep_api::CheckReport, CommandError> {
    Ok(state.sp_client().await?.check(deep).await?)
}
