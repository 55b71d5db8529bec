//! Exit codes of `cloudkeep` (DESIGN §9), and which error maps to which.

use cloudkeep_core::crypto::CryptoError;
use cloudkeep_core::repo::RepoError;

/// Something failed.
pub const FAILURE: u8 = 1;
/// Wrong usage (clap's own code).
pub const USAGE: u8 = 2;
/// Authentication failed: wrong password or recovery key.
pub const AUTH: u8 = 4;

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        let crypto = cause.downcast_ref::<CryptoError>().or_else(|| {
            match cause.downcast_ref::<RepoError>() {
                Some(RepoError::Crypto(e)) => Some(e),
                _ => None,
            }
        });
        let wrong_secret = matches!(
            crypto,
            Some(CryptoError::WrongPassword | CryptoError::WrongRecoveryKey)
        );
        let no_secret = matches!(
            cause.downcast_ref::<RepoError>(),
            Some(RepoError::PasswordRequired)
        );
        if wrong_secret || no_secret {
            return AUTH;
        }
    }
    FAILURE
}
