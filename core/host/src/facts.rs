//! What a cloud host has, read from the machine itself: logical CPUs, memory
//! (`/proc/meminfo`), whether `/dev/kvm` opens for reading and writing, QEMU's version
//! (`qemu-system-x86_64 --version`), and each storage pool's file system size and free space.

use std::path::Path;
use std::process::Command;

use cloudkeep_api::replication::{HostFacts, StoragePool};

use crate::config::{HostConfig, PoolConfig};

/// The QEMU binary replicas run under.
pub const QEMU: &str = "qemu-system-x86_64";

/// Everything the host reports now.
pub fn gather(config: &HostConfig) -> HostFacts {
    HostFacts {
        hostname: hostname(),
        os: os(),
        version: cloudkeep_model::VERSION.to_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory: memory().unwrap_or(0),
        kvm: kvm(),
        qemu: qemu_version(),
        pools: config.pools.iter().map(pool).collect(),
        networks: config.networks,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!(" {}", s.trim()))
        .unwrap_or_default();
    format!("{}{release}", std::env::consts::OS)
}

/// Bytes of memory (`MemTotal`).
fn memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Whether KVM can be used: `/dev/kvm` opens for reading and writing.
fn kvm() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// QEMU's version (`QEMU emulator version 7.2.15 (…)` → `7.2.15`), if installed.
pub fn qemu_version() -> Option<String> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    let version = first
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    Some(version.to_owned())
}

fn pool(config: &PoolConfig) -> StoragePool {
    let (total, free) = space(&config.path).unwrap_or((0, 0));
    StoragePool {
        name: config.name.clone(),
        path: config.path.display().to_string(),
        total,
        free,
    }
}

/// The size and free bytes of the file system `path` is on.
#[cfg(unix)]
fn space(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    let block = st.f_frsize;
    Some((
        st.f_blocks.checked_mul(block)?,
        st.f_bavail.checked_mul(block)?,
    ))
}

/// A cloud host is a Linux machine; elsewhere no pool has a size.
#[cfg(not(unix))]
fn space(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_meminfo() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo(text), Some(24_576_000 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB"), None);
    }

    // A cloud host is a Linux machine: elsewhere a pool has no size to report.
    #[cfg(unix)]
    #[test]
    fn a_pool_reports_its_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig {
            pools: vec![PoolConfig {
                name: "main".into(),
                path: dir.path().to_path_buf(),
            }],
            networks: 8,
            ..HostConfig::default()
        };
        let facts = gather(&config);
        assert_eq!(facts.pools.len(), 1);
        assert!(facts.pools[0].total > 0 && facts.pools[0].free <= facts.pools[0].total);
        assert!(facts.cpus >= 1 && facts.memory > 0);
        assert_eq!(facts.networks, 8);
    }
}
