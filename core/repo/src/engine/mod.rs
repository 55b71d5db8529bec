//! The engine: backup, restore and their shared pieces, storage-agnostic. It works on a
//! [`crate::repo::Repository`] and never knows whether packs go to a folder or a gateway.
//!
//! **Architecture invariant:** the engine knows no SQL, no TLS, no HTTP and no user
//! interface; it reports progress through a callback and problems through typed errors and
//! per-file warnings.

pub mod backup;
pub mod browse;
pub mod disk;
pub mod forget;
pub mod fsmeta;
pub mod gc;
pub mod portable;
pub mod prove;
pub mod repair;
pub mod restore;
pub mod verify;
pub mod volumes;

use cloudkeep_model::failure::{Failure, FailureKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::path::PathBuf;

use crate::repo::RepoError;

/// Errors that stop a backup or restore as a whole (per-file problems are warnings).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A source or target path that cannot be used.
    #[error("\"{}\": {reason}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Not one source can be read (gone, or not readable): no restore point is made, so an
    /// empty one can never push out good ones.
    #[error("nothing to back up: {}; edit the job's sources or reconnect the drive", gone_text(.0))]
    SourcesGone(Vec<(PathBuf, String)>),
    /// An exclude pattern that does not parse.
    #[error(
        "exclude pattern \"{pattern}\" is not valid: {reason}; patterns are globs such as \"*.tmp\" or \"**/node_modules\""
    )]
    BadExclude {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A retention policy without any rule.
    #[error(
        "give at least one rule: keep the last N points, keep N days, or one point per week, month or year (the newest point is always kept)"
    )]
    EmptyPolicy,
    /// The run was stopped on request ([`Cancel`]) before it finished.
    #[error(
        "stopped before it finished; a backup made no restore point (what it stored is reused by the next run), a restore kept the files it had written"
    )]
    Cancelled,
    /// An image-level request that cannot be done (a file-level point, a disk or volume the
    /// point does not hold, a target that is mounted or too small): what and what to do.
    #[error("{0}")]
    Image(String),
    /// A worker thread failed unexpectedly.
    #[error("internal error: {0}; please report it with the log file")]
    Internal(String),
}

fn gone_text(gone: &[(PathBuf, String)]) -> String {
    gone.iter()
        .map(|(path, why)| format!("{} {why}", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Failure for EngineError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Repo(e) => e.kind(),
            _ => None,
        }
    }
}

/// A blob the repository's pack writer could not take (the writers' own storage error, when
/// there is one, is what [`crate::saver::with_saver`] returns and is reported first).
impl From<crate::saver::SaveError> for EngineError {
    fn from(e: crate::saver::SaveError) -> Self {
        Self::Internal(format!("storing blobs failed: {e}"))
    }
}

/// A request to stop a running backup or restore, shared between whoever may stop it (a
/// console's Stop button) and the run, which checks it between files and chunks and ends with
/// [`EngineError::Cancelled`]. The default is never cancelled.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A problem with one file or folder that did not stop the whole run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The file or folder.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

/// Live counters of a running backup or restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Files done.
    pub files: u64,
    /// Folders done.
    pub dirs: u64,
    /// Bytes of file content done (read or reused).
    pub bytes: u64,
    /// Bytes actually read.
    pub bytes_read: u64,
    /// Bytes stored (backup: after dedup, compression, encryption).
    pub stored_bytes: u64,
    /// Milliseconds since the start.
    pub elapsed_ms: u64,
    /// Expected total bytes (from the parent point), for an ETA.
    pub expected_bytes: Option<u64>,
}

impl Progress {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        if self.elapsed_ms == 0 {
            0.0
        } else {
            self.bytes as f64 * 1000.0 / self.elapsed_ms as f64
        }
    }

    /// Seconds left, when an expectation and a rate exist.
    pub fn eta_secs(&self) -> Option<u64> {
        let expected = self.expected_bytes?;
        let rate = self.rate();
        (rate > 0.0).then(|| (expected.saturating_sub(self.bytes) as f64 / rate).ceil() as u64)
    }
}
