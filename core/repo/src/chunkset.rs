//! Chunk sets: the clear list of chunk ids a restore point references, kept in an object of
//! its own so that consecutive points share it instead of each repeating it.
//!
//! The service provider needs the list in clear (to refuse a point whose chunks it does not
//! hold, and to collect garbage), but written in full into every point it would cost 32 bytes
//! per chunk per point — 2.7 MB for each point of the Linux tree. So a point names a set, and
//! a set is either **full** (every id, sorted) or a **delta** against a full set (ids added,
//! ids removed, both sorted). Deltas are never stacked (depth ≤ 1): a point needs its own set
//! and at most one base, never another point. A new full set is written when a delta would
//! exceed half the size of the full list, so a long chain of small changes stays small.
//!
//! Format (`docs/formats.md`): `"CKCS" ‖ 1 ‖ postcard(ChunkSetFile)`, named by the hex BLAKE3
//! of its bytes, stored under the metadata kind `sets`.

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;

const MAGIC: &[u8; 4] = b"CKCS";
const VERSION: u8 = 1;

/// A stored chunk set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSetFile {
    /// The full set this delta applies to; `None` for a full set.
    pub base: Option<String>,
    /// Ids in this set and not in the base (for a full set: every id), sorted, unique.
    pub added: Vec<ChunkId>,
    /// Ids of the base not in this set, sorted, unique (empty for a full set).
    pub removed: Vec<ChunkId>,
}

impl ChunkSetFile {
    /// A full set of `ids` (sorted, unique).
    pub fn full(ids: Vec<ChunkId>) -> Self {
        Self {
            base: None,
            added: ids,
            removed: Vec::new(),
        }
    }

    /// The set to store for `ids` (sorted, unique), given the full set of the parent point's
    /// chain (`base`: its name and ids): a delta when it is small, otherwise a full set.
    pub fn plan(ids: Vec<ChunkId>, base: Option<(&str, &[ChunkId])>) -> Self {
        let Some((name, base_ids)) = base else {
            return Self::full(ids);
        };
        let (added, removed) = diff_sorted(base_ids, &ids);
        if added.len() + removed.len() > ids.len() / 2 {
            return Self::full(ids);
        }
        Self {
            base: Some(name.to_owned()),
            added,
            removed,
        }
    }

    /// The serialized object.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        // Serializing ids and strings into a Vec cannot fail.
        bytes.extend(postcard::to_stdvec(self).unwrap_or_default());
        bytes
    }

    /// Parses and checks a stored set.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("it does not start with its magic number")?;
        let body = match rest.split_first() {
            Some((&VERSION, body)) => body,
            Some((v, _)) => {
                return Err(format!(
                    "format version {v} is not one this Cloudkeep reads; update Cloudkeep"
                ));
            }
            None => return Err("it is cut short".into()),
        };
        let (set, trailing): (Self, _) =
            postcard::take_from_bytes(body).map_err(|e| e.to_string())?;
        if !trailing.is_empty() {
            return Err("it has bytes after its end".into());
        }
        if !strictly_increasing(&set.added) || !strictly_increasing(&set.removed) {
            return Err("its ids are not sorted and unique".into());
        }
        match &set.base {
            None if !set.removed.is_empty() => Err("a full set cannot remove ids".into()),
            Some(name) if !crate::backend::valid_meta_name(name) => {
                Err("its base is not a valid object name".into())
            }
            _ => Ok(set),
        }
    }

    /// The object's name: hex BLAKE3 of `bytes`.
    pub fn name_of(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    /// The ids of a delta applied to its base's ids (sorted); refuses a delta that does not
    /// fit its base (removes what the base lacks, adds what it has).
    pub fn apply(&self, base: &[ChunkId]) -> Result<Vec<ChunkId>, String> {
        let mut out = Vec::with_capacity(base.len() + self.added.len());
        let mut removed = self.removed.iter().peekable();
        for id in base {
            if removed.peek() == Some(&id) {
                removed.next();
            } else {
                out.push(*id);
            }
        }
        if removed.next().is_some() {
            return Err("it removes ids its base does not have".into());
        }
        let kept = out.len();
        out.extend_from_slice(&self.added);
        out.sort_unstable();
        out.dedup();
        if out.len() != kept + self.added.len() {
            return Err("it adds ids its base already has".into());
        }
        Ok(out)
    }
}

/// The ids of a stored **full** set, read in place from its bytes (a full set of ten million
/// ids is 320 MB; decoding it would hold it twice).
#[derive(Debug, Clone, Copy)]
pub struct IdsView<'a> {
    raw: &'a [u8],
}

