//! Exit codes of `cloudkeep` (DESIGN §9), and which error maps to which.

use cloudkeep_core::api::ErrorCode;
use cloudkeep_core::backend::StoreError;
use cloudkeep_core::client::ClientError;
use cloudkeep_core::crypto::CryptoError;
use cloudkeep_core::engine::EngineError;
use cloudkeep_core::repo::RepoError;
use cloudkeep_core::tenant::TenantError;

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

/// The exit code for a refusal by (or trouble with) a gateway.
fn client_code(client: &ClientError) -> u8 {
    match client {
        ClientError::Untrusted { .. } | ClientError::CertificateChanged { .. } => CERT,
        ClientError::Api { code, .. } => match code {
            ErrorCode::Unauthorized | ErrorCode::Banned | ErrorCode::AccountDisabled => AUTH,
            ErrorCode::QuotaExceeded | ErrorCode::LeaseExpired => QUOTA,
            _ => FAILURE,
        },
        ClientError::NotLoggedIn => AUTH,
        _ => FAILURE,
    }
}

/// The exit code for a storage refusal by a gateway, wherever it is wrapped.
fn store_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let store = match (
        cause.downcast_ref::<EngineError>(),
        cause.downcast_ref::<RepoError>(),
        cause.downcast_ref::<TenantError>(),
    ) {
        (Some(EngineError::Repo(RepoError::Store(s))), _, _)
        | (_, Some(RepoError::Store(s)), _)
        | (_, _, Some(TenantError::Repo(RepoError::Store(s))))
        | (_, _, Some(TenantError::Engine(EngineError::Repo(RepoError::Store(s))))) => s,
        _ => return None,
    };
    match store {
        StoreError::Refused {
            code: Some(code), ..
        } => Some(match code {
            ErrorCode::QuotaExceeded | ErrorCode::LeaseExpired => QUOTA,
            ErrorCode::Unauthorized | ErrorCode::Banned | ErrorCode::AccountDisabled => AUTH,
            _ => FAILURE,
        }),
        _ => None,
    }
}

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(code) = store_code(cause) {
            return code;
        }
        match cause.downcast_ref::<TenantError>() {
            Some(TenantError::CertificateChanged { .. } | TenantError::WrongFingerprint { .. }) => {
                return CERT;
            }
            Some(TenantError::Client(client)) => return client_code(client),
            Some(TenantError::Repo(
                RepoError::Crypto(CryptoError::WrongPassword | CryptoError::WrongRecoveryKey)
                | RepoError::PasswordRequired,
            )) => return AUTH,
            _ => {}
        }
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return client_code(client);
        }
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
