//! Packs: how blobs travel and rest. Object storage sees a few large objects (tens of MiB)
//! instead of millions of chunks.
//!
//! Layout (frozen, `docs/formats.md`):
//! `header ‖ blob… ‖ sealed index ‖ index length (u32 LE) ‖ "CKPE"`, with the header
//! `"CKPK" ‖ version 1 ‖ 3 zero bytes`. The sealed index lists every blob: id, offset, stored
//! and plain length. A pack's id is the plain BLAKE3 hash of all its bytes, so whoever stores
//! it (the gateway too) can check an upload without any key.

use crate::blob::{MAX_BLOB_LEN, SealedBlob};
use crate::crypto::{ChunkId, RepoKeys};

/// Magic at the start of every pack.
pub const HEADER_MAGIC: &[u8; 4] = b"CKPK";
/// Magic at the end of every pack.
pub const FOOTER_MAGIC: &[u8; 4] = b"CKPE";
/// Pack format version.
pub const VERSION: u8 = 1;
/// Header length.
pub const HEADER_LEN: usize = 8;
/// Footer length: index length and magic.
pub const FOOTER_LEN: usize = 8;
/// Size at which a pack is closed and sent.
pub const TARGET_PACK_LEN: usize = 32 << 20;
/// Largest pack accepted: a full pack plus one largest blob, with room for the index.
pub const MAX_PACK_LEN: u64 = (TARGET_PACK_LEN + MAX_BLOB_LEN + (8 << 20)) as u64;
/// Length of one index entry: id, offset (u64), stored length (u32), plain length (u32).
const ENTRY_LEN: usize = 32 + 8 + 4 + 4;
/// Associated data of the sealed index.
const INDEX_AAD: &[u8] = b"cloudkeep pack index v1";

/// A pack's id: BLAKE3 of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackId(pub [u8; 32]);

impl PackId {
    /// The id of pack bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

hex_id!(PackId);

/// Errors of building or reading a pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The bytes are not a Cloudkeep pack of a version this build reads.
    #[error(
        "pack {pack} is damaged or not a Cloudkeep pack: {reason}; run verify to see what it affects"
    )]
    Corrupt {
        /// The pack.
        pack: String,
        /// What is wrong.
        reason: String,
    },
    /// Sealing the index failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// Where one blob sits in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// The blob.
    pub id: ChunkId,
    /// Offset of its stored bytes in the pack.
    pub offset: u64,
    /// Length of its stored bytes.
    pub stored_len: u32,
    /// Length of its plaintext.
    pub plain_len: u32,
}

/// A finished pack, ready for a [`crate::backend::PackStore`].
#[derive(Debug, Clone)]
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// The whole pack.
    pub bytes: Vec<u8>,
    /// Its blobs.
    pub entries: Vec<PackEntry>,
}

/// Collects sealed blobs into one pack.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    /// An empty pack.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN);
        buf.extend_from_slice(HEADER_MAGIC);
        buf.extend_from_slice(&[VERSION, 0, 0, 0]);
        Self {
            buf,
            entries: Vec::new(),
        }
    }

    /// Appends a blob.
    pub fn add(&mut self, blob: &SealedBlob) {
        if self.entries.is_empty() {
            // The whole pack's room at its first blob, not before: a run that stores nothing
            // (nothing changed) holds no empty 33 MiB buffer.
            self.buf
                .reserve_exact((TARGET_PACK_LEN + (1 << 20)).saturating_sub(self.buf.len()));
        }
        self.entries.push(PackEntry {
            id: blob.id,
            offset: self.buf.len() as u64,
            // A sealed blob is at most MAX_BLOB_LEN plus a few bytes of overhead.
            stored_len: u32::try_from(blob.bytes.len()).unwrap_or(u32::MAX),
            plain_len: blob.plain_len,
        });
        self.buf.extend_from_slice(&blob.bytes);
    }

    /// Bytes of blobs so far (with the header).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True before the first blob.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True once the pack should be closed.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= TARGET_PACK_LEN
    }

    /// Seals the index and closes the pack.
    pub fn finish(mut self, keys: &RepoKeys) -> Result<FinishedPack, PackError> {
        let mut index = Vec::with_capacity(4 + self.entries.len() * ENTRY_LEN);
        index.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            index.extend_from_slice(&e.id.0);
            index.extend_from_slice(&e.offset.to_le_bytes());
            index.extend_from_slice(&e.stored_len.to_le_bytes());
            index.extend_from_slice(&e.plain_len.to_le_bytes());
        }
        let sealed = keys.seal(INDEX_AAD, &index)?;
        // Exactly what is left: a pack of tiny blobs has a big index, and doubling the
        // buffer for it held twice the pack in memory.
        self.buf.reserve_exact(sealed.len() + FOOTER_LEN);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(FOOTER_MAGIC);
        Ok(FinishedPack {
            id: PackId::of(&self.buf),
            bytes: self.buf,
            entries: self.entries,
        })
    }
}