impl<'a> IdsView<'a> {
    /// The ids of the full set `bytes` (checked: its framing, no base, nothing removed,
    /// sorted and unique ids, nothing after its end).
    pub fn of_full_set(bytes: &'a [u8]) -> Result<Self, String> {
        let body = frame_body(bytes)?;
        let (tag, rest) = body.split_first().ok_or("it is cut short")?;
        if *tag != 0 {
            return Err("it is a delta, not a full set".into());
        }
        let (count, rest) = take_varint(rest)?;
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(32))
            .filter(|len| *len <= rest.len())
            .ok_or("it is cut short")?;
        let (raw, rest) = rest.split_at(len);
        let (removed, rest) = take_varint(rest)?;
        if removed != 0 {
            return Err("a full set cannot remove ids".into());
        }
        if !rest.is_empty() {
            return Err("it has bytes after its end".into());
        }
        let view = Self { raw };
        if !raw
            .chunks_exact(32)
            .zip(raw.chunks_exact(32).skip(1))
            .all(|(a, b)| a < b)
        {
            return Err("its ids are not sorted and unique".into());
        }
        Ok(view)
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.raw.len() / 32
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Every id, sorted.
    pub fn iter(&self) -> impl Iterator<Item = ChunkId> + 'a {
        self.raw.chunks_exact(32).map(|c| {
            let mut id = [0u8; 32];
            id.copy_from_slice(c);
            ChunkId(id)
        })
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &ChunkId) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.raw[mid * 32..mid * 32 + 32].cmp(&id.0[..]) {
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }
}

/// The base a stored set names (`None`: it is a full set), read without decoding its ids.
pub fn base_of(bytes: &[u8]) -> Result<Option<String>, String> {
    let body = frame_body(bytes)?;
    match body.split_first() {
        Some((0, _)) => Ok(None),
        Some((1, rest)) => {
            let (len, rest) = take_varint(rest)?;
            let name = usize::try_from(len)
                .ok()
                .and_then(|len| rest.get(..len))
                .ok_or("it is cut short")?;
            let name = std::str::from_utf8(name).map_err(|_| "its base is not text")?;
            if !crate::backend::valid_meta_name(name) {
                return Err("its base is not a valid object name".into());
            }
            Ok(Some(name.to_owned()))
        }
        _ => Err("it is cut short or damaged".into()),
    }
}

/// Encodes a set from sorted id streams, byte for byte as [`ChunkSetFile::encode`] does
/// (postcard: a varint count, then each id's 32 bytes), without gathering the ids first.
/// `added_len` and `removed_len` must be the streams' lengths.
pub fn encode_streamed(
    base: Option<&str>,
    added_len: usize,
    added: impl Iterator<Item = ChunkId>,
    removed_len: usize,
    removed: impl Iterator<Item = ChunkId>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + (added_len + removed_len) * 32);
    bytes.extend_from_slice(MAGIC);
    bytes.push(VERSION);
    match base {
        None => bytes.push(0),
        Some(name) => {
            bytes.push(1);
            put_varint(&mut bytes, name.len() as u64);
            bytes.extend_from_slice(name.as_bytes());
        }
    }
    put_varint(&mut bytes, added_len as u64);
    added.for_each(|id| bytes.extend_from_slice(&id.0));
    put_varint(&mut bytes, removed_len as u64);
    removed.for_each(|id| bytes.extend_from_slice(&id.0));
    bytes
}

/// The postcard body of a stored set (after its magic number and version).
fn frame_body(bytes: &[u8]) -> Result<&[u8], String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("it does not start with its magic number")?;
    match rest.split_first() {
        Some((&VERSION, body)) => Ok(body),
        Some((v, _)) => Err(format!(
            "format version {v} is not one this Cloudkeep reads; update Cloudkeep"
        )),
        None => Err("it is cut short".into()),
    }
}

/// A postcard (LEB128) unsigned varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a postcard unsigned varint (at most ten bytes).
fn take_varint(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, &bytes[i + 1..]));
        }
    }
    Err("it is cut short or damaged".into())
}

