//! The host's settings in its folder (`DATA_HOME/host/host.json`, owner-only): the
//! connection details the SP handed over (gateway addresses, certificate fingerprint, the
//! host's name and password), its storage pools and how many isolated networks it makes.
//! `cloudkeep host run --connect FILE --pool NAME=PATH` writes them; later runs read them.

use std::path::{Path, PathBuf};

use cloudkeep_api::handoff::Handoff;
use serde::{Deserialize, Serialize};

use crate::HostError;

/// How many isolated networks a host makes unless told otherwise.
pub const DEFAULT_NETWORKS: u32 = 64;

/// A storage pool: a named folder for replicas' disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Its name.
    pub name: String,
    /// The folder (absolute).
    pub path: PathBuf,
}

impl PoolConfig {
    /// `NAME=PATH`, the path absolute.
    pub fn parse(text: &str) -> Result<Self, HostError> {
        let (name, path) = text.split_once('=').ok_or_else(|| {
            HostError::Invalid(format!(
                "\"{text}\" is not a storage pool; write NAME=FOLDER, e.g. main=/srv/cloudkeep/replicas"
            ))
        })?;
        cloudkeep_model::names::check("storage pool", name)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(HostError::Invalid(format!(
                "the folder of storage pool {name} must be an absolute path, not {}",
                path.display()
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            path,
        })
    }
}

/// The host's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// The connection details, once given.
    pub connection: Option<Handoff>,
    /// Storage pools.
    pub pools: Vec<PoolConfig>,
    /// Isolated networks it makes at most.
    pub networks: u32,
    /// Where it listens for its gateways (`0.0.0.0:6181` unless told).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The address gateways reach it at, when not the one it listens on (a NAT, a name).
    #[serde(default)]
    pub advertise: Option<String>,
    /// The key its gateways present to it (64 hex digits), made on first use.
    #[serde(default)]
    pub relay_key: Option<String>,
    /// QEMU's accelerator for replicas (`kvm:tcg` unless told: `tcg` where KVM guests hang).
    #[serde(default)]
    pub accel: Option<String>,
}

/// The port a cloud host listens on for its gateways.
pub const DEFAULT_PORT: u16 = 6181;

fn default_listen() -> String {
    format!("0.0.0.0:{DEFAULT_PORT}")
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            connection: None,
            pools: Vec::new(),
            networks: DEFAULT_NETWORKS,
            listen: default_listen(),
            advertise: None,
            relay_key: None,
            accel: None,
        }
    }
}

impl HostConfig {
    /// The settings file in the host's folder.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("host.json")
    }

    /// The saved settings, or the defaults when there are none yet.
    pub fn load(dir: &Path) -> Result<Self, HostError> {
        let path = Self::file(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                HostError::Invalid(format!(
                    "{} is damaged ({e}); remove it and run `cloudkeep host run --connect FILE` again",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(HostError::File {
                what: "read",
                path,
                source,
            }),
        }
    }

    /// Saves the settings, readable by the host's account only.
    pub fn save(&self, dir: &Path) -> Result<(), HostError> {
        cloudkeep_model::paths::create_private_dir(dir).map_err(|source| HostError::File {
            what: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = Self::file(dir);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| HostError::Invalid(format!("the host's settings: {e}")))?;
        cloudkeep_model::paths::write_private_file(&path, &bytes).map_err(|source| {
            HostError::File {
                what: "write",
                path,
                source,
            }
        })
    }

    /// The relay key, made (32 random bytes) when there is none yet.
    pub fn ensure_relay_key(&mut self) -> Result<String, HostError> {
        if let Some(key) = &self.relay_key {
            return Ok(key.clone());
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| HostError::Invalid(format!("no randomness from the OS: {e}")))?;
        let key = hex::encode(raw);
        self.relay_key = Some(key.clone());
        Ok(key)
    }

    /// Adds or replaces pools by name; each folder is created (owner-only) if missing.
    pub fn set_pools(&mut self, pools: Vec<PoolConfig>) -> Result<(), HostError> {
        for pool in pools {
            cloudkeep_model::paths::create_private_dir(&pool.path).map_err(|source| {
                HostError::File {
                    what: "create the storage pool folder",
                    path: pool.path.clone(),
                    source,
                }
            })?;
            self.pools.retain(|p| p.name != pool.name);
            self.pools.push(pool);
        }
        self.pools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }
}

/// Reads the connection details `cloudkeep sp host add` wrote.
pub fn read_connection(file: &Path) -> Result<Handoff, HostError> {
    let text = std::fs::read_to_string(file).map_err(|source| HostError::File {
        what: "read the connection details",
        path: file.to_path_buf(),
        source,
    })?;
    let details = Handoff::parse(&text).ok_or_else(|| {
        HostError::Invalid(format!(
            "{} holds no connection details (gateway address, certificate fingerprint, account); use the file `cloudkeep sp host add` wrote",
            file.display()
        ))
    })?;
    if details.password.is_none() {
        return Err(HostError::Invalid(format!(
            "{} has no password; add the host again to get new details",
            file.display()
        )));
    }
    Ok(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_saved_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("host");
        assert_eq!(HostConfig::load(&home).unwrap(), HostConfig::default());
        let mut config = HostConfig::default();
        config
            .set_pools(vec![
                PoolConfig::parse(&format!("main={}", dir.path().join("p1").display())).unwrap(),
            ])
            .unwrap();
        config
            .set_pools(vec![
                PoolConfig::parse(&format!("main={}", dir.path().join("p2").display())).unwrap(),
            ])
            .unwrap();
        assert_eq!(config.pools.len(), 1, "a pool is replaced by name");
        config.save(&home).unwrap();
        assert_eq!(HostConfig::load(&home).unwrap(), config);
        assert!(cloudkeep_model::paths::exposed(&HostConfig::file(&home)).is_none());
        assert!(PoolConfig::parse("main=relative").is_err());
        assert!(PoolConfig::parse("../x=/srv").is_err());
        assert!(PoolConfig::parse("main").is_err());
    }
}
