//! The blob codec: how one chunk of file data, disk data or metadata is stored.
//!
//! A blob's id is the keyed BLAKE3 of its plaintext ([`crate::crypto::RepoKeys::chunk_id`]).
//! Its stored bytes (layout frozen, see `docs/formats.md`) are
//! `seal(aad = "cloudkeep blob v1" ‖ id, encoding ‖ payload)` where `encoding` is 0 (raw) or
//! 1 (zstd). Opening checks, in order: authenticity (AEAD, bound to the id, so a blob cannot
//! be swapped for another), the encoding, a bounded decompression, and finally that the
//! plaintext hashes to the id — which is also the integrity check of unencrypted repositories.

use crate::compress::{self, Compression};
use crate::crypto::{ChunkId, CryptoError, RepoKeys};

/// Largest plaintext of one blob (file chunks are at most 8 MiB, disk blocks 4 MiB).
pub const MAX_BLOB_LEN: usize = 16 << 20;

/// Domain separation of the blob AEAD's associated data.
const AAD_PREFIX: &[u8] = b"cloudkeep blob v1";

/// Payload encodings (frozen).
const ENCODING_RAW: u8 = 0;
const ENCODING_ZSTD: u8 = 1;

/// Errors of sealing or opening a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The plaintext is larger than a blob may be.
    #[error("a blob of {len} bytes is larger than the {MAX_BLOB_LEN}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Authentication failed: damaged storage, a wrong key, or tampering.
    #[error(
        "blob {id} failed authentication: its stored bytes are damaged or were changed; run verify to find the affected restore points"
    )]
    Inauthentic {
        /// The blob.
        id: ChunkId,
    },
    /// Authentic (or unencrypted) but not decodable.
    #[error("blob {id} is damaged: {reason}; run verify to find the affected restore points")]
    Corrupt {
        /// The blob.
        id: ChunkId,
        /// What is wrong.
        reason: String,
    },
    /// The content does not hash to the id it was stored under.
    #[error(
        "blob {id} does not hold the data it should (its content hashes to another id); run verify to find the affected restore points"
    )]
    IdMismatch {
        /// The blob.
        id: ChunkId,
    },
    /// The random source failed while sealing.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A sealed blob, ready to go into a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Keyed hash of the plaintext.
    pub id: ChunkId,
    /// Plaintext length.
    pub plain_len: u32,
    /// Stored bytes.
    pub bytes: Vec<u8>,
}

fn aad(id: &ChunkId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 32);
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(&id.0);
    aad
}

/// Hashes, compresses (when it helps) and encrypts a plaintext.
pub fn seal(
    keys: &RepoKeys,
    compression: Compression,
    plaintext: &[u8],
) -> Result<SealedBlob, BlobError> {
    let id = keys.chunk_id(plaintext);
    seal_with_id(keys, compression, id, plaintext)
}

/// [`seal`] for a plaintext whose id is already known (computed once for the dedup lookup).
pub fn seal_with_id(
    keys: &RepoKeys,
    compression: Compression,
    id: ChunkId,
    plaintext: &[u8],
) -> Result<SealedBlob, BlobError> {
    let plain_len = u32::try_from(plaintext.len())
        .ok()
        .filter(|&len| len as usize <= MAX_BLOB_LEN)
        .ok_or(BlobError::TooLarge {
            len: plaintext.len(),
        })?;
    let mut body;
    match compress::compress(compression, plaintext) {
        Some(packed) => {
            body = Vec::with_capacity(packed.len() + 1);
            body.push(ENCODING_ZSTD);
            body.extend_from_slice(&packed);
        }
        None => {
            body = Vec::with_capacity(plaintext.len() + 1);
            body.push(ENCODING_RAW);
            body.extend_from_slice(plaintext);
        }
    }
    let bytes = keys.seal(&aad(&id), &body)?;
    Ok(SealedBlob {
        id,
        plain_len,
        bytes,
    })
}

