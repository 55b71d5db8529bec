//! The backup file's container (`.ckb`, `docs/formats.md`): one file holding one restore point
//! and everything it needs, as a sequence of checked **parts**:
//!
//! `"CKBF" ‖ version 1 ‖ 11 zero bytes`, then parts, each
//! `tag (4 ASCII) ‖ name length (u16 LE) ‖ name ‖ data length (u64 LE) ‖ head check (8) ‖
//! data ‖ data check (32)`, where the head check is the first 8 bytes of BLAKE3 over the
//! part's header before it and the data check BLAKE3 of the data. The parts, in order:
//! `INFO` (what the file holds, JSON), `KEYS` (a keyring whose one slot opens under the
//! file's own password), `SETS` (the point's chunk set, full), `PONT` (the point), `PACK`…
//! (packs of the point's blobs, exactly as a repository stores packs), `INDX` (an index file
//! naming those packs), `DONE` (the count of parts before it). A file without `DONE` is
//! incomplete; a part whose check fails is damaged, and is named by its place.
//!
//! Written front to back, never held whole in memory; an interrupted writer leaves
//! `FILE.partial`, which [`Writer::resume`] continues after its last whole part. A file is a
//! file a user hands us: every length is bounded before it is used, and nothing in it is
//! trusted before its check (fuzz target `backup_file`). [`store::FileStore`] serves a file as
//! a read-only repository.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub mod store;

use crate::backend::MAX_META_LEN;
use crate::pack::MAX_PACK_LEN;

/// Magic at the start of a backup file.
pub const MAGIC: &[u8; 4] = b"CKBF";
/// Container version.
pub const VERSION: u8 = 1;
/// File header length.
pub const HEADER_LEN: u64 = 16;
/// Longest part name.
pub const MAX_NAME_LEN: usize = 128;
/// Length of a part's head check.
const HEAD_CHECK_LEN: usize = 8;
/// Length of a part's data check.
const DATA_CHECK_LEN: usize = 32;

/// What a part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    /// What the file holds (JSON).
    Info,
    /// The keyring.
    Keys,
    /// The point's chunk set.
    Set,
    /// The restore point.
    Point,
    /// A pack of blobs.
    Pack,
    /// The index naming the packs.
    Index,
    /// The end.
    Done,
}

impl Tag {
    const ALL: [Self; 7] = [
        Self::Info,
        Self::Keys,
        Self::Set,
        Self::Point,
        Self::Pack,
        Self::Index,
        Self::Done,
    ];

    /// Its four bytes in the file.
    pub fn bytes(self) -> &'static [u8; 4] {
        match self {
            Self::Info => b"INFO",
            Self::Keys => b"KEYS",
            Self::Set => b"SETS",
            Self::Point => b"PONT",
            Self::Pack => b"PACK",
            Self::Index => b"INDX",
            Self::Done => b"DONE",
        }
    }

    fn parse(b: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.bytes() == b)
    }

    /// What it is, for people.
    pub fn what(self) -> &'static str {
        match self {
            Self::Info => "description",
            Self::Keys => "keyring",
            Self::Set => "chunk list",
            Self::Point => "restore point",
            Self::Pack => "pack of data",
            Self::Index => "index",
            Self::Done => "end marker",
        }
    }

    fn max_len(self) -> u64 {
        match self {
            Self::Pack => MAX_PACK_LEN,
            Self::Done => 16,
            _ => MAX_META_LEN,
        }
    }
}

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not a backup file at all.
    #[error("{path} is not a Cloudkeep backup file ({reason})")]
    NotABackupFile {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The file ends early.
    #[error(
        "{path} is incomplete: it ends at byte {at} inside part {part} ({what}); the export that wrote it was stopped or the copy was cut short — export it again (an interrupted export resumes) or copy it whole"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        at: u64,
        /// The part it ends in (1-based).
        part: usize,
        /// What that part is, when its header was read.
        what: String,
    },
    /// A part is damaged.
    #[error(
        "{path} is damaged: part {part} ({what}, at byte {at}) {reason}; the file cannot be trusted — use another copy of it, or export the point again"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Which part (1-based).
        part: usize,
        /// What that part is.
        what: String,
        /// Where it starts.
        at: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// One part of a file: where its data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it holds.
    pub tag: Tag,
    /// Its name (a pack id, a point id, …).
    pub name: String,
    /// Where the part starts (its header).
    pub start: u64,
    /// Where its data starts.
    pub data_at: u64,
    /// Its data length.
    pub len: u64,
}

impl Part {
    /// Where the part ends (after its data check).
    pub fn end(&self) -> u64 {
        self.data_at + self.len + DATA_CHECK_LEN as u64
    }
}

