//! What kind of failure an error is, wherever it is wrapped: an untrusted or changed
//! certificate, refused credentials, a full quota or expired lease, or anything else. The CLI
//! maps the kinds to its exit codes (3, 4, 5, 1); a job's retries only retry "anything else"
//! (a network drop, a gateway restart), since waiting does not fix the other three.

use cloudkeep_api::ErrorCode;
use cloudkeep_client::ClientError;
use cloudkeep_repo::backend::StoreError;
use cloudkeep_repo::crypto::CryptoError;
use cloudkeep_repo::engine::EngineError;
use cloudkeep_repo::repo::RepoError;

use super::TenantError;

/// The kinds of failure that need a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The gateway's certificate is not trusted, or changed.
    Certificate,
    /// Wrong password or recovery key, or the account was refused (disabled, banned).
    Auth,
    /// Quota exceeded or lease expired.
    Quota,
}

fn code_kind(code: &ErrorCode) -> Option<FailureKind> {
    match code {
        ErrorCode::Unauthorized | ErrorCode::Banned | ErrorCode::AccountDisabled => {
            Some(FailureKind::Auth)
        }
        ErrorCode::QuotaExceeded | ErrorCode::LeaseExpired => Some(FailureKind::Quota),
        _ => None,
    }
}

fn client_kind(client: &ClientError) -> Option<FailureKind> {
    match client {
        ClientError::Untrusted { .. }
        | ClientError::CertificateChanged { .. }
        | ClientError::WrongFingerprint { .. } => Some(FailureKind::Certificate),
        ClientError::Api { code, .. } => code_kind(code),
        ClientError::NotLoggedIn => Some(FailureKind::Auth),
        _ => None,
    }
}

fn repo_kind(repo: &RepoError) -> Option<FailureKind> {
    match repo {
        RepoError::Store(StoreError::Refused {
            code: Some(code), ..
        }) => code_kind(code),
        RepoError::Crypto(CryptoError::WrongPassword | CryptoError::WrongRecoveryKey)
        | RepoError::PasswordRequired => Some(FailureKind::Auth),
        _ => None,
    }
}

/// The kind of one error in a chain (`None`: look at its source, or it is an ordinary
/// failure).
pub fn failure_kind(cause: &(dyn std::error::Error + 'static)) -> Option<FailureKind> {
    if let Some(e) = cause.downcast_ref::<TenantError>() {
        return match e {
            TenantError::CertificateChanged { .. } => Some(FailureKind::Certificate),
            TenantError::Client(c) => client_kind(c),
            TenantError::Repo(r) | TenantError::Engine(EngineError::Repo(r)) => repo_kind(r),
            _ => None,
        };
    }
    if let Some(EngineError::Repo(r)) = cause.downcast_ref::<EngineError>() {
        return repo_kind(r);
    }
    if let Some(r) = cause.downcast_ref::<RepoError>() {
        return repo_kind(r);
    }
    if let Some(StoreError::Refused {
        code: Some(code), ..
    }) = cause.downcast_ref::<StoreError>()
    {
        return code_kind(code);
    }
    if let Some(c) = cause.downcast_ref::<ClientError>() {
        return client_kind(c);
    }
    if let Some(CryptoError::WrongPassword | CryptoError::WrongRecoveryKey) =
        cause.downcast_ref::<CryptoError>()
    {
        return Some(FailureKind::Auth);
    }
    None
}

/// The kind of an error or of any error it wraps.
pub fn kind_in_chain(error: &(dyn std::error::Error + 'static)) -> Option<FailureKind> {
    std::iter::successors(Some(error), |e| e.source()).find_map(failure_kind)
}