/// Authenticates, decrypts, expands and checks a stored blob.
pub fn open(keys: &RepoKeys, id: &ChunkId, stored: &[u8]) -> Result<Vec<u8>, BlobError> {
    let body = keys
        .open(&aad(id), stored)
        .map_err(|_| BlobError::Inauthentic { id: *id })?;
    let corrupt = |reason: String| BlobError::Corrupt { id: *id, reason };
    let (&encoding, payload) = body
        .split_first()
        .ok_or_else(|| corrupt("it is empty".into()))?;
    let plaintext = match encoding {
        ENCODING_RAW => payload.to_vec(),
        ENCODING_ZSTD => {
            compress::decompress(payload, MAX_BLOB_LEN).map_err(|e| corrupt(e.to_string()))?
        }
        other => return Err(corrupt(format!("unknown encoding {other}"))),
    };
    if keys.chunk_id(&plaintext) != *id {
        return Err(BlobError::IdMismatch { id: *id });
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    fn keys(encrypted: bool) -> RepoKeys {
        MasterKey::generate().unwrap().repo_keys(encrypted)
    }

    #[test]
    fn round_trip_encrypted_and_plain_compressible_or_not() {
        let mut noise = vec![0u8; 100_000];
        crate::crypto::random_bytes(&mut noise).unwrap();
        let text = b"restore point ".repeat(5000);
        for encrypted in [true, false] {
            let keys = keys(encrypted);
            for data in [&noise[..], &text[..], b""] {
                let sealed = seal(&keys, Compression::Default, data).unwrap();
                assert_eq!(sealed.id, keys.chunk_id(data));
                assert_eq!(sealed.plain_len as usize, data.len());
                assert_eq!(open(&keys, &sealed.id, &sealed.bytes).unwrap(), data);
            }
            let packed = seal(&keys, Compression::Default, &text).unwrap();
            assert!(packed.bytes.len() < text.len() / 10, "text is compressed");
        }
    }

    #[test]
    fn the_sp_sees_no_plaintext() {
        let keys = keys(true);
        let secret = b"the quarterly numbers: 1234567890 ".repeat(100);
        let sealed = seal(&keys, Compression::Off, &secret).unwrap();
        assert!(
            !sealed
                .bytes
                .windows(16)
                .any(|w| secret.windows(16).any(|s| s == w))
        );
    }

    #[test]
    fn swapped_blobs_are_refused() {
        let keys = keys(true);
        let a = seal(&keys, Compression::Default, b"aaaa").unwrap();
        let b = seal(&keys, Compression::Default, b"bbbb").unwrap();
        assert!(matches!(
            open(&keys, &a.id, &b.bytes),
            Err(BlobError::Inauthentic { .. })
        ));
    }

    #[test]
    fn unencrypted_damage_is_caught_by_the_id() {
        let keys = keys(false);
        let sealed = seal(&keys, Compression::Off, b"plain data").unwrap();
        let mut bad = sealed.bytes.clone();
        bad[3] ^= 1;
        assert!(matches!(
            open(&keys, &sealed.id, &bad),
            Err(BlobError::IdMismatch { .. })
        ));
        let mut unknown = sealed.bytes;
        unknown[0] = 9;
        let err = open(&keys, &sealed.id, &unknown).unwrap_err();
        assert!(err.to_string().contains("unknown encoding"), "{err}");
        assert!(open(&keys, &sealed.id, &[]).is_err());
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let big = vec![1u8; MAX_BLOB_LEN + 1];
        assert!(matches!(
            seal(&keys(true), Compression::Off, &big),
            Err(BlobError::TooLarge { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn flipped_bits_never_open_and_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            flip in any::<proptest::sample::Index>(),
            bit in 0u8..8,
            encrypted in any::<bool>(),
        ) {
            let keys = keys(encrypted);
            let sealed = seal(&keys, Compression::Default, &data).unwrap();
            let mut bad = sealed.bytes.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert!(open(&keys, &sealed.id, &bad).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(stored in proptest::collection::vec(any::<u8>(), 0..512), encrypted in any::<bool>()) {
            let keys = keys(encrypted);
            let _ = open(&keys, &ChunkId([7; 32]), &stored);
        }
    }
}
