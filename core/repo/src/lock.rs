//! Repository locks: backups and restores hold a shared lock, garbage collection an exclusive
//! one, so that GC never deletes a pack a running backup has deduplicated against.
//!
//! Protocol: write your own lock object, then list the others; on a conflict remove your own
//! and refuse. Two processes racing both see each other and both back off — never both go on.
//! A lock whose process is gone (same computer, process id no longer running) is stale and is
//! removed. Locks live in the repository's metadata (for a gateway: its database), never in
//! conditional writes on object storage. At a gateway a lock also belongs to the task its
//! process holds: when the task ends or expires, the gateway removes the lock, so a process
//! that died on another computer does not hold the repository for ever.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{MetaKind, RepoBackend, StoreError};
use crate::repo::RepoError;

/// Kind of lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Backups and restores: many at once.
    Shared,
    /// Garbage collection: alone.
    Exclusive,
}

/// What a lock object records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Kind.
    pub kind: LockKind,
    /// Computer.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it was taken.
    pub created: chrono::DateTime<chrono::Utc>,
}

/// A held lock; dropping it releases it.
pub struct RepoLock {
    backend: Arc<dyn RepoBackend>,
    name: String,
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoLock")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if let Err(e) = self.backend.delete_meta(MetaKind::Lock, &self.name) {
            tracing::warn!("could not release repository lock {}: {e}", self.name);
        }
    }
}

/// This computer's name, as recorded in locks and restore points.
pub fn hostname() -> String {
    // On Windows "/etc/hostname" would be a file on the current drive anyone may create.
    let file = if cfg!(unix) {
        std::fs::read_to_string("/etc/hostname").ok()
    } else {
        None
    };
    file.map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether process `pid` of this computer still runs: a lock of one that does not is stale.
/// Where it cannot be told, it runs (a lock is never called stale by guesswork).
#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(windows)]
#[allow(unsafe_code)]
fn process_alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_INVALID_PARAMETER, GetLastError};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    /// The exit code of a process that has not exited.
    const STILL_ACTIVE: u32 = 259;
    // SAFETY: plain calls with a pid and an out-parameter on the stack; the handle is closed
    // once, only when it was opened.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            // No such process; any other refusal (access denied: another user's) means it runs.
            return GetLastError() != ERROR_INVALID_PARAMETER;
        }
        let mut code = 0u32;
        let asked = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        asked == 0 || code == STILL_ACTIVE
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Takes a lock of `kind`, or refuses with who holds a conflicting one.
pub fn acquire(backend: &Arc<dyn RepoBackend>, kind: LockKind) -> Result<RepoLock, RepoError> {
    let mut suffix = [0u8; 8];
    crate::crypto::random_bytes(&mut suffix)?;
    let prefix = match kind {
        LockKind::Shared => "shared",
        LockKind::Exclusive => "exclusive",
    };
    let name = format!("{prefix}-{}", hex::encode(suffix));
    let me = LockInfo {
        kind,
        host: hostname(),
        pid: std::process::id(),
        created: chrono::Utc::now(),
    };
    let body = serde_json::to_vec(&me).map_err(|e| RepoError::Corrupt {
        what: "a new lock".into(),
        reason: e.to_string(),
    })?;
    backend.put_meta(MetaKind::Lock, &name, &body)?;
    let lock = RepoLock {
        backend: backend.clone(),
        name,
    };
    for other in backend.list_meta(MetaKind::Lock)? {
        if other == lock.name {
            continue;
        }
        let info: LockInfo = match backend.get_meta(MetaKind::Lock, &other) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(info) => info,
                Err(_) => continue, // not a lock of ours
            },
            Err(StoreError::NotFoundMeta { .. }) => continue, // released meanwhile
            Err(e) => return Err(e.into()),
        };
        if info.host == me.host && !process_alive(info.pid) {
            tracing::info!(
                "removing stale lock {other} of process {} that is gone",
                info.pid
            );
            backend.delete_meta(MetaKind::Lock, &other)?;
            continue;
        }
        if kind == LockKind::Exclusive || info.kind == LockKind::Exclusive {
            return Err(RepoError::Locked {
                holder: format!(
                    "{} by process {} on {} since {}",
                    match info.kind {
                        LockKind::Shared => "a backup or restore",
                        LockKind::Exclusive => "garbage collection",
                    },
                    info.pid,
                    info.host,
                    info.created.format("%Y-%m-%d %H:%M UTC")
                ),
            });
        }
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_alive_and_an_ended_one_is_not() {
        assert!(process_alive(std::process::id()));
        // This test binary itself, asked only to list its tests: ends at once, on any platform.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid), "process {pid} has ended");
    }
}
