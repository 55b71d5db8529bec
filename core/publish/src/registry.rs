//! The publications on record in a data home (`publications/`, one owner-only file each): what
//! is published where, since when, by which process, with which volumes attached. The CLI and
//! the console both write here, so each shows the other's publications. A record outlives a
//! killed process; one whose mount is gone is dropped when the list is read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A volume attached for the OS's driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedVolume {
    /// Its name (`sda1`).
    pub volume: String,
    /// Where the OS mounted it.
    pub at: PathBuf,
    /// Its loop device.
    pub device: String,
}

/// One publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Where it is published.
    pub folder: PathBuf,
    /// The job whose point it is.
    pub job: String,
    /// The point's id.
    pub point: String,
    /// The point's time (ns since the epoch).
    pub point_time_ns: i64,
    /// When it was published (seconds since the epoch).
    pub since: i64,
    /// The process serving it.
    pub pid: u32,
    /// Volumes attached (`--attach`).
    #[serde(default)]
    pub attached: Vec<AttachedVolume>,
}

/// Why the record could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The folder of records could not be written or read.
    #[error("cannot keep the record of publications in {dir}: {source}")]
    Io {
        /// Which folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The records of a data home's publications.
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// The records in `dir` (`<data home>/publications`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn io(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    fn file(&self, p: &Publication) -> PathBuf {
        // One file per folder: a new publication there replaces a stale record.
        let key = blake3::hash(p.folder.as_os_str().as_encoded_bytes()).to_hex();
        self.dir.join(format!("{}.json", &key[..24]))
    }

    /// Records `p`.
    pub fn record(&self, p: &Publication) -> Result<(), RegistryError> {
        cloudkeep_model::paths::create_private_dir(&self.dir).map_err(|e| self.io(e))?;
        let bytes = serde_json::to_vec_pretty(p).map_err(|e| self.io(e.into()))?;
        cloudkeep_model::paths::write_private_file(&self.file(p), &bytes).map_err(|e| self.io(e))
    }

    /// Forgets `p`.
    pub fn forget(&self, p: &Publication) {
        let _ = std::fs::remove_file(self.file(p));
    }

    /// Forgets the publication at `folder`, whoever made it.
    pub fn forget_folder(&self, folder: &Path) {
        for p in self.read_all() {
            if p.folder == folder {
                self.forget(&p);
            }
        }
    }

    fn read_all(&self) -> Vec<Publication> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Publication> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| (a.since, &a.folder).cmp(&(b.since, &b.folder)));
        out
    }

    /// The publications still published (`is_live` answers for a record); records of the
    /// others are dropped.
    pub fn list(&self, is_live: impl Fn(&Publication) -> bool) -> Vec<Publication> {
        let mut live = Vec::new();
        for p in self.read_all() {
            if is_live(&p) {
                live.push(p);
            } else {
                self.forget(&p);
            }
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(folder: &str, since: i64) -> Publication {
        Publication {
            folder: folder.into(),
            job: "docs".into(),
            point: "abc".into(),
            point_time_ns: 1,
            since,
            pid: 7,
            attached: vec![],
        }
    }

    #[test]
    fn records_are_listed_while_published_and_dropped_after() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::at(dir.path().join("publications"));
        assert!(reg.list(|_| true).is_empty(), "no folder yet is no record");
        reg.record(&publication("/mnt/b", 20)).unwrap();
        reg.record(&publication("/mnt/a", 10)).unwrap();
        // The same folder published again replaces its record.
        reg.record(&publication("/mnt/b", 30)).unwrap();
        let all = reg.list(|_| true);
        assert_eq!(
            all.iter()
                .map(|p| (p.folder.clone(), p.since))
                .collect::<Vec<_>>(),
            vec![("/mnt/a".into(), 10), ("/mnt/b".into(), 30)]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let f = std::fs::read_dir(dir.path().join("publications"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(f.metadata().unwrap().permissions().mode() & 0o077, 0);
        }
        // A folder no longer published loses its record.
        assert_eq!(reg.list(|p| p.folder == Path::new("/mnt/a")).len(), 1);
        assert_eq!(reg.list(|_| true).len(), 1);
        reg.forget_folder(Path::new("/mnt/a"));
        assert!(reg.list(|_| true).is_empty());
        // Garbage in the folder is ignored.
        std::fs::write(dir.path().join("publications/x.json"), b"{").unwrap();
        assert!(reg.list(|_| true).is_empty());
    }
}
