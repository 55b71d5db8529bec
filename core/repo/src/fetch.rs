//! Reading many blobs at once: the blobs are grouped by pack, sorted by offset and merged with
//! their neighbours into spans of a few MiB, and the spans are read in parallel. A restore or
//! a folder walk through a gateway then costs one request per span instead of one per blob;
//! on a local folder it costs fewer, larger reads.
//!
//! A span that cannot be read fails only the blobs inside it: the caller decides what each
//! failure means (a restore reports the files that needed them and goes on).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

#[cfg(doc)]
use crate::backend::PackStore;
use crate::crypto::ChunkId;
use crate::index::{BlobLocation, ChunkIndex};
use crate::pack::PackId;

/// No span is longer than this, so that parallel spans keep memory bounded.
pub const MAX_SPAN: u64 = 8 << 20;

/// One read: a range of a pack and the blobs inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The pack.
    pub pack: PackId,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// The blobs inside: id, offset relative to the span, stored length.
    pub blobs: Vec<(ChunkId, u64, u32)>,
}

/// The outcome for one blob: its bytes (after the caller's decoding) or why not.
pub type BlobResult<T> = Result<T, String>;

/// Plans the spans that read `ids` (duplicates are read once): neighbouring blobs at most
/// `gap` bytes apart share a span (the store's [`PackStore::merge_gap`]). Ids the index does
/// not know are returned separately.
pub fn plan(index: &ChunkIndex, ids: &[ChunkId], gap: u64) -> (Vec<Span>, Vec<ChunkId>) {
    let mut seen = HashSet::with_capacity(ids.len());
    let mut by_pack: HashMap<PackId, Vec<(ChunkId, BlobLocation)>> = HashMap::new();
    let mut unknown = Vec::new();
    for id in ids {
        if !seen.insert(*id) {
            continue;
        }
        match index.get(id) {
            Some(loc) => by_pack.entry(loc.pack).or_default().push((*id, loc)),
            None => unknown.push(*id),
        }
    }
    let mut spans = Vec::new();
    for (pack, mut blobs) in by_pack {
        blobs.sort_by_key(|(_, loc)| loc.offset);
        let mut current: Option<Span> = None;
        for (id, loc) in blobs {
            let end = loc.offset + u64::from(loc.stored_len);
            if let Some(span) = current.as_mut() {
                let span_end = span.offset + span.len;
                if loc.offset >= span_end
                    && loc.offset - span_end <= gap
                    && end - span.offset <= MAX_SPAN
                {
                    span.blobs
                        .push((id, loc.offset - span.offset, loc.stored_len));
                    span.len = end - span.offset;
                    continue;
                }
                spans.extend(current.take());
            }
            current = Some(Span {
                pack,
                offset: loc.offset,
                len: u64::from(loc.stored_len),
                blobs: vec![(id, 0, loc.stored_len)],
            });
        }
        spans.extend(current);
    }
    // Pack order, then offset order: reads sweep each pack forwards.
    spans.sort_by_key(|s| (s.pack.0, s.offset));
    (spans, unknown)
}

/// Reads ranges of packs (pack, offset, length), one outcome each, in order.
pub type ReadRanges<'a> = dyn Fn(&[(PackId, u64, u64)]) -> Vec<Result<Vec<u8>, String>> + Sync + 'a;

