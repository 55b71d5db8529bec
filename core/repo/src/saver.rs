//! The pack writer every producer of blobs goes through — a backup run, garbage collection,
//! the salvage of damaged packs: the repository owns how sealed blobs become packs and how
//! packs reach storage (as restic's repository owns `SaveBlob`), so the engine never builds,
//! seals or uploads a pack.
//!
//! Layout: each producer gathers its sealed blobs in a run of its own — folder listings in
//! the tree run ([`Lane::Tree`]), file data in one run per worker ([`Lane::Data`], up to
//! [`MAX_DATA_RUNS`]) — and a run of [`RUN_BYTES`] goes into the open pack whole, under a short
//! lock. A file's blobs stay neighbours, and walking a point's folders reads few dense ranges.
//!
//! Write order: a full pack is sealed and queued (at most [`QUEUED_PACKS`], which bounds
//! memory) to writer threads — as many as the store wants uploads at once — that upload while
//! the producers go on. [`with_saver`] returns the stored packs and their entries only after
//! every writer has finished; the caller names them in an index file before it commits
//! anything that references them (a pack no index names is an orphan the next run adopts).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::blob::SealedBlob;
use crate::pack::{FinishedPack, PackBuilder, PackEntry, PackError, PackId};
use crate::repo::{INDEX_FILE_BLOBS, RepoError, Repository};

/// Full packs waiting for a writer (each up to 32 MiB): bounds memory.
pub const QUEUED_PACKS: usize = 1;
/// At most this many runs of file data (one per worker up to it).
pub const MAX_DATA_RUNS: usize = 4;
/// A run goes into the open pack once it holds this many bytes.
pub const RUN_BYTES: usize = 2 << 20;
/// The run of folder listings.
const TREE_RUN: usize = 0;

/// Which run a blob joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A folder listing: listings stay together, apart from file data.
    Tree,
    /// File (or disk) data: the calling worker's own run, so a pack holds runs of one
    /// worker's files in the order it read them and a restore of neighbouring files reads
    /// neighbouring bytes (blobs appended one by one interleaved the workers' files, and a
    /// restore read two and a half times the bytes it needed through the gaps).
    Data,
}

/// Packs stored by one [`with_saver`] call, with the entries an index file names.
pub type StoredPacks = Vec<(PackId, Vec<PackEntry>)>;

/// Why a blob could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Every writer stopped on a storage error (which [`with_saver`] returns).
    #[error("the pack writers stopped because storage failed")]
    WritersStopped,
    /// Sealing a full pack failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A producer panicked while holding a run or the open pack.
    #[error("a blob producer stopped in the middle of an update")]
    Poisoned,
}

/// Sealed blobs of one run on their way into the open pack.
#[derive(Default)]
struct Run {
    blobs: Vec<SealedBlob>,
    /// Their stored bytes.
    bytes: usize,
}

/// Takes sealed blobs from any number of threads and stores them in packs; see the module
/// documentation. Obtained from [`with_saver`].
pub struct BlobSaver<'a> {
    repo: &'a Repository,
    runs: Vec<Mutex<Run>>,
    open_pack: Mutex<PackBuilder>,
    packs_tx: SyncSender<FinishedPack>,
}

impl BlobSaver<'_> {
    /// Adds a sealed blob to its lane's run; a full run goes into the open pack and each pack
    /// it fills to the writers. Deduplication is the caller's: every blob given is stored.
    pub fn save(&self, lane: Lane, blob: SealedBlob) -> Result<(), SaveError> {
        let run = match lane {
            Lane::Tree => TREE_RUN,
            Lane::Data => {
                let workers = self.runs.len() - 1;
                1 + rayon::current_thread_index().unwrap_or(0) % workers
            }
        };
        let ready = {
            let mut gathered = self.runs[run].lock().map_err(|_| SaveError::Poisoned)?;
            gathered.bytes += blob.bytes.len();
            gathered.blobs.push(blob);
            (gathered.bytes >= RUN_BYTES).then(|| std::mem::take(&mut *gathered).blobs)
        };
        match ready {
            Some(blobs) => self.append_run(blobs),
            None => Ok(()),
        }
    }

    /// Appends every run and ships the last, partly filled pack. Call it once the producers
    /// are done; blobs not flushed are not stored.
    pub fn flush(&self) -> Result<(), SaveError> {
        for run in &self.runs {
            let gathered = std::mem::take(&mut *run.lock().map_err(|_| SaveError::Poisoned)?);
            self.append_run(gathered.blobs)?;
        }
        let last = std::mem::take(&mut *self.open_pack.lock().map_err(|_| SaveError::Poisoned)?);
        if last.is_empty() {
            return Ok(());
        }
        self.ship(last)
    }

    /// Appends a run to the open pack, shipping each pack it fills.
    fn append_run(&self, blobs: Vec<SealedBlob>) -> Result<(), SaveError> {
        let mut full = Vec::new();
        {
            let mut open = self.open_pack.lock().map_err(|_| SaveError::Poisoned)?;
            for blob in &blobs {
                open.add(blob);
                if open.is_full() {
                    full.push(std::mem::take(&mut *open));
                }
            }
        }
        full.into_iter().try_for_each(|builder| self.ship(builder))
    }

    /// Seals a full pack's index and queues it for a writer.
    fn ship(&self, builder: PackBuilder) -> Result<(), SaveError> {
        let pack = builder.finish(self.repo.keys())?;
        self.packs_tx
            .send(pack)
            .map_err(|_| SaveError::WritersStopped)
    }
}

