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
