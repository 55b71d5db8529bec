//! The files inside a volume, read in user space from the volume's bytes — a device, an image
//! file or a restore point's blocks — so browsing and restoring files of an image-level point
//! works on any OS without root or a mount. One reader per file system, each a well-kept
//! read-only crate: `ext4-view` (ext2/3/4, Google's), `fatfs` (FAT12/16/32, used read-only),
//! `ntfs` (NTFS, the ReactOS developer's).
//!
//! What each keeps of metadata: ext2/3/4 — type, permissions, owner, modification time;
//! FAT — modification time (the volume's local time, read as UTC); NTFS — modification time. A volume is hostile input:
//! the readers' errors become [`FilesError::Damaged`], and so does a reader's panic (every
//! call is guarded; fuzz target `volume_files`).

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::probe::FsKind;

/// A volume's bytes, owned (readers outlive any borrow of the repository).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, pipe or socket (listed, not restored).
    Other,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (bytes; UTF-8 on FAT and NTFS).
    pub name: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes (files).
    pub size: u64,
    /// Unix permissions and type bits, where the file system keeps them.
    pub mode: Option<u32>,
    /// Owner (uid, gid), where kept.
    pub owner: Option<(u32, u32)>,
    /// Last modification, ns since the epoch, where the reader exposes it.
    pub mtime_ns: Option<i64>,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
}

/// Why a volume's files cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// No such entry.
    #[error("\"{0}\" is not in this volume")]
    NotFound(String),
    /// A folder was expected.
    #[error("\"{0}\" is not a folder")]
    NotADir(String),
    /// The file system's structures are damaged (or use what the reader cannot read).
    #[error("the volume's {fs} file system cannot be read: {reason}")]
    Damaged {
        /// Which.
        fs: &'static str,
        /// Why.
        reason: String,
    },
    /// The volume's bytes could not be read.
    #[error("cannot read the volume: {0}")]
    Io(#[from] io::Error),
}

/// The files of one volume.
pub trait VolumeFiles {
    /// The entries of the folder at `dir` (components from the volume's root).
    fn list(&mut self, dir: &[Vec<u8>]) -> Result<Vec<Entry>, FilesError>;
    /// Copies the file at `file` into `out`; its length.
    fn copy(&mut self, file: &[Vec<u8>], out: &mut dyn Write) -> Result<u64, FilesError>;
    /// Reads the file at `file` from byte `offset` into `buf`, filling it unless the file
    /// ends first; how many bytes were read (0 at or past the end).
    fn read_at(
        &mut self,
        file: &[Vec<u8>],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FilesError>;
}

/// Fills `buf` from `read` until it is full or `read` reports the end.
fn fill<E>(
    buf: &mut [u8],
    mut read: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, E> {
    let mut done = 0;
    while done < buf.len() {
        let n = read(&mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Opens the files of a volume of `kind`. Every call into the reader is guarded: a reader
/// that panics on a damaged volume (`fatfs` subtracts cluster numbers unchecked) fails that
/// call as damage, and the reader is not used again.
pub fn open(kind: FsKind, volume: Box<dyn ReadSeek>) -> Result<Box<dyn VolumeFiles>, FilesError> {
    let name = kind.name();
    let inner: Box<dyn VolumeFiles> = guard(name, move || {
        Ok::<Box<dyn VolumeFiles>, FilesError>(match kind {
            FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => Box::new(Ext::open(volume)?),
            FsKind::Vfat => Box::new(Fat::open(volume)?),
            FsKind::Ntfs => Box::new(Ntfs::open(volume)?),
        })
    })?;
    Ok(Box::new(Guarded {
        fs: name,
        inner: Some(inner),
    }))
}

/// Runs `f`, turning a panic into [`FilesError::Damaged`].
fn guard<T>(fs: &'static str, f: impl FnOnce() -> Result<T, FilesError>) -> Result<T, FilesError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(FilesError::Damaged {
            fs,
            reason: "its structures are damaged in a way its reader cannot handle".into(),
        })
    })
}

/// A reader whose calls are guarded; after a panic it refuses every call.
struct Guarded {
    fs: &'static str,
    inner: Option<Box<dyn VolumeFiles>>,
}

impl Guarded {
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut dyn VolumeFiles) -> Result<T, FilesError>,
    ) -> Result<T, FilesError> {
        let fs = self.fs;
        let Some(inner) = self.inner.as_mut() else {
            return Err(FilesError::Damaged {
                fs,
                reason: "its reader stopped on damage earlier".into(),
            });
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(inner.as_mut())));
        match result {
            Ok(r) => r,
            Err(_) => {
                // Its state may be half changed: never used again.
                self.inner = None;
                Err(FilesError::Damaged {
                    fs,
                    reason: "its structures are damaged in a way its reader cannot handle".into(),
                })
            }
        }
    }
}

