//! A restore point taken away as one portable file, and brought back: [`export_point`]
//! writes everything the point needs (its blobs in packs, exactly as the repository stores
//! them; its chunk set; the point; an index; a keyring whose one slot opens under a password
//! of the tenant's choosing) into a backup file (`backupfile`), streamed pack by pack and
//! resumable after an interruption; [`import_point`] puts a file's point into a job's
//! repository, sending only the blobs that repository does not hold. A repository with the
//! file's key takes its blobs as they are; one with another key gets them re-sealed under its
//! own, with the point's folder listings rewritten to the new ids (the file's key never
//! enters it).
//!
//! The file's password unlocks the repository's master key (the file is that repository's
//! data): handing over the file and its password hands over what the file holds, and what
//! else of that repository someone could also get from the provider's storage.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Cancel, EngineError, Progress};
use crate::backend::MetaKind;
use crate::backupfile::{Part, Tag, Writer};
use crate::blob::{self, SealedBlob};
use crate::catalog::{Extent, NodeKind, encode_dir};
use crate::chunkset::ChunkSetFile;
use crate::compress::Compression;
use crate::crypto::{ChunkId, KdfParams, Keyring};
use crate::index::ChunkIndex;
use crate::pack::{self, PackBuilder, PackEntry, PackId};
use crate::repo::{RepoError, Repository, RestorePoint};
use crate::saver::{BlobSaver, Lane, with_saver};

/// A pack written, with its blobs.
type StoredPack = (PackId, Vec<PackEntry>);

/// Value of [`FileInfo::format`].
pub const FORMAT: &str = "cloudkeep-backup-file";

/// Largest span of a source pack read at once while exporting.
const SPAN: u64 = 8 << 20;

/// What a backup file holds, in clear (its `INFO` part): enough to say what it is before
/// any password is typed. Nothing of the point's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Always [`FORMAT`].
    pub format: String,
    /// The point it was exported from (its id in the source repository).
    pub source_point: String,
    /// The job of that point.
    pub job: String,
    /// The computer it came from.
    pub host: String,
    /// The point's time, ns since the epoch.
    pub point_time_ns: i64,
    /// Whether it is an image-level point.
    pub image: bool,
    /// When the file was written, seconds since the epoch.
    pub exported_at: i64,
    /// Whether its blobs are encrypted (a password opens it).
    pub encrypted: bool,
    /// Blobs in it.
    pub blobs: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
}

/// How to export.
pub struct ExportOptions<'a> {
    /// The file's password (an encrypted repository's file needs one).
    pub password: Option<&'a str>,
    /// The key derivation for it.
    pub kdf: KdfParams,
    /// Stops the export between spans; the partial file stays to resume.
    pub cancel: Cancel,
}

/// What an export did.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Its length.
    pub bytes: u64,
    /// Blobs in it.
    pub blobs: u64,
    /// Packs in it.
    pub packs: u64,
    /// Blobs an interrupted export had already written (0 for a fresh one).
    pub resumed_blobs: u64,
    /// What the file holds.
    pub info: FileInfo,
}

fn file_error(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Path {
        path: path.to_path_buf(),
        reason: format!("cannot write the backup file: {e}"),
    }
}

