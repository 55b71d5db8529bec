//! One publication from start to end, as the CLI (`points mount`) and the console (Publish)
//! both run it: the repository locked shared (no compaction removes what the mount reads),
//! the point served at an empty folder, its volumes optionally attached for the OS's drivers,
//! and a record in the data home's registry; ended by [`Published::stop`], which detaches,
//! unmounts and forgets the record.

use std::path::{Path, PathBuf};

use cloudkeep_repo::lock::{self, LockKind, RepoLock};
use cloudkeep_repo::repo::Repository;

use crate::attach::{self, NotAttached};
use crate::fs::{self, PointFs};
use crate::registry::{AttachedVolume, Publication, Registry};
use crate::tree::Tree;
use crate::watchdog::Watchdog;

/// Blobs a publication keeps opened (bytes).
pub const CACHE_BYTES: usize = 64 << 20;

/// What to publish.
pub struct Request<'a> {
    /// The job whose point it is.
    pub job: &'a str,
    /// The point (a unique id prefix, or `latest`).
    pub point: &'a str,
    /// The empty folder to publish at.
    pub folder: &'a Path,
    /// Whether to attach the volumes for the OS's own drivers (root).
    pub attach: bool,
}

/// Why a point could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The folder is missing, not a folder, or not empty.
    #[error("{0}")]
    Folder(String),
    /// The point could not be found or read.
    #[error("{0}")]
    Point(String),
    /// The mount failed.
    #[error("cannot publish at {folder}: {reason} (is FUSE installed: the fuse3 package?)")]
    Mount {
        /// Where.
        folder: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A point being published.
pub struct Published {
    session: Option<fuser::BackgroundSession>,
    watchdog: Option<Watchdog>,
    record: Publication,
    registry: Registry,
    _lock: RepoLock,
}

/// Publishes a point of `repo` as `request` says; volumes that could not be attached are
/// returned beside it (the publication stands without them).
pub fn start(
    repo: Repository,
    request: &Request<'_>,
    registry: Registry,
) -> Result<(Published, Vec<NotAttached>), PublishError> {
    let typed = std::path::absolute(request.folder).unwrap_or_else(|_| request.folder.into());
    // A killed publication's mount left at the folder is taken away first.
    list(&registry);
    if fs::is_published(&typed) {
        return Err(PublishError::Folder(format!(
            "a restore point is already published at {0}; unpublish it first (cloudkeep points unmount {0})",
            typed.display()
        )));
    }
    let folder = std::fs::canonicalize(request.folder).map_err(|e| {
        PublishError::Folder(format!(
            "{}: {e}; create an empty folder to publish the point at",
            request.folder.display()
        ))
    })?;
    if !folder.is_dir() {
        return Err(PublishError::Folder(format!(
            "{} is not a folder; create an empty folder to publish the point at",
            folder.display()
        )));
    }
    if std::fs::read_dir(&folder).is_ok_and(|mut d| d.next().is_some()) {
        return Err(PublishError::Folder(format!(
            "{} is not empty; publish at an empty folder (nothing in it would be visible meanwhile)",
            folder.display()
        )));
    }
    if request.attach && !rustix::process::geteuid().is_root() {
        return Err(PublishError::Folder(
            "--attach needs root (it attaches loop devices and mounts them); run it with sudo, or publish without --attach".into(),
        ));
    }
    let point = repo
        .find_job_point(request.job, request.point)
        .map_err(|e| PublishError::Point(e.to_string()))?;
    let lock = lock::acquire(repo.backend(), LockKind::Shared)
        .map_err(|e| PublishError::Point(e.to_string()))?;
    let index = repo
        .load_readable_index()
        .map_err(|e| PublishError::Point(e.to_string()))?;
    let record = Publication {
        folder: folder.clone(),
        job: request.job.to_owned(),
        point: point.id.clone(),
        point_time_ns: point.time_ns,
        since: chrono::Utc::now().timestamp(),
        pid: std::process::id(),
        attached: Vec::new(),
    };
    let short = point.short_id().to_owned();
    let tree = Tree::new(repo, index, point);
    let sources = tree
        .volume_sources()
        .map_err(|e| PublishError::Point(e.to_string()))?;
    let pfs = PointFs::new(tree, CACHE_BYTES).map_err(|e| PublishError::Point(e.to_string()))?;
    let session = fs::publish(pfs, &folder, &format!("cloudkeep:{}:{short}", request.job))
        .map_err(|e| PublishError::Mount {
            folder: folder.clone(),
            reason: e.to_string(),
        })?;
    let mut published = Published {
        session: Some(session),
        watchdog: Watchdog::start(&folder),
        record,
        registry,
        _lock: lock,
    };
    let mut failed = Vec::new();
    if request.attach {
        let (done, not) = attach::attach(&folder, &sources);
        published.record.attached = done
            .into_iter()
            .map(|a| AttachedVolume {
                volume: a.volume,
                at: a.at,
                device: a.device,
            })
            .collect();
        failed = not;
    }
    if let Err(e) = published.registry.record(&published.record) {
        tracing::warn!("{e}");
    }
    Ok((published, failed))
}

impl Published {
    /// What is published where.
    pub fn record(&self) -> &Publication {
        &self.record
    }

    /// Whether the mount was taken away from outside (`points unmount`, `fusermount3 -u`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Ends the publication: attached volumes detached, the point unmounted, the serving
    /// threads ended, the record forgotten.
    pub fn stop(mut self) -> Result<(), String> {
        let result = self.end();
        self.registry.forget(&self.record);
        result
    }

    fn end(&mut self) -> Result<(), String> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if !session.guard.is_finished() {
            // Unmounting ends the kernel's connection, so the serving threads stop; fuser's
            // own unmount waits for them first and, with `auto_unmount`, never returns.
            result = fs::unpublish(&self.record.folder);
            let started = std::time::Instant::now();
            while !session.guard.is_finished() && started.elapsed().as_secs() < 10 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        } else {
            // Unmounted from outside: volumes attached below are gone with it, or go now.
            attach::detach_below(&self.record.folder);
        }
        if session.guard.is_finished()
            && let Err(e) = session.join()
        {
            tracing::debug!("ending the publication: {e}");
        }
        // Unmounted: the watchdog finds nothing of ours left and ends.
        self.watchdog.take();
        result
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if self.session.is_some() {
            if let Err(e) = self.end() {
                tracing::warn!("ending the publication: {e}");
            }
            self.registry.forget(&self.record);
        }
    }
}

/// The publications of a data home whose mounts are still there and still served. A mount
/// whose process is gone (killed, crashed) and that neither the watchdog nor fusermount3's
/// `auto_unmount` helper took away (killed with the process, or the helper probed too early)
/// is unpublished here (lazily: it only answers "transport endpoint is not connected") and
/// its record dropped, so the folder can be published again.
pub fn list(registry: &Registry) -> Vec<Publication> {
    registry.list(|p| {
        if !fs::is_published(&p.folder) {
            return false;
        }
        if serving(p.pid) {
            return true;
        }
        match fs::unpublish(&p.folder) {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!("a killed publication at {} stays: {e}", p.folder.display());
                true
            }
        }
    })
}

/// Whether process `pid` is still running (not gone, not a zombie). A process of another
/// user, or one this cannot read, counts as running: a live publication is never undone.
fn serving(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}
