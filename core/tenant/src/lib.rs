//! The tenant's side: its own state (SQLite in the data folder), its secrets, and the service
//! providers it uses. The CLI and the console both work through these functions.
//!
//! Parts: [`state`] (the database), [`secrets`] (passwords, never in the database or logs),
//! [`providers`] (add with the certificate trust step, connect with failover, rescan, trust,
//! remove), [`jobs`], [`runner`], [`scheduler`], [`policies`], [`agent`] (a policy's
//! computer), [`logging`] (the process set-up both faces share).
//!
//! It reaches gateways only through `cloudkeep-client`, never the gateway crate.

pub mod agent;
pub mod anomaly;
pub mod catalog;
pub mod context;
pub mod failover_plans;
pub mod failure;
pub mod found;
pub mod jobs;
pub mod keys;
pub mod libvirt;
pub mod live;
pub mod logging;
pub mod machines;
pub mod nea;
pub mod notify;
pub mod overview;
pub mod policies;
pub mod portable;
pub mod providers;
pub mod recovery;
pub mod replicas;
pub mod restoretest;
pub mod runner;
pub mod scheduler;
pub mod secrets;
pub mod sources;
pub mod state;

use cloudkeep_client::ClientError;
use cloudkeep_model::failure::{Failure, FailureKind, Remedy};
pub use context::TenantContext;

/// Errors of the tenant side.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// Talking to the gateway failed or was refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The local state.
    #[error("the local Cloudkeep state: {0}")]
    State(#[from] sqlx::Error),
    /// Its schema.
    #[error("updating the local Cloudkeep state: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The repository.
    #[error(transparent)]
    Repo(#[from] cloudkeep_repo::repo::RepoError),
    /// A backup, restore or maintenance run.
    #[error(transparent)]
    Engine(#[from] cloudkeep_repo::engine::EngineError),
    /// A file of this computer's Cloudkeep folder could not be read or written.
    #[error("cannot {action} {}: {source}; check that the folder is there and writable", path.display())]
    File {
        /// `read`, `write` or `create`.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Something this computer stored (a job, policy, provider, the agent's state or key, the
    /// secrets file) no longer reads back.
    #[error("{what} is damaged ({reason}); {fix}")]
    Damaged {
        /// What.
        what: String,
        /// What is wrong with it.
        reason: String,
        /// What to do.
        fix: &'static str,
    },
    /// A password or key this computer should hold is not in its secrets.
    #[error("the {what} is not stored; {fix}")]
    SecretMissing {
        /// Which.
        what: String,
        /// What to do.
        fix: &'static str,
    },
    /// Random bytes, keys or sealing failed.
    #[error(transparent)]
    Crypto(#[from] cloudkeep_repo::crypto::CryptoError),
    /// The data home.
    #[error(transparent)]
    Home(#[from] cloudkeep_model::paths::PathsError),
    /// A thread or the async runtime could not be started.
    #[error("cannot start {what}: {source}; the system may be out of memory or threads")]
    Start {
        /// What.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A provider did not answer in time.
    #[error(
        "\"{provider}\" did not answer within {seconds} s; the figures shown are from the last scan"
    )]
    Slow {
        /// The provider.
        provider: String,
        /// How long was waited.
        seconds: u64,
    },
    /// A request that cannot be done as asked (the message says what to do instead).
    #[error("{0}")]
    Invalid(String),
    /// A backup file that cannot be used (missing, incomplete, damaged).
    #[error(transparent)]
    BackupFile(#[from] cloudkeep_repo::backupfile::FileError),
    /// No such job.
    #[error("there is no job \"{0}\"")]
    NoJob(String),
    /// A job of that name exists.
    #[error("a job \"{0}\" already exists; choose another name")]
    JobExists(String),
    /// No such provider.
    #[error("there is no service provider \"{0}\"")]
    NoProvider(String),
    /// A provider of that name exists.
    #[error("a service provider \"{0}\" already exists; remove it first or choose another name")]
    ProviderExists(String),
    /// A pinned provider presents another certificate.
    #[error("the certificate of \"{provider}\" ({address}) changed: expected {expected}, got {} ({}, issued by {}, valid {} to {}); if your service provider renewed it, check the new fingerprint with them and trust it", .cert.fingerprint, .cert.subject, .cert.issuer, .cert.not_before, .cert.not_after)]
    CertificateChanged {
        /// The provider.
        provider: String,
        /// The gateway.
        address: String,
        /// The pin.
        expected: String,
        /// What it presents.
        cert: Box<cloudkeep_api::CertInfo>,
    },
}

impl TenantError {
    /// Something stored in the local state that does not read back (or cannot be written).
    pub(crate) fn damaged(what: &str, e: impl std::fmt::Display) -> Self {
        Self::Damaged {
            what: what.to_owned(),
            reason: e.to_string(),
            fix: "delete it and create it again",
        }
    }

    /// A client error met while talking to `provider`: a changed certificate names the
    /// provider (and both fingerprints), everything else stays as it is.
    pub fn from_client(provider: &str, e: ClientError) -> Self {
        match e {
            ClientError::CertificateChanged {
                address,
                expected,
                cert,
            } => Self::CertificateChanged {
                provider: provider.to_owned(),
                address,
                expected,
                cert,
            },
            other => other.into(),
        }
    }
}

impl Failure for TenantError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::CertificateChanged { .. } => Some(FailureKind::Certificate),
            Self::Client(e) => e.kind(),
            Self::Repo(e) => e.kind(),
            Self::Engine(e) => e.kind(),
            Self::Crypto(e) => e.kind(),
            _ => None,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            Self::CertificateChanged { provider, cert, .. } => Some(Remedy::TrustCertificate {
                provider: provider.clone(),
                fingerprint: cert.fingerprint.clone(),
            }),
            Self::NoJob(_) => Some(Remedy::ListJobs),
            Self::NoProvider(_) => Some(Remedy::ListProviders),
            _ => None,
        }
    }
}