/// Exports `point` of `repo` into a new backup file at `to` (see the module doc). An
/// interrupted export of the same point with the same password is continued; `progress`
/// gets the stored bytes written so far (`bytes`) of `expected_bytes`.
pub fn export_point(
    repo: &Repository,
    point: &RestorePoint,
    to: &Path,
    options: &ExportOptions<'_>,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ExportReport, EngineError> {
    if to.exists() {
        return Err(EngineError::Path {
            path: to.to_path_buf(),
            reason: "already exists; choose another file name, or move the old file away".into(),
        });
    }
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    let chunks = repo.point_chunks(point)?;
    let missing = chunks.iter().filter(|c| !index.contains(c)).count();
    if missing > 0 {
        return Err(EngineError::Repo(RepoError::MissingChunks {
            count: missing,
            first: *chunks
                .iter()
                .find(|c| !index.contains(c))
                .unwrap_or(&chunks[0]),
        }));
    }
    let stored_bytes: u64 = chunks
        .iter()
        .filter_map(|c| index.get(c))
        .map(|l| u64::from(l.stored_len))
        .sum();
    let info = FileInfo {
        format: FORMAT.into(),
        source_point: point.id.clone(),
        job: point.manifest.job.clone(),
        host: point.manifest.host.clone(),
        point_time_ns: point.time_ns,
        image: point.manifest.is_image(),
        exported_at: chrono::Utc::now().timestamp(),
        encrypted: repo.keyring().is_encrypted(),
        blobs: chunks.len() as u64,
        stored_bytes,
    };

    // Continue an interrupted export of this point under this password, or start afresh.
    let mut done: HashSet<ChunkId> = HashSet::new();
    let mut packs: Vec<(PackId, Vec<PackEntry>)> = Vec::new();
    let mut writer = match resume(repo, to, &info, options.password)? {
        Some((writer, kept_packs)) => {
            for (id, entries) in kept_packs {
                done.extend(entries.iter().map(|e| e.id));
                packs.push((id, entries));
            }
            writer
        }
        None => {
            let mut w = Writer::create(to).map_err(|e| file_error(to, e))?;
            let set = ChunkSetFile::full(chunks.clone()).encode();
            let set_name = ChunkSetFile::name_of(&set);
            let (file_point, point_bytes) = repo.encode_point(&point.manifest, &set_name)?;
            let keyring = repo.keyring_for_file(options.password, options.kdf)?;
            let info_json = serde_json::to_vec_pretty(&info)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            w.append(Tag::Info, "info", &info_json)
                .and_then(|()| w.append(Tag::Keys, "keyring", keyring.to_json().as_bytes()))
                .and_then(|()| w.append(Tag::Set, &set_name, &set))
                .and_then(|()| w.append(Tag::Point, &file_point.id, &point_bytes))
                .map_err(|e| file_error(to, e))?;
            w
        }
    };
    let resumed_blobs = done.len() as u64;

    // The rest, in the order the repository stores them, read in spans.
    let mut todo: Vec<(ChunkId, crate::index::BlobLocation)> = chunks
        .iter()
        .filter(|c| !done.contains(c))
        .filter_map(|c| index.get(c).map(|l| (*c, l)))
        .collect();
    todo.sort_by_key(|a| (a.1.pack, a.1.offset));
    let started = std::time::Instant::now();
    let mut written: u64 = packs
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| u64::from(e.stored_len)))
        .sum();
    let mut builder = PackBuilder::new();
    let mut at = 0;
    while at < todo.len() {
        if options.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        // One span: neighbours of one pack, close together, at most SPAN bytes.
        let (pack_id, first) = (todo[at].1.pack, todo[at].1.offset);
        let mut end = at + 1;
        let mut span_end = first + u64::from(todo[at].1.stored_len);
        while end < todo.len()
            && todo[end].1.pack == pack_id
            && todo[end].1.offset <= span_end + repo.backend().merge_gap()
            && todo[end].1.offset + u64::from(todo[end].1.stored_len) - first <= SPAN
        {
            span_end = span_end.max(todo[end].1.offset + u64::from(todo[end].1.stored_len));
            end += 1;
        }
        let span = repo
            .backend()
            .read_range(&pack_id, first, span_end - first)
            .map_err(RepoError::from)?;
        for (id, loc) in &todo[at..end] {
            let from = (loc.offset - first) as usize;
            let bytes = span
                .get(from..from + loc.stored_len as usize)
                .ok_or_else(|| EngineError::Internal("a span shorter than its blobs".into()))?
                .to_vec();
            builder.add(&SealedBlob {
                id: *id,
                plain_len: loc.plain_len,
                bytes,
            });
            written += u64::from(loc.stored_len);
            if builder.is_full() {
                let full = std::mem::take(&mut builder);
                packs.push(write_pack(repo, &mut writer, full, to)?);
            }
        }
        progress(&Progress {
            bytes: written,
            stored_bytes: written,
            expected_bytes: Some(stored_bytes),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..Progress::default()
        });
        at = end;
    }
    if !builder.is_empty() {
        packs.push(write_pack(repo, &mut writer, builder, to)?);
    }
    let (index_name, index_bytes) = repo.encode_index(&packs)?;
    writer
        .append(Tag::Index, &index_name, &index_bytes)
        .map_err(|e| file_error(to, e))?;
    let path = writer.finish().map_err(|e| file_error(to, e))?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(ExportReport {
        path,
        bytes,
        blobs: chunks.len() as u64,
        packs: packs.len() as u64,
        resumed_blobs,
        info,
    })
}

fn write_pack(
    repo: &Repository,
    writer: &mut Writer,
    builder: PackBuilder,
    to: &Path,
) -> Result<(PackId, Vec<PackEntry>), EngineError> {
    let pack = builder.finish(repo.keys()).map_err(RepoError::from)?;
    writer
        .append(Tag::Pack, &pack.id.to_hex(), &pack.bytes)
        .map_err(|e| file_error(to, e))?;
    Ok((pack.id, pack.entries))
}

