//! Cloudkeep's cross-crate integration suite, one binary (ripgrep's rule). Each module is a
//! suite; later issues add suites over real gateways, PostgreSQL and S3 here.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod glossary;
mod promises;
mod tidy;
