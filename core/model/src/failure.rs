//! What kind of failure an error is, and what a person can do about it, as types every layer
//! returns and every face renders its own way. Each error enum answers [`Failure`] for itself
//! (its `kind()` looks at its own variants only); the CLI maps the kind to an exit code and
//! prints a [`Remedy`] as the command to run, the console shows it as a button. No message of
//! a lower layer spells a command line.

use serde::Serialize;

/// The kinds of failure that need a person; anything else is an ordinary failure that a
/// retry may fix (a network drop, a gateway restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The gateway's certificate is not trusted, or changed.
    Certificate,
    /// Wrong password or recovery key, or the account was refused (disabled, banned).
    Auth,
    /// Quota exceeded or lease expired.
    Quota,
}

/// What a person can do about a failure, when there is one thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Remedy {
    /// Trust the certificate a provider presents now — after checking with the service
    /// provider that this is its new certificate.
    TrustCertificate {
        /// The provider.
        provider: String,
        /// The fingerprint it presents now.
        fingerprint: String,
    },
    /// See which jobs there are.
    ListJobs,
    /// See which service providers there are.
    ListProviders,
}

/// An error that knows its own kind and remedy.
pub trait Failure {
    /// Its kind, or `None` for an ordinary failure.
    fn kind(&self) -> Option<FailureKind>;

    /// What to do about it, when there is one thing to do.
    fn remedy(&self) -> Option<Remedy> {
        None
    }
}