/// The partial file of an export of the same point under the same password, with its whole
/// packs; `None` to start afresh.
fn resume(
    repo: &Repository,
    to: &Path,
    info: &FileInfo,
    password: Option<&str>,
) -> Result<Option<(Writer, Vec<StoredPack>)>, EngineError> {
    let Some((writer, kept)) = Writer::resume(to).map_err(|e| file_error(to, e))? else {
        return Ok(None);
    };
    let tags: Vec<Tag> = kept.iter().map(|(p, _)| p.tag).collect();
    if tags.len() < 4 || tags[..4] != [Tag::Info, Tag::Keys, Tag::Set, Tag::Point] {
        return Ok(None);
    }
    let same_point = serde_json::from_slice::<FileInfo>(&kept[0].1)
        .is_ok_and(|i| i.source_point == info.source_point);
    let same_key = std::str::from_utf8(&kept[1].1)
        .ok()
        .and_then(|t| Keyring::from_json(t).ok())
        .is_some_and(|ring| repo.opens_with(&ring, password));
    if !same_point || !same_key {
        tracing::info!("the partial backup file is of another point or password: starting afresh");
        return Ok(None);
    }
    let mut packs = Vec::new();
    for (part, data) in kept.iter().skip(4) {
        if part.tag != Tag::Pack {
            return Ok(None);
        }
        let Some(id) = PackId::from_hex(&part.name) else {
            return Ok(None);
        };
        match pack::parse(repo.keys(), &id, data) {
            Ok(entries) if PackId::of(data) == id => packs.push((id, entries)),
            _ => return Ok(None),
        }
    }
    Ok(Some((writer, packs)))
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The point, as the repository now holds it.
    pub point: String,
    /// Blobs sent (the repository did not hold them).
    pub blobs_sent: u64,
    /// Their stored bytes.
    pub bytes_sent: u64,
    /// Blobs the repository already held (not sent).
    pub blobs_present: u64,
    /// Whether the blobs were re-sealed under the repository's own key.
    pub rekeyed: bool,
}

