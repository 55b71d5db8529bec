//! The chunk index: where each blob is stored (pack, offset, stored and plain length), merged
//! from a repository's index files. Shared by the repository (which loads it) and the
//! fetcher (which plans span reads from it); it reads nothing itself.
//!
//! **Compact**, because a tenant's repository can hold tens of millions of blobs and the
//! whole index lives in the client's memory during a backup, a restore or a browse: 48 bytes
//! per blob (the id, a pack number into a table of the packs, a 32-bit offset — a pack is at
//! most [`crate::pack::MAX_PACK_LEN`] — and the two lengths), in 65,536 buckets by the id's
//! first two bytes, each sorted by id and grown by an eighth at a time rather than doubled.
//! A hash map of the same entries took about 140 bytes per blob. Ids are keyed hashes, so
//! the buckets fill evenly; iterating the buckets in order yields the ids sorted, which the
//! chunk-set writer relies on.

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::ChunkId;
use crate::pack::{PackEntry, PackId};

/// Buckets by the id's first two bytes.
const BUCKETS: usize = 1 << 16;

/// The bucket of an id.
pub(crate) fn bucket_of(id: &ChunkId) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

/// Makes room for one more item, growing by an eighth: a bucket holds a few hundred items at
/// most, so copying it now and then is cheap, and the slack stays small.
pub(crate) fn reserve_one<T>(bucket: &mut Vec<T>) {
    if bucket.len() == bucket.capacity() {
        bucket.reserve_exact(bucket.len() / 8 + 4);
    }
}

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack.
    pub pack: PackId,
    /// Offset of the stored bytes.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// Plaintext length.
    pub plain_len: u32,
}

/// One blob in a bucket: 48 bytes.
#[derive(Clone, Copy)]
struct Slot {
    id: ChunkId,
    /// Into [`Inner::packs`].
    pack: u32,
    offset: u32,
    stored_len: u32,
    plain_len: u32,
}

#[derive(Clone, Default)]
struct Inner {
    packs: Vec<PackId>,
    numbers: HashMap<PackId, u32>,
    /// Empty until the first blob, then [`BUCKETS`] long.
    buckets: Vec<Vec<Slot>>,
    len: usize,
}

impl Inner {
    fn number(&mut self, pack: PackId) -> u32 {
        if let Some(&n) = self.numbers.get(&pack) {
            return n;
        }
        // More than four billion packs is more than any store holds (a pack is megabytes).
        let n = u32::try_from(self.packs.len()).unwrap_or(u32::MAX);
        self.packs.push(pack);
        self.numbers.insert(pack, n);
        n
    }

    fn slots<'a>(
        &mut self,
        pack: PackId,
        entries: &'a [PackEntry],
    ) -> impl Iterator<Item = Slot> + 'a {
        if self.buckets.is_empty() {
            self.buckets = (0..BUCKETS).map(|_| Vec::new()).collect();
        }
        let number = self.number(pack);
        let skipped = entries
            .iter()
            .filter(|e| u32::try_from(e.offset).is_err())
            .count();
        if skipped > 0 {
            tracing::warn!(
                "pack {}: {skipped} index entries lie beyond any pack Cloudkeep writes; left out",
                pack.to_hex()
            );
        }
        entries.iter().filter_map(move |e| {
            Some(Slot {
                id: e.id,
                pack: number,
                offset: u32::try_from(e.offset).ok()?,
                stored_len: e.stored_len,
                plain_len: e.plain_len,
            })
        })
    }

    fn find(&self, id: &ChunkId) -> Option<(usize, usize)> {
        let b = bucket_of(id);
        let bucket = self.buckets.get(b)?;
        bucket
            .binary_search_by(|s| s.id.cmp(id))
            .ok()
            .map(|i| (b, i))
    }

    fn location(&self, slot: &Slot) -> BlobLocation {
        BlobLocation {
            pack: self.packs[slot.pack as usize],
            offset: u64::from(slot.offset),
            stored_len: slot.stored_len,
            plain_len: slot.plain_len,
        }
    }
}

/// Every blob the repository's index files know. Cloning is cheap (the entries are shared
/// until one clone adds to them): readers that outlive a borrow, such as a file-system reader
/// over an image-level point, hold their own clone.
#[derive(Clone, Default)]
pub struct ChunkIndex {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChunkIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkIndex")
            .field("blobs", &self.inner.len)
            .field("packs", &self.inner.packs.len())
            .finish()
    }
}

impl ChunkIndex {
    /// Where a blob is.
    pub fn get(&self, id: &ChunkId) -> Option<BlobLocation> {
        let (b, i) = self.inner.find(id)?;
        Some(self.inner.location(&self.inner.buckets[b][i]))
    }

