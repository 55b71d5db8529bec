//! A repository in a local folder: `packs/<first two hex digits>/<id>.pack`, plus `keys/`,
//! `index/` and `points/` for the metadata objects.
//!
//! Writes go to `tmp/` first, are flushed to disk, renamed into place and the folder entry is
//! flushed too, so a crash leaves either the whole pack or only a temporary file. Readers
//! never see a partial pack.
//!
//! A temporary file is locked (an OS file lock, released when its writer closes it or dies)
//! for as long as it is written. [`FolderStore::open`] removes only leftovers: temporary files
//! that nobody holds locked and that have not changed for [`LEFTOVER_AGE`], so opening a
//! repository (even read-only, even from another process) never breaks a write in flight.
//!
//! Everything is created owner-only (folders 0700, files 0600 on Unix): a repository holds a
//! tenant's encrypted data, the gateway's holds every tenant's.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{
    MAX_META_LEN, MetaKind, PackHealth, PackStore, RepoBackend, StoreError, valid_meta_name,
};
use crate::pack::PackEntry;
use crate::pack::{MAX_PACK_LEN, PackId};

const PACKS: &str = "packs";
const TMP: &str = "tmp";
/// Where packs whose bytes no longer match their id are kept, out of the listing.
const DAMAGED: &str = "damaged";
const EXT: &str = "pack";

/// A temporary file unchanged this long and locked by nobody is a crash's leftover. The age
/// closes the moment between a writer creating its file and locking it.
pub const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Packs in a folder.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
    /// Pack files kept open for reading, oldest first: a restore reads many blobs from the
    /// same few packs, and opening a pack per blob cost more than the read.
    readers: Arc<Mutex<OpenPacks>>,
}

/// Open packs, oldest first.
type OpenPacks = Vec<(PackId, Arc<File>)>;