/// Runs `produce` with a [`BlobSaver`] on `repo` while writer threads upload its packs;
/// returns what `produce` returned and, once every writer has finished, the stored packs (or
/// the storage error that stopped them).
pub fn with_saver<R>(
    repo: &Repository,
    produce: impl FnOnce(&BlobSaver<'_>) -> R,
) -> (R, Result<StoredPacks, RepoError>) {
    saving(repo, None, produce)
}

/// [`with_saver`] that names stored packs in index files as it goes, every
/// [`INDEX_FILE_BLOBS`] blobs (a backup run: it keeps no more entries than that in memory,
/// and a run interrupted later keeps what it named); returns the packs no index file names
/// yet.
pub fn with_indexing_saver<R>(
    repo: &Repository,
    produce: impl FnOnce(&BlobSaver<'_>) -> R,
) -> (R, Result<StoredPacks, RepoError>) {
    indexing_every(repo, INDEX_FILE_BLOBS, produce)
}

/// [`with_indexing_saver`] naming packs every `blobs` blobs.
fn indexing_every<R>(
    repo: &Repository,
    blobs: usize,
    produce: impl FnOnce(&BlobSaver<'_>) -> R,
) -> (R, Result<StoredPacks, RepoError>) {
    let pending = Pending {
        packs: Mutex::new((Vec::new(), 0)),
        every: blobs,
    };
    let (produced, stored) = saving(repo, Some(&pending), produce);
    let stored = stored.map(|mut rest| {
        if let Ok((mut unnamed, _)) = pending.packs.into_inner() {
            unnamed.append(&mut rest);
            rest = unnamed;
        }
        rest
    });
    (produced, stored)
}

/// Packs stored but not yet named in an index file, and how many blobs they hold; named
/// once they hold `every` blobs.
struct Pending {
    packs: Mutex<(StoredPacks, usize)>,
    every: usize,
}

fn saving<R>(
    repo: &Repository,
    pending: Option<&Pending>,
    produce: impl FnOnce(&BlobSaver<'_>) -> R,
) -> (R, Result<StoredPacks, RepoError>) {
    let (packs_tx, packs_rx) = sync_channel::<FinishedPack>(QUEUED_PACKS);
    // Owned by the writers only: when every writer has stopped on a storage error the
    // receiver is gone, and a producer shipping a pack gets an error instead of waiting.
    let packs_rx = Arc::new(Mutex::new(packs_rx));
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..repo.backend().parallel_puts().max(1))
            .map(|_| {
                let rx = packs_rx.clone();
                s.spawn(move || run_writer(repo, &rx, pending))
            })
            .collect();
        drop(packs_rx);
        let saver = BlobSaver {
            repo,
            runs: (0..=rayon::current_num_threads().clamp(1, MAX_DATA_RUNS))
                .map(|_| Mutex::default())
                .collect(),
            open_pack: Mutex::new(PackBuilder::new()),
            packs_tx,
        };
        let produced = produce(&saver);
        drop(saver); // closes the queue: the writers finish what is queued and stop
        let mut stored = Vec::new();
        let mut failure = None;
        for writer in writers {
            match writer.join() {
                Ok(Ok(packs)) => stored.extend(packs),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => {
                    failure = failure.or(Some(RepoError::Internal(
                        "a pack writer thread panicked".into(),
                    )))
                }
            }
        }
        (produced, failure.map_or(Ok(stored), Err))
    })
}

/// Writes queued packs to storage until the queue closes.
fn run_writer(
    repo: &Repository,
    rx: &Mutex<Receiver<FinishedPack>>,
    pending: Option<&Pending>,
) -> Result<StoredPacks, RepoError> {
    let mut stored = Vec::new();
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(pack) = next else { break };
        repo.backend()
            .put_pack(&pack.id, &pack.bytes, &pack.entries)?;
        let Some(pending) = pending else {
            stored.push((pack.id, pack.entries));
            continue;
        };
        // Only stored packs are named; a full batch is named here, outside the lock.
        let full = {
            let mut p = pending
                .packs
                .lock()
                .map_err(|_| RepoError::Internal("a pack writer thread panicked".into()))?;
            p.1 += pack.entries.len();
            p.0.push((pack.id, pack.entries));
            (p.1 >= pending.every).then(|| std::mem::take(&mut *p).0)
        };
        if let Some(full) = full {
            repo.write_index(&full)?;
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MetaKind;
    use crate::backend::folder::FolderStore;
    use crate::compress::Compression;
    use crate::repo::NewRepo;

    #[test]
    fn an_indexing_saver_names_stored_packs_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path().join("repo")).unwrap();
        let repo = Repository::init(std::sync::Arc::new(store), NewRepo::Unencrypted).unwrap();
        let indexes = || repo.backend().list_meta(MetaKind::Index).unwrap().len();
        // Three packs of incompressible blobs; a pack is named once it holds 100 blobs.
        let mut ids = Vec::new();
        let (named_meanwhile, rest) = indexing_every(&repo, 100, |saver| {
            let mut seen = Vec::new();
            for n in 0u32..3 * 130 {
                let mut data = vec![0u8; 256 * 1024];
                blake3::Hasher::new()
                    .update(&n.to_le_bytes())
                    .finalize_xof()
                    .fill(&mut data);
                let sealed = crate::blob::seal(repo.keys(), Compression::Off, &data).unwrap();
                ids.push(sealed.id);
                saver.save(Lane::Data, sealed).unwrap();
                seen.push(indexes());
            }
            saver.flush().unwrap();
            seen
        });
        let rest = rest.unwrap();
        assert!(
            named_meanwhile.iter().any(|n| *n > 0),
            "an index file was written while blobs were still coming"
        );
        let before = indexes();
        repo.write_index(&rest).unwrap();
        assert!(indexes() > before.max(1));
        let index = repo.load_index().unwrap();
        assert_eq!(index.len(), ids.len());
        assert!(ids.iter().all(|id| index.contains(id)));
    }
}
