//! Cloudkeep's repository: everything that turns files into restore points and back, on any
//! pack store — the frozen formats (`docs/formats.md`), crypto, chunking, compression, blobs,
//! packs, the catalog and chunk sets, the repository with its pack writer, locks, the
//! `PackStore`/`RepoBackend` storage traits with the folder store, and the engine (backup,
//! restore, verify, browse, forget, gc, repair).
//!
//! **Invariant:** synchronous and network-free. No async runtime, database, HTTP or TLS crate
//! is a dependency (`tests/integration/architecture.rs` checks it); remote storage plugs in
//! from above through the storage traits.

/// Hex conversion and formatting of a 32-byte id newtype (blob ids, pack ids).
macro_rules! hex_id {
    ($ty:ident) => {
        impl $ty {
            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex characters.
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).ok()?;
                Some(Self(out))
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), &self.to_hex()[..16])
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

pub mod backend;
pub mod backupfile;
pub mod blob;
pub mod blobcache;
pub mod catalog;
pub mod chunker;
pub mod chunkset;
pub mod compress;
pub mod crypto;
pub mod engine;
pub mod fetch;
pub mod image;
pub mod index;
pub mod lock;
pub mod pack;
pub mod refs;
pub mod repo;
pub mod saver;
pub mod signals;