impl VolumeFiles for Guarded {
    fn list(&mut self, dir: &[Vec<u8>]) -> Result<Vec<Entry>, FilesError> {
        self.call(|r| r.list(dir))
    }

    fn copy(&mut self, file: &[Vec<u8>], out: &mut dyn Write) -> Result<u64, FilesError> {
        self.call(|r| r.copy(file, out))
    }

    fn read_at(
        &mut self,
        file: &[Vec<u8>],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FilesError> {
        self.call(|r| r.read_at(file, offset, buf))
    }
}

fn shown(path: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for c in path {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(c));
    }
    if s.is_empty() { "/".into() } else { s }
}

// ---- ext2/3/4 -------------------------------------------------------------------------------

struct ExtSource(Box<dyn ReadSeek>);

impl ext4_view::Ext4Read for ExtSource {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.seek(SeekFrom::Start(start_byte))?;
        self.0.read_exact(dst)?;
        Ok(())
    }
}

/// Files an ext volume keeps open for positioned reads (a published file read in pieces).
const OPEN_FILES: usize = 16;

struct Ext {
    fs: ext4_view::Ext4,
    /// Recently read files, most recent last: (path, file at its position).
    open: Vec<(Vec<u8>, ext4_view::File)>,
}

fn ext_error(e: ext4_view::Ext4Error) -> FilesError {
    match e {
        ext4_view::Ext4Error::NotFound => FilesError::NotFound(String::new()),
        ext4_view::Ext4Error::NotADirectory => FilesError::NotADir(String::new()),
        other => FilesError::Damaged {
            fs: "ext",
            reason: other.to_string(),
        },
    }
}

impl Ext {
    fn open(volume: Box<dyn ReadSeek>) -> Result<Self, FilesError> {
        let fs = ext4_view::Ext4::load(Box::new(ExtSource(volume))).map_err(ext_error)?;
        Ok(Self {
            fs,
            open: Vec::new(),
        })
    }