fn header_bytes(tag: Tag, name: &str, len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(14 + name.len() + HEAD_CHECK_LEN);
    h.extend_from_slice(tag.bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    let check = blake3::hash(&h);
    h.extend_from_slice(&check.as_bytes()[..HEAD_CHECK_LEN]);
    h
}

fn file_header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h
}

/// What reading one part's header found.
enum Head {
    /// A whole, checked header.
    Part(Part),
    /// The file ends inside the header.
    Short,
    /// The header is damaged.
    Bad(String),
}

fn read_head(file: &mut File, at: u64, file_len: u64) -> io::Result<Head> {
    let fixed = 4 + 2;
    if file_len < at + fixed {
        return Ok(Head::Short);
    }
    file.seek(SeekFrom::Start(at))?;
    let mut first = [0u8; 6];
    file.read_exact(&mut first)?;
    let Some(tag) = Tag::parse(&first[..4]) else {
        return Ok(Head::Bad(format!(
            "has no known kind (\"{}\")",
            String::from_utf8_lossy(&first[..4]).escape_debug()
        )));
    };
    let name_len = usize::from(u16::from_le_bytes([first[4], first[5]]));
    if name_len > MAX_NAME_LEN {
        return Ok(Head::Bad(format!(
            "has a name of {name_len} bytes (at most {MAX_NAME_LEN})"
        )));
    }
    let rest = (name_len + 8 + HEAD_CHECK_LEN) as u64;
    if file_len < at + fixed + rest {
        return Ok(Head::Short);
    }
    let mut tail = vec![0u8; rest as usize];
    file.read_exact(&mut tail)?;
    let Ok(name) = std::str::from_utf8(&tail[..name_len]) else {
        return Ok(Head::Bad("has a name that is not text".into()));
    };
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&tail[name_len..name_len + 8]);
    let len = u64::from_le_bytes(len_bytes);
    let expect = header_bytes(tag, name, len);
    if expect[expect.len() - HEAD_CHECK_LEN..] != tail[name_len + 8..] {
        return Ok(Head::Bad(
            "has a damaged header (its check does not match)".into(),
        ));
    }
    if len > tag.max_len() {
        return Ok(Head::Bad(format!(
            "says it holds {len} bytes, more than a {} can",
            tag.what()
        )));
    }
    Ok(Head::Part(Part {
        tag,
        name: name.to_owned(),
        start: at,
        data_at: at + fixed + rest,
        len,
    }))
}

/// A backup file opened for reading: its parts listed and the small ones checked.
#[derive(Debug)]
pub struct BackupFile {
    path: PathBuf,
    parts: Vec<Part>,
    /// The small parts' data (every part but packs), checked, by part number.
    small: Vec<(usize, Vec<u8>)>,
    len: u64,
}

