//! Cloudkeep's cross-crate integration suite, one binary (ripgrep's rule). Each module is a
//! suite; later issues add suites over real gateways, PostgreSQL and S3 here.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Checks of the source tree and its scripts (cargo metadata, bash, the code map): they run on
// the build host, which is Unix; the Windows build has nothing more to show them.
#[cfg(unix)]
mod architecture;
#[cfg(unix)]
mod glossary;
#[cfg(unix)]
mod promises;
mod tidy;