/// Reads the footer (the last [`FOOTER_LEN`] bytes of a pack of `pack_len` bytes) and returns
/// the byte range of the sealed index.
pub fn index_range(pack: &PackId, pack_len: u64, footer: &[u8]) -> Result<(u64, u32), PackError> {
    let corrupt = |reason: String| PackError::Corrupt {
        pack: pack.to_hex(),
        reason,
    };
    if pack_len > MAX_PACK_LEN || pack_len < (HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(corrupt(format!(
            "{pack_len} bytes is not a possible pack length"
        )));
    }
    let footer: &[u8; FOOTER_LEN] = footer
        .try_into()
        .map_err(|_| corrupt("the footer is cut short".into()))?;
    if &footer[4..] != FOOTER_MAGIC {
        return Err(corrupt(
            "the footer magic is missing (truncated upload?)".into(),
        ));
    }
    let index_len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]);
    let body_end = pack_len - FOOTER_LEN as u64;
    let start = body_end
        .checked_sub(u64::from(index_len))
        .filter(|&s| s >= HEADER_LEN as u64)
        .ok_or_else(|| corrupt(format!("an index of {index_len} bytes does not fit")))?;
    Ok((start, index_len))
}

/// Opens and checks a pack's sealed index. `index_start` is where it begins: every blob must
/// lie between the header and it, in order, without overlap.
pub fn open_index(
    keys: &RepoKeys,
    pack: &PackId,
    index_start: u64,
    sealed: &[u8],
) -> Result<Vec<PackEntry>, PackError> {
    let corrupt = |reason: String| PackError::Corrupt {
        pack: pack.to_hex(),
        reason,
    };
    let index = keys
        .open(INDEX_AAD, sealed)
        .map_err(|_| corrupt("its index failed authentication".into()))?;
    let (count, body) = index
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("its index is empty".into()))?;
    let count = u32::from_le_bytes(*count) as usize;
    if body.len() != count.saturating_mul(ENTRY_LEN) {
        return Err(corrupt(format!(
            "its index claims {count} blobs but has room for {}",
            body.len() / ENTRY_LEN
        )));
    }
    let mut entries = Vec::with_capacity(count);
    let mut next = HEADER_LEN as u64;
    for raw in body.chunks_exact(ENTRY_LEN) {
        let field = |at: usize, len: usize| &raw[at..at + len];
        let mut id = [0u8; 32];
        id.copy_from_slice(field(0, 32));
        let offset = u64::from_le_bytes(field(32, 8).try_into().unwrap_or_default());
        let stored_len = u32::from_le_bytes(field(40, 4).try_into().unwrap_or_default());
        let plain_len = u32::from_le_bytes(field(44, 4).try_into().unwrap_or_default());
        let end = offset.checked_add(u64::from(stored_len));
        if offset != next
            || end.is_none_or(|end| end > index_start)
            || plain_len as usize > MAX_BLOB_LEN
        {
            return Err(corrupt(format!(
                "blob {} has an impossible position",
                hex::encode(&id[..8])
            )));
        }
        next = end.unwrap_or(index_start);
        entries.push(PackEntry {
            id: ChunkId(id),
            offset,
            stored_len,
            plain_len,
        });
    }
    if next != index_start {
        return Err(corrupt("its blobs do not reach the index".into()));
    }
    Ok(entries)
}