impl BackupFile {
    /// Opens `path`: every part's header checked, every part but the packs read and checked,
    /// the end marker required.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let io_err = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut head = [0u8; HEADER_LEN as usize];
        if len < HEADER_LEN || file.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
            return Err(FileError::NotABackupFile {
                path: path.to_path_buf(),
                reason: "it does not start as one".into(),
            });
        }
        if head[5..].iter().any(|&b| b != 0) {
            return Err(FileError::NotABackupFile {
                path: path.to_path_buf(),
                reason: "its header is damaged".into(),
            });
        }
        if head[4] != VERSION {
            return Err(FileError::NotABackupFile {
                path: path.to_path_buf(),
                reason: format!(
                    "version {} of the format; this Cloudkeep reads version {VERSION} — use a newer Cloudkeep",
                    head[4]
                ),
            });
        }
        let mut parts = Vec::new();
        let mut small = Vec::new();
        let mut at = HEADER_LEN;
        loop {
            let number = parts.len() + 1;
            let part = match read_head(&mut file, at, len).map_err(io_err)? {
                Head::Part(p) => p,
                Head::Short => {
                    return Err(FileError::Truncated {
                        path: path.to_path_buf(),
                        at: len,
                        part: number,
                        what: "its header".into(),
                    });
                }
                Head::Bad(reason) => {
                    return Err(FileError::Damaged {
                        path: path.to_path_buf(),
                        part: number,
                        what: "unknown".into(),
                        at,
                        reason,
                    });
                }
            };
            if part.end() > len {
                return Err(FileError::Truncated {
                    path: path.to_path_buf(),
                    at: len,
                    part: number,
                    what: part.tag.what().into(),
                });
            }
            if part.tag != Tag::Pack {
                let data = read_checked(&mut file, &part).map_err(io_err)?;
                let Some(data) = data else {
                    return Err(FileError::Damaged {
                        path: path.to_path_buf(),
                        part: number,
                        what: part.tag.what().into(),
                        at,
                        reason: "does not match its check".into(),
                    });
                };
                if part.tag == Tag::Done {
                    let count = data
                        .get(..8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
                    if count != Some(parts.len() as u64) {
                        return Err(FileError::Damaged {
                            path: path.to_path_buf(),
                            part: number,
                            what: part.tag.what().into(),
                            at,
                            reason: format!(
                                "counts {} parts before it, not the {} there are",
                                count.unwrap_or(0),
                                parts.len()
                            ),
                        });
                    }
                    if part.end() != len {
                        return Err(FileError::Damaged {
                            path: path.to_path_buf(),
                            part: number,
                            what: part.tag.what().into(),
                            at,
                            reason: format!(
                                "is followed by {} more bytes; the file was appended to",
                                len - part.end()
                            ),
                        });
                    }
                    parts.push(part);
                    break;
                }
                small.push((parts.len(), data));
            }
            at = part.end();
            parts.push(part);
        }
        Ok(Self {
            path: path.to_path_buf(),
            parts,
            small,
            len,
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when it holds nothing (never, for an opened file).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Every part, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The data of the first part of `tag` that is not a pack, with its name.
    pub fn small(&self, tag: Tag) -> Option<(&str, &[u8])> {
        self.small
            .iter()
            .find(|(i, _)| self.parts[*i].tag == tag)
            .map(|(i, d)| (self.parts[*i].name.as_str(), d.as_slice()))
    }

    /// Reads pack part `part` whole and checks it; `Err` names the damage.
    pub fn read_pack(&self, part: &Part) -> Result<Vec<u8>, FileError> {
        let io_err = |source| FileError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(io_err)?;
        let number = self.parts.iter().position(|p| p == part).unwrap_or(0) + 1;
        read_checked(&mut file, part)
            .map_err(io_err)?
            .ok_or_else(|| FileError::Damaged {
                path: self.path.clone(),
                part: number,
                what: part.tag.what().into(),
                at: part.start,
                reason: "does not match its check".into(),
            })
    }
}

/// A part's data, or `None` when it does not match its check.
fn read_checked(file: &mut File, part: &Part) -> io::Result<Option<Vec<u8>>> {
    file.seek(SeekFrom::Start(part.data_at))?;
    let len = usize::try_from(part.len).map_err(|_| io::Error::other("part too large"))?;
    let mut data = vec![0u8; len];
    file.read_exact(&mut data)?;
    let mut check = [0u8; DATA_CHECK_LEN];
    file.read_exact(&mut check)?;
    Ok((blake3::hash(&data).as_bytes() == &check).then_some(data))
}

/// The whole parts of a partial file, with their data.
pub type KeptParts = Vec<(Part, Vec<u8>)>;

/// Writes a backup file front to back into `FILE.partial`, renamed to `FILE` when done.
pub struct Writer {
    target: PathBuf,
    partial: PathBuf,
    file: File,
    at: u64,
    parts: usize,
}

/// `O_NOFOLLOW`.
#[cfg(unix)]
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// The temporary name a backup file is written under.
pub fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn owner_only_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl Writer {
    /// Starts `target` afresh (any partial file of it is replaced).
    pub fn create(target: &Path) -> io::Result<Self> {
        let partial = partial_path(target);
        // A partial file (or a link planted in its place) is removed, never written through:
        // the new one is created exclusively.
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = owner_only_options()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        file.write_all(&file_header())?;
        Ok(Self {
            target: target.to_path_buf(),
            partial,
            file,
            at: HEADER_LEN,
            parts: 0,
        })
    }

    /// Continues the partial file of `target`, if there is one: its whole, checked parts are
    /// kept (returned with their data) and whatever follows the last of them is cut off.
    /// `None` when there is no usable partial file.
    pub fn resume(target: &Path) -> io::Result<Option<(Self, KeptParts)>> {
        let partial = partial_path(target);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true);
        #[cfg(unix)]
        {
            // Never continued through a link: a link in its place is not ours.
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc_nofollow());
        }
        let mut file = match options.open(&partial) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // ELOOP: a symbolic link stands there; start afresh (create removes it).
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let mut head = [0u8; HEADER_LEN as usize];
        if len < HEADER_LEN || file.read_exact(&mut head).is_err() || head != file_header() {
            return Ok(None);
        }
        let mut kept = Vec::new();
        let mut at = HEADER_LEN;
        while let Head::Part(part) = read_head(&mut file, at, len)? {
            if part.end() > len || part.tag == Tag::Done {
                break;
            }
            let Some(data) = read_checked(&mut file, &part)? else {
                break;
            };
            at = part.end();
            kept.push((part, data));
        }
        file.set_len(at)?;
        file.seek(SeekFrom::Start(at))?;
        let parts = kept.len();
        Ok(Some((
            Self {
                target: target.to_path_buf(),
                partial,
                file,
                at,
                parts,
            },
            kept,
        )))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.at
    }

    /// Appends one part.
    pub fn append(&mut self, tag: Tag, name: &str, data: &[u8]) -> io::Result<()> {
        if name.len() > MAX_NAME_LEN || data.len() as u64 > tag.max_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {} part larger than the format allows", tag.what()),
            ));
        }
        let head = header_bytes(tag, name, data.len() as u64);
        self.file.write_all(&head)?;
        self.file.write_all(data)?;
        self.file.write_all(blake3::hash(data).as_bytes())?;
        self.at += (head.len() + data.len() + DATA_CHECK_LEN) as u64;
        self.parts += 1;
        Ok(())
    }

    /// Writes the end marker, makes the file durable and gives it its name.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        let count = self.parts as u64;
        let mut done = count.to_le_bytes().to_vec();
        done.extend_from_slice(&self.at.to_le_bytes());
        self.append(Tag::Done, "", &done)?;
        self.file.sync_all()?;
        drop(self.file);
        std::fs::rename(&self.partial, &self.target)?;
        if let Some(dir) = self.target.parent()
            && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = d.sync_all();
        }
        Ok(self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_sample(target: &Path) -> PathBuf {
        let mut w = Writer::create(target).unwrap();
        w.append(Tag::Info, "info", b"{\"a\":1}").unwrap();
        w.append(Tag::Keys, "keyring", b"{}").unwrap();
        w.append(Tag::Pack, "p1", &[7u8; 5000]).unwrap();
        w.append(Tag::Index, "i", b"index").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_written_file_opens_with_its_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(&dir.path().join("x.ckb"));
        assert!(!partial_path(&path).exists());
        let f = BackupFile::open(&path).unwrap();
        let tags: Vec<Tag> = f.parts().iter().map(|p| p.tag).collect();
        assert_eq!(
            tags,
            [Tag::Info, Tag::Keys, Tag::Pack, Tag::Index, Tag::Done]
        );
        assert_eq!(f.small(Tag::Keys), Some(("keyring", &b"{}"[..])));
        assert_eq!(f.read_pack(&f.parts()[2]).unwrap(), vec![7u8; 5000]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only");
        }
    }

    #[test]
    fn every_truncation_is_incomplete_and_every_flip_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(&dir.path().join("x.ckb"));
        let whole = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.ckb");
        for len in (HEADER_LEN as usize..whole.len()).step_by(97) {
            std::fs::write(&cut, &whole[..len]).unwrap();
            match BackupFile::open(&cut) {
                Err(FileError::Truncated { at, .. }) => assert_eq!(at, len as u64),
                other => panic!("cut at {len}: {other:?}"),
            }
        }
        for at in (0..whole.len()).step_by(13) {
            let mut bad = whole.clone();
            bad[at] ^= 0x10;
            std::fs::write(&cut, &bad).unwrap();
            match BackupFile::open(&cut) {
                Err(FileError::NotABackupFile { .. })
                | Err(FileError::Damaged { .. })
                | Err(FileError::Truncated { .. }) => {}
                // A flip inside a pack is found when the pack is read.
                Ok(f) => {
                    let pack = f.parts()[2].clone();
                    assert!(
                        (pack.data_at..pack.end()).contains(&(at as u64)),
                        "flip at {at} unnoticed"
                    );
                    assert!(matches!(
                        f.read_pack(&pack),
                        Err(FileError::Damaged { part: 3, .. })
                    ));
                }
                Err(other) => panic!("flip at {at}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_as_the_partial_file_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.ckb");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, partial_path(&target)).unwrap();
        assert!(
            Writer::resume(&target).unwrap().is_none(),
            "a link is not resumed"
        );
        write_sample(&target);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(BackupFile::open(&target).is_ok());
    }

    #[test]
    fn a_partial_file_resumes_after_its_last_whole_part() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.ckb");
        assert!(Writer::resume(&target).unwrap().is_none());
        let mut w = Writer::create(&target).unwrap();
        w.append(Tag::Info, "info", b"i").unwrap();
        w.append(Tag::Pack, "p1", &[1u8; 300]).unwrap();
        drop(w);
        // A torn second pack: cut inside its data.
        let partial = partial_path(&target);
        let mut bytes = std::fs::read(&partial).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&header_bytes(Tag::Pack, "p2", 300));
        bytes.extend_from_slice(&[2u8; 100]);
        std::fs::write(&partial, &bytes).unwrap();
        let (mut w, kept) = Writer::resume(&target).unwrap().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(w.written(), whole as u64);
        w.append(Tag::Pack, "p2", &[2u8; 300]).unwrap();
        w.finish().unwrap();
        let f = BackupFile::open(&target).unwrap();
        assert_eq!(f.parts().len(), 4);
        assert_eq!(f.read_pack(&f.parts()[2]).unwrap(), vec![2u8; 300]);
    }
}
