//! Browsing the restore points of jobs from a long-running process (the console): each job's
//! repository is opened once (unlocked, its index loaded, folder listings of a remote one read
//! through the local cache) and kept, so listing a folder costs only its own tree blobs —
//! milliseconds even in a point of a million files. Very large folders are listed a page at a
//! time. After a job's run its entry is dropped, so new points and packs are seen.
//!
//! Blocking: call it outside any async runtime (a remote repository runs its own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::TenantContext;
use super::TenantError;
use super::runner::open_job_repository;
use cloudkeep_repo::catalog::{Node, NodeKind};
use cloudkeep_repo::engine::browse;
use cloudkeep_repo::repo::{ChunkIndex, Repository, RestorePoint};

/// What the key of an opened backup file starts with (no job name does: names have no `:`).
pub const FILE_KEY: &str = "file:";

/// Most entries one page of a folder holds.
pub const MAX_PAGE: usize = 5_000;

/// A restore point as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointView {
    /// Its id.
    pub id: String,
    /// Its first 12 characters.
    pub short_id: String,
    /// The job that made it.
    pub job: String,
    /// The computer it was made on.
    pub host: String,
    /// When the backup ended, ms since the epoch.
    pub time_ms: i64,
    /// What it backed up.
    pub paths: Vec<String>,
    /// Files in it.
    pub files: u64,
    /// Bytes of file content in it.
    pub bytes: u64,
    /// Per-file warnings of its backup.
    pub warnings: u64,
    /// `files` or `image`.
    pub level: &'static str,
    /// An image-level point's disks, each with its layout and volumes.
    pub disks: Vec<cloudkeep_repo::image::DiskImage>,
    /// Why the run that made it looked like ransomware (empty: an ordinary run).
    pub suspicious: Vec<String>,
    /// When a restore test proved it restorable, if one did.
    pub proven_ms: Option<i64>,
}

/// What a job's sessions say about one of its points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PointMark {
    /// Why the run that made it looked like ransomware (empty: an ordinary run).
    pub suspicious: Vec<String>,
    /// When a restore test last proved it restorable.
    pub proven_ms: Option<i64>,
}

/// The marks of a job's points, by point id, from its sessions.
pub fn point_marks(
    sessions: &[super::jobs::SessionRecord],
) -> std::collections::HashMap<String, PointMark> {
    let mut marks: std::collections::HashMap<String, PointMark> = Default::default();
    for s in sessions {
        let Some(point) = &s.point else { continue };
        if let Some(reasons) = super::anomaly::reasons_of(s) {
            marks.entry(point.clone()).or_default().suspicious = reasons;
        }
        if s.kind == "restore-test" && s.result == "success" {
            let mark = marks.entry(point.clone()).or_default();
            mark.proven_ms = mark.proven_ms.max(Some(s.finished_ms));
        }
    }
    marks
}

impl PointView {
    fn of(p: &RestorePoint) -> Self {
        Self {
            id: p.id.clone(),
            short_id: p.short_id().to_owned(),
            job: p.manifest.job.clone(),
            host: p.manifest.host.clone(),
            time_ms: p.time_ns / 1_000_000,
            paths: p.manifest.paths.clone(),
            files: p.manifest.stats.files,
            bytes: p.manifest.stats.bytes,
            warnings: p.manifest.stats.warnings,
            level: if p.manifest.is_image() {
                "image"
            } else {
                "files"
            },
            disks: p.manifest.disks.clone(),
            suspicious: Vec::new(),
            proven_ms: None,
        }
    }

    fn marked(mut self, marks: &std::collections::HashMap<String, PointMark>) -> Self {
        if let Some(mark) = marks.get(&self.id) {
            self.suspicious.clone_from(&mark.suspicious);
            self.proven_ms = mark.proven_ms;
        }
        self
    }
}

