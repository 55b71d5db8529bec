//! A repository: the keyring, the chunk index and the restore points on top of a
//! [`RepoBackend`]. Enforces the write order of DESIGN §4 — packs, then an index file naming
//! them, then the restore point — and refuses to commit a point that references a chunk no
//! index knows, so no partial restore point can ever be visible.
//!
//! Formats (frozen, `docs/formats.md`):
//! - index file `"CKIX" ‖ 1 ‖ seal("cloudkeep index v1", postcard(IndexFile))`, named by the
//!   BLAKE3 of its bytes;
//! - restore point `"CKRP" ‖ 1 ‖ postcard(PointFile)`: time and the name of its chunk set
//!   ([`crate::chunkset`]: the referenced chunk ids, in clear so that the SP can check them) in
//!   clear, the manifest sealed and bound to the clear part; named by the BLAKE3 of its bytes.

use cloudkeep_model::failure::{Failure, FailureKind};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{MetaKind, RepoBackend, StoreError};
use crate::blob::{self, BlobError};
use crate::catalog::{self, CatalogError, Node};
use crate::chunkset::ChunkSetFile;
use crate::crypto::{ChunkId, CryptoError, KdfParams, Keyring, RecoveryKey, RepoKeys};
use crate::pack::{PackEntry, PackId};
use crate::refs::RunRefs;

/// Most blobs one index file names (about 25 MB of entries): writers of many blobs (a
/// backup, a compaction) split their entries into files of this many.
pub const INDEX_FILE_BLOBS: usize = 1 << 19;

const KEYRING_NAME: &str = "keyring";
const INDEX_MAGIC: &[u8; 4] = b"CKIX";
const POINT_MAGIC: &[u8; 4] = b"CKRP";
const FORMAT_VERSION: u8 = 1;
const INDEX_AAD: &[u8] = b"cloudkeep index v1";
const POINT_AAD: &[u8] = b"cloudkeep point v1";

/// Errors of repository operations.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys or decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A blob failed its checks.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A folder listing failed its checks.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A pack failed its checks.
    #[error(transparent)]
    Pack(#[from] crate::pack::PackError),
    /// No repository here.
    #[error(
        "there is no Cloudkeep repository here (no keyring); create one with \"init\" or check the path"
    )]
    NotARepository,
    /// An encrypted repository opened without a password.
    #[error("this repository is encrypted: its encryption password is needed to open it")]
    PasswordRequired,
    /// Another process holds a conflicting lock.
    #[error("the repository is in use ({holder}); wait for it to finish and try again")]
    Locked {
        /// Who holds it.
        holder: String,
    },
    /// Init on an existing repository.
    #[error("a repository already exists here; open it instead of creating it again")]
    AlreadyExists,
    /// Metadata that fails its checks.
    #[error("{what} is damaged: {reason}; run verify")]
    Corrupt {
        /// Which object.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A restore point references chunks that are not stored.
    #[error(
        "refusing to save the restore point: {count} of its chunks are not stored (first: {first}); nothing was saved and earlier restore points are intact — run the backup again"
    )]
    MissingChunks {
        /// How many.
        count: usize,
        /// One of them.
        first: ChunkId,
    },
    /// A chunk the catalog needs is in no index.
    #[error("chunk {0} is not in the repository's index; run verify")]
    UnknownChunk(ChunkId),
    /// No restore point matches.
    #[error("no restore point matches \"{0}\"; list them with \"points\"")]
    PointNotFound(String),
    /// A job has no restore point in this repository yet.
    #[error("job \"{0}\" has no restore points here yet; run the job first")]
    NoPointsOfJob(String),
    /// A point prefix names only another job's point (jobs sharing one repository).
    #[error(
        "restore point \"{point}\" belongs to job \"{job}\", not to this one; name that job to use it"
    )]
    PointOfAnotherJob {
        /// The prefix given.
        point: String,
        /// The job it belongs to.
        job: String,
    },
    /// More than one restore point matches a prefix.
    #[error("\"{0}\" matches several restore points; give more characters of the id")]
    AmbiguousPoint(String),
    /// A worker thread failed unexpectedly.
    #[error("internal error: {0}; please report it with the log file")]
    Internal(String),
}

impl Failure for RepoError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Store(e) => e.kind(),
            Self::Crypto(e) => e.kind(),
            Self::PasswordRequired => Some(FailureKind::Auth),
            _ => None,
        }
    }
}

/// How to unlock a repository.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// With an encryption password.
    Password(&'a str),
    /// With a recovery key.
    RecoveryKey(&'a RecoveryKey),
    /// Without a secret: only for repositories created unencrypted.
    Unencrypted,
}

/// How to create a repository.
#[derive(Debug, Clone, Copy)]
pub enum NewRepo<'a> {
    /// Encrypted with a password.
    Encrypted {
        /// The encryption password.
        password: &'a str,
        /// Argon2id costs.
        kdf: KdfParams,
    },
    /// Unencrypted, chosen explicitly.
    Unencrypted,
}

pub use crate::index::{BlobLocation, ChunkIndex};

#[derive(Serialize, Deserialize)]
struct IndexFile {
    packs: Vec<IndexPack>,
}

#[derive(Serialize, Deserialize)]
struct IndexPack {
    pack: [u8; 32],
    blobs: Vec<(ChunkId, u64, u32, u32)>,
}

/// Statistics of a restore point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PointStats {
    /// Files in the point.
    pub files: u64,
    /// Folders in the point.
    pub dirs: u64,
    /// Bytes of file content in the point.
    pub bytes: u64,
    /// Files read this time (the rest were unchanged and reused).
    pub files_read: u64,
    /// Bytes read this time.
    pub bytes_read: u64,
    /// Blobs stored this time.
    pub new_blobs: u64,
    /// Bytes stored this time (after dedup, compression and encryption).
    pub new_stored_bytes: u64,
    /// Entries that could not be backed up.
    pub warnings: u64,
}

/// The sealed part of a restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointManifest {
    /// Computer the data came from.
    pub host: String,
    /// Backup job or policy name.
    pub job: String,
    /// Source paths as given.
    pub paths: Vec<String>,
    /// Start, nanoseconds since the epoch.
    pub started_ns: i64,
    /// End, nanoseconds since the epoch.
    pub finished_ns: i64,
    /// Statistics.
    pub stats: PointStats,
    /// Tree parts of the catalog's root folder.
    pub root: Vec<ChunkId>,
    /// The point this one was made incrementally from.
    pub parent: Option<String>,
    /// The disks it imaged (image-level points), each with its layout; empty for a
    /// file-level point. Written last, so that a reader that predates it still reads the
    /// rest, and a manifest without it (older points) reads as empty.
    pub disks: Vec<crate::image::DiskImage>,
}

/// Reads and opens blobs on its own (see [`Repository::blob_source`]).
#[derive(Clone)]
pub struct BlobSource {
    backend: Arc<dyn RepoBackend>,
    keys: RepoKeys,
    index: ChunkIndex,
}