/// Checks the header of a whole pack held in memory and returns its entries.
pub fn parse(keys: &RepoKeys, pack: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>, PackError> {
    if bytes.len() < HEADER_LEN + FOOTER_LEN || &bytes[..4] != HEADER_MAGIC || bytes[4] != VERSION {
        return Err(PackError::Corrupt {
            pack: pack.to_hex(),
            reason: "the header is not a version 1 Cloudkeep pack header".into(),
        });
    }
    let len = bytes.len() as u64;
    let (start, index_len) = index_range(pack, len, &bytes[bytes.len() - FOOTER_LEN..])?;
    let start_usize = start as usize;
    open_index(
        keys,
        pack,
        start,
        &bytes[start_usize..start_usize + index_len as usize],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob;
    use crate::compress::Compression;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    fn build(keys: &RepoKeys, blobs: &[&[u8]]) -> FinishedPack {
        let mut builder = PackBuilder::new();
        for data in blobs {
            builder.add(&blob::seal(keys, Compression::Default, data).unwrap());
        }
        builder.finish(keys).unwrap()
    }

    #[test]
    fn blobs_come_back_from_the_index() {
        let keys = MasterKey::generate().unwrap().repo_keys(true);
        let blobs: [&[u8]; 3] = [b"one", b"two two", &[0u8; 100_000]];
        let pack = build(&keys, &blobs);
        assert_eq!(pack.id, PackId::of(&pack.bytes));
        assert_eq!(&pack.bytes[..4], HEADER_MAGIC);
        assert_eq!(&pack.bytes[pack.bytes.len() - 4..], FOOTER_MAGIC);
        let entries = parse(&keys, &pack.id, &pack.bytes).unwrap();
        assert_eq!(entries, pack.entries);
        for (entry, data) in entries.iter().zip(blobs) {
            let stored = &pack.bytes[entry.offset as usize..][..entry.stored_len as usize];
            assert_eq!(blob::open(&keys, &entry.id, stored).unwrap(), data);
            assert_eq!(entry.plain_len as usize, data.len());
        }
    }

    #[test]
    fn empty_pack_round_trips() {
        let keys = MasterKey::generate().unwrap().repo_keys(false);
        let pack = PackBuilder::new().finish(&keys).unwrap();
        assert!(parse(&keys, &pack.id, &pack.bytes).unwrap().is_empty());
    }

    #[test]
    fn truncation_is_named_not_panicked() {
        let keys = MasterKey::generate().unwrap().repo_keys(true);
        let pack = build(&keys, &[b"abc", b"def"]);
        for cut in [0, 4, 8, 20, pack.bytes.len() - 1] {
            let err = parse(&keys, &pack.id, &pack.bytes[..cut]).unwrap_err();
            assert!(err.to_string().contains(&pack.id.to_hex()), "{err}");
        }
    }

    #[test]
    fn the_index_of_another_repository_does_not_open() {
        let a = MasterKey::generate().unwrap().repo_keys(true);
        let b = MasterKey::generate().unwrap().repo_keys(true);
        let pack = build(&a, &[b"abc"]);
        assert!(parse(&b, &pack.id, &pack.bytes).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn damaged_packs_never_panic(
            blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            flip in any::<proptest::sample::Index>(),
            encrypted in any::<bool>(),
        ) {
            let keys = MasterKey::generate().unwrap().repo_keys(encrypted);
            let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
            let pack = build(&keys, &refs);
            prop_assert_eq!(parse(&keys, &pack.id, &pack.bytes).unwrap().len(), blobs.len());
            let mut bad = pack.bytes.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x10;
            // Either the damage is in a blob (the index still parses; the blob will not
            // open), or the parse fails: never a panic.
            if let Ok(entries) = parse(&keys, &pack.id, &bad) {
                for e in entries {
                    let stored = &bad[e.offset as usize..][..e.stored_len as usize];
                    let original = &pack.bytes[e.offset as usize..][..e.stored_len as usize];
                    if stored != original {
                        prop_assert!(blob::open(&keys, &e.id, stored).is_err());
                    }
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let keys = MasterKey::generate().unwrap().repo_keys(false);
            let _ = parse(&keys, &PackId::of(&bytes), &bytes);
        }
    }
}
