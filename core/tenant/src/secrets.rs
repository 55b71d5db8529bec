//! Secrets of the tenant side (SP passwords, encryption passwords): kept out of the state
//! database, the logs and command lines. They go to the OS keyring where one answers (the
//! Secret Service on Linux desktops, the Credential Manager on Windows), otherwise to an
//! owner-only file in the data folder (`secrets.json`, written atomically) — a headless
//! server or a session without a keyring still works. `CLOUDKEEP_SECRETS=file` chooses the
//! file. A secret found in the file while the keyring answers is moved into the keyring the
//! next time it is stored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::TenantError;
use cloudkeep_model::paths::DataHome;

/// The keyring service name of every Cloudkeep secret.
const SERVICE: &str = "Cloudkeep";

/// Set once the OS keyring has failed in this process: later calls go to the file at once.
static KEYRING_DOWN: AtomicBool = AtomicBool::new(false);

/// Where secrets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPlace {
    /// The OS keyring.
    Keyring,
    /// The owner-only file in the data folder.
    File,
}

impl std::fmt::Display for SecretPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Keyring => "the OS keyring",
            Self::File => "an owner-only file in the data folder",
        })
    }
}

/// The secret store of a data home.
#[derive(Debug, Clone)]
pub struct Secrets {
    path: PathBuf,
    /// Keeps the secrets of different data homes apart in the one OS keyring.
    scope: String,
    use_keyring: bool,
}

impl Secrets {
    /// The store of `home`.
    pub fn open(home: &DataHome) -> Self {
        let use_keyring = std::env::var("CLOUDKEEP_SECRETS").map_or(true, |v| v != "file");
        Self {
            path: home.secrets_file(),
            scope: home.root().display().to_string(),
            use_keyring,
        }
    }

    /// The keyring entry of `key`, unless the keyring is off or known to be down.
    fn entry(&self, key: &str) -> Option<keyring::Entry> {
        if !self.use_keyring || KEYRING_DOWN.load(Ordering::Relaxed) {
            return None;
        }
        keyring::Entry::new(SERVICE, &format!("{key} @ {}", self.scope))
            .map_err(|e| keyring_failed(&e))
            .ok()
    }

    fn read(&self) -> Result<BTreeMap<String, String>, TenantError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TenantError::Damaged {
                what: self.path.display().to_string(),
                reason: e.to_string(),
                fix: "restore it from a copy, or remove it and enter the passwords again",
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(TenantError::File {
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), TenantError> {
        let text = serde_json::to_string_pretty(map)
            .map_err(|e| TenantError::damaged("the secrets", e))?;
        cloudkeep_model::paths::write_private_file(&self.path, text.as_bytes()).map_err(|source| {
            TenantError::File {
                action: "write",
                path: self.path.clone(),
                source,
            }
        })
    }

    /// A secret.
    pub fn get(&self, key: &str) -> Result<Option<String>, TenantError> {
        if let Some(entry) = self.entry(key) {
            match entry.get_password() {
                Ok(value) => return Ok(Some(value)),
                Err(keyring::Error::NoEntry) => {}
                Err(e) => keyring_failed(&e),
            }
        }
        Ok(self.read()?.get(key).cloned())
    }

    /// Stores a secret; returns where it went.
    pub fn set(&self, key: &str, value: &str) -> Result<SecretPlace, TenantError> {
        if let Some(entry) = self.entry(key) {
            match entry.set_password(value) {
                Ok(()) => {
                    self.remove_from_file(key)?;
                    return Ok(SecretPlace::Keyring);
                }
                Err(e) => keyring_failed(&e),
            }
        }
        self.store_in_file(key, value.to_owned())?;
        Ok(SecretPlace::File)
    }

    /// Copies a secret into the file as well, wherever it is kept now (for a process of
    /// another account, which has a keyring of its own). A secret that is not set is an
    /// error naming it.
    pub fn keep_in_file(&self, key: &str) -> Result<(), TenantError> {
        let value = self.get(key)?.ok_or_else(|| {
            TenantError::Invalid(format!(
                "the secret \"{key}\" is not stored on this computer; enroll it again"
            ))
        })?;
        self.store_in_file(key, value)
    }

    fn store_in_file(&self, key: &str, value: String) -> Result<(), TenantError> {
        let mut map = self.read()?;
        map.insert(key.to_owned(), value);
        self.write(&map)
    }

    /// Forgets a secret (in the keyring and in the file).
    pub fn remove(&self, key: &str) -> Result<(), TenantError> {
        if let Some(entry) = self.entry(key) {
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => keyring_failed(&e),
            }
        }
        self.remove_from_file(key)
    }

    fn remove_from_file(&self, key: &str) -> Result<(), TenantError> {
        if !self.path.exists() {
            return Ok(());
        }
        let mut map = self.read()?;
        if map.remove(key).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }
}

/// Notes that the keyring does not answer (no Secret Service in this session, a locked or
/// refused store): this process uses the file from now on.
fn keyring_failed(e: &keyring::Error) {
    if !KEYRING_DOWN.swap(true, Ordering::Relaxed) {
        tracing::debug!("the OS keyring is not available, secrets go to the data folder: {e}");
    }
}

/// The secret key of a provider's password.
pub fn provider_key(name: &str) -> String {
    format!("provider:{name}")
}
