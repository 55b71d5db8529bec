//! The files inside the volumes of a published image-level point: each volume's file system
//! opened once (by the same user-space readers as the file browser, `image::files`) over the
//! volume's bytes read through the publication's blob cache, and kept open while the point is
//! published. The readers are not thread-safe (`ext4-view` shares its state through `Rc`), so
//! they all live on one thread of their own; the file system's threads ask it by message and
//! wait for the answer. A reader that fails on damage fails that call (`EIO`), never the
//! publication.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use cloudkeep_repo::catalog::Node;
use cloudkeep_repo::engine::volumes::entry_node;
use cloudkeep_repo::image::files::{self, FilesError, VolumeFiles};
use cloudkeep_repo::image::probe::FsKind;

use crate::content::{BlobCache, Content};

/// One volume of the point: where it is in the tree and what it holds.
#[derive(Debug, Clone)]
pub struct VolumeSource {
    /// Its disk's name (`sda`).
    pub disk: String,
    /// Its name (`sda1`).
    pub name: String,
    /// Its file system, when one this version reads was found at backup.
    pub kind: Option<FsKind>,
    /// Its bytes (a window of the disk's content).
    pub content: Content,
}

type Answer<T> = Sender<Result<T, String>>;

enum Ask {
    List {
        volume: usize,
        dir: Vec<Vec<u8>>,
        reply: Answer<Vec<Node>>,
    },
    Read {
        volume: usize,
        file: Vec<Vec<u8>>,
        offset: u64,
        len: usize,
        reply: Answer<Vec<u8>>,
    },
}

/// The reader thread of a publication's volumes; it ends when this is dropped.
pub struct Volumes {
    names: Vec<(String, String)>,
    asks: Mutex<Sender<Ask>>,
}

impl Volumes {
    /// Starts the thread serving `sources`, reading through `cache`; entries without a time
    /// of their own get `point_time_ns`.
    pub fn start(sources: Vec<VolumeSource>, cache: Arc<BlobCache>, point_time_ns: i64) -> Self {
        let names = sources
            .iter()
            .map(|s| (s.disk.clone(), s.name.clone()))
            .collect();
        let (asks, inbox) = channel::<Ask>();
        std::thread::Builder::new()
            .name("cloudkeep-volumes".into())
            .spawn(move || {
                let mut open: HashMap<usize, Box<dyn VolumeFiles>> = HashMap::new();
                for ask in inbox {
                    match ask {
                        Ask::List { volume, dir, reply } => {
                            let r =
                                with_volume(&mut open, &sources, &cache, volume, |f| f.list(&dir))
                                    .map(|entries| {
                                        entries
                                            .iter()
                                            .map(|e| entry_node(e, point_time_ns))
                                            .collect()
                                    });
                            let _ = reply.send(r);
                        }
                        Ask::Read {
                            volume,
                            file,
                            offset,
                            len,
                            reply,
                        } => {
                            let r = with_volume(&mut open, &sources, &cache, volume, |f| {
                                let mut buf = vec![0u8; len];
                                let n = f.read_at(&file, offset, &mut buf)?;
                                buf.truncate(n);
                                Ok(buf)
                            });
                            let _ = reply.send(r);
                        }
                    }
                }
            })
            .map_or_else(
                |e| tracing::warn!("cannot start the volume reader: {e}"),
                |_| (),
            );
        Self {
            names,
            asks: Mutex::new(asks),
        }
    }

    /// Which volume `path` (`/sda/sda1/...`) is inside, and the rest of the path.
    fn locate(&self, path: &str) -> Option<(usize, Vec<Vec<u8>>)> {
        let mut parts = path.split('/').filter(|c| !c.is_empty());
        let (disk, name) = (parts.next()?, parts.next()?);
        let at = self
            .names
            .iter()
            .position(|(d, n)| d == disk && n == name)?;
        Some((at, parts.map(|c| c.as_bytes().to_vec()).collect()))
    }

    fn ask<T>(&self, make: impl FnOnce(Answer<T>) -> Ask) -> Result<T, String> {
        let (reply, answer) = channel();
        self.asks
            .lock()
            .map_err(|_| "the volume reader stopped".to_owned())?
            .send(make(reply))
            .map_err(|_| "the volume reader stopped".to_owned())?;
        answer
            .recv()
            .map_err(|_| "the volume reader stopped".to_owned())?
    }

    /// The entries of the folder at `path` inside a volume (`/sda/sda1` is its top).
    pub fn list(&self, path: &str) -> Result<Vec<Node>, String> {
        let (volume, dir) = self
            .locate(path)
            .ok_or_else(|| format!("{path} is not inside a volume"))?;
        self.ask(|reply| Ask::List { volume, dir, reply })
    }

    /// Up to `len` bytes from `offset` of the file at `path` inside a volume.
    pub fn read(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        let (volume, file) = self
            .locate(path)
            .ok_or_else(|| format!("{path} is not inside a volume"))?;
        self.ask(|reply| Ask::Read {
            volume,
            file,
            offset,
            len,
            reply,
        })
    }
}

/// Runs `f` on volume `at`'s files, opening them on first use.
fn with_volume<T>(
    open: &mut HashMap<usize, Box<dyn VolumeFiles>>,
    sources: &[VolumeSource],
    cache: &Arc<BlobCache>,
    at: usize,
    f: impl FnOnce(&mut dyn VolumeFiles) -> Result<T, FilesError>,
) -> Result<T, String> {
    let source = sources.get(at).ok_or("no such volume")?;
    if let std::collections::hash_map::Entry::Vacant(slot) = open.entry(at) {
        let Some(kind) = source.kind else {
            return Err(format!(
                "volume {} holds no file system this version can read; its raw image is beside it",
                source.name
            ));
        };
        let reader = ContentReader {
            content: source.content.clone(),
            cache: cache.clone(),
            pos: 0,
        };
        let files = files::open(kind, Box::new(reader))
            .map_err(|e| format!("volume {}: {e}", source.name))?;
        slot.insert(files);
    }
    let files = open.get_mut(&at).ok_or("no such volume")?;
    f(files.as_mut()).map_err(|e| format!("volume {}: {e}", source.name))
}

/// A volume's bytes as a file to seek in, read through the publication's cache.
struct ContentReader {
    content: Content,
    cache: Arc<BlobCache>,
    pos: u64,
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self
            .content
            .read(&self.cache, self.pos, buf.len())
            .map_err(io::Error::other)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.pos += bytes.len() as u64;
        Ok(bytes.len())
    }
}

impl Seek for ContentReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let size = self.content.size();
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the volume's start",
            )
        })?;
        Ok(self.pos)
    }
}