/// What a point changed since the point before it of the same job: items (a new or removed
/// folder counts once) added, changed and removed. `None` for a job's first point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PointChanges {
    /// Items only in this point.
    pub added: u64,
    /// Items in both with other content or metadata.
    pub changed: u64,
    /// Items only in the point before.
    pub removed: u64,
}

/// A point's id with what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointChangesView {
    /// The point.
    pub id: String,
    /// What changed since the point before; `None` for the first point.
    pub changes: Option<PointChanges>,
}

/// An entry of a folder as the tree shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryView {
    /// Its name.
    pub name: String,
    /// Its full path inside the point (`/home/alice/notes.txt`).
    pub path: String,
    /// What it is.
    pub kind: NodeKind,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub mtime_ms: i64,
    /// A symlink's target.
    pub target: Option<String>,
}

/// One page of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The folder.
    pub path: String,
    /// Entries `offset ..` of it, folders first, then by name.
    pub entries: Vec<EntryView>,
    /// Where this page starts.
    pub offset: usize,
    /// How many entries the folder has.
    pub total: usize,
}

/// A folder's entries as last listed: point id, folder, entries.
/// Folders kept listed per open repository.
const RECENT_FOLDERS: usize = 16;
/// Entries kept listed per open repository (about 200 bytes each).
const RECENT_ENTRIES: usize = 400_000;

type Listed = (String, String, Arc<Vec<EntryView>>);

struct Open {
    repo: Repository,
    index: ChunkIndex,
    points: Vec<RestorePoint>,
    /// The folders listed last (newest at the back), for paging through a large one and for
    /// going back and forth between folders without decoding them again.
    recent: Mutex<std::collections::VecDeque<Listed>>,
    /// What each point changed since the one before, once computed.
    changes: Mutex<HashMap<String, PointChanges>>,
}

/// Open repositories by job. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Catalogs {
    open: Arc<Mutex<HashMap<String, Arc<Open>>>>,
}

impl std::fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogs").finish_non_exhaustive()
    }
}

impl Catalogs {
    fn get(&self, ctx: &TenantContext, job: &str) -> Result<Arc<Open>, TenantError> {
        if let Some(open) = self.open.lock().ok().and_then(|m| m.get(job).cloned()) {
            return Ok(open);
        }
        if job.starts_with(FILE_KEY) {
            return Err(TenantError::Invalid(
                "this backup file is no longer open; open it again".into(),
            ));
        }
        let job_record = ctx.block_on(ctx.state().job(job))?;
        let repo = open_job_repository(ctx, &job_record)?;
        let index = repo.load_readable_index()?;
        // Jobs sharing one repository never see each other's points.
        let mut points = repo.list_points()?;
        points.retain(|p| p.manifest.job == job);
        points.sort_by_key(|p| std::cmp::Reverse(p.time_ns));
        let open = Arc::new(Open {
            repo,
            index,
            points,
            recent: Mutex::new(std::collections::VecDeque::new()),
            changes: Mutex::default(),
        });
        if let Ok(mut map) = self.open.lock() {
            map.insert(job.to_owned(), open.clone());
        }
        Ok(open)
    }

    /// Opens the backup file at `path` with `password` (none for an unencrypted file) and keeps
    /// it like a job's repository under the key it returns (`file:<path>`): the same browse,
    /// find and restore then work on it. Its one point is returned.
    pub fn open_file(
        &self,
        path: &std::path::Path,
        password: Option<&str>,
    ) -> Result<(String, PointView), TenantError> {
        let (repo, point) = crate::portable::open_file(path, password)?;
        let index = repo.load_readable_index()?;
        let key = format!("{FILE_KEY}{}", path.display());
        let view = PointView::of(&point);
        let open = Arc::new(Open {
            repo,
            index,
            points: vec![point],
            recent: Mutex::new(std::collections::VecDeque::new()),
            changes: Mutex::default(),
        });
        if let Ok(mut map) = self.open.lock() {
            map.insert(key.clone(), open);
        }
        Ok((key, view))
    }