/// Reads `ids` with one call of `read` for all their spans (planned with `gap`; the store
/// overlaps or combines the requests), and turns the stored bytes of each blob into a `T`
/// with `open` (id, stored bytes), in parallel.
pub fn read_many<T: Send>(
    index: &ChunkIndex,
    ids: &[ChunkId],
    gap: u64,
    read: &ReadRanges<'_>,
    open: &(dyn Fn(&ChunkId, &[u8]) -> BlobResult<T> + Sync),
) -> HashMap<ChunkId, BlobResult<T>> {
    let (spans, unknown) = plan(index, ids, gap);
    let ranges: Vec<(PackId, u64, u64)> = spans.iter().map(|s| (s.pack, s.offset, s.len)).collect();
    let read = read(&ranges);
    // Blob by blob, not span by span: one span often holds a whole batch of blobs, and
    // opening them (decryption, decompression) is the work to spread over the cores.
    let blobs: Vec<(&ChunkId, Result<&[u8], String>)> = spans
        .iter()
        .zip(&read)
        .flat_map(|(span, bytes)| {
            span.blobs.iter().map(move |(id, at, len)| {
                let stored = match bytes {
                    Ok(bytes) => {
                        let (at, end) = (*at as usize, *at as usize + *len as usize);
                        bytes.get(at..end).ok_or_else(|| {
                            format!("pack {} is shorter than its index says", span.pack.to_hex())
                        })
                    }
                    Err(e) => Err(e.clone()),
                };
                (id, stored)
            })
        })
        .collect();
    let mut out: HashMap<ChunkId, BlobResult<T>> = blobs
        .into_par_iter()
        .map(|(id, stored)| (*id, stored.and_then(|stored| open(id, stored))))
        .collect();
    for id in unknown {
        out.insert(
            id,
            Err(format!(
                "chunk {id} is not in the repository's index; run verify"
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MERGE_GAP;
    use crate::pack::PackEntry;

    fn id(n: u8) -> ChunkId {
        ChunkId([n; 32])
    }

    fn index(entries: &[(u8, u8, u64, u32)]) -> ChunkIndex {
        let mut index = ChunkIndex::default();
        for (pack, blob, offset, len) in entries {
            index.add_pack(
                PackId([*pack; 32]),
                &[PackEntry {
                    id: id(*blob),
                    offset: *offset,
                    stored_len: *len,
                    plain_len: *len,
                }],
            );
        }
        index
    }

    #[test]
    fn neighbours_merge_and_far_blobs_do_not() {
        let index = index(&[
            (1, 1, 8, 100),
            (1, 2, 108, 50),
            (1, 3, 158 + MERGE_GAP + 1, 10),
            (2, 4, 8, 10),
        ]);
        let (spans, unknown) = plan(
            &index,
            &[id(3), id(2), id(1), id(4), id(1), id(9)],
            MERGE_GAP,
        );
        assert_eq!(unknown, vec![id(9)]);
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].offset, 8);
        assert_eq!(spans[0].len, 150);
        assert_eq!(spans[0].blobs, vec![(id(1), 0, 100), (id(2), 100, 50)]);
        assert_eq!(spans[1].blobs, vec![(id(3), 0, 10)]);
        assert_eq!(spans[2].pack, PackId([2; 32]));
    }

    #[test]
    fn spans_stay_under_the_limit() {
        let mb = 1 << 20;
        let entries: Vec<(u8, u8, u64, u32)> = (0..20u8)
            .map(|n| (1, n, 8 + u64::from(n) * mb as u64, mb))
            .collect();
        let index = index(&entries);
        let ids: Vec<ChunkId> = (0..20).map(id).collect();
        let (spans, _) = plan(&index, &ids, MERGE_GAP);
        assert!(spans.iter().all(|s| s.len <= MAX_SPAN));
        assert_eq!(spans.iter().map(|s| s.blobs.len()).sum::<usize>(), 20);
        assert_eq!(spans.len(), 3);
    }

    #[test]
    fn a_failed_read_fails_only_its_blobs() {
        let index = index(&[(1, 1, 0, 4), (2, 2, 0, 4)]);
        let read = |ranges: &[(PackId, u64, u64)]| {
            ranges
                .iter()
                .map(|(pack, _, len)| {
                    if pack.0[0] == 1 {
                        Err("gone".to_owned())
                    } else {
                        Ok(vec![7u8; *len as usize])
                    }
                })
                .collect()
        };
        let open = |_: &ChunkId, bytes: &[u8]| Ok(bytes.to_vec());
        let got = read_many(&index, &[id(1), id(2)], MERGE_GAP, &read, &open);
        assert_eq!(got[&id(1)], Err("gone".to_owned()));
        assert_eq!(got[&id(2)], Ok(vec![7u8; 4]));
    }
}