impl BlobSource {
    /// Reads and opens one blob.
    pub fn read(&self, id: &ChunkId) -> Result<Vec<u8>, RepoError> {
        let loc = self.index.get(id).ok_or(RepoError::UnknownChunk(*id))?;
        let stored = self
            .backend
            .read_range(&loc.pack, loc.offset, u64::from(loc.stored_len))?;
        Ok(blob::open(&self.keys, id, &stored)?)
    }
}

/// A manifest as written before points recorded disks.
#[derive(Deserialize)]
struct ManifestV1 {
    host: String,
    job: String,
    paths: Vec<String>,
    started_ns: i64,
    finished_ns: i64,
    stats: PointStats,
    root: Vec<ChunkId>,
    parent: Option<String>,
}

impl PointManifest {
    /// Whether it is an image-level point.
    pub fn is_image(&self) -> bool {
        !self.disks.is_empty()
    }

    fn decode(plain: &[u8]) -> Result<Self, String> {
        if let Ok(m) = postcard::from_bytes::<PointManifest>(plain) {
            return Ok(m);
        }
        let v1: ManifestV1 = postcard::from_bytes(plain).map_err(|e| e.to_string())?;
        Ok(Self {
            host: v1.host,
            job: v1.job,
            paths: v1.paths,
            started_ns: v1.started_ns,
            finished_ns: v1.finished_ns,
            stats: v1.stats,
            root: v1.root,
            parent: v1.parent,
            disks: Vec::new(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct PointFile {
    time_ns: i64,
    set: String,
    sealed: Vec<u8>,
}

/// A restore point read from the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePoint {
    /// Its id (64 hex characters).
    pub id: String,
    /// Its time (the backup's end), nanoseconds since the epoch.
    pub time_ns: i64,
    /// The chunk set listing every blob it references ([`Repository::point_chunks`]).
    pub set: String,
    /// The manifest.
    pub manifest: PointManifest,
}

impl RestorePoint {
    /// The first 12 characters of the id, unique in practice.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// An open repository.
pub struct Repository {
    backend: Arc<dyn RepoBackend>,
    keyring: Keyring,
    keys: RepoKeys,
    /// Kept to wrap it anew (a backup file's keyring).
    master: crate::crypto::MasterKey,
    cache: Option<crate::blobcache::BlobCache>,
    /// Set when the password opened only a slot the provider keeps after its removal.
    opened_by_retired: Option<crate::crypto::RetiredSlot>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("repo_id", &self.keyring.repo_id)
            .field("encrypted", &self.keys.is_encrypted())
            .finish()
    }
}

/// What can be read of a repository without unlocking it: that it is one, whether it is
/// encrypted, and when its restore points were made (a point's time is outside its sealed
/// part). What they hold, and for which job, needs the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// Whether a password (or recovery key) is needed.
    pub encrypted: bool,
    /// Each restore point's time, nanoseconds since the epoch, oldest first.
    pub point_times_ns: Vec<i64>,
}

impl Repository {
    /// [`Outline`] of the repository in `backend`; `None` when it holds none.
    pub fn outline(backend: &dyn RepoBackend) -> Result<Option<Outline>, RepoError> {
        let text = match backend.get_meta(MetaKind::Keyring, KEYRING_NAME) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFoundMeta { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let keyring = Keyring::from_json(&String::from_utf8_lossy(&text))?;
        let mut point_times_ns = Vec::new();
        for name in backend.list_meta(MetaKind::Point)? {
            let Ok(bytes) = backend.get_meta(MetaKind::Point, &name) else {
                continue;
            };
            // A point that does not parse is left out here; unlocking reports it.
            if let Ok(body) = strip_header(&bytes, POINT_MAGIC)
                && let Ok(file) = postcard::from_bytes::<PointFile>(body)
            {
                point_times_ns.push(file.time_ns);
            }
        }
        point_times_ns.sort_unstable();
        Ok(Some(Outline {
            encrypted: keyring.is_encrypted(),
            point_times_ns,
        }))
    }

    /// Creates a repository in an empty backend.
    pub fn init(backend: Arc<dyn RepoBackend>, new: NewRepo<'_>) -> Result<Self, RepoError> {
        match backend.get_meta(MetaKind::Keyring, KEYRING_NAME) {
            Ok(_) => return Err(RepoError::AlreadyExists),
            Err(StoreError::NotFoundMeta { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (keyring, master) = match new {
            NewRepo::Encrypted { password, kdf } => {
                Keyring::create_encrypted(password, kdf, "initial password")?
            }
            NewRepo::Unencrypted => Keyring::create_unencrypted()?,
        };
        backend.put_meta(
            MetaKind::Keyring,
            KEYRING_NAME,
            keyring.to_json().as_bytes(),
        )?;
        let keys = master.repo_keys(keyring.is_encrypted());
        Ok(Self {
            backend,
            keyring,
            keys,
            master,
            cache: None,
            opened_by_retired: None,
        })
    }

    /// Opens a repository.
    pub fn open(backend: Arc<dyn RepoBackend>, unlock: Unlock<'_>) -> Result<Self, RepoError> {
        let text = match backend.get_meta(MetaKind::Keyring, KEYRING_NAME) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFoundMeta { .. }) => return Err(RepoError::NotARepository),
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8(text).map_err(|_| RepoError::Corrupt {
            what: "the keyring".into(),
            reason: "not UTF-8".into(),
        })?;
        let keyring = Keyring::from_json(&text)?;
        let mut opened_by_retired = None;
        let master = match unlock {
            Unlock::Password(password) => {
                let (master, retired) = keyring.unlock_noting_retired(password)?;
                opened_by_retired = retired;
                master
            }
            Unlock::RecoveryKey(key) => keyring.unlock_with_recovery_key(key)?,
            Unlock::Unencrypted if keyring.is_encrypted() => {
                return Err(RepoError::PasswordRequired);
            }
            Unlock::Unencrypted => keyring.unlock_unencrypted()?,
        };
        let keys = master.repo_keys(keyring.is_encrypted());
        if let Some(retired) = &opened_by_retired {
            tracing::warn!(
                "the repository's keyring was changed: this password opens only a key slot removed on {}, kept until {}",
                retired.retired.format("%Y-%m-%d"),
                retired.kept_until.format("%Y-%m-%d")
            );
        }
        Ok(Self {
            backend,
            keyring,
            keys,
            master,
            cache: None,
            opened_by_retired,
        })
    }

    /// The removed key slot the password opened when no live slot did: someone changed the
    /// keyring (a new password, or an attacker with the account's password), and the slot
    /// stops working when the provider's insider protection for it ends.
    pub fn opened_by_retired_slot(&self) -> Option<&crate::crypto::RetiredSlot> {
        self.opened_by_retired.as_ref()
    }

    /// The working keys.
    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    /// The keyring (for adding passwords or recovery keys).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// A keyring of this repository's key for a backup file: one password slot, opened by
    /// `password` alone (an unencrypted repository's file is unencrypted too, and takes none).
    pub fn keyring_for_file(
        &self,
        password: Option<&str>,
        kdf: crate::crypto::KdfParams,
    ) -> Result<Keyring, RepoError> {
        let mut ring = self.keyring.clone();
        ring.slots.clear();
        ring.retired.clear();
        if ring.is_encrypted() {
            let password = password.ok_or(RepoError::PasswordRequired)?;
            ring.add_password(&self.master, password, kdf, "backup file")?;
        }
        Ok(ring)
    }

    /// Whether `ring` holds this repository's key and `password` opens it (no password: an
    /// unencrypted keyring).
    pub fn opens_with(&self, ring: &Keyring, password: Option<&str>) -> bool {
        let master = match password {
            Some(p) => ring.unlock(p),
            None => ring.unlock_unencrypted(),
        };
        master.is_ok_and(|m| m == self.master)
    }

    /// Whether `other` shares this repository's key (a backup file of it, or it of one):
    /// their blobs, ids and packs are interchangeable.
    pub fn same_key(&self, other: &Repository) -> bool {
        self.master == other.master && self.keyring.is_encrypted() == other.keyring.is_encrypted()
    }

    /// Saves a changed keyring (new password, recovery key, removed slot).
    pub fn save_keyring(&mut self, keyring: Keyring) -> Result<(), RepoError> {
        self.backend.put_meta(
            MetaKind::Keyring,
            KEYRING_NAME,
            keyring.to_json().as_bytes(),
        )?;
        self.keyring = keyring;
        Ok(())
    }

    /// The storage.
    pub fn backend(&self) -> &Arc<dyn RepoBackend> {
        &self.backend
    }

    /// Reads every index file into one chunk index: every blob any index file names,
    /// wherever that is (garbage collection's view).
    pub fn load_index(&self) -> Result<ChunkIndex, RepoError> {
        let mut index = ChunkIndex::builder();
        self.each_index_file(|pack, entries| index.add_pack(pack, &entries, 0))?;
        Ok(index.finish())
    }

    /// Every index entry, those of `first` packs (the packs a store lists) before the others:
    /// a blob copied by a compaction is found where it is now, not in a pack that is gone.
    pub fn load_index_preferring(&self, first: &HashSet<PackId>) -> Result<ChunkIndex, RepoError> {
        let mut index = ChunkIndex::builder();
        self.each_index_file(|pack, entries| {
            index.add_pack(pack, &entries, u8::from(!first.contains(&pack)))
        })?;
        Ok(index.finish())
    }

    /// Reads the index files one at a time and hands over each pack they name with its
    /// blobs, in file order (one file's entries in memory at a time, not all of them).
    fn each_index_file(
        &self,
        mut each: impl FnMut(PackId, Vec<PackEntry>),
    ) -> Result<(), RepoError> {
        for name in self.backend.list_meta(MetaKind::Index)? {
            let bytes = self.backend.get_meta(MetaKind::Index, &name)?;
            let packs = decode_index(&self.keys, &bytes).map_err(|reason| RepoError::Corrupt {
                what: format!("index file {name}"),
                reason,
            })?;
            drop(bytes);
            for (pack, entries) in packs {
                each(pack, entries);
            }
        }
        Ok(())
    }

    /// The blobs a backup may count as stored: those in packs the storage lists and does
    /// not call damaged. A pack the storage lost (or set aside) is left out, so its chunks
    /// are sent again. Packs no index file names — left by a run that was interrupted after
    /// storing them — are adopted on the way ([`Self::adopt_orphan_packs`]); returns the
    /// index and how many blobs were adopted. `damaged` is what the storage called damaged
    /// (the caller asked it already, to salvage those packs first).
    pub fn load_backup_index(&self, damaged: &[PackId]) -> Result<(ChunkIndex, usize), RepoError> {
        let listed = self.backend.list_packs()?;
        let damaged: HashSet<PackId> = damaged.iter().copied().collect();
        let sound: HashSet<PackId> = listed
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !damaged.contains(p))
            .collect();
        let mut named: HashSet<PackId> = HashSet::new();
        let mut builder = ChunkIndex::builder();
        self.each_index_file(|pack, entries| {
            named.insert(pack);
            if sound.contains(&pack) {
                builder.add_pack(pack, &entries, 0);
            }
        })?;
        let mut index = builder.finish();
        crate::refs::return_free_memory();
        let orphans: Vec<(PackId, u64)> = listed
            .into_iter()
            .filter(|(p, _)| !named.contains(p) && !damaged.contains(p))
            .collect();
        let adopted = self.adopt_orphan_packs(&mut index, &orphans)?;
        Ok((index, adopted))
    }

    /// The blobs a restore, browse or search can read: those in packs the storage lists,
    /// sound packs first, a damaged pack only for blobs found nowhere else (each blob is
    /// authenticated when read, so its intact ones still restore).
    pub fn load_readable_index(&self) -> Result<ChunkIndex, RepoError> {
        let listed: HashSet<PackId> = self
            .backend
            .list_packs()?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let damaged: HashSet<PackId> = self.backend.damaged_packs()?.into_iter().collect();
        let mut index = ChunkIndex::builder();
        self.each_index_file(|pack, entries| {
            if listed.contains(&pack) {
                index.add_pack(pack, &entries, u8::from(damaged.contains(&pack)));
            }
        })?;
        let index = index.finish();
        crate::refs::return_free_memory();
        Ok(index)
    }

    /// Reads the sealed indexes of `orphans` — stored packs no index file names, left by a
    /// backup that was interrupted after storing them — names them in a new index file and
    /// adds them to `index`, so that a rerun reuses what is already stored instead of sending
    /// it again. Damaged or foreign packs are skipped (gc removes them). Returns how many
    /// blobs were recovered.
    fn adopt_orphan_packs(
        &self,
        index: &mut ChunkIndex,
        orphans: &[(PackId, u64)],
    ) -> Result<usize, RepoError> {
        let mut adopted = Vec::new();
        for &(pack, len) in orphans {
            if len < crate::pack::FOOTER_LEN as u64 {
                continue;
            }
            let footer_at = len - crate::pack::FOOTER_LEN as u64;
            let entries = self
                .backend
                .read_range(&pack, footer_at, crate::pack::FOOTER_LEN as u64)
                .map_err(RepoError::from)
                .and_then(|footer| Ok(crate::pack::index_range(&pack, len, &footer)?))
                .and_then(|(start, index_len)| {
                    let sealed = self
                        .backend
                        .read_range(&pack, start, u64::from(index_len))?;
                    Ok(crate::pack::open_index(&self.keys, &pack, start, &sealed)?)
                });
            match entries {
                Ok(entries) if !entries.is_empty() => adopted.push((pack, entries)),
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    "pack {} names no index and cannot be read: {e}",
                    pack.to_hex()
                ),
            }
        }
        if adopted.is_empty() {
            return Ok(0);
        }
        self.write_index(&adopted)?;
        let blobs = adopted.iter().map(|(_, e)| e.len()).sum();
        for (pack, entries) in &adopted {
            index.add_pack(*pack, entries);
        }
        tracing::info!(
            "reusing {blobs} blobs of {} packs an interrupted run left",
            adopted.len()
        );
        Ok(blobs)
    }

    /// Writes one index file naming `packs` (which must already be stored).
    pub fn write_index(&self, packs: &[(PackId, Vec<PackEntry>)]) -> Result<String, RepoError> {
        let (name, bytes) = self.encode_index(packs)?;
        self.backend.put_meta(MetaKind::Index, &name, &bytes)?;
        Ok(name)
    }

    /// Writes index files naming `packs` (which must already be stored), at most
    /// [`INDEX_FILE_BLOBS`] blobs each; returns their names.
    pub fn write_indexes(
        &self,
        packs: &[(PackId, Vec<PackEntry>)],
    ) -> Result<Vec<String>, RepoError> {
        let mut names = Vec::new();
        let mut start = 0;
        while start < packs.len() {
            let mut blobs = 0;
            let mut end = start;
            while end < packs.len()
                && (end == start || blobs + packs[end].1.len() <= INDEX_FILE_BLOBS)
            {
                blobs += packs[end].1.len();
                end += 1;
            }
            names.push(self.write_index(&packs[start..end])?);
            start = end;
        }
        if names.is_empty() {
            names.push(self.write_index(&[])?);
        }
        Ok(names)
    }

    /// An index file naming `packs`, sealed, with its name; not stored.
    pub fn encode_index(
        &self,
        packs: &[(PackId, Vec<PackEntry>)],
    ) -> Result<(String, Vec<u8>), RepoError> {
        let file = IndexFile {
            packs: packs
                .iter()
                .map(|(pack, entries)| IndexPack {
                    pack: pack.0,
                    blobs: entries
                        .iter()
                        .map(|e| (e.id, e.offset, e.stored_len, e.plain_len))
                        .collect(),
                })
                .collect(),
        };
        let plain = postcard::to_stdvec(&file).map_err(|e| RepoError::Corrupt {
            what: "a new index file".into(),
            reason: e.to_string(),
        })?;
        let mut bytes = header(INDEX_MAGIC);
        bytes.extend_from_slice(&self.keys.seal(INDEX_AAD, &plain)?);
        let name = blake3::hash(&bytes).to_hex().to_string();
        Ok((name, bytes))
    }

    /// Saves a restore point, after checking that every chunk it references is in `index`:
    /// first its chunk set (as a delta against the chain of `parent` when that is small), then
    /// the point. Writing the point is the moment it becomes visible, all at once.
    pub fn commit_point(
        &self,
        index: &ChunkIndex,
        mut chunks: Vec<ChunkId>,
        manifest: &PointManifest,
        parent: Option<&RestorePoint>,
    ) -> Result<RestorePoint, RepoError> {
        chunks.sort_unstable();
        chunks.dedup();
        let missing: Vec<&ChunkId> = chunks.iter().filter(|id| !index.contains(id)).collect();
        if let Some(first) = missing.first() {
            return Err(RepoError::MissingChunks {
                count: missing.len(),
                first: **first,
            });
        }
        let set = self.write_chunk_set(chunks, parent)?;
        let (point, bytes) = self.encode_point(manifest, &set)?;
        self.backend.put_meta(MetaKind::Point, &point.id, &bytes)?;
        Ok(point)
    }

    /// Saves the restore point of a backup run: first its chunk set, written from what the
    /// run referenced (`refs`: every blob of it is in the index or was stored by the run, so
    /// nothing it names is missing) as a delta against the chain of `parent` when that is
    /// small, then the point. Nothing lists every id in memory on the way.
    pub fn commit_run_point(
        &self,
        refs: RunRefs<'_>,
        manifest: &PointManifest,
        parent: Option<&RestorePoint>,
    ) -> Result<RestorePoint, RepoError> {
        crate::refs::return_free_memory();
        let base = parent.and_then(|p| match self.base_set_bytes(&p.set) {
            Ok(base) => Some(base),
            Err(e) => {
                tracing::warn!("writing a full chunk set: the parent's set: {e}");
                None
            }
        });
        let view = base.as_ref().and_then(|(name, bytes)| {
            match crate::chunkset::IdsView::of_full_set(bytes) {
                Ok(view) => Some((name.as_str(), view)),
                Err(e) => {
                    tracing::warn!("writing a full chunk set: the parent's base: {e}");
                    None
                }
            }
        });
        let bytes = refs.chunk_set(view);
        drop(base);
        let set = ChunkSetFile::name_of(&bytes);
        self.backend
            .put_meta_owned(MetaKind::ChunkSet, &set, bytes)?;
        let (point, bytes) = self.encode_point(manifest, &set)?;
        self.backend.put_meta(MetaKind::Point, &point.id, &bytes)?;
        Ok(point)
    }

    /// The name and stored bytes of the full set at the root of set `name`'s chain (the set
    /// itself, or the base it is a delta of).
    fn base_set_bytes(&self, name: &str) -> Result<(String, Vec<u8>), RepoError> {
        let bytes = self.chunk_set_bytes(name)?;
        let base = crate::chunkset::base_of(&bytes).map_err(|reason| RepoError::Corrupt {
            what: format!("chunk set {name}"),
            reason,
        })?;
        match base {
            None => Ok((name.to_owned(), bytes)),
            Some(base) => {
                drop(bytes);
                let bytes = self.chunk_set_bytes(&base)?;
                Ok((base, bytes))
            }
        }
    }

    /// A stored chunk set's bytes, checked against its name.
    fn chunk_set_bytes(&self, name: &str) -> Result<Vec<u8>, RepoError> {
        let bytes = self.backend.get_meta(MetaKind::ChunkSet, name)?;
        if ChunkSetFile::name_of(&bytes) != name {
            return Err(RepoError::Corrupt {
                what: format!("chunk set {name}"),
                reason: "its content does not match its name".into(),
            });
        }
        Ok(bytes)
    }

    /// A restore point of `manifest` naming chunk set `set`, sealed, with its bytes; not
    /// stored. The point's time is its manifest's end.
    pub fn encode_point(
        &self,
        manifest: &PointManifest,
        set: &str,
    ) -> Result<(RestorePoint, Vec<u8>), RepoError> {
        let time_ns = manifest.finished_ns;
        let plain = postcard::to_stdvec(manifest).map_err(|e| RepoError::Corrupt {
            what: "a new restore point".into(),
            reason: e.to_string(),
        })?;
        let sealed = self.keys.seal(&point_aad(time_ns, set), &plain)?;
        let file = PointFile {
            time_ns,
            set: set.to_owned(),
            sealed,
        };
        let mut bytes = header(POINT_MAGIC);
        bytes.extend(postcard::to_stdvec(&file).map_err(|e| RepoError::Corrupt {
            what: "a new restore point".into(),
            reason: e.to_string(),
        })?);
        let id = blake3::hash(&bytes).to_hex().to_string();
        Ok((
            RestorePoint {
                id,
                time_ns,
                set: file.set,
                manifest: manifest.clone(),
            },
            bytes,
        ))
    }

    /// Stores the chunk set of a new point: a delta against the full set of `parent`'s chain
    /// when that is small, otherwise a full set. Returns its name.
    fn write_chunk_set(
        &self,
        chunks: Vec<ChunkId>,
        parent: Option<&RestorePoint>,
    ) -> Result<String, RepoError> {
        let base = match parent {
            Some(parent) => match self.load_chunk_set(&parent.set) {
                Ok(file) => {
                    let name = file.base.unwrap_or_else(|| parent.set.clone());
                    match SetReader::new(self).ids(&name) {
                        Ok(ids) => Some((name, ids)),
                        Err(e) => {
                            tracing::warn!("writing a full chunk set: the parent's base: {e}");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("writing a full chunk set: the parent's set: {e}");
                    None
                }
            },
            None => None,
        };
        let file = ChunkSetFile::plan(
            chunks,
            base.as_ref()
                .map(|(name, ids)| (name.as_str(), ids.as_slice())),
        );
        let bytes = file.encode();
        let name = ChunkSetFile::name_of(&bytes);
        self.backend.put_meta(MetaKind::ChunkSet, &name, &bytes)?;
        Ok(name)
    }

    /// Reads one stored chunk set as it is stored (full or delta).
    pub fn load_chunk_set(&self, name: &str) -> Result<ChunkSetFile, RepoError> {
        let bytes = self.chunk_set_bytes(name)?;
        ChunkSetFile::decode(&bytes).map_err(|reason| RepoError::Corrupt {
            what: format!("chunk set {name}"),
            reason,
        })
    }

    /// Every blob a restore point references, sorted.
    pub fn point_chunks(&self, point: &RestorePoint) -> Result<Vec<ChunkId>, RepoError> {
        Ok(SetReader::new(self).ids(&point.set)?.as_ref().clone())
    }

    /// Reads one restore point by full id.
    pub fn load_point(&self, id: &str) -> Result<RestorePoint, RepoError> {
        let bytes = match self.backend.get_meta(MetaKind::Point, id) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFoundMeta { .. }) => {
                return Err(RepoError::PointNotFound(id.into()));
            }
            Err(e) => return Err(e.into()),
        };
        decode_point(&self.keys, id, &bytes).map_err(|reason| RepoError::Corrupt {
            what: format!("restore point {id}"),
            reason,
        })
    }

    /// Every restore point, oldest first.
    pub fn list_points(&self) -> Result<Vec<RestorePoint>, RepoError> {
        let mut points = self
            .backend
            .list_meta(MetaKind::Point)?
            .iter()
            .map(|name| self.load_point(name))
            .collect::<Result<Vec<_>, _>>()?;
        points.sort_by(|a, b| a.time_ns.cmp(&b.time_ns).then_with(|| a.id.cmp(&b.id)));
        Ok(points)
    }

    /// The newest point of a job from a computer: the base of an incremental backup.
    pub fn latest_point(&self, job: &str, host: &str) -> Result<Option<RestorePoint>, RepoError> {
        Ok(self
            .list_points()?
            .into_iter()
            .rev()
            .find(|p| p.manifest.job == job && p.manifest.host == host))
    }

    /// Finds a restore point by id prefix (at least 4 characters) or `latest`.
    pub fn find_point(&self, prefix: &str) -> Result<RestorePoint, RepoError> {
        let names = self.backend.list_meta(MetaKind::Point)?;
        if prefix == "latest" {
            return self
                .list_points()?
                .pop()
                .ok_or_else(|| RepoError::PointNotFound(prefix.into()));
        }
        let matches: Vec<&String> = names
            .iter()
            .filter(|n| prefix.len() >= 4 && n.starts_with(prefix))
            .collect();
        match matches.as_slice() {
            [one] => self.load_point(one),
            [] => Err(RepoError::PointNotFound(prefix.into())),
            _ => Err(RepoError::AmbiguousPoint(prefix.into())),
        }
    }

    /// Finds a restore point of job `job` by id prefix (at least 4 characters) or `latest` (its
    /// newest): points of other jobs sharing the repository are never matched (a prefix that
    /// names only another job's point says whose it is).
    pub fn find_job_point(&self, job: &str, prefix: &str) -> Result<RestorePoint, RepoError> {
        let points = self.list_points()?;
        if prefix == "latest" {
            return points
                .into_iter()
                .rev()
                .find(|p| p.manifest.job == job)
                .ok_or_else(|| RepoError::NoPointsOfJob(job.into()));
        }
        let named: Vec<RestorePoint> = points
            .into_iter()
            .filter(|p| prefix.len() >= 4 && p.id.starts_with(prefix))
            .collect();
        let (own, others): (Vec<_>, Vec<_>) =
            named.into_iter().partition(|p| p.manifest.job == job);
        let mut own = own.into_iter();
        match (own.next(), own.next(), others.first()) {
            (Some(one), None, _) => Ok(one),
            (None, _, Some(other)) => Err(RepoError::PointOfAnotherJob {
                point: prefix.into(),
                job: other.manifest.job.clone(),
            }),
            (None, _, None) => Err(RepoError::PointNotFound(prefix.into())),
            (Some(_), Some(_), _) => Err(RepoError::AmbiguousPoint(prefix.into())),
        }
    }

    /// Removes a restore point (its data stays until garbage collection).
    pub fn delete_point(&self, id: &str) -> Result<(), RepoError> {
        Ok(self.backend.delete_meta(MetaKind::Point, id)?)
    }

    /// Reads and opens one blob.
    pub fn read_blob(&self, index: &ChunkIndex, id: &ChunkId) -> Result<Vec<u8>, RepoError> {
        let loc = index.get(id).ok_or(RepoError::UnknownChunk(*id))?;
        let stored = self
            .backend
            .read_range(&loc.pack, loc.offset, u64::from(loc.stored_len))?;
        Ok(blob::open(&self.keys, id, &stored)?)
    }

    /// A reader of this repository's blobs through `index` that borrows nothing: what a
    /// long-lived reader (a file system read from an image-level point) holds.
    pub fn blob_source(&self, index: &ChunkIndex) -> BlobSource {
        BlobSource {
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            index: index.clone(),
        }
    }

    /// Keeps folder listings in a local cache (for a remote repository).
    pub fn with_blob_cache(mut self, cache: crate::blobcache::BlobCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Reads a folder's entries from its tree parts (through the local cache, if any).
    pub fn load_dir(&self, index: &ChunkIndex, parts: &[ChunkId]) -> Result<Vec<Node>, RepoError> {
        let mut nodes = Vec::new();
        for part in parts {
            nodes.extend(catalog::decode_part(&self.read_tree_blob(index, part)?)?.nodes);
        }
        Ok(nodes)
    }

    fn read_tree_blob(&self, index: &ChunkIndex, id: &ChunkId) -> Result<Vec<u8>, RepoError> {
        let Some(cache) = &self.cache else {
            return self.read_blob(index, id);
        };
        if let Some(plain) = self.cached_tree_blob(id) {
            return Ok(plain);
        }
        let loc = index.get(id).ok_or(RepoError::UnknownChunk(*id))?;
        let stored = self
            .backend
            .read_range(&loc.pack, loc.offset, u64::from(loc.stored_len))?;
        let plain = blob::open(&self.keys, id, &stored)?;
        cache.put(id, &stored);
        Ok(plain)
    }

    /// Reads and opens many blobs with merged, parallel span reads (see [`crate::fetch`]).
    /// Each blob has its own outcome: a damaged or missing one fails only itself.
    pub fn read_blobs(
        &self,
        index: &ChunkIndex,
        ids: &[ChunkId],
    ) -> HashMap<ChunkId, crate::fetch::BlobResult<Vec<u8>>> {
        crate::fetch::read_many(
            index,
            ids,
            self.backend.merge_gap(),
            &|ranges| self.read_spans(ranges),
            &|id, stored| blob::open(&self.keys, id, stored).map_err(|e| e.to_string()),
        )
    }

    /// Reads the listings of many folders at once (each from its tree parts), through the
    /// local cache when there is one; one outcome per folder, in the order given.
    pub fn load_dirs(
        &self,
        index: &ChunkIndex,
        folders: &[&[ChunkId]],
    ) -> Vec<Result<Vec<Node>, String>> {
        let mut plain: HashMap<ChunkId, crate::fetch::BlobResult<Vec<u8>>> = HashMap::new();
        let mut wanted = Vec::new();
        for part in folders.iter().flat_map(|parts| parts.iter()) {
            if plain.contains_key(part) {
                continue;
            }
            match self.cached_tree_blob(part) {
                Some(bytes) => {
                    plain.insert(*part, Ok(bytes));
                }
                None => wanted.push(*part),
            }
        }
        if !wanted.is_empty() {
            plain.extend(crate::fetch::read_many(
                index,
                &wanted,
                self.backend.merge_gap(),
                &|ranges| self.read_spans(ranges),
                &|id, stored| {
                    let bytes = blob::open(&self.keys, id, stored).map_err(|e| e.to_string())?;
                    if let Some(cache) = &self.cache {
                        cache.put(id, stored);
                    }
                    Ok(bytes)
                },
            ));
        }
        folders
            .iter()
            .map(|parts| {
                let mut nodes = Vec::new();
                for part in *parts {
                    let bytes = plain
                        .get(part)
                        .ok_or_else(|| format!("chunk {part} was not read"))?
                        .as_ref()
                        .map_err(Clone::clone)?;
                    nodes.extend(
                        catalog::decode_part(bytes)
                            .map_err(|e| e.to_string())?
                            .nodes,
                    );
                }
                Ok(nodes)
            })
            .collect()
    }

    fn read_spans(&self, ranges: &[(PackId, u64, u64)]) -> Vec<Result<Vec<u8>, String>> {
        self.backend
            .read_ranges(ranges)
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    /// A folder listing's plaintext from the local cache, when there and authentic.
    fn cached_tree_blob(&self, id: &ChunkId) -> Option<Vec<u8>> {
        let sealed = self.cache.as_ref()?.get(id)?;
        blob::open(&self.keys, id, &sealed).ok()
    }

    /// This repository read without the local cache of folder listings: every listing from the
    /// store itself, as a computer that lost everything reads it (what a restore test proves).
    pub fn uncached(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            keyring: self.keyring.clone(),
            keys: self.keys.clone(),
            master: self.master.clone(),
            cache: None,
            opened_by_retired: self.opened_by_retired.clone(),
        }
    }

    /// Whether folder listings go to a local cache.
    pub fn has_blob_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// Puts the sealed bytes of a folder listing a backup just stored into the local cache, if
    /// any, so that the next backup reads it from here.
    pub fn remember_sealed(&self, id: &ChunkId, sealed: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.put(id, sealed);
        }
    }
}

/// Parses and authenticates an index file: the packs it names with their blobs.
pub fn decode_index(
    keys: &RepoKeys,
    bytes: &[u8],
) -> Result<Vec<(PackId, Vec<PackEntry>)>, String> {
    let sealed = strip_header(bytes, INDEX_MAGIC)?;
    let plain = keys
        .open(INDEX_AAD, sealed)
        .map_err(|_| "it failed authentication".to_owned())?;
    let file: IndexFile = postcard::from_bytes(&plain).map_err(|e| e.to_string())?;
    Ok(file
        .packs
        .into_iter()
        .map(|pack| {
            let entries = pack
                .blobs
                .into_iter()
                .map(|(id, offset, stored_len, plain_len)| PackEntry {
                    id,
                    offset,
                    stored_len,
                    plain_len,
                })
                .collect();
            (PackId(pack.pack), entries)
        })
        .collect())
}

/// The clear part of a point file: its time and chunk set. What a gateway checks before it
/// accepts a point (it has no key to open the rest).
pub fn point_clear_part(bytes: &[u8]) -> Result<(i64, String), String> {
    let body = strip_header(bytes, POINT_MAGIC)?;
    let file: PointFile = postcard::from_bytes(body).map_err(|e| e.to_string())?;
    if !crate::backend::valid_meta_name(&file.set) {
        return Err("its chunk set name is not a valid object name".into());
    }
    Ok((file.time_ns, file.set))
}

/// Parses and authenticates the point file stored as `id`.
pub fn decode_point(keys: &RepoKeys, id: &str, bytes: &[u8]) -> Result<RestorePoint, String> {
    let body = strip_header(bytes, POINT_MAGIC)?;
    let file: PointFile = postcard::from_bytes(body).map_err(|e| e.to_string())?;
    let plain = keys
        .open(&point_aad(file.time_ns, &file.set), &file.sealed)
        .map_err(|_| "it failed authentication".to_owned())?;
    let manifest = PointManifest::decode(&plain)?;
    if !crate::backend::valid_meta_name(&file.set) {
        return Err("its chunk set name is not a valid object name".into());
    }
    Ok(RestorePoint {
        id: id.to_owned(),
        time_ns: file.time_ns,
        set: file.set,
        manifest,
    })
}

fn header(magic: &[u8; 4]) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.push(FORMAT_VERSION);
    bytes
}

fn strip_header<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Result<&'a [u8], String> {
    let rest = bytes
        .strip_prefix(magic.as_slice())
        .ok_or("it does not start with its magic number")?;
    match rest.split_first() {
        Some((&FORMAT_VERSION, body)) => Ok(body),
        Some((v, _)) => Err(format!(
            "format version {v} is not one this Cloudkeep reads; update Cloudkeep"
        )),
        None => Err("it is cut short".into()),
    }
}

/// Binds the sealed manifest to the clear part of its point file (the set's name is the hash
/// of the set, so the ids are bound too).
fn point_aad(time_ns: i64, set: &str) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&time_ns.to_le_bytes());
    hasher.update(set.as_bytes());
    let mut aad = POINT_AAD.to_vec();
    aad.extend_from_slice(hasher.finalize().as_bytes());
    aad
}

