//! Cloudkeep core: all domain logic of the product, shared by the `cloudkeep` command line,
//! the Cloudkeep Console and (in later modules) the cloud gateway.
//!
//! The binaries are thin: they parse input, call into this crate and present the result.
//! This crate never depends on a user interface (no Tauri, no terminal widgets, no argument
//! parser); see `ARCHITECTURE.md` for the code map and the rules that keep it that way.
//!
//! ```
//! use cloudkeep_core::{about::AboutInfo, paths::DataHome};
//!
//! let home = DataHome::at("/srv/cloudkeep")?;
//! let about = AboutInfo::for_home(&home);
//! assert_eq!(about.version, cloudkeep_core::VERSION);
//! assert!(about.log_folder.ends_with("logs"));
//! # Ok::<(), cloudkeep_core::paths::PathsError>(())
//! ```

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

pub mod about;
pub mod agent;
pub mod api;
pub mod backend;
pub mod blob;
pub mod blobcache;
pub mod catalog;
pub mod chunker;
pub mod chunkset;
pub mod client;
pub mod compress;
pub mod crypto;
pub mod engine;
pub mod fetch;
pub mod gateway;
pub mod index;
pub mod lab;
pub mod lock;
pub mod logging;
pub mod names;
pub mod pack;
pub mod paths;
pub mod policy;
pub mod repo;
pub mod retention;
pub mod schedule;
pub mod store;
pub mod tenant;
pub mod units;

/// The product version every binary reports (`cloudkeep --version`, the console's About panel).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the product as shown to people.
pub const PRODUCT: &str = "Cloudkeep";

/// Versions of the gateway protocol this build speaks (DESIGN §5: routes live under `/v1`).
pub const PROTOCOL_VERSIONS: &[u32] = &[1];