    fn path(path: &[Vec<u8>]) -> Vec<u8> {
        let mut p = Vec::new();
        for c in path {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        if p.is_empty() {
            p.push(b'/');
        }
        p
    }
}

impl VolumeFiles for Ext {
    fn list(&mut self, dir: &[Vec<u8>]) -> Result<Vec<Entry>, FilesError> {
        let at = Self::path(dir);
        let named = |e: FilesError| match e {
            FilesError::NotFound(_) => FilesError::NotFound(shown(dir)),
            FilesError::NotADir(_) => FilesError::NotADir(shown(dir)),
            other => other,
        };
        let entries = self
            .fs
            .read_dir(at.as_slice())
            .map_err(|e| named(ext_error(e)))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ext_error)?;
            let name = entry.file_name().as_ref().to_vec();
            if name == b"." || name == b".." {
                continue;
            }
            let meta = entry.metadata().map_err(ext_error)?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_regular_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::Other
            };
            let type_bits = match kind {
                EntryKind::Dir => 0o040000,
                EntryKind::File => 0o100000,
                EntryKind::Symlink => 0o120000,
                EntryKind::Other => 0,
            };
            let link = if kind == EntryKind::Symlink {
                let mut p = at.clone();
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(&name);
                let target = self.fs.read_link(p.as_slice()).map_err(ext_error)?;
                Some(target.as_ref().to_vec())
            } else {
                None
            };
            out.push(Entry {
                name,
                kind,
                size: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
                mode: Some(type_bits | u32::from(meta.mode())),
                owner: Some((meta.uid(), meta.gid())),
                mtime_ns: Some(
                    meta.modified()
                        .seconds()
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(meta.modified().nanoseconds())),
                ),
                link,
            });
        }
        Ok(out)
    }

    fn copy(&mut self, file: &[Vec<u8>], out: &mut dyn Write) -> Result<u64, FilesError> {
        let at = Self::path(file);
        let mut f = self
            .fs
            .open(at.as_slice())
            .map_err(|e| match ext_error(e) {
                FilesError::NotFound(_) => FilesError::NotFound(shown(file)),
                other => other,
            })?;
        Ok(io::copy(&mut f, out)?)
    }

    fn read_at(
        &mut self,
        file: &[Vec<u8>],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FilesError> {
        let at = Self::path(file);
        let mut f = match self.open.iter().position(|(p, _)| *p == at) {
            Some(i) => self.open.remove(i).1,
            None => self
                .fs
                .open(at.as_slice())
                .map_err(|e| match ext_error(e) {
                    FilesError::NotFound(_) => FilesError::NotFound(shown(file)),
                    other => other,
                })?,
        };
        // Sequential reads go on where the last one ended (a seek walks the file's blocks).
        if f.position() != offset {
            f.seek_to(offset).map_err(ext_error)?;
        }
        let n = fill(buf, |b| f.read_bytes(b)).map_err(ext_error)?;
        if self.open.len() >= OPEN_FILES {
            self.open.remove(0);
        }
        self.open.push((at, f));
        Ok(n)
    }
}

// ---- FAT ------------------------------------------------------------------------------------

/// `fatfs` wants a writable disk; this one refuses every write (nothing is ever written).
struct ReadOnly(Box<dyn ReadSeek>);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a restore point is read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Fat {
    fs: fatfs::FileSystem<ReadOnly>,
}

