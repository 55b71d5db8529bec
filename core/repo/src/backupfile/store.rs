//! A backup file seen as a repository, read-only: its keyring, point, chunk
//! set and index as the metadata objects, its packs as packs, read in place by position.
//! Opening it with [`crate::repo::Repository::open`] and the file's password gives the whole
//! engine — browse, restore files, volumes and disks, verify — on any machine, without any
//! provider. Writes are refused, but for locks, which live in memory (a restore takes one).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::{BackupFile, FileError, Part, Tag};
use crate::backend::{MetaKind, PackStore, RepoBackend, StoreError};
use crate::pack::{PackEntry, PackId};

/// Name of the keyring object (as in every repository).
const KEYRING_NAME: &str = "keyring";

/// A backup file as a read-only repository.
pub struct FileStore {
    file: BackupFile,
    handle: File,
    packs: HashMap<PackId, Part>,
    /// Packs whose check was read and matched (each is read whole once, on first use).
    checked: Mutex<HashSet<PackId>>,
    locks: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.file.path())
            .finish_non_exhaustive()
    }
}

fn read_only() -> StoreError {
    StoreError::Refused {
        code: None,
        message: "a backup file is read-only: import it into a job's repository to add to it"
            .into(),
    }
}

impl FileStore {
    /// Opens the backup file at `path` (its parts checked, see [`BackupFile::open`]).
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let file = BackupFile::open(path)?;
        let handle = File::open(path).map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut packs = HashMap::new();
        for (i, part) in file.parts().iter().enumerate() {
            if part.tag != Tag::Pack {
                continue;
            }
            let id = PackId::from_hex(&part.name).ok_or_else(|| FileError::Damaged {
                path: path.to_path_buf(),
                part: i + 1,
                what: Tag::Pack.what().into(),
                at: part.start,
                reason: "is not named by a pack id".into(),
            })?;
            packs.insert(id, part.clone());
        }
        for tag in [Tag::Keys, Tag::Point, Tag::Set, Tag::Index] {
            if file.small(tag).is_none() {
                return Err(FileError::NotABackupFile {
                    path: path.to_path_buf(),
                    reason: format!("it holds no {}", tag.what()),
                });
            }
        }
        Ok(Self {
            file,
            handle,
            packs,
            checked: Mutex::default(),
            locks: Mutex::default(),
        })
    }

    /// The file underneath.
    pub fn file(&self) -> &BackupFile {
        &self.file
    }

    /// Where pack `id` is in the file (for messages: "part 7, at byte …").
    pub fn pack_part(&self, id: &PackId) -> Option<(usize, &Part)> {
        let part = self.packs.get(id)?;
        let number = self.file.parts().iter().position(|p| p == part)? + 1;
        Some((number, part))
    }

    /// Reads pack `id` whole once and checks it against its part's check and its id, so that
    /// nothing of a damaged pack is ever used; the damage is named by the part.
    fn check(&self, id: &PackId, part: &Part) -> Result<(), StoreError> {
        if self.checked.lock().is_ok_and(|c| c.contains(id)) {
            return Ok(());
        }
        let damaged = |reason: String| StoreError::Refused {
            code: None,
            message: reason,
        };
        let data = self
            .file
            .read_pack(part)
            .map_err(|e| damaged(e.to_string()))?;
        if PackId::of(&data) != *id {
            let number = self.pack_part(id).map_or(0, |(n, _)| n);
            return Err(damaged(format!(
                "{} is damaged: part {number} (pack of data, at byte {}) does not match its name; the file cannot be trusted — use another copy of it, or export the point again",
                self.file.path().display(),
                part.start
            )));
        }
        if let Ok(mut c) = self.checked.lock() {
            c.insert(*id);
        }
        Ok(())
    }

    fn meta(&self, kind: MetaKind) -> Option<(&str, &[u8])> {
        let tag = match kind {
            MetaKind::Keyring => Tag::Keys,
            MetaKind::Index => Tag::Index,
            MetaKind::Point => Tag::Point,
            MetaKind::ChunkSet => Tag::Set,
            MetaKind::Lock => return None,
        };
        let (name, data) = self.file.small(tag)?;
        // The keyring is always called so in a repository.
        Some((if tag == Tag::Keys { KEYRING_NAME } else { name }, data))
    }
}

impl PackStore for FileStore {
    fn put_pack(&self, _: &PackId, _: &[u8], _: &[PackEntry]) -> Result<(), StoreError> {
        Err(read_only())
    }

    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let part = self
            .packs
            .get(id)
            .ok_or(StoreError::NotFound { pack: *id })?;
        self.check(id, part)?;
        if offset.checked_add(len).is_none_or(|end| end > part.len) {
            return Err(StoreError::OutOfRange {
                pack: *id,
                len: part.len,
                offset,
                want: len,
            });
        }
        let mut buf = vec![0u8; len as usize];
        crate::backend::folder::read_exact_at(&self.handle, &mut buf, part.data_at + offset)
            .map_err(|source| StoreError::Io {
                path: self.file.path().to_path_buf(),
                source,
            })?;
        Ok(buf)
    }

    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError> {
        self.packs
            .get(id)
            .map(|p| p.len)
            .ok_or(StoreError::NotFound { pack: *id })
    }

    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        let mut all: Vec<(PackId, u64)> = self.packs.iter().map(|(id, p)| (*id, p.len)).collect();
        all.sort();
        Ok(all)
    }

    fn delete_pack(&self, _: &PackId) -> Result<(), StoreError> {
        Err(read_only())
    }

    fn set_aside(&self, _: &PackId) -> Result<crate::backend::PackHealth, StoreError> {
        Err(read_only())
    }

    fn read_only(&self) -> bool {
        true
    }
}

impl RepoBackend for FileStore {
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if kind != MetaKind::Lock {
            return Err(read_only());
        }
        if let Ok(mut locks) = self.locks.lock() {
            locks.insert(name.to_owned(), bytes.to_vec());
        }
        Ok(())
    }

    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError> {
        let missing = || StoreError::NotFoundMeta {
            kind,
            name: name.to_owned(),
        };
        if kind == MetaKind::Lock {
            return self
                .locks
                .lock()
                .ok()
                .and_then(|l| l.get(name).cloned())
                .ok_or_else(missing);
        }
        match self.meta(kind) {
            Some((n, data)) if n == name => Ok(data.to_vec()),
            _ => Err(missing()),
        }
    }

    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        if kind == MetaKind::Lock {
            return Ok(self
                .locks
                .lock()
                .map(|l| l.keys().cloned().collect())
                .unwrap_or_default());
        }
        Ok(self
            .meta(kind)
            .map(|(n, _)| vec![n.to_owned()])
            .unwrap_or_default())
    }

    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError> {
        if kind != MetaKind::Lock {
            return Err(read_only());
        }
        if let Ok(mut locks) = self.locks.lock() {
            locks.remove(name);
        }
        Ok(())
    }
}
