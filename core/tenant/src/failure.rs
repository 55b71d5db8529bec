//! Failures in an untyped chain: the faces hold some errors only as a chain of causes (the
//! CLI's `anyhow` errors, a console command's wrapped error). [`failure_of`] finds the
//! Cloudkeep error type a cause is; what kind of failure it is and what to do about it are
//! that type's own answers ([`Failure`], one `kind()` per error enum). The CLI maps the kinds
//! to its exit codes (3, 4, 5, 1); a job's retries only retry ordinary failures (a network
//! drop, a gateway restart), since waiting does not fix the others.

use cloudkeep_client::ClientError;
use cloudkeep_model::failure::{Failure, FailureKind, Remedy};
use cloudkeep_repo::backend::StoreError;
use cloudkeep_repo::crypto::CryptoError;
use cloudkeep_repo::engine::EngineError;
use cloudkeep_repo::repo::RepoError;

use super::TenantError;

type Cause = dyn std::error::Error + 'static;

/// The Cloudkeep error type `cause` is, as a [`Failure`].
pub fn failure_of(cause: &Cause) -> Option<&dyn Failure> {
    fn of<T: Failure + std::error::Error + 'static>(cause: &Cause) -> Option<&dyn Failure> {
        cause.downcast_ref::<T>().map(|e| e as &dyn Failure)
    }
    of::<TenantError>(cause)
        .or_else(|| of::<EngineError>(cause))
        .or_else(|| of::<RepoError>(cause))
        .or_else(|| of::<StoreError>(cause))
        .or_else(|| of::<ClientError>(cause))
        .or_else(|| of::<CryptoError>(cause))
}

/// The kind of the first cause in `error`'s chain that has one.
pub fn kind_in_chain(error: &Cause) -> Option<FailureKind> {
    std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| failure_of(e).and_then(Failure::kind))
}

/// The remedy of the first cause in `error`'s chain that has one.
pub fn remedy_in_chain(error: &Cause) -> Option<Remedy> {
    std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| failure_of(e).and_then(Failure::remedy))
}