fn fat_error(e: io::Error, path: &[Vec<u8>]) -> FilesError {
    match e.kind() {
        io::ErrorKind::NotFound => FilesError::NotFound(shown(path)),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            FilesError::Damaged {
                fs: "FAT",
                reason: e.to_string(),
            }
        }
        _ => FilesError::Io(e),
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn fat_time(t: fatfs::DateTime) -> i64 {
    let days = days_from_civil(
        i64::from(t.date.year),
        i64::from(t.date.month),
        i64::from(t.date.day),
    );
    let secs = days * 86_400
        + i64::from(t.time.hour) * 3600
        + i64::from(t.time.min) * 60
        + i64::from(t.time.sec);
    secs * 1_000_000_000 + i64::from(t.time.millis) * 1_000_000
}

impl Fat {
    fn open(volume: Box<dyn ReadSeek>) -> Result<Self, FilesError> {
        let fs = fatfs::FileSystem::new(ReadOnly(volume), fatfs::FsOptions::new())
            .map_err(|e| fat_error(e, &[]))?;
        Ok(Self { fs })
    }

    fn dir_path(path: &[Vec<u8>]) -> Result<String, FilesError> {
        let parts: Result<Vec<&str>, _> = path.iter().map(|c| std::str::from_utf8(c)).collect();
        parts
            .map(|p| p.join("/"))
            .map_err(|_| FilesError::NotFound(shown(path)))
    }
}

impl VolumeFiles for Fat {
    fn list(&mut self, dir: &[Vec<u8>]) -> Result<Vec<Entry>, FilesError> {
        let root = self.fs.root_dir();
        let folder = if dir.is_empty() {
            root
        } else {
            root.open_dir(&Self::dir_path(dir)?)
                .map_err(|e| fat_error(e, dir))?
        };
        let mut out = Vec::new();
        for entry in folder.iter() {
            let entry = entry.map_err(|e| fat_error(e, dir))?;
            let name = entry.file_name();
            if name == "."
                || name == ".."
                || entry
                    .attributes()
                    .contains(fatfs::FileAttributes::VOLUME_ID)
            {
                continue;
            }
            let kind = if entry.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::File
            };
            out.push(Entry {
                name: name.into_bytes(),
                kind,
                size: if kind == EntryKind::File {
                    entry.len()
                } else {
                    0
                },
                mode: None,
                owner: None,
                mtime_ns: Some(fat_time(entry.modified())),
                link: None,
            });
        }
        Ok(out)
    }

    fn copy(&mut self, file: &[Vec<u8>], out: &mut dyn Write) -> Result<u64, FilesError> {
        let mut f = self
            .fs
            .root_dir()
            .open_file(&Self::dir_path(file)?)
            .map_err(|e| fat_error(e, file))?;
        Ok(io::copy(&mut f, out)?)
    }

    fn read_at(
        &mut self,
        file: &[Vec<u8>],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FilesError> {
        let mut f = self
            .fs
            .root_dir()
            .open_file(&Self::dir_path(file)?)
            .map_err(|e| fat_error(e, file))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| fat_error(e, file))?;
        fill(buf, |b| f.read(b)).map_err(|e| fat_error(e, file))
    }
}

// ---- NTFS -----------------------------------------------------------------------------------

struct Ntfs {
    ntfs: ntfs::Ntfs,
    volume: Box<dyn ReadSeek>,
}

fn ntfs_error(e: ntfs::NtfsError) -> FilesError {
    FilesError::Damaged {
        fs: "NTFS",
        reason: e.to_string(),
    }
}

/// The first file records hold NTFS's own files ($MFT, $Bitmap, the root's "." …).
const FIRST_USER_RECORD: u64 = 24;

/// NT time (100 ns since 1601) → ns since 1970.
fn nt_time(t: ntfs::NtfsTime) -> i64 {
    let ticks = i128::from(t.nt_timestamp()) - 116_444_736_000_000_000;
    i64::try_from(ticks * 100).unwrap_or(0)
}

impl Ntfs {
    fn open(mut volume: Box<dyn ReadSeek>) -> Result<Self, FilesError> {
        let ntfs = ntfs::Ntfs::new(&mut volume).map_err(ntfs_error)?;
        Ok(Self { ntfs, volume })
    }

    /// The entries of a directory file as (name, record number, is folder).
    fn children(
        ntfs: &ntfs::Ntfs,
        volume: &mut Box<dyn ReadSeek>,
        dir: &ntfs::NtfsFile<'_>,
    ) -> Result<Vec<(Vec<u8>, u64, bool)>, FilesError> {
        let index = dir.directory_index(volume).map_err(ntfs_error)?;
        let mut entries = index.entries();
        let mut out = Vec::new();
        while let Some(entry) = entries.next(volume) {
            let entry = entry.map_err(ntfs_error)?;
            let record = entry.file_reference().file_record_number();
            let Some(key) = entry.key() else { continue };
            let key = key.map_err(ntfs_error)?;
            if key.namespace() == ntfs::structured_values::NtfsFileNamespace::Dos
                || record < FIRST_USER_RECORD
            {
                continue;
            }
            let name = key.name().to_string_lossy().into_bytes();
            out.push((name, record, key.is_directory()));
        }
        let _ = ntfs;
        Ok(out)
    }

