//! Cloudkeep's shared model: what every other crate agrees on and nothing below imports
//! upward — names and their rule, schedules, sizes and durations as people type them,
//! retention rules, the clock, and the data home with its owner-only files.
//!
//! It depends on no other Cloudkeep crate and on nothing heavier than serde, chrono and
//! `directories`; `ARCHITECTURE.md` shows where it sits.
//!
//! ```
//! use cloudkeep_model::{about::AboutInfo, paths::DataHome};
//!
//! let home = DataHome::at("/srv/cloudkeep")?;
//! let about = AboutInfo::for_home(&home);
//! assert_eq!(about.version, cloudkeep_model::VERSION);
//! assert!(about.log_folder.ends_with("logs"));
//! # Ok::<(), cloudkeep_model::paths::PathsError>(())
//! ```

pub mod about;
pub mod clock;
pub mod failure;
pub mod mode;
pub mod names;
pub mod paths;
pub mod retention;
pub mod schedule;
pub mod units;
pub mod winacl;

/// The product version every binary reports (`cloudkeep --version`, the console's About panel).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the product as shown to people.
pub const PRODUCT: &str = "Cloudkeep";

/// Versions of the gateway protocol this build speaks (DESIGN §5: routes live under `/v1`).
pub const PROTOCOL_VERSIONS: &[u32] = &[1];