/// Resolves chunk sets to their ids, reading each stored set once; remembers every set it
/// read (a point's own and its base), which garbage collection keeps.
pub struct SetReader<'r> {
    repo: &'r Repository,
    resolved: HashMap<String, Arc<Vec<ChunkId>>>,
    full: HashMap<String, Arc<Vec<ChunkId>>>,
    used: HashSet<String>,
}

impl<'r> SetReader<'r> {
    /// A reader with an empty cache.
    pub fn new(repo: &'r Repository) -> Self {
        Self {
            repo,
            resolved: HashMap::new(),
            full: HashMap::new(),
            used: HashSet::new(),
        }
    }

    /// The ids of set `name`, sorted.
    pub fn ids(&mut self, name: &str) -> Result<Arc<Vec<ChunkId>>, RepoError> {
        if let Some(ids) = self.resolved.get(name) {
            return Ok(ids.clone());
        }
        let file = self.repo.load_chunk_set(name)?;
        self.used.insert(name.to_owned());
        let ids = match &file.base {
            None => file.added,
            Some(base) => {
                let base_ids = match self.full.get(base) {
                    Some(ids) => ids.clone(),
                    None => {
                        let base_file = self.repo.load_chunk_set(base)?;
                        if base_file.base.is_some() {
                            return Err(RepoError::Corrupt {
                                what: format!("chunk set {name}"),
                                reason: "its base is itself a delta".into(),
                            });
                        }
                        let ids = Arc::new(base_file.added);
                        self.used.insert(base.clone());
                        self.full.insert(base.clone(), ids.clone());
                        ids
                    }
                };
                file.apply(&base_ids).map_err(|reason| RepoError::Corrupt {
                    what: format!("chunk set {name}"),
                    reason,
                })?
            }
        };
        let ids = Arc::new(ids);
        if file.base.is_none() {
            self.full.insert(name.to_owned(), ids.clone());
        }
        self.resolved.insert(name.to_owned(), ids.clone());
        Ok(ids)
    }

