//! Exit codes of `cloudkeep` (DESIGN §9), and which error maps to which.

use cloudkeep_model::failure::{FailureKind, Remedy};
use cloudkeep_tenant::failure::{kind_in_chain, remedy_in_chain};

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
/// A restore test found data that does not restore as it was backed up.
pub const RESTORE_TEST: u8 = 6;

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    let cause: &(dyn std::error::Error + 'static) = error.as_ref();
    match kind_in_chain(cause) {
        Some(FailureKind::Certificate) => CERT,
        Some(FailureKind::Auth) => AUTH,
        Some(FailureKind::Quota) => QUOTA,
        None => FAILURE,
    }
}

/// The command that fixes an error, when there is one thing to do (the console shows the same
/// remedy as a button).
pub fn remedy_for(error: &anyhow::Error) -> Option<String> {
    let cause: &(dyn std::error::Error + 'static) = error.as_ref();
    Some(match remedy_in_chain(cause)? {
        Remedy::TrustCertificate {
            provider,
            fingerprint,
        } => format!("cloudkeep provider trust {provider} --fingerprint {fingerprint}"),
        Remedy::ListJobs => "cloudkeep job list".into(),
        Remedy::ListProviders => "cloudkeep provider list".into(),
    })
}