/// How many packs stay open for reading.
const OPEN_PACKS: usize = 16;
/// Reads at least this long go through [`FolderStore::read_large`].
const FRESH_READ: u64 = 256 << 10;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl FolderStore {
    /// Opens (creating if needed) a store in `root`, removing the temporary files a crash left
    /// (never one a live writer holds: see the module doc).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let metas = MetaKind::ALL.map(|kind| root.join(kind.dir()));
        for dir in [root.clone(), root.join(PACKS), root.join(TMP)]
            .iter()
            .chain(&metas)
        {
            cloudkeep_model::paths::create_private_dir(dir).map_err(io_err(dir))?;
        }
        let store = Self {
            root,
            readers: Arc::default(),
        };
        store.remove_leftovers(LEFTOVER_AGE)?;
        Ok(store)
    }

    /// Removes temporary files that no writer holds and that are older than `age`; returns
    /// how many bytes they held.
    pub fn remove_leftovers(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        let tmp = self.root.join(TMP);
        let mut freed = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let fresh = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|elapsed| elapsed < age);
            if fresh || !meta.is_file() {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // a live writer holds it
            }
            if fs::remove_file(&path).is_ok() {
                freed += meta.len();
            }
        }
        Ok(freed)
    }

    /// A new temporary file in `tmp/` ending in `suffix`, owner-only and locked by this
    /// process until the returned file is closed.
    fn locked_temp(&self, suffix: &str) -> Result<(PathBuf, File), StoreError> {
        let mut random = [0u8; 8];
        crate::crypto::random_bytes(&mut random).map_err(|e| StoreError::Io {
            path: self.root.join(TMP),
            source: io::Error::other(e.to_string()),
        })?;
        self.locked_temp_named(&format!("{}.{suffix}", hex::encode(random)))
    }

    /// [`Self::locked_temp`] with a given file name.
    fn locked_temp_named(&self, name: &str) -> Result<(PathBuf, File), StoreError> {
        let path = self.root.join(TMP).join(name);
        let file = cloudkeep_model::paths::private_file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if let Err(e) = file.try_lock() {
            let _ = fs::remove_file(&path);
            return Err(StoreError::Io {
                path,
                source: io::Error::other(e.to_string()),
            });
        }
        Ok((path, file))
    }

    /// Closes the packs kept open for reading (shared by every clone of this store): before
    /// the folder is removed, since Windows refuses to remove a file that is open.
    pub fn close_readers(&self) {
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, id: &PackId) -> PathBuf {
        let hex = id.to_hex();
        self.root
            .join(PACKS)
            .join(&hex[..2])
            .join(format!("{hex}.{EXT}"))
    }

    /// Writes `bytes` to `dest` through a temporary file: flushed, renamed, folder flushed.
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        cloudkeep_model::paths::create_private_dir(&dir).map_err(io_err(&dir))?;
        let (tmp, mut file) = self.locked_temp("tmp")?;
        let write = || -> io::Result<()> {
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, dest)?;
            sync_dir(&dir)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&tmp);
            StoreError::Io {
                path: dest.to_path_buf(),
                source,
            }
        })
    }

    /// A new temporary file inside the store (on the packs' file system), for a pack that
    /// arrives as a stream under `reservation` (a hex id); [`FolderStore::adopt_pack`] moves
    /// it into place once complete. Left over after a crash, it is removed with its
    /// reservation ([`FolderStore::remove_upload`]) or once it has aged.
    pub fn upload_file(&self, reservation: &str) -> Result<(PathBuf, File), StoreError> {
        if reservation.is_empty() || !reservation.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadName {
                name: reservation.to_owned(),
            });
        }
        self.locked_temp_named(&format!("{reservation}.upload"))
    }

    /// Removes what the upload of `reservation` left, unless a live writer still holds it.
    pub fn remove_upload(&self, reservation: &str) -> Result<u64, StoreError> {
        if !reservation.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(0);
        }
        let path = self.root.join(TMP).join(format!("{reservation}.upload"));
        let Ok(file) = File::open(&path) else {
            return Ok(0);
        };
        if file.try_lock().is_err() {
            return Ok(0);
        }
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => Ok(len),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Makes a complete, flushed temporary file (from [`FolderStore::temp_file`]) pack `id`:
    /// renamed into place and the folder flushed, so it appears whole or not at all.
    pub fn adopt_pack(&self, id: &PackId, tmp: &Path) -> Result<(), StoreError> {
        let dest = self.path_of(id);
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let adopt = || -> io::Result<()> {
            cloudkeep_model::paths::create_private_dir(&dir)?;
            fs::rename(tmp, &dest)?;
            sync_dir(&dir)
        };
        match adopt() {
            Ok(()) => Ok(()),
            // The same pack, stored by another upload meanwhile (see `put_pack`).
            Err(_) if dest.is_file() => {
                let _ = fs::remove_file(tmp);
                Ok(())
            }
            Err(source) => {
                let _ = fs::remove_file(tmp);
                Err(StoreError::Io { path: dest, source })
            }
        }
    }

    fn meta_path(&self, kind: MetaKind, name: &str) -> Result<PathBuf, StoreError> {
        if !valid_meta_name(name) {
            return Err(StoreError::BadName {
                name: name.to_owned(),
            });
        }
        Ok(self.root.join(kind.dir()).join(name))
    }

    /// Re-reads pack `id` and compares it with its id (BLAKE3): `None` when it is missing.
    pub fn pack_matches_id(&self, id: &PackId) -> Result<Option<bool>, StoreError> {
        let path = self.path_of(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(file).map_err(io_err(&path))?;
        Ok(Some(hasher.finalize().as_bytes() == &id.0))
    }

    /// When pack `id`'s file last changed, if it exists.
    pub fn pack_modified(&self, id: &PackId) -> Option<std::time::SystemTime> {
        fs::metadata(self.path_of(id)).ok()?.modified().ok()
    }

    /// Whether a metadata object's file exists.
    pub fn has_meta(&self, kind: MetaKind, name: &str) -> bool {
        self.meta_path(kind, name).is_ok_and(|p| p.is_file())
    }

    /// An open pack for reading, from the small cache of open packs.
    fn reader(&self, id: &PackId) -> Result<Arc<File>, StoreError> {
        if let Ok(readers) = self.readers.lock()
            && let Some((_, file)) = readers.iter().find(|(p, _)| p == id)
        {
            return Ok(file.clone());
        }
        let file = Arc::new(self.open_pack(id)?);
        if let Ok(mut readers) = self.readers.lock() {
            readers.push((*id, file.clone()));
            if readers.len() > OPEN_PACKS {
                readers.remove(0);
            }
        }
        Ok(file)
    }

    /// Reads a large range through its own handle, straight into a buffer that is never
    /// zeroed first (zeroing megabytes per read showed in the gateway's restore profile).
    fn read_large(&self, id: &PackId, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(self.path_of(id))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut buf)?;
        if (buf.len() as u64) < len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(buf)
    }

    /// Reads several ranges (pack, offset, length) into one buffer, end to end, in order,
    /// opening each run of ranges of one pack once; `total` is their summed length. Fails as
    /// a whole when any range cannot be read (the gateway's multi-range read answers all or
    /// nothing). Like [`Self::read_large`], the buffer is never zeroed first.
    pub fn read_concat(
        &self,
        ranges: &[(PackId, u64, u64)],
        total: u64,
    ) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut open: Option<(PackId, File)> = None;
        for (id, offset, len) in ranges {
            let path = self.path_of(id);
            let mut file = match open.take() {
                Some((pack, file)) if pack == *id => file,
                _ => self.open_pack(id)?,
            };
            let start = buf.len();
            file.seek(SeekFrom::Start(*offset))
                .and_then(|_| Read::by_ref(&mut file).take(*len).read_to_end(&mut buf))
                .map_err(io_err(&path))?;
            if ((buf.len() - start) as u64) < *len {
                return Err(StoreError::OutOfRange {
                    pack: *id,
                    len: self.pack_len(id)?,
                    offset: *offset,
                    want: *len,
                });
            }
            open = Some((*id, file));
        }
        Ok(buf)
    }

    fn open_pack(&self, id: &PackId) -> Result<File, StoreError> {
        let path = self.path_of(id);
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::NotFound { pack: *id }
            } else {
                StoreError::Io { path, source }
            }
        })
    }
}