    /// Whether a blob is stored.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.inner.find(id).is_some()
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Adds the blobs of a pack; a blob already known keeps its first location.
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry]) {
        let inner = Arc::make_mut(&mut self.inner);
        let slots: Vec<Slot> = inner.slots(pack, entries).collect();
        for slot in slots {
            let bucket = &mut inner.buckets[bucket_of(&slot.id)];
            if let Err(at) = bucket.binary_search_by(|s| s.id.cmp(&slot.id)) {
                reserve_one(bucket);
                bucket.insert(at, slot);
                inner.len += 1;
            }
        }
    }

    /// Every blob and its location, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (&ChunkId, BlobLocation)> {
        let inner = &*self.inner;
        inner
            .buckets
            .iter()
            .flatten()
            .map(move |s| (&s.id, inner.location(s)))
    }

    /// Every id, sorted.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &ChunkId> {
        self.inner.buckets.iter().flatten().map(|s| &s.id)
    }

    /// The place of `id` in [`Self::ids`], given each bucket's first place
    /// ([`Self::bucket_starts`]).
    pub(crate) fn position(&self, starts: &[usize], id: &ChunkId) -> Option<usize> {
        let (b, i) = self.inner.find(id)?;
        Some(starts[b] + i)
    }

    /// Where each bucket starts in [`Self::ids`].
    pub(crate) fn bucket_starts(&self) -> Vec<usize> {
        let mut starts = Vec::with_capacity(self.inner.buckets.len());
        let mut at = 0;
        for bucket in &self.inner.buckets {
            starts.push(at);
            at += bucket.len();
        }
        starts
    }

    /// Starts an index built from many packs at once (loading index files): faster than
    /// [`Self::add_pack`] one pack after another.
    pub fn builder() -> IndexBuilder {
        IndexBuilder::default()
    }
}

/// Gathers the blobs of many packs, then sorts each bucket once ([`IndexBuilder::finish`]).
/// Where packs name the same blob, the one of the lowest rank wins, and among equal ranks
/// the one added first.
#[derive(Default)]
pub struct IndexBuilder {
    inner: Inner,
    /// Rank of each pack number.
    ranks: Vec<u8>,
}

impl IndexBuilder {
    /// Adds the blobs of a pack at `rank` (0 preferred).
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry], rank: u8) {
        let slots: Vec<Slot> = self.inner.slots(pack, entries).collect();
        let number = self.inner.number(pack) as usize;
        if self.ranks.len() <= number {
            self.ranks.resize(number + 1, 0);
        }
        self.ranks[number] = rank;
        for slot in slots {
            let bucket = &mut self.inner.buckets[bucket_of(&slot.id)];
            reserve_one(bucket);
            bucket.push(slot);
        }
    }

    /// The index: each bucket sorted (stable, by id then rank) and deduplicated.
    pub fn finish(self) -> ChunkIndex {
        let Self { mut inner, ranks } = self;
        let rank = |s: &Slot| ranks.get(s.pack as usize).copied().unwrap_or(0);
        let mut len = 0;
        for bucket in &mut inner.buckets {
            bucket.sort_by(|a, b| a.id.cmp(&b.id).then(rank(a).cmp(&rank(b))));
            bucket.dedup_by(|later, first| later.id == first.id);
            bucket.shrink_to_fit();
            len += bucket.len();
        }
        inner.len = len;
        ChunkIndex {
            inner: Arc::new(inner),
        }
    }
}

/// A distinct, well-spread id for `n` (tests).
#[cfg(test)]
pub(crate) fn test_id(n: u64) -> ChunkId {
    ChunkId(*blake3::hash(&n.to_le_bytes()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ChunkId {
        test_id(n)
    }

    fn entry(n: u64, offset: u64) -> PackEntry {
        PackEntry {
            id: id(n),
            offset,
            stored_len: 10,
            plain_len: 20,
        }
    }

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn added_and_built_indexes_agree_and_iterate_sorted() {
        let (a, b) = (PackId([1; 32]), PackId([2; 32]));
        let first: Vec<PackEntry> = (0..5000).map(|n| entry(n, n * 10)).collect();
        let second: Vec<PackEntry> = (4000..9000).map(|n| entry(n, n)).collect();
        let mut added = ChunkIndex::default();
        added.add_pack(a, &first);
        added.add_pack(b, &second);
        let mut builder = ChunkIndex::builder();
        builder.add_pack(a, &first, 0);
        builder.add_pack(b, &second, 0);
        let built = builder.finish();
        assert_eq!(added.len(), 9000);
        assert_eq!(built.len(), 9000);
        let listed: Vec<_> = added.iter().map(|(i, l)| (*i, l)).collect();
        assert_eq!(
            listed,
            built.iter().map(|(i, l)| (*i, l)).collect::<Vec<_>>()
        );
        assert!(listed.windows(2).all(|w| w[0].0 < w[1].0));
        // The first pack naming a blob wins.
        assert_eq!(added.get(&id(4500)).unwrap().pack, a);
        assert_eq!(added.get(&id(4500)).unwrap().offset, 45000);
        assert_eq!(added.get(&id(8999)).unwrap().pack, b);
        assert!(!added.contains(&id(9000)));
        let starts = added.bucket_starts();
        let ids: Vec<ChunkId> = added.ids().copied().collect();
        for n in [0, 4500, 8999] {
            assert_eq!(ids[added.position(&starts, &id(n)).unwrap()], id(n));
        }
    }

    #[test]
    fn a_lower_rank_wins_whatever_the_order() {
        let (damaged, sound) = (PackId([1; 32]), PackId([2; 32]));
        let mut builder = ChunkIndex::builder();
        builder.add_pack(damaged, &[entry(7, 1)], 1);
        builder.add_pack(sound, &[entry(7, 2)], 0);
        let index = builder.finish();
        assert_eq!(index.get(&id(7)).unwrap().pack, sound);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn an_offset_no_pack_can_have_is_left_out() {
        let mut index = ChunkIndex::default();
        index.add_pack(PackId([3; 32]), &[entry(1, u64::MAX), entry(2, 5)]);
        assert_eq!(index.len(), 1);
        assert!(index.get(&id(1)).is_none());
        assert_eq!(index.get(&id(2)).unwrap().offset, 5);
    }
}
