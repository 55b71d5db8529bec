//! Secrets of the tenant side (SP passwords, encryption passwords): kept out of the state
//! database, the logs and command lines, in an owner-only file in the data folder
//! (`secrets.json`, written atomically).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::TenantError;
use crate::paths::DataHome;

/// The secret store of a data home.
#[derive(Debug, Clone)]
pub struct Secrets {
    path: PathBuf,
}

impl Secrets {
    /// The store of `home`.
    pub fn open(home: &DataHome) -> Self {
        Self {
            path: home.root().join("secrets.json"),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, TenantError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| TenantError::Io(format!("{} is damaged: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(TenantError::Io(format!(
                "cannot read {}: {e}",
                self.path.display()
            ))),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), TenantError> {
        let text = serde_json::to_string_pretty(map).map_err(|e| TenantError::Io(e.to_string()))?;
        crate::paths::write_private_file(&self.path, text.as_bytes())
            .map_err(|e| TenantError::Io(format!("cannot write {}: {e}", self.path.display())))
    }

    /// A secret.
    pub fn get(&self, key: &str) -> Result<Option<String>, TenantError> {
        Ok(self.read()?.get(key).cloned())
    }

    /// Stores a secret.
    pub fn set(&self, key: &str, value: &str) -> Result<(), TenantError> {
        let mut map = self.read()?;
        map.insert(key.to_owned(), value.to_owned());
        self.write(&map)
    }

    /// Forgets a secret.
    pub fn remove(&self, key: &str) -> Result<(), TenantError> {
        let mut map = self.read()?;
        if map.remove(key).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }
}

/// The secret key of a provider's password.
pub fn provider_key(name: &str) -> String {
    format!("provider:{name}")
}