/// Reads exactly `buf.len()` bytes at `offset` without moving a shared file position, so
/// threads can read one open pack at once.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes at `offset` (Windows: positioned reads, looping).
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Flushes a folder's entries (the rename) to disk. Not possible on Windows, where the rename
/// itself is durable once the file is flushed.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

impl PackStore for FolderStore {
    fn local_folder(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn put_pack(&self, id: &PackId, bytes: &[u8], _blobs: &[PackEntry]) -> Result<(), StoreError> {
        let dest = self.path_of(id);
        if dest.exists() {
            return Ok(());
        }
        match self.write_atomic(&dest, bytes) {
            // Another writer stored the same pack meanwhile: a pack's name is its content's
            // hash, so it is this one. (Windows refuses to rename over a file another thread
            // holds open, where POSIX replaces it.)
            Err(_) if dest.is_file() => Ok(()),
            other => other,
        }
    }

    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let out_of_range = |size: u64| StoreError::OutOfRange {
            pack: *id,
            len: size,
            offset,
            want: len,
        };
        if len > MAX_PACK_LEN || offset.checked_add(len).is_none_or(|end| end > MAX_PACK_LEN) {
            return Err(out_of_range(self.pack_len(id)?));
        }
        let path = self.path_of(id);
        if len >= FRESH_READ {
            return self.read_large(id, offset, len).map_err(|e| match e {
                e if e.kind() == io::ErrorKind::UnexpectedEof => match self.pack_len(id) {
                    Ok(size) => out_of_range(size),
                    Err(e) => e,
                },
                e if e.kind() == io::ErrorKind::NotFound => StoreError::NotFound { pack: *id },
                source => StoreError::Io {
                    path: path.clone(),
                    source,
                },
            });
        }
        let file = self.reader(id)?;
        let mut buf = vec![0u8; len as usize];
        match read_exact_at(&file, &mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(out_of_range(file.metadata().map_err(io_err(&path))?.len()))
            }
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError> {
        let file = self.open_pack(id)?;
        file.metadata()
            .map(|m| m.len())
            .map_err(io_err(&self.path_of(id)))
    }

    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        let packs = self.root.join(PACKS);
        let mut out = Vec::new();
        for shard in fs::read_dir(&packs).map_err(io_err(&packs))? {
            let shard = shard.map_err(io_err(&packs))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(io_err(&shard))? {
                let entry = entry.map_err(io_err(&shard))?;
                let name = entry.file_name();
                let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".pack"))
                    .and_then(PackId::from_hex)
                else {
                    continue; // not ours
                };
                let len = entry.metadata().map_err(io_err(&entry.path()))?.len();
                out.push((id, len));
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError> {
        if let Ok(mut readers) = self.readers.lock() {
            readers.retain(|(p, _)| p != id);
        }
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(io_err(dir))?;
        }
        Ok(())
    }