    /// Every set read so far.
    pub fn used(&self) -> &HashSet<String> {
        &self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::folder::FolderStore;
    use crate::compress::Compression;
    use crate::pack::PackBuilder;

    fn backend() -> (tempfile::TempDir, Arc<dyn RepoBackend>) {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path().join("repo")).unwrap();
        (dir, Arc::new(store))
    }

    fn manifest(finished_ns: i64) -> PointManifest {
        PointManifest {
            host: "pc1".into(),
            job: "docs".into(),
            paths: vec!["/home/a".into()],
            started_ns: finished_ns - 10,
            finished_ns,
            stats: PointStats::default(),
            root: vec![],
            parent: None,
            disks: vec![],
        }
    }

    #[test]
    fn manifests_without_disks_still_read_and_old_readers_read_new_ones() {
        #[derive(Serialize)]
        struct OldManifest {
            host: String,
            job: String,
            paths: Vec<String>,
            started_ns: i64,
            finished_ns: i64,
            stats: PointStats,
            root: Vec<ChunkId>,
            parent: Option<String>,
        }
        let m = manifest(5);
        let old = postcard::to_stdvec(&OldManifest {
            host: m.host.clone(),
            job: m.job.clone(),
            paths: m.paths.clone(),
            started_ns: m.started_ns,
            finished_ns: m.finished_ns,
            stats: m.stats,
            root: m.root.clone(),
            parent: m.parent.clone(),
        })
        .unwrap();
        assert_eq!(PointManifest::decode(&old).unwrap(), m);
        let layout = crate::image::read_layout(&mut std::io::Cursor::new(vec![0u8; 4096])).unwrap();
        let imaged = PointManifest {
            disks: vec![crate::image::DiskImage {
                path: "/dev/sdb".into(),
                layout,
                volumes: vec![],
            }],
            ..manifest(6)
        };
        let new = postcard::to_stdvec(&imaged).unwrap();
        assert_eq!(PointManifest::decode(&new).unwrap(), imaged);
        // A reader that predates disks reads the rest of a new manifest.
        let as_old: ManifestV1 = postcard::from_bytes(&new).unwrap();
        assert_eq!(as_old.job, imaged.job);
    }