    /// Runs `f` on the unnamed data stream of the file at `path`; `None` when it has none.
    fn with_data<T>(
        &mut self,
        path: &[Vec<u8>],
        f: impl FnOnce(
            &mut ntfs::attribute_value::NtfsAttributeValue<'_, '_>,
            &mut Box<dyn ReadSeek>,
        ) -> Result<T, FilesError>,
    ) -> Result<Option<T>, FilesError> {
        let Self { ntfs, volume } = self;
        let file = Self::resolve(ntfs, volume, path)?;
        let Some(item) = file.data(volume, "") else {
            return Ok(None);
        };
        let item = item.map_err(ntfs_error)?;
        let attribute = item.to_attribute().map_err(ntfs_error)?;
        let mut value = attribute.value(volume).map_err(ntfs_error)?;
        f(&mut value, volume).map(Some)
    }

    /// The file at `path`.
    fn resolve<'n>(
        ntfs: &'n ntfs::Ntfs,
        volume: &mut Box<dyn ReadSeek>,
        path: &[Vec<u8>],
    ) -> Result<ntfs::NtfsFile<'n>, FilesError> {
        let mut file = ntfs.root_directory(volume).map_err(ntfs_error)?;
        for (i, c) in path.iter().enumerate() {
            if !file.is_directory() {
                return Err(FilesError::NotADir(shown(&path[..i])));
            }
            let children = Self::children(ntfs, volume, &file)?;
            let Some((_, record, _)) = children.iter().find(|(n, _, _)| n == c) else {
                return Err(FilesError::NotFound(shown(&path[..=i])));
            };
            file = ntfs.file(volume, *record).map_err(ntfs_error)?;
        }
        Ok(file)
    }
}

impl VolumeFiles for Ntfs {
    fn list(&mut self, dir: &[Vec<u8>]) -> Result<Vec<Entry>, FilesError> {
        let Self { ntfs, volume } = self;
        let folder = Self::resolve(ntfs, volume, dir)?;
        if !folder.is_directory() {
            return Err(FilesError::NotADir(shown(dir)));
        }
        let mut out = Vec::new();
        for (name, record, is_dir) in Self::children(ntfs, volume, &folder)? {
            let file = ntfs.file(volume, record).map_err(ntfs_error)?;
            let mtime_ns = file.info().ok().map(|i| nt_time(i.modification_time()));
            let size = if is_dir {
                0
            } else {
                match file.data(volume, "") {
                    Some(item) => item
                        .map_err(ntfs_error)?
                        .to_attribute()
                        .map_err(ntfs_error)?
                        .value_length(),
                    None => 0,
                }
            };
            out.push(Entry {
                name,
                kind: if is_dir {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                size,
                mode: None,
                owner: None,
                mtime_ns,
                link: None,
            });
        }
        Ok(out)
    }

    fn copy(&mut self, path: &[Vec<u8>], out: &mut dyn Write) -> Result<u64, FilesError> {
        use ntfs::NtfsReadSeek;
        self.with_data(path, |value, volume| {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = value.read(volume, &mut buf).map_err(ntfs_error)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                total += n as u64;
            }
            Ok(total)
        })
        .map(Option::unwrap_or_default)
    }

    fn read_at(
        &mut self,
        path: &[Vec<u8>],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FilesError> {
        use ntfs::NtfsReadSeek;
        self.with_data(path, |value, volume| {
            if offset >= value.len() {
                return Ok(0);
            }
            value
                .seek(volume, SeekFrom::Start(offset))
                .map_err(ntfs_error)?;
            fill(buf, |b| value.read(volume, b)).map_err(ntfs_error)
        })
        .map(Option::unwrap_or_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_days_from_1970() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1980, 1, 1), 3652);
    }

    #[test]
    fn noise_is_no_file_system_and_no_panic() {
        for kind in [FsKind::Ext4, FsKind::Vfat, FsKind::Ntfs] {
            let noise = std::io::Cursor::new(vec![0xA5u8; 1 << 20]);
            assert!(open(kind, Box::new(noise)).is_err(), "{kind:?}");
        }
    }
}
