//! The lab: a complete service provider on this computer for trying Cloudkeep — a gateway on
//! loopback with its own data folder (`DATA_HOME/lab`), a cloud repository and a demo tenant
//! with a quota. It keeps its accounts across runs (`lab.json`, owner-only), so a provider
//! added from it keeps working. `cloudkeep lab` and the console's first-run screen use it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::server::{RunOptions, Started, run};
use crate::store::Db;
use crate::{GatewayConfig, GatewayError, InitOptions, init};
use cloudkeep_api::{QuotaSpec, TenantSettings};
use cloudkeep_model::paths::DataHome;
use cloudkeep_repo::crypto::{KdfParams, hash_password};

/// Preferred lab port; another free one is used when it is taken.
pub const LAB_PORT: u16 = 16180;

/// How to reach the lab and log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAccounts {
    /// SP admin name.
    pub admin_user: String,
    /// SP admin password.
    pub admin_password: String,
    /// Demo tenant.
    pub tenant_user: String,
    /// Its password.
    pub tenant_password: String,
    /// The demo tenant's repository name.
    pub repo: String,
}

/// A running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInfo {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The certificate to pin.
    pub fingerprint: String,
    /// The accounts.
    pub accounts: LabAccounts,
}

fn random_password() -> Result<String, GatewayError> {
    let mut raw = [0u8; 12];
    cloudkeep_repo::crypto::random_bytes(&mut raw)
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    Ok(hex::encode(raw))
}

/// The lab's data folder.
pub fn lab_dir(home: &DataHome) -> PathBuf {
    home.lab()
}

/// Creates the lab on first use (gateway, repository, demo tenant with 10 GiB); returns its
/// accounts.
pub async fn prepare(home: &DataHome) -> Result<LabAccounts, GatewayError> {
    let dir = lab_dir(home);
    let accounts_path = dir.join("lab.json");
    if let Ok(text) = std::fs::read_to_string(&accounts_path)
        && let Ok(accounts) = serde_json::from_str::<LabAccounts>(&text)
    {
        return Ok(accounts);
    }
    home.ensure()
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    let accounts = LabAccounts {
        admin_user: "admin".into(),
        admin_password: random_password()?,
        tenant_user: "demo".into(),
        tenant_password: random_password()?,
        repo: "Lab storage".into(),
    };
    let report = init(InitOptions {
        data_dir: dir.clone(),
        hostnames: vec!["127.0.0.1".into(), "localhost".into()],
        db: None,
        admin_user: accounts.admin_user.clone(),
        admin_password: accounts.admin_password.clone(),
        listen: Some(format!("127.0.0.1:{LAB_PORT}")),
    })
    .await?;
    let db = Db::open(&report.config.db).await?;
    db.add_repo(crate::store::repos::NewRepo::folder(
        "lab",
        &dir.join("storage").display().to_string(),
    ))
    .await?;
    let hash = hash_password(&accounts.tenant_password, KdfParams::accounts())
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    db.add_tenant(
        None,
        &accounts.tenant_user,
        &hash,
        &TenantSettings {
            description: "Cloudkeep lab demo tenant".into(),
            ..TenantSettings::default()
        },
        &[QuotaSpec {
            repo: "lab".into(),
            friendly_name: Some(accounts.repo.clone()),
            bytes: cloudkeep_model::units::Limit::Bytes(10 << 30),
        }],
        false,
    )
    .await?;
    db.close().await;
    let text =
        serde_json::to_string_pretty(&accounts).map_err(|e| GatewayError::Other(e.to_string()))?;
    cloudkeep_model::paths::write_private_file(&accounts_path, text.as_bytes()).map_err(
        |source| GatewayError::Io {
            path: accounts_path,
            source,
        },
    )?;
    Ok(accounts)
}

/// Runs the lab's gateway until `shutdown`; calls `started` once it listens.
pub async fn run_lab(
    home: &DataHome,
    started: impl FnOnce(LabInfo),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), GatewayError> {
    let accounts = prepare(home).await?;
    let dir = lab_dir(home);
    // The lab is this user's own: a lab made by an older Cloudkeep (folders 0755) is made
    // owner-only here rather than refused like an SP's gateway.
    for folder in [dir.clone(), dir.join("storage")] {
        if folder.is_dir() && cloudkeep_model::paths::exposed(&folder).is_some() {
            cloudkeep_model::paths::make_dir_private(&folder).map_err(|source| {
                GatewayError::Io {
                    path: folder.clone(),
                    source,
                }
            })?;
        }
    }
    let meta = dir.join("meta.db");
    if let Some(exposure) = cloudkeep_model::paths::exposed(&meta) {
        tracing::info!("making the lab's database owner-only ({exposure})");
        cloudkeep_model::paths::make_file_private(&meta).map_err(|source| GatewayError::Io {
            path: meta.clone(),
            source,
        })?;
    }
    let config = GatewayConfig::load(&dir)?;
    let free = std::net::TcpListener::bind(&config.listen).is_ok();
    run(
        RunOptions {
            data_dir: dir,
            listen: if free {
                None
            } else {
                Some("127.0.0.1:0".into())
            },
            allow_root: true,
            id: None,
            // The lab may fall back to any free port: register the one bound.
            advertise: Some("127.0.0.1".into()),
            metrics_listen: None,
        },
        move |s: &Started| {
            started(LabInfo {
                address: s.addr.to_string(),
                fingerprint: s.fingerprint.clone(),
                accounts,
            })
        },
        shutdown,
    )
    .await
}