    #[test]
    fn many_entries_are_split_into_index_files_that_load_back_whole() {
        let (_dir, backend) = backend();
        let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
        let per_pack = INDEX_FILE_BLOBS / 2 + 1000;
        let packs: Vec<(PackId, Vec<PackEntry>)> = (0..3u8)
            .map(|p| {
                let entries = (0..per_pack as u64)
                    .map(|n| {
                        let mut id = [0u8; 32];
                        id[..8].copy_from_slice(&n.to_be_bytes());
                        id[8] = p;
                        PackEntry {
                            id: ChunkId(*blake3::hash(&id).as_bytes()),
                            offset: n,
                            stored_len: 1,
                            plain_len: 1,
                        }
                    })
                    .collect();
                (PackId([p; 32]), entries)
            })
            .collect();
        let names = repo.write_indexes(&packs).unwrap();
        assert_eq!(names.len(), 3, "two halves and a bit do not fit one file");
        let index = repo.load_index().unwrap();
        assert_eq!(index.len(), 3 * per_pack);
        let (id, entry) = (packs[2].1[77].id, &packs[2].1[77]);
        assert_eq!(index.get(&id).unwrap().pack, PackId([2; 32]));
        assert_eq!(index.get(&id).unwrap().offset, entry.offset);
    }

