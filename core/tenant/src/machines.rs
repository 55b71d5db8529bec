//! What a replica is made of, as the command line and the console ask for it: disks named by
//! the person, a libvirt domain (its disks, vCPUs, memory and MAC address), or this computer
//! under one of its image-level backup jobs (the disks the job images). One resolver, so both
//! faces make the same replica of the same machine.

use std::path::PathBuf;

use crate::TenantError;
use crate::state::TenantState;

/// Where a replica's machine is described.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MachineSource {
    /// Disks as named: `(name, path)`.
    Disks {
        /// The disks.
        disks: Vec<(String, PathBuf)>,
    },
    /// A libvirt domain: its name, or its XML definition's file.
    Libvirt {
        /// The domain.
        domain: String,
    },
    /// This computer under an image-level backup job of it.
    Job {
        /// The job.
        job: String,
    },
}

/// A machine as a replica is made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Its disks: `(name, path)`.
    pub disks: Vec<(String, PathBuf)>,
    /// Its vCPUs, when the source says.
    pub cpu: Option<u32>,
    /// Its memory, when the source says.
    pub memory: Option<u64>,
    /// Its network card's MAC address, when the source says.
    pub mac: Option<String>,
}

/// Reads `source`.
pub async fn resolve(state: &TenantState, source: &MachineSource) -> Result<Machine, TenantError> {
    match source {
        MachineSource::Disks { disks } => Ok(Machine {
            disks: disks.clone(),
            cpu: None,
            memory: None,
            mac: None,
        }),
        MachineSource::Libvirt { domain } => {
            let domain = domain.clone();
            let d = tokio::task::spawn_blocking(move || crate::libvirt::read(&domain))
                .await
                .map_err(|e| TenantError::Invalid(e.to_string()))??;
            Ok(Machine {
                disks: d.disks,
                cpu: Some(d.cpu),
                memory: Some(d.memory),
                mac: d.mac,
            })
        }
        MachineSource::Job { job } => {
            let jobs = state.jobs().await?;
            let found = jobs.iter().find(|j| &j.name == job).ok_or_else(|| {
                TenantError::Invalid(format!(
                    "there is no backup job \"{job}\" on this computer (cloudkeep job list)"
                ))
            })?;
            let paths = crate::runner::disks_of(&found.spec);
            if paths.is_empty() {
                return Err(TenantError::Invalid(format!(
                    "job {job} backs up files, not disks: replicate a job that images volumes or the entire computer"
                )));
            }
            Ok(Machine {
                disks: paths
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("disk{i}"), p))
                    .collect(),
                cpu: None,
                memory: None,
                mac: None,
            })
        }
    }
}
