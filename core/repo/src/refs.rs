//! What one backup run references, kept small enough for points of tens of millions of
//! files: a bit per blob of the chunk index (marked when the run uses a stored blob) and a
//! sorted, bucketed set of the ids the run stores anew (32 bytes each). Two hash sets of ids
//! took about 100 bytes per blob.
//!
//! The run's chunk set is written from these without ever listing every id in memory: the
//! ids come out sorted (the index and the new set are both kept in id order), the parent's
//! full set is read in place from its stored bytes ([`IdsView`]), and the set is encoded as
//! it is produced ([`crate::chunkset::encode_streamed`]) — the same bytes
//! [`ChunkSetFile::encode`](crate::chunkset::ChunkSetFile::encode) makes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::chunkset::{IdsView, encode_streamed};
use crate::crypto::ChunkId;
use crate::index::{ChunkIndex, bucket_of, reserve_one};

/// Hands memory the process freed back to the system. With glibc, small blocks freed (a
/// run's millions of set buckets, a walk's folder listings) stay with the process until
/// trimmed; a run about to allocate the next big buffer (the chunk set, the parent's base)
/// trims first, so its peak is the larger of the two, not their sum.
#[allow(unsafe_code)]
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes a byte count and touches only free memory.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// One bit per place, settable from many threads.
struct Bits(Vec<AtomicU64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self((0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn set(&self, at: usize) {
        self.0[at / 64].fetch_or(1 << (at % 64), Ordering::Relaxed);
    }

    fn get(&self, at: usize) -> bool {
        self.0[at / 64].load(Ordering::Relaxed) & (1 << (at % 64)) != 0
    }

    fn count(&self) -> usize {
        self.0
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }
}

/// A set of ids in buckets by their first two bytes, each sorted: 32 bytes per id.
#[derive(Default)]
pub struct IdSet {
    buckets: Vec<Vec<ChunkId>>,
    len: usize,
}

impl IdSet {
    /// Adds `id`; false when it was there already.
    pub fn insert(&mut self, id: ChunkId) -> bool {
        if self.buckets.is_empty() {
            self.buckets = (0..1 << 16).map(|_| Vec::new()).collect();
        }
        let bucket = &mut self.buckets[bucket_of(&id)];
        match bucket.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                reserve_one(bucket);
                bucket.insert(at, id);
                self.len += 1;
                true
            }
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.buckets
            .get(bucket_of(id))
            .is_some_and(|b| b.binary_search(id).is_ok())
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every id, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &ChunkId> {
        self.buckets.iter().flatten()
    }
}

/// The blobs one backup run references: those of `index` it uses and those it stores.
pub struct RunRefs<'i> {
    index: &'i ChunkIndex,
    starts: Vec<usize>,
    used: Bits,
    new: Mutex<IdSet>,
}

impl<'i> RunRefs<'i> {
    /// Nothing referenced yet, over the blobs of `index` (which must not change meanwhile).
    pub fn new(index: &'i ChunkIndex) -> Self {
        Self {
            index,
            starts: index.bucket_starts(),
            used: Bits::new(index.len()),
            new: Mutex::default(),
        }
    }

    /// Marks `id` referenced if the index holds it; whether it does.
    pub fn use_stored(&self, id: &ChunkId) -> bool {
        match self.index.position(&self.starts, id) {
            Some(at) => {
                self.used.set(at);
                true
            }
            None => false,
        }
    }

    /// Marks `id` referenced; true when neither the index nor this run has it yet, and the
    /// caller must store it.
    pub fn claim(&self, id: ChunkId) -> bool {
        if self.use_stored(&id) {
            return false;
        }
        // A poisoned lock means a producer panicked; the run fails anyway, store nothing more.
        self.new.lock().map(|mut n| n.insert(id)).unwrap_or(false)
    }

    /// How many blobs are referenced.
    pub fn len(&self) -> usize {
        self.used.count() + self.new.lock().map(|n| n.len()).unwrap_or(0)
    }

    /// True when nothing is referenced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded chunk set of this run: a delta against `base` (a full set's name and ids)
    /// when the difference is at most half the ids, otherwise a full set — as
    /// [`ChunkSetFile::plan`](crate::chunkset::ChunkSetFile::plan) decides. A full set is
    /// written while the new ids are let go, so the two are not held whole together.
    pub fn chunk_set(self, base: Option<(&str, IdsView<'_>)>) -> Vec<u8> {
        let new = match self.new.into_inner() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Self {
            index,
            starts,
            used,
            ..
        } = self;
        let total = used.count() + new.len();
        let full = |new: IdSet| {
            let marked = index
                .ids()
                .enumerate()
                .filter(|(at, _)| used.get(*at))
                .map(|(_, id)| *id);
            // The new ids' buckets are let go as they are written, trimmed now and then.
            let fresh = new.buckets.into_iter().enumerate().flat_map(|(i, bucket)| {
                if i % 4096 == 4095 {
                    return_free_memory();
                }
                bucket
            });
            encode_streamed(
                None,
                total,
                merge_sorted(marked, fresh),
                0,
                std::iter::empty(),
            )
        };
        let Some((name, base)) = base else {
            return full(new);
        };
        // Which of the index's blobs the base has, and what of the base this run dropped.
        let in_base = Bits::new(index.len());
        let mut removed = Vec::new();
        for id in base.iter() {
            match index.position(&starts, &id) {
                Some(at) => {
                    in_base.set(at);
                    if !used.get(at) {
                        removed.push(id);
                    }
                }
                None if new.contains(&id) => {}
                None => removed.push(id),
            }
        }
        // What this run has and the base lacks, sorted.
        let added = || {
            let marked = index
                .ids()
                .enumerate()
                .filter(|(at, _)| used.get(*at) && !in_base.get(*at))
                .map(|(_, id)| *id);
            let fresh = new.iter().filter(|id| !base.contains(id)).copied();
            merge_sorted(marked, fresh)
        };
        let added_len = added().count();
        if added_len + removed.len() > total / 2 {
            drop(removed);
            return full(new);
        }
        encode_streamed(
            Some(name),
            added_len,
            added(),
            removed.len(),
            removed.into_iter(),
        )
    }
}

/// Two sorted streams of distinct ids as one sorted stream.
fn merge_sorted(
    a: impl Iterator<Item = ChunkId>,
    b: impl Iterator<Item = ChunkId>,
) -> impl Iterator<Item = ChunkId> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkset::ChunkSetFile;
    use crate::pack::{PackEntry, PackId};

    fn id(n: u64) -> ChunkId {
        crate::index::test_id(n)
    }

    fn index_of(ns: impl Iterator<Item = u64>) -> ChunkIndex {
        let entries: Vec<PackEntry> = ns
            .map(|n| PackEntry {
                id: id(n),
                offset: n,
                stored_len: 1,
                plain_len: 1,
            })
            .collect();
        let mut index = ChunkIndex::default();
        index.add_pack(PackId([9; 32]), &entries);
        index
    }

    fn sorted(ns: impl Iterator<Item = u64>) -> Vec<ChunkId> {
        let mut ids: Vec<ChunkId> = ns.map(id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The run's set, decoded and resolved against `base_ids`.
    fn resolved(bytes: &[u8], base_ids: &[ChunkId]) -> (ChunkSetFile, Vec<ChunkId>) {
        let set = ChunkSetFile::decode(bytes).unwrap();
        let ids = match set.base {
            Some(_) => set.apply(base_ids).unwrap(),
            None => set.added.clone(),
        };
        (set, ids)
    }

    #[test]
    fn a_run_references_what_it_uses_and_stores_and_writes_the_planned_set() {
        // Stored: 0..1000; the base (the parent's full set) names 0..900 and 5000 (a blob
        // the storage lost since); this run uses 100..1000, stores 2000..2050 anew, and stores
        // 5000 again.
        let index = index_of(0..1000);
        let base_ids = sorted((0..900).chain([5000]));
        let base_bytes = ChunkSetFile::full(base_ids.clone()).encode();
        let base = IdsView::of_full_set(&base_bytes).unwrap();
        let run = || {
            let refs = RunRefs::new(&index);
            for n in 100..1000 {
                assert!(refs.use_stored(&id(n)));
                assert!(!refs.claim(id(n)), "stored already");
            }
            for n in (2000..2050).chain([5000]) {
                assert!(!refs.use_stored(&id(n)));
                assert!(refs.claim(id(n)), "new");
                assert!(!refs.claim(id(n)), "stored once per run");
            }
            refs
        };
        let want = sorted((100..1000).chain(2000..2050).chain([5000]));
        assert_eq!(run().len(), want.len());

        let bytes = run().chunk_set(Some(("base-name", base)));
        let (set, ids) = resolved(&bytes, &base_ids);
        assert_eq!(ids, want);
        assert_eq!(
            bytes,
            ChunkSetFile::plan(want.clone(), Some(("base-name", &base_ids))).encode()
        );
        assert_eq!(set.base.as_deref(), Some("base-name"));
        assert_eq!(set.removed, sorted(0..100));
        assert_eq!(
            set.added.len(),
            150,
            "900..1000 and 2000..2050; 5000 is in the base"
        );

        let full = run().chunk_set(None);
        assert_eq!(full, ChunkSetFile::full(want).encode());
    }

    #[test]
    fn a_big_change_writes_a_full_set() {
        let index = index_of(0..100);
        let base_ids = sorted(0..100);
        let base_bytes = ChunkSetFile::full(base_ids.clone()).encode();
        let refs = RunRefs::new(&index);
        for n in 0..10 {
            refs.use_stored(&id(n));
        }
        for n in 100..200 {
            refs.claim(id(n));
        }
        let bytes = refs.chunk_set(Some(("b", IdsView::of_full_set(&base_bytes).unwrap())));
        let want = sorted((0..10).chain(100..200));
        assert_eq!(bytes, ChunkSetFile::full(want.clone()).encode());
        assert_eq!(
            bytes,
            ChunkSetFile::plan(want, Some(("b", &base_ids))).encode()
        );
    }

    #[test]
    fn an_id_set_keeps_ids_sorted_and_once() {
        let mut set = IdSet::default();
        for n in (0..3000).chain(0..10) {
            set.insert(id(n));
        }
        assert_eq!(set.len(), 3000);
        let listed: Vec<ChunkId> = set.iter().copied().collect();
        assert_eq!(listed, sorted(0..3000));
        assert!(set.contains(&id(2999)) && !set.contains(&id(3000)));
    }
}