    fn store_blobs(repo: &Repository, data: &[&[u8]]) -> Vec<ChunkId> {
        let mut builder = PackBuilder::new();
        let mut ids = Vec::new();
        for d in data {
            let sealed = blob::seal(repo.keys(), Compression::Default, d).unwrap();
            ids.push(sealed.id);
            builder.add(&sealed);
        }
        let pack = builder.finish(repo.keys()).unwrap();
        repo.backend().put_pack(&pack.id, &pack.bytes, &[]).unwrap();
        repo.write_index(&[(pack.id, pack.entries)]).unwrap();
        ids
    }

    #[test]
    fn init_open_and_refuse_twice() {
        let (_d, backend) = backend();
        let kdf = KdfParams::minimum();
        Repository::init(
            backend.clone(),
            NewRepo::Encrypted {
                password: "pw",
                kdf,
            },
        )
        .unwrap();
        assert!(matches!(
            Repository::init(backend.clone(), NewRepo::Unencrypted),
            Err(RepoError::AlreadyExists)
        ));
        assert!(Repository::open(backend.clone(), Unlock::Password("pw")).is_ok());
        assert!(matches!(
            Repository::open(backend.clone(), Unlock::Password("nope")),
            Err(RepoError::Crypto(CryptoError::WrongPassword))
        ));
        assert!(matches!(
            Repository::open(backend, Unlock::Unencrypted),
            Err(RepoError::PasswordRequired)
        ));
        let (_d2, empty) = self::backend();
        assert!(matches!(
            Repository::open(empty, Unlock::Password("pw")),
            Err(RepoError::NotARepository)
        ));
    }

