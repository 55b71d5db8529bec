//! Exit codes of `cloudkeep` (DESIGN §9), and which error maps to which.

use cloudkeep_tenant::failure::{FailureKind, failure_kind};

/// Something failed.
pub const FAILURE: u8 = 1;
/// Wrong usage (clap's own code).
pub const USAGE: u8 = 2;
/// The gateway's certificate is not trusted, or changed.
pub const CERT: u8 = 3;
/// Authentication failed: wrong password or recovery key, or the account was refused.
pub const AUTH: u8 = 4;
/// Quota exceeded or lease expired.
pub const QUOTA: u8 = 5;

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    match error.chain().find_map(failure_kind) {
        Some(FailureKind::Certificate) => CERT,
        Some(FailureKind::Auth) => AUTH,
        Some(FailureKind::Quota) => QUOTA,
        None => FAILURE,
    }
}