    fn set_aside(&self, id: &PackId) -> Result<PackHealth, StoreError> {
        let packs = self.root.join(PACKS);
        if !packs.is_dir() {
            return Err(StoreError::Io {
                path: packs,
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "the repository's packs folder is gone: is its storage mounted?",
                ),
            });
        }
        let path = self.path_of(id);
        match self.pack_matches_id(id)? {
            None => return Ok(PackHealth::Missing),
            Some(true) => return Ok(PackHealth::Intact),
            Some(false) => {}
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.retain(|(p, _)| p != id);
        }
        let aside = self.root.join(DAMAGED);
        cloudkeep_model::paths::create_private_dir(&aside).map_err(io_err(&aside))?;
        let dest = aside.join(format!("{}.{EXT}", id.to_hex()));
        fs::rename(&path, &dest).map_err(io_err(&path))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(io_err(dir))?;
        }
        tracing::warn!(
            "pack {} no longer matches its id: set aside in {}",
            id.to_hex(),
            dest.display()
        );
        Ok(PackHealth::Damaged)
    }
}

impl RepoBackend for FolderStore {
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        super::check_meta_len(name, bytes.len() as u64)?;
        let path = self.meta_path(kind, name)?;
        self.write_atomic(&path, bytes)
    }

    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.meta_path(kind, name)?;
        let file = File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::NotFoundMeta {
                    kind,
                    name: name.to_owned(),
                }
            } else {
                StoreError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len > MAX_META_LEN {
            return Err(StoreError::TooLarge {
                name: name.to_owned(),
                len,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(MAX_META_LEN)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        Ok(bytes)
    }

    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join(kind.dir());
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_meta_name(n))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError> {
        let path = self.meta_path(kind, name)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root.join(kind.dir())).map_err(io_err(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FolderStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path().join("repo")).unwrap();
        (dir, store)
    }

    #[test]
    fn put_read_list_delete() {
        let (_dir, store) = store();
        let a = b"pack a bytes".to_vec();
        let b = vec![7u8; 5000];
        let (ia, ib) = (PackId::of(&a), PackId::of(&b));
        store.put_pack(&ia, &a, &[]).unwrap();
        store.put_pack(&ib, &b, &[]).unwrap();
        store.put_pack(&ia, &a, &[]).unwrap(); // idempotent
        assert_eq!(store.read_range(&ia, 5, 1).unwrap(), b"a");
        assert_eq!(store.read_range(&ib, 4990, 10).unwrap(), vec![7u8; 10]);
        assert_eq!(store.pack_len(&ib).unwrap(), 5000);
        let mut expected = vec![(ia, a.len() as u64), (ib, 5000)];
        expected.sort();
        assert_eq!(store.list_packs().unwrap(), expected);
        store.delete_pack(&ia).unwrap();
        store.delete_pack(&ia).unwrap();
        assert!(matches!(
            store.read_range(&ia, 0, 1),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.list_packs().unwrap(), vec![(ib, 5000)]);
    }

    #[test]
    fn reads_past_the_end_say_truncated() {
        let (_dir, store) = store();
        let a = vec![1u8; 100];
        let id = PackId::of(&a);
        store.put_pack(&id, &a, &[]).unwrap();
        let err = store.read_range(&id, 90, 20).unwrap_err();
        assert!(matches!(err, StoreError::OutOfRange { len: 100, .. }));
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(store.read_range(&id, u64::MAX, 2).is_err());
    }

    #[test]
    fn large_reads_return_the_bytes_or_say_truncated() {
        let (_dir, store) = store();
        let a: Vec<u8> = (0..(FRESH_READ as usize * 3))
            .map(|i| (i % 251) as u8)
            .collect();
        let id = PackId::of(&a);
        store.put_pack(&id, &a, &[]).unwrap();
        let len = FRESH_READ * 2;
        assert_eq!(
            store.read_range(&id, 7, len).unwrap(),
            &a[7..7 + len as usize]
        );
        let err = store.read_range(&id, FRESH_READ * 2, len).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfRange { len, .. } if len == a.len() as u64),
            "{err}"
        );
        let missing = PackId::of(b"nothing");
        assert!(matches!(
            store.read_range(&missing, 0, len),
            Err(StoreError::NotFound { .. })
        ));
    }

    /// Makes a file look `secs` old.
    fn age(path: &Path, secs: u64) {
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        filetime::set_file_mtime(path, filetime::FileTime::from_system_time(then)).unwrap();
    }

    #[test]
    fn crash_leftovers_are_cleaned_and_foreign_files_ignored() {
        let (dir, store) = store();
        let root = dir.path().join("repo");
        let dead = root.join(TMP).join("dead.tmp");
        fs::write(&dead, b"half a pack").unwrap();
        age(&dead, LEFTOVER_AGE.as_secs() + 5);
        fs::create_dir_all(root.join(PACKS).join("zz")).unwrap();
        fs::write(root.join(PACKS).join("zz").join("notes.txt"), b"x").unwrap();
        drop(store);
        let store = FolderStore::open(&root).unwrap();
        assert_eq!(fs::read_dir(root.join(TMP)).unwrap().count(), 0);
        assert!(store.list_packs().unwrap().is_empty());
    }

    #[test]
    fn opening_the_store_never_removes_a_write_in_flight() {
        // A backup streams a pack into a temporary file while another process (a read-only
        // `local points`, a verify) opens the same repository.
        let (dir, store) = store();
        let root = dir.path().join("repo");
        let (live_path, mut live) = store.upload_file("0a1b").unwrap();
        live.write_all(b"the first half of a pack").unwrap();
        age(&live_path, LEFTOVER_AGE.as_secs() * 10); // even an old-looking one, while locked
        let fresh = root.join(TMP).join("just-created.tmp");
        fs::write(&fresh, b"a writer that has not locked it yet").unwrap();
        for _ in 0..3 {
            let other = FolderStore::open(&root).unwrap();
            assert_eq!(other.remove_leftovers(LEFTOVER_AGE).unwrap(), 0);
        }
        assert!(live_path.exists() && fresh.exists());
        live.write_all(b" and the rest").unwrap();
        live.sync_all().unwrap();
        drop(live);
        let bytes = fs::read(&live_path).unwrap();
        let id = PackId::of(&bytes);
        store.adopt_pack(&id, &live_path).unwrap();
        assert_eq!(store.pack_len(&id).unwrap(), bytes.len() as u64);
        // Once its writer is gone and it has aged, a leftover goes.
        age(&fresh, LEFTOVER_AGE.as_secs() + 1);
        assert_eq!(
            store.remove_leftovers(LEFTOVER_AGE).unwrap(),
            b"a writer that has not locked it yet".len() as u64
        );
        assert!(!fresh.exists());
    }

    #[cfg(unix)]
    #[test]
    fn everything_is_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = store();
        let bytes = vec![9u8; 100];
        let id = PackId::of(&bytes);
        store.put_pack(&id, &bytes, &[]).unwrap();
        store.put_meta(MetaKind::Index, "abc", b"index").unwrap();
        let mut stack = vec![dir.path().join("repo")];
        let mut seen = 0;
        while let Some(path) = stack.pop() {
            let meta = fs::metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
                stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                assert_eq!(mode, 0o600, "{}", path.display());
            }
            seen += 1;
        }
        assert!(seen > 8, "{seen}");
    }

    #[test]
    fn meta_objects_are_atomic_named_and_listed() {
        let (_dir, store) = store();
        store.put_meta(MetaKind::Point, "p-2", b"two").unwrap();
        store.put_meta(MetaKind::Point, "p-1", b"one").unwrap();
        store
            .put_meta(MetaKind::Point, "p-1", b"one again")
            .unwrap();
        assert_eq!(
            store.get_meta(MetaKind::Point, "p-1").unwrap(),
            b"one again"
        );
        assert_eq!(store.list_meta(MetaKind::Point).unwrap(), ["p-1", "p-2"]);
        assert!(store.list_meta(MetaKind::Index).unwrap().is_empty());
        assert!(matches!(
            store.get_meta(MetaKind::Index, "p-1"),
            Err(StoreError::NotFoundMeta { .. })
        ));
        for bad in ["../escape", "a/b", "", ".hidden", "UPPER"] {
            assert!(matches!(
                store.put_meta(MetaKind::Point, bad, b"x"),
                Err(StoreError::BadName { .. })
            ));
        }
        store.delete_meta(MetaKind::Point, "p-2").unwrap();
        store.delete_meta(MetaKind::Point, "p-2").unwrap();
        assert_eq!(store.list_meta(MetaKind::Point).unwrap(), ["p-1"]);
    }

    #[test]
    fn concurrent_puts_of_the_same_pack_are_safe() {
        let (_dir, store) = store();
        let bytes = vec![3u8; 1 << 20];
        let id = PackId::of(&bytes);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| store.put_pack(&id, &bytes, &[]).unwrap());
            }
        });
        assert_eq!(store.read_range(&id, 0, 1 << 20).unwrap(), bytes);
        assert_eq!(store.list_packs().unwrap().len(), 1);
    }
}
