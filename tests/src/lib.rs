//! Support code shared by Cloudkeep's integration suites: where the repository is, how to walk
//! its source files, deterministic test data, and real servers to test against (PostgreSQL in
//! [`postgres`], S3 in [`moto`] and [`garage`], SMTP and a webhook in [`notify`]), a gateway
//! process for benchmarks ([`gateway`]) and a small bootable machine's disk ([`bootdisk`]).

use std::path::{Path, PathBuf};

// A test machine's disk from the host's kernel and BusyBox (Linux).
#[cfg(unix)]
pub mod bootdisk;
// Garage runs from its Linux binary on the test host.
#[cfg(unix)]
pub mod garage;
pub mod gateway;
pub mod moto;
pub mod notify;
pub mod postgres;
pub mod tls;

/// A suffix unique within this machine for names tests create (process id, time, counter).
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The repository's top folder (the workspace root).
///
/// Taken from `CARGO_MANIFEST_DIR` as cargo sets it when it runs the test (the compile-time
/// value only as a fallback): the build cache is shared between checkouts, and a binary built
/// in another checkout must still look at this one.
pub fn repo_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest_dir)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Every file under `dir` (relative to the repository root) whose name ends with one of
/// `extensions`, skipping build outputs and generated folders. Sorted for stable messages.
pub fn source_files(dir: &str, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![repo_root().join(dir)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | "gen" | "node_modules")
                    && !name.starts_with('.')
                {
                    stack.push(path);
                }
            } else if extensions
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `path` relative to the repository root, for messages.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Deterministic incompressible test data (xorshift): the same `seed` always gives the same
/// bytes, so a test can recreate what it wrote without keeping it.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// What a fault or abuse case tried and what held, in numbers: one line in
/// `$CLOUDKEEP_ARTIFACTS/fault-suite/<suite>.txt` (the test command prints them all in its
/// summary) and on stderr.
pub fn fault_report(suite: &str, line: &str) {
    use std::io::Write;
    eprintln!("[{suite}] {line}");
    let Some(dir) = std::env::var_os("CLOUDKEEP_ARTIFACTS") else {
        return;
    };
    let dir = Path::new(&dir).join("fault-suite");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{suite}.txt")))
    {
        let _ = writeln!(file, "{line}");
    }
}

/// Every file under `dir` (recursively) that `keep` accepts, with its length.
pub fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                out.push((path, entry.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out
}

/// Where `source` (an absolute path) lands when a whole point is restored into `folder`: its
/// components below `folder`, a Windows drive `C:` as the folder `C` (as the restore names it).
pub fn restored_at(folder: &Path, source: &Path) -> PathBuf {
    let mut out = folder.to_path_buf();
    for part in source.components() {
        match part {
            std::path::Component::Prefix(p) => {
                out.push(p.as_os_str().to_string_lossy().trim_end_matches(':'));
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

/// Every regular file under `root` with its bytes, by relative path (a restore or a volume
/// compared with its source). A file that cannot be read reads as empty, so the comparison
/// that uses it fails.
pub fn file_contents(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_under(root, &|_| true)
        .into_iter()
        .map(|(path, _)| {
            let rel = path
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            (rel, std::fs::read(&path).unwrap_or_default())
        })
        .collect()
}