fn strictly_increasing(ids: &[ChunkId]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// `(in new but not old, in old but not new)` of two sorted, unique lists.
fn diff_sorted(old: &[ChunkId], new: &[ChunkId]) -> (Vec<ChunkId>, Vec<ChunkId>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                removed.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                removed.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> ChunkId {
        ChunkId([n; 32])
    }

    #[test]
    fn small_changes_become_deltas_and_big_ones_full_sets() {
        let base: Vec<ChunkId> = (0..100).map(id).collect();
        let mut next = base.clone();
        next.retain(|c| *c != id(5));
        next.push(id(200));
        next.sort_unstable();
        let delta = ChunkSetFile::plan(next.clone(), Some(("b1", &base)));
        assert_eq!(delta.base.as_deref(), Some("b1"));
        assert_eq!(delta.added, [id(200)]);
        assert_eq!(delta.removed, [id(5)]);
        assert_eq!(delta.apply(&base).unwrap(), next);

        let other: Vec<ChunkId> = (150..=250).map(id).collect();
        let full = ChunkSetFile::plan(other.clone(), Some(("b1", &base)));
        assert_eq!(full, ChunkSetFile::full(other));
    }

    #[test]
    fn damaged_or_inconsistent_sets_are_refused() {
        let set = ChunkSetFile::full(vec![id(1), id(2)]);
        let bytes = set.encode();
        assert_eq!(ChunkSetFile::decode(&bytes).unwrap(), set);
        assert!(ChunkSetFile::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut unsorted = ChunkSetFile::full(vec![id(2), id(1)]).encode();
        assert!(
            ChunkSetFile::decode(&unsorted)
                .unwrap_err()
                .contains("sorted")
        );
        unsorted[4] = 9;
        assert!(
            ChunkSetFile::decode(&unsorted)
                .unwrap_err()
                .contains("update Cloudkeep")
        );
        let bad_delta = ChunkSetFile {
            base: Some("b".into()),
            added: vec![id(1)],
            removed: vec![id(7)],
        };
        assert!(bad_delta.apply(&[id(1), id(2)]).is_err());
    }

    #[test]
    fn streamed_sets_are_the_same_bytes_and_read_in_place() {
        let many: Vec<ChunkId> = (0..400u32)
            .map(|n| {
                let mut id = [0u8; 32];
                id.copy_from_slice(blake3::hash(&n.to_le_bytes()).as_bytes());
                ChunkId(id)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let full = ChunkSetFile::full(many.clone()).encode();
        let streamed = encode_streamed(
            None,
            many.len(),
            many.iter().copied(),
            0,
            std::iter::empty(),
        );
        assert_eq!(streamed, full);
        let view = IdsView::of_full_set(&full).unwrap();
        assert_eq!(view.iter().collect::<Vec<_>>(), many);
        assert!(many.iter().all(|id| view.contains(id)));
        assert!(!view.contains(&ChunkId([0; 32])));
        assert_eq!(base_of(&full).unwrap(), None);

        let delta = ChunkSetFile {
            base: Some("ab".repeat(32)),
            added: many[..3].to_vec(),
            removed: many[5..7].to_vec(),
        };
        let bytes = delta.encode();
        let streamed = encode_streamed(
            delta.base.as_deref(),
            3,
            many[..3].iter().copied(),
            2,
            many[5..7].iter().copied(),
        );
        assert_eq!(streamed, bytes);
        assert_eq!(base_of(&bytes).unwrap(), delta.base);
        assert!(IdsView::of_full_set(&bytes).is_err());
        for cut in 0..full.len() {
            assert!(IdsView::of_full_set(&full[..cut]).is_err(), "cut at {cut}");
        }
        let mut unsorted = ChunkSetFile::full(vec![many[1], many[0]]).encode();
        assert!(IdsView::of_full_set(&unsorted).is_err());
        unsorted.push(0);
        assert!(IdsView::of_full_set(&unsorted).is_err());
    }

    proptest! {
        #[test]
        fn a_planned_set_always_resolves_to_its_ids(
            base in proptest::collection::btree_set(any::<u8>(), 0..60),
            next in proptest::collection::btree_set(any::<u8>(), 0..60),
        ) {
            let base: Vec<ChunkId> = base.into_iter().map(id).collect();
            let next: Vec<ChunkId> = next.into_iter().map(id).collect();
            let set = ChunkSetFile::plan(next.clone(), Some(("b", &base)));
            let decoded = ChunkSetFile::decode(&set.encode()).unwrap();
            let resolved = match decoded.base {
                Some(_) => decoded.apply(&base).unwrap(),
                None => decoded.added,
            };
            prop_assert_eq!(resolved, next);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut framed = b"CKCS\x01".to_vec();
            framed.extend(bytes);
            let _ = ChunkSetFile::decode(&framed);
        }
    }
}