    /// Restores from point `point` of what `key` names (an opened backup file, or a job's
    /// repository), without recording a session. Blocking.
    pub fn restore(
        &self,
        ctx: &TenantContext,
        key: &str,
        point: &str,
        options: &cloudkeep_repo::engine::restore::RestoreOptions,
        progress: &(dyn Fn(&cloudkeep_repo::engine::Progress) + Sync),
    ) -> Result<cloudkeep_repo::engine::restore::RestoreReport, TenantError> {
        let open = self.get(ctx, key)?;
        let found = Self::point(&open, point)?;
        Ok(cloudkeep_repo::engine::restore::restore(
            &open.repo, found, options, progress,
        )?)
    }

    /// Drops what is kept of `job` (after it ran, or when asked to refresh).
    pub fn forget(&self, job: &str) {
        let dropped = self.open.lock().ok().and_then(|mut m| m.remove(job));
        // A remote repository ends its gateway task when dropped: do it off the caller.
        if let Some(open) = dropped {
            std::thread::spawn(move || drop(open));
        }
    }

    /// The restore points of `job`, newest first (never those of other jobs sharing its
    /// repository).
    pub fn points(&self, ctx: &TenantContext, job: &str) -> Result<Vec<PointView>, TenantError> {
        let open = self.get(ctx, job)?;
        let marks = point_marks(&ctx.block_on(ctx.state().sessions(Some(job)))?);
        Ok(open
            .points
            .iter()
            .map(|p| PointView::of(p).marked(&marks))
            .collect())
    }

