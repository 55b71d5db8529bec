//! Service providers: the Add wizard's certificate step (probe), add with the trust step,
//! rescan, trust a renewed certificate, remove; and the lab, the provider on this computer
//! that the first-run screen offers.

use cloudkeep_client::tls::{Presented, probe, same_fingerprint};
use cloudkeep_client::with_default_port;
use cloudkeep_gateway::lab::LabInfo;
use cloudkeep_tenant::found;
use cloudkeep_tenant::providers::{self, NewProvider, Provider};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::state::ConsoleState;

/// The name the lab gets as a provider.
pub const LAB_PROVIDER: &str = "Lab";

/// What a gateway presents, before it is trusted (the wizard's certificate step).
#[derive(Debug, Serialize)]
pub struct Probed {
    /// `host:port` as it will be stored.
    pub address: String,
    /// The certificate and whether a CA vouches for it.
    #[serde(flatten)]
    pub presented: Presented,
    /// Where this console already trusts exactly this certificate for this address (a
    /// provider's name, or the SP session): the trust step need not ask again.
    pub pinned_by: Option<String>,
}

/// Connects to `host` and shows its certificate, saying where this console already pins it.
#[tauri::command]
pub async fn provider_probe(
    state: State<'_, ConsoleState>,
    host: String,
) -> Result<Probed, CommandError> {
    let host = host.trim();
    if host.is_empty() {
        return Err(CommandError::invalid(
            "enter the gateway's address as your service provider gave it, e.g. backup.example.com or 203.0.113.7:6180",
        ));
    }
    let address = with_default_port(host);
    let presented = probe(&address).await?;
    let pinned_by = pinned_by(&state, &address, &presented.cert.fingerprint).await;
    Ok(Probed {
        address,
        presented,
        pinned_by,
    })
}

/// Who in this console pins `fingerprint` for `address`: a provider (by name) or the SP
/// session. Only the very same certificate at the very same address counts.
async fn pinned_by(state: &ConsoleState, address: &str, fingerprint: &str) -> Option<String> {
    let providers = state.ctx.state().providers().await.unwrap_or_default();
    if let Some(p) = providers.iter().find(|p| {
        p.addresses.iter().any(|a| a == address) && same_fingerprint(&p.fingerprint, fingerprint)
    }) {
        return Some(format!("service provider “{}”", p.name));
    }
    cloudkeep_client::SpSession::load(&state.home)
        .ok()
        .filter(|s| s.gateway == address && same_fingerprint(&s.fingerprint, fingerprint))
        .map(|_| "your service provider session".to_owned())
}

/// Adds a provider: trust step (`trust`: the fingerprint confirmed in the wizard), login,
/// repositories.
#[tauri::command]
pub async fn provider_add(
    state: State<'_, ConsoleState>,
    name: String,
    host: String,
    user: String,
    password: String,
    trust: Option<String>,
) -> Result<Provider, CommandError> {
    if name.trim().is_empty() || user.trim().is_empty() || password.is_empty() {
        return Err(CommandError::invalid(
            "give the provider a name, and the account and password your service provider gave you",
        ));
    }
    let request = NewProvider {
        name: name.trim().to_owned(),
        host: host.trim().to_owned(),
        user: user.trim().to_owned(),
        password,
        trust,
    };
    Ok(providers::add(state.ctx.state(), state.ctx.secrets(), &request).await?)
}

/// Every provider as last scanned.
#[tauri::command]
pub async fn providers_list(state: State<'_, ConsoleState>) -> Result<Vec<Provider>, CommandError> {
    Ok(state.ctx.state().providers().await?)
}