    #[test]
    fn blobs_index_and_points_round_trip() {
        let (_d, backend) = backend();
        let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
        let ids = store_blobs(&repo, &[b"alpha", b"beta"]);
        let index = repo.load_index().unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(repo.read_blob(&index, &ids[1]).unwrap(), b"beta");

        let p1 = repo
            .commit_point(&index, ids.clone(), &manifest(1_000), None)
            .unwrap();
        let p2 = repo
            .commit_point(&index, vec![ids[0]], &manifest(2_000), None)
            .unwrap();
        let again = Repository::open(backend, Unlock::Unencrypted).unwrap();
        let points = again.list_points().unwrap();
        assert_eq!(
            points.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            [p1.id.clone(), p2.id.clone()]
        );
        assert_eq!(points[0].manifest, manifest(1_000));
        assert_eq!(again.find_point(&p1.id[..8]).unwrap().id, p1.id);
        assert_eq!(again.find_point("latest").unwrap().id, p2.id);
        assert!(matches!(
            again.find_point("zzzzzz"),
            Err(RepoError::PointNotFound(_))
        ));
        again.delete_point(&p1.id).unwrap();
        assert_eq!(again.list_points().unwrap().len(), 1);
    }

    #[test]
    fn a_job_finds_only_its_own_points() {
        let (_d, backend) = backend();
        let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
        let ids = store_blobs(&repo, &[b"alpha"]);
        let index = repo.load_index().unwrap();
        let a = repo
            .commit_point(&index, ids.clone(), &manifest(1_000), None)
            .unwrap();
        let other = PointManifest {
            job: "mail".into(),
            ..manifest(2_000)
        };
        let b = repo.commit_point(&index, ids, &other, None).unwrap();
        // The repository's newest point is "mail"'s; "docs"'s latest is still its own.
        assert_eq!(repo.find_point("latest").unwrap().id, b.id);
        assert_eq!(repo.find_job_point("docs", "latest").unwrap().id, a.id);
        assert_eq!(repo.find_job_point("mail", "latest").unwrap().id, b.id);
        assert!(matches!(
            repo.find_job_point("photos", "latest"),
            Err(RepoError::NoPointsOfJob(job)) if job == "photos"
        ));
        // Another job's point by id: refused, saying whose it is.
        match repo.find_job_point("docs", &b.id[..8]) {
            Err(e @ RepoError::PointOfAnotherJob { .. }) => {
                assert!(e.to_string().contains("belongs to job \"mail\""), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(repo.find_job_point("docs", &a.id[..8]).unwrap().id, a.id);
    }

    #[test]
    fn consecutive_points_share_their_chunk_list() {
        let (_d, backend) = backend();
        let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
        let data: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100]).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let ids = store_blobs(&repo, &refs);
        let index = repo.load_index().unwrap();
        let first = repo
            .commit_point(&index, ids[..18].to_vec(), &manifest(1), None)
            .unwrap();
        let second = repo
            .commit_point(&index, ids[1..19].to_vec(), &manifest(2), Some(&first))
            .unwrap();
        let third = repo
            .commit_point(&index, ids[2..20].to_vec(), &manifest(3), Some(&second))
            .unwrap();
        // The later points store small deltas against the first point's full set.
        let stored = repo.load_chunk_set(&third.set).unwrap();
        assert_eq!(stored.base.as_deref(), Some(first.set.as_str()));
        assert_eq!((stored.added.len(), stored.removed.len()), (2, 2));
        let mut want = ids[2..20].to_vec();
        want.sort_unstable();
        assert_eq!(repo.point_chunks(&third).unwrap(), want);
        assert_eq!(backend.list_meta(MetaKind::ChunkSet).unwrap().len(), 3);

        // A completely different point gets a full set of its own.
        let other = repo
            .commit_point(&index, ids[..2].to_vec(), &manifest(4), Some(&third))
            .unwrap();
        assert!(repo.load_chunk_set(&other.set).unwrap().base.is_none());

        // Deleting the first point leaves the others complete: their base set is not its own.
        repo.delete_point(&first.id).unwrap();
        assert_eq!(repo.point_chunks(&second).unwrap().len(), 18);

        // A set that does not match its name is refused.
        backend
            .put_meta(
                MetaKind::ChunkSet,
                &first.set,
                &ChunkSetFile::full(vec![]).encode(),
            )
            .unwrap();
        let err = repo.point_chunks(&third).unwrap_err();
        assert!(err.to_string().contains("does not match its name"), "{err}");
    }

    #[test]
    fn a_point_with_unstored_chunks_is_never_saved() {
        let (_d, backend) = backend();
        let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
        let ids = store_blobs(&repo, &[b"stored"]);
        let index = repo.load_index().unwrap();
        let err = repo
            .commit_point(&index, vec![ids[0], ChunkId([9; 32])], &manifest(5), None)
            .unwrap_err();
        assert!(matches!(err, RepoError::MissingChunks { count: 1, .. }));
        assert!(
            err.to_string()
                .contains("earlier restore points are intact")
        );
        assert!(repo.list_points().unwrap().is_empty());
    }

    #[test]
    fn tampered_points_are_refused() {
        let (_d, backend) = backend();
        let kdf = KdfParams::minimum();
        let repo = Repository::init(
            backend.clone(),
            NewRepo::Encrypted {
                password: "pw",
                kdf,
            },
        )
        .unwrap();
        let ids = store_blobs(&repo, &[b"x"]);
        let index = repo.load_index().unwrap();
        let point = repo.commit_point(&index, ids, &manifest(7), None).unwrap();
        let mut bytes = backend.get_meta(MetaKind::Point, &point.id).unwrap();
        // Change the clear time: the sealed manifest no longer matches.
        bytes[5] ^= 1;
        backend
            .put_meta(MetaKind::Point, &point.id, &bytes)
            .unwrap();
        let err = repo.load_point(&point.id).unwrap_err();
        assert!(matches!(err, RepoError::Corrupt { .. }), "{err}");
        backend
            .put_meta(MetaKind::Point, &point.id, b"CKRP\x09rest")
            .unwrap();
        let err = repo.load_point(&point.id).unwrap_err();
        assert!(err.to_string().contains("update Cloudkeep"), "{err}");
    }
}