    fn point<'a>(open: &'a Open, point: &str) -> Result<&'a RestorePoint, TenantError> {
        let matches: Vec<&RestorePoint> = if point == "latest" {
            open.points.first().into_iter().collect()
        } else {
            open.points
                .iter()
                .filter(|p| p.id.starts_with(point))
                .collect()
        };
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(TenantError::Invalid(format!(
                "this job has no restore point \"{point}\"; refresh the list"
            ))),
            _ => Err(TenantError::Invalid(format!(
                "\"{point}\" names more than one restore point; give more of its id"
            ))),
        }
    }

    /// Entries `offset .. offset + limit` of folder `path` of `point` (folders first).
    pub fn list(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
        path: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Page, TenantError> {
        let open = self.get(ctx, job)?;
        let found = Self::point(&open, point)?;
        let path = normalize(path);
        let cached = open.recent.lock().ok().and_then(|recent| {
            recent
                .iter()
                .find(|(p, dir, _)| *p == found.id && *dir == path)
                .map(|(_, _, entries)| entries.clone())
        });
        let entries = match cached {
            Some(entries) => entries,
            None => {
                let nodes = browse::list_dir(&open.repo, &open.index, found, &path)?;
                let entries = Arc::new(views(&path, nodes));
                if let Ok(mut recent) = open.recent.lock() {
                    recent.push_back((found.id.clone(), path.clone(), entries.clone()));
                    // A few folders, not too many entries in all; the newest always stays.
                    while recent.len() > 1
                        && (recent.len() > RECENT_FOLDERS
                            || recent.iter().map(|(_, _, e)| e.len()).sum::<usize>()
                                > RECENT_ENTRIES)
                    {
                        recent.pop_front();
                    }
                }
                entries
            }
        };
        let limit = limit.clamp(1, MAX_PAGE);
        Ok(Page {
            entries: entries.iter().skip(offset).take(limit).cloned().collect(),
            path,
            offset,
            total: entries.len(),
        })
    }

    /// Entries of `point` whose name matches the glob `pattern`, at most `limit`.
    pub fn find(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<browse::Found>, TenantError> {
        let open = self.get(ctx, job)?;
        let found = Self::point(&open, point)?;
        let mut hits = browse::find(&open.repo, &open.index, found, pattern)?;
        hits.truncate(limit);
        Ok(hits)
    }

    /// Deletes `point` of `job`'s repository (with insider protection at the provider it goes
    /// to the provider's recycle bin) and forgets the cached listing; returns its short id.
    pub fn delete(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
    ) -> Result<String, TenantError> {
        let open = self.get(ctx, job)?;
        let found = Self::point(&open, point)?;
        open.repo.delete_point(&found.id)?;
        let short = found.short_id().to_owned();
        self.forget(job);
        Ok(short)
    }

    /// What each of `job`'s points changed since the point before it, newest first. Computed
    /// from the catalogs (folders that did not change are not read) and kept while the
    /// repository stays open.
    pub fn changes(
        &self,
        ctx: &TenantContext,
        job: &str,
    ) -> Result<Vec<PointChangesView>, TenantError> {
        let open = self.get(ctx, job)?;
        let mut out = Vec::with_capacity(open.points.len());
        for pair in open.points.windows(2) {
            let (newer, older) = (&pair[0], &pair[1]);
            let known = open
                .changes
                .lock()
                .ok()
                .and_then(|m| m.get(&newer.id).copied());
            let counts = match known {
                Some(c) => c,
                None => {
                    let mut c = PointChanges::default();
                    for change in browse::diff(&open.repo, &open.index, older, newer)? {
                        match change.kind {
                            browse::ChangeKind::Added => c.added += 1,
                            browse::ChangeKind::Changed => c.changed += 1,
                            browse::ChangeKind::Removed => c.removed += 1,
                        }
                    }
                    if let Ok(mut m) = open.changes.lock() {
                        m.insert(newer.id.clone(), c);
                    }
                    c
                }
            };
            out.push(PointChangesView {
                id: newer.id.clone(),
                changes: Some(counts),
            });
        }
        if let Some(first) = open.points.last() {
            out.push(PointChangesView {
                id: first.id.clone(),
                changes: None,
            });
        }
        Ok(out)
    }

    /// What changed from point `a` to point `b` (both of `job`'s repository).
    pub fn diff(
        &self,
        ctx: &TenantContext,
        job: &str,
        a: &str,
        b: &str,
    ) -> Result<Vec<browse::Change>, TenantError> {
        let open = self.get(ctx, job)?;
        let (a, b) = (Self::point(&open, a)?, Self::point(&open, b)?);
        Ok(browse::diff(&open.repo, &open.index, a, b)?)
    }
}

/// `/a/b` form of a path inside a point (`""` and `/` are the top).
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

fn views(dir: &str, nodes: Vec<Node>) -> Vec<EntryView> {
    let mut out: Vec<EntryView> = nodes
        .into_iter()
        .map(|n| {
            let name = n.display_name().into_owned();
            EntryView {
                path: if dir == "/" {
                    format!("/{name}")
                } else {
                    format!("{dir}/{name}")
                },
                name,
                kind: n.kind,
                size: n.size,
                mtime_ms: n.times.mtime_ns / 1_000_000,
                target: n
                    .link_target
                    .as_ref()
                    .map(|t| String::from_utf8_lossy(t).into_owned()),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.kind != NodeKind::Dir)
            .cmp(&(b.kind != NodeKind::Dir))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_and_folders_come_first() {
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("/home//alice/"), "/home/alice");
        let nodes = vec![
            Node::new(b"b.txt".to_vec(), NodeKind::File),
            Node::new(b"a".to_vec(), NodeKind::Dir),
            Node::new(b"A.txt".to_vec(), NodeKind::File),
        ];
        let names: Vec<(String, String)> = views("/home", nodes)
            .into_iter()
            .map(|e| (e.name, e.path))
            .collect();
        assert_eq!(
            names,
            [
                ("a".into(), "/home/a".into()),
                ("A.txt".into(), "/home/A.txt".into()),
                ("b.txt".into(), "/home/b.txt".into())
            ]
        );
    }
}