/// Logs in again and refreshes gateways and repositories.
#[tauri::command]
pub async fn provider_rescan(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Provider, CommandError> {
    Ok(providers::rescan(state.ctx.state(), state.ctx.secrets(), &name).await?)
}

/// Trusts the certificate a provider presents now (after a renewal), then rescans.
#[tauri::command]
pub async fn provider_trust(
    state: State<'_, ConsoleState>,
    name: String,
    fingerprint: String,
) -> Result<Provider, CommandError> {
    providers::trust(state.ctx.state(), &name, &fingerprint).await?;
    Ok(providers::rescan(state.ctx.state(), state.ctx.secrets(), &name).await?)
}

/// Changes the account or password a provider is reached with (after the SP changed them);
/// checked with a login first, nothing changes when it is refused.
#[tauri::command]
pub async fn provider_set_credentials(
    state: State<'_, ConsoleState>,
    name: String,
    user: Option<String>,
    password: String,
) -> Result<Provider, CommandError> {
    let user = user.filter(|u| !u.trim().is_empty());
    Ok(providers::set_credentials(
        state.ctx.state(),
        state.ctx.secrets(),
        &name,
        user.as_deref().map(str::trim),
        &password,
    )
    .await?)
}

/// Forgets a provider (its restore points stay at the provider).
#[tauri::command]
pub async fn provider_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<(), CommandError> {
    Ok(providers::remove(state.ctx.state(), state.ctx.secrets(), &name).await?)
}

/// The lab, running in this console, and its provider.
#[derive(Debug, Serialize)]
pub struct LabStarted {
    /// Where it listens, its certificate and accounts.
    pub lab: LabInfo,
    /// The provider it is added as.
    pub provider: Provider,
}

/// Starts the lab in the background (once per console) and adds it as provider "Lab",
/// pinned.
#[tauri::command]
pub async fn lab_start(state: State<'_, ConsoleState>) -> Result<LabStarted, CommandError> {
    let lab = crate::background::start_lab(&state).await?;
    let provider = match state.ctx.state().provider(LAB_PROVIDER).await {
        Ok(p) => p,
        Err(_) => {
            providers::add(
                state.ctx.state(),
                state.ctx.secrets(),
                &NewProvider {
                    name: LAB_PROVIDER.into(),
                    host: lab.address.clone(),
                    user: lab.accounts.tenant_user.clone(),
                    password: lab.accounts.tenant_password.clone(),
                    trust: Some(lab.fingerprint.clone()),
                },
            )
            .await?
        }
    };
    Ok(LabStarted { lab, provider })
}

/// What `provider`'s cloud repositories hold already (without their keys), and which jobs
/// of this computer use them.
#[tauri::command]
pub async fn found_repos(
    state: State<'_, ConsoleState>,
    provider: String,
) -> Result<Vec<found::FoundRepo>, CommandError> {
    let ctx = state.ctx.clone();
    super::blocking(move || Ok(found::repositories(&ctx, &provider)?)).await
}

/// The jobs in `repo` of `provider` (of its policy computer `account`, when given), opened
/// with `password` (none: unencrypted).
#[tauri::command]
pub async fn found_jobs(
    state: State<'_, ConsoleState>,
    provider: String,
    repo: String,
    account: Option<String>,
    password: Option<String>,
) -> Result<Vec<found::FoundJob>, CommandError> {
    let ctx = state.ctx.clone();
    super::blocking(move || {
        Ok(found::jobs_in(
            &ctx,
            &provider,
            &repo,
            account.as_deref(),
            password.as_deref(),
        )?)
    })
    .await
}

/// Makes job `job` found in `repo` (of policy computer `account`) a job of this computer
/// (its points browsable and restorable here); the password is checked and stored as a new
/// job's would be.
#[tauri::command]
pub async fn found_adopt(
    state: State<'_, ConsoleState>,
    provider: String,
    repo: String,
    account: Option<String>,
    job: String,
    password: Option<String>,
) -> Result<cloudkeep_tenant::jobs::Job, CommandError> {
    let ctx = state.ctx.clone();
    super::blocking(move || {
        let account = account.as_deref();
        let jobs = found::jobs_in(&ctx, &provider, &repo, account, password.as_deref())?;
        let which = jobs.iter().find(|j| j.name == job).ok_or_else(|| {
            CommandError::invalid(format!(
                "there is no job \"{job}\" in \"{repo}\" any more; show the jobs again"
            ))
        })?;
        Ok(found::adopt(
            &ctx,
            &provider,
            &repo,
            account,
            which,
            &job,
            password.as_deref(),
        )?)
    })
    .await
}