/// Puts `point` of `source` (a backup file opened as a repository) into `target` as a point
/// of job `job`, sending only the blobs `target` does not hold (see the module doc).
pub fn import_point(
    source: &Repository,
    point: &RestorePoint,
    target: &Repository,
    job: &str,
    cancel: &Cancel,
) -> Result<ImportReport, EngineError> {
    let _lock = crate::lock::acquire(target.backend(), crate::lock::LockKind::Shared)?;
    let mut manifest = point.manifest.clone();
    manifest.job = job.to_owned();
    manifest.parent = None;
    let same_key = target.same_key(source);
    if same_key
        && let Some(there) = target
            .list_points()?
            .into_iter()
            .find(|p| p.manifest == manifest)
    {
        return Err(EngineError::Path {
            path: PathBuf::from(job),
            reason: format!(
                "the job's repository already holds this restore point (as {}); nothing was imported",
                there.short_id()
            ),
        });
    }
    let source_index = source.load_index()?;
    let mut index = target.load_index()?;
    let sent = AtomicU64::new(0);
    let sent_bytes = AtomicU64::new(0);
    let present = AtomicU64::new(0);
    let (produced, stored) = with_saver(target, |saver| -> Result<Vec<ChunkId>, EngineError> {
        let chunks = if same_key {
            let chunks = source.point_chunks(point)?;
            for id in &chunks {
                if cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                if index.contains(id) {
                    present.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let loc = source_index.get(id).ok_or(RepoError::UnknownChunk(*id))?;
                let bytes = source
                    .backend()
                    .read_range(&loc.pack, loc.offset, u64::from(loc.stored_len))
                    .map_err(RepoError::from)?;
                // Checked before it is stored: a damaged file adds nothing.
                blob::open(source.keys(), id, &bytes).map_err(RepoError::from)?;
                sent.fetch_add(1, Ordering::Relaxed);
                sent_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                saver.save(
                    Lane::Data,
                    SealedBlob {
                        id: *id,
                        plain_len: loc.plain_len,
                        bytes,
                    },
                )?;
            }
            manifest.root = point.manifest.root.clone();
            chunks
        } else {
            let rekey = Rekey {
                source,
                source_index: &source_index,
                target,
                present: &index,
                saver,
                cancel,
                map: Mutex::default(),
                seen: Mutex::default(),
                sent: &sent,
                sent_bytes: &sent_bytes,
                present_count: &present,
            };
            manifest.root = rekey.dir(&point.manifest.root)?;
            let mut chunks: Vec<ChunkId> = rekey
                .seen
                .into_inner()
                .map_err(|_| EngineError::Internal("a lock was poisoned".into()))?
                .into_iter()
                .collect();
            chunks.sort_unstable();
            chunks
        };
        saver.flush()?;
        Ok(chunks)
    });
    let stored = stored?;
    let chunks = produced?;
    for (pack, entries) in &stored {
        index.add_pack(*pack, entries);
    }
    if !stored.is_empty() {
        target.write_index(&stored)?;
    }
    let committed = target.commit_point(&index, chunks, &manifest, None)?;
    Ok(ImportReport {
        point: committed.id,
        blobs_sent: sent.into_inner(),
        bytes_sent: sent_bytes.into_inner(),
        blobs_present: present.into_inner(),
        rekeyed: !same_key,
    })
}

/// A point's blobs carried into a repository with another key.
struct Rekey<'a, 's> {
    source: &'a Repository,
    source_index: &'a ChunkIndex,
    target: &'a Repository,
    present: &'a ChunkIndex,
    saver: &'a BlobSaver<'s>,
    cancel: &'a Cancel,
    /// Source data id → target id.
    map: Mutex<HashMap<ChunkId, ChunkId>>,
    /// Every target id the point references.
    seen: Mutex<HashSet<ChunkId>>,
    sent: &'a AtomicU64,
    sent_bytes: &'a AtomicU64,
    present_count: &'a AtomicU64,
}

impl Rekey<'_, '_> {
    fn poisoned() -> EngineError {
        EngineError::Internal("a lock was poisoned".into())
    }

    /// Stores `plain` under the target's key unless it is there; its target id.
    fn store(&self, lane: Lane, plain: &[u8]) -> Result<ChunkId, EngineError> {
        let id = self.target.keys().chunk_id(plain);
        let new = self.seen.lock().map_err(|_| Self::poisoned())?.insert(id);
        if new && !self.present.contains(&id) {
            let sealed = blob::seal_with_id(self.target.keys(), Compression::Default, id, plain)
                .map_err(RepoError::from)?;
            self.sent.fetch_add(1, Ordering::Relaxed);
            self.sent_bytes
                .fetch_add(sealed.bytes.len() as u64, Ordering::Relaxed);
            self.saver.save(lane, sealed)?;
        } else if new {
            self.present_count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(id)
    }

    fn data(&self, id: &ChunkId) -> Result<ChunkId, EngineError> {
        if let Some(done) = self.map.lock().map_err(|_| Self::poisoned())?.get(id) {
            return Ok(*done);
        }
        let plain = self.source.read_blob(self.source_index, id)?;
        let new = self.store(Lane::Data, &plain)?;
        self.map
            .lock()
            .map_err(|_| Self::poisoned())?
            .insert(*id, new);
        Ok(new)
    }

    /// The folder of `parts` rewritten with target ids; its new parts.
    fn dir(&self, parts: &[ChunkId]) -> Result<Vec<ChunkId>, EngineError> {
        if self.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let mut nodes = self.source.load_dir(self.source_index, parts)?;
        nodes.par_iter_mut().try_for_each(|node| {
            for extent in &mut node.content {
                if let Extent::Data { id, .. } = extent {
                    *id = self.data(id)?;
                }
            }
            if node.kind == NodeKind::Dir {
                node.subtree = self.dir(&node.subtree)?;
            }
            Ok::<(), EngineError>(())
        })?;
        let encoded = encode_dir(nodes).map_err(|e| EngineError::Internal(e.to_string()))?;
        encoded
            .iter()
            .map(|part| self.store(Lane::Tree, part))
            .collect()
    }
}

/// The point a backup file holds.
pub fn file_point(file: &Repository) -> Result<RestorePoint, EngineError> {
    let names = file
        .backend()
        .list_meta(MetaKind::Point)
        .map_err(RepoError::from)?;
    let name = names
        .first()
        .ok_or_else(|| EngineError::Internal("the backup file holds no restore point".into()))?;
    Ok(file.load_point(name)?)
}

/// The part a damaged pack of a backup file is (for messages); `None` when unknown.
pub fn pack_place(
    store: &crate::backupfile::store::FileStore,
    pack: &str,
) -> Option<(usize, Part)> {
    let id = PackId::from_hex(pack)?;
    store.pack_part(&id).map(|(n, p)| (n, p.clone()))
}
