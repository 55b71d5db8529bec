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

/// How much of something may be used: a number of bytes, or no limit of its own (a
/// subtenant that shares its tenant's quota). Stored and sent as `-1` for unlimited, which
/// only [`Limit::from_stored`] and [`Limit::stored`] spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many bytes (0: nothing may be stored).
    Bytes(u64),
    /// No limit of its own.
    Unlimited,
}

impl Limit {
    /// The limit a stored or sent number means: negative is unlimited.
    pub fn from_stored(value: i64) -> Self {
        u64::try_from(value).map_or(Self::Unlimited, Self::Bytes)
    }

    /// The number it is stored and sent as.
    pub fn stored(self) -> i64 {
        match self {
            Self::Bytes(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Self::Unlimited => -1,
        }
    }

    /// Whether there is no limit of its own.
    pub fn is_unlimited(self) -> bool {
        self == Self::Unlimited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_reads_back_as_stored() {
        for (stored, limit) in [
            (-1, Limit::Unlimited),
            (0, Limit::Bytes(0)),
            (5 << 30, Limit::Bytes(5 << 30)),
        ] {
            assert_eq!(Limit::from_stored(stored), limit);
            assert_eq!(limit.stored(), stored);
        }
        assert_eq!(Limit::from_stored(-7), Limit::Unlimited);
        assert!(
            !Limit::Bytes(0).is_unlimited(),
            "a quota of 0 is full, not unlimited"
        );
    }
}
