//! The one error type at the command boundary. Every command returns it; it serialises to
//! `{kind, message}` (plus `detail` where the UI shows more, such as both certificates of a
//! changed one, and `remedy` where there is one thing to do, which the UI shows as a button)
//! so the UI can show the message and branch on a stable kind.

use cloudkeep_client::ClientError;
use cloudkeep_model::failure::{Failure, FailureKind, Remedy};
use cloudkeep_model::paths::PathsError;
use cloudkeep_tenant::TenantError;
use cloudkeep_tenant::failure::kind_in_chain;
use cloudkeep_tenant::logging::LogError;
use serde::Serialize;
use serde_json::{Value, json};

/// Stable error kinds the UI may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request from the page was malformed or out of range.
    BadRequest,
    /// The local data folder could not be found or used.
    DataFolder,
    /// The log files could not be read.
    Logs,
    /// The gateway's certificate is not trusted yet (`detail`: address, cert, why).
    CertificateUntrusted,
    /// A pinned gateway presents another certificate (`detail`: provider, address, expected,
    /// cert).
    CertificateChanged,
    /// A fingerprint given to confirm a certificate does not match it.
    WrongFingerprint,
    /// Wrong password, or the account was refused.
    Auth,
    /// Quota full or lease ended.
    Quota,
    /// The gateway does not answer.
    Unreachable,
    /// No such provider, job, point or session.
    NotFound,
    /// A provider or job of that name exists.
    Exists,
    /// The request cannot be done as asked (the message says what to do instead).
    Invalid,
    /// Anything else.
    Failed,
}

/// An error as the UI sees it: what happened and what to do, in one readable message.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Stable kind.
    pub kind: ErrorKind,
    /// Readable message, with the next step where there is one.
    pub message: String,
    /// More for the UI to show (certificates), when there is more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// What to do about it, when there is one thing to do (a button in the UI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
}

impl CommandError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            detail: None,
            remedy: None,
        }
    }

    /// A malformed or out-of-range request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A request that cannot be done as asked.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// Something that failed for a reason of its own (a thread, a file).
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Failed, message.to_string())
    }

    fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl From<PathsError> for CommandError {
    fn from(e: PathsError) -> Self {
        Self::new(ErrorKind::DataFolder, e.to_string())
    }
}

impl From<LogError> for CommandError {
    fn from(e: LogError) -> Self {
        Self::new(ErrorKind::Logs, e.to_string())
    }
}

/// The kind any wrapped error of a chain calls for.
fn chain_kind(e: &(dyn std::error::Error + 'static)) -> ErrorKind {
    match kind_in_chain(e) {
        Some(FailureKind::Certificate) => ErrorKind::CertificateUntrusted,
        Some(FailureKind::Auth) => ErrorKind::Auth,
        Some(FailureKind::Quota) => ErrorKind::Quota,
        None => ErrorKind::Failed,
    }
}

impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Untrusted { address, cert, why } => {
                Self::new(ErrorKind::CertificateUntrusted, message)
                    .with_detail(json!({"address": address, "cert": cert, "why": why}))
            }
            ClientError::CertificateChanged {
                address,
                expected,
                cert,
            } => Self::new(ErrorKind::CertificateChanged, message)
                .with_detail(json!({"address": address, "expected": expected, "cert": cert})),
            ClientError::WrongFingerprint { address, presented } => {
                Self::new(ErrorKind::WrongFingerprint, message)
                    .with_detail(json!({"address": address, "presented": presented}))
            }
            ClientError::Unreachable { .. } => Self::new(ErrorKind::Unreachable, message),
            ClientError::NotLoggedIn => Self::new(ErrorKind::Auth, message),
            other => {
                let kind = chain_kind(&other);
                Self::new(kind, message)
            }
        }
    }
}

impl From<TenantError> for CommandError {
    fn from(e: TenantError) -> Self {
        let remedy = e.remedy();
        let mut error = Self::from_tenant(e);
        error.remedy = error.remedy.or(remedy);
        error
    }
}

impl CommandError {
    fn from_tenant(e: TenantError) -> Self {
        let message = e.to_string();
        match e {
            TenantError::Client(c) => c.into(),
            TenantError::CertificateChanged {
                provider,
                address,
                expected,
                cert,
            } => Self::new(ErrorKind::CertificateChanged, message).with_detail(json!({
                "provider": provider,
                "address": address,
                "expected": expected,
                "cert": cert
            })),
            TenantError::NoJob(_) | TenantError::NoProvider(_) => {
                Self::new(ErrorKind::NotFound, message)
            }
            TenantError::JobExists(_) | TenantError::ProviderExists(_) => {
                Self::new(ErrorKind::Exists, message)
            }
            TenantError::Invalid(_) => Self::new(ErrorKind::Invalid, message),
            other => {
                let kind = chain_kind(&other);
                Self::new(kind, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_kind_and_message() {
        let e = CommandError::from(PathsError::NotAbsolute { path: "rel".into() });
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "data_folder");
        assert!(json["message"].as_str().unwrap().contains("CLOUDKEEP_HOME"));
        assert_eq!(json.as_object().unwrap().len(), 2);
        assert_eq!(
            serde_json::to_value(CommandError::bad_request("x")).unwrap()["kind"],
            "bad_request"
        );
    }

    #[test]
    fn tenant_errors_keep_their_kind_and_certificate_detail() {
        let e = CommandError::from(TenantError::NoJob("docs".into()));
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            serde_json::to_value(&e).unwrap()["remedy"],
            serde_json::json!({"action": "list_jobs"}),
            "the console offers the way to the jobs, not a command line"
        );
        assert!(!e.message.contains("cloudkeep "), "{}", e.message);
        let e = CommandError::from(TenantError::Client(ClientError::WrongFingerprint {
            address: "gw:6180".into(),
            presented: "AB".into(),
        }));
        assert_eq!(e.kind, ErrorKind::WrongFingerprint);
        assert_eq!(e.detail.unwrap()["presented"], "AB");
        let e = CommandError::from(TenantError::Client(ClientError::Api {
            code: cloudkeep_api::ErrorCode::QuotaExceeded,
            message: "full".into(),
        }));
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Quota, "full"));
    }

    #[test]
    fn a_changed_certificate_offers_trusting_the_new_one() {
        let cert = cloudkeep_api::CertInfo {
            subject: "CN=gw".into(),
            issuer: "CN=gw".into(),
            not_before: "2026-01-01T00:00:00+00:00".into(),
            not_after: "2027-01-01T00:00:00+00:00".into(),
            names: vec!["gw".into()],
            fingerprint: "CD:EF".into(),
            self_signed: true,
        };
        let e = CommandError::from(TenantError::CertificateChanged {
            provider: "acme".into(),
            address: "gw:6180".into(),
            expected: "AB:CD".into(),
            cert: Box::new(cert),
        });
        assert_eq!(e.kind, ErrorKind::CertificateChanged);
        assert_eq!(
            serde_json::to_value(&e).unwrap()["remedy"],
            serde_json::json!({"action": "trust_certificate", "provider": "acme", "fingerprint": "CD:EF"})
        );
        assert!(
            !e.message.contains("cloudkeep provider trust"),
            "{}",
            e.message
        );
    }
}
