//! The cloud host: a Linux machine of the SP with QEMU (and KVM where the hardware has it)
//! that runs tenants' replicas. `cloudkeep host run` keeps it registered with the SP's
//! gateways: it logs in with the connection details the SP handed over and reports what it
//! has (CPUs, memory, KVM, QEMU, storage pools, networks) at every heartbeat, so plans are
//! sold only on what it really has.
//!
//! Module layers: `config`, `network` → `facts`, `chain` → `store` → `machine` → `failback` → `server` →
//! `run`.
//! The replica side (`network`, `chain`, `store`, `machine`, `failback`, `server`) is Unix-only: a cloud host is a Linux
//! machine with QEMU.
//!
//! **Invariant:** the host's password and settings live in an owner-only file of its data
//! folder, never on a command line or in a log.

#[cfg(unix)]
pub mod chain;
pub mod config;
pub mod facts;
#[cfg(unix)]
pub mod failback;
#[cfg(unix)]
pub mod machine;
#[cfg(unix)]
pub mod network;
pub mod run;
#[cfg(unix)]
pub mod server;
#[cfg(unix)]
pub mod store;

/// Errors of the cloud host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host's folder or settings cannot be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The settings or connection details are not usable.
    #[error("{0}")]
    Invalid(String),
    /// The host has not been given its connection details yet.
    #[error(
        "this host is not connected to a gateway yet: run `cloudkeep host run --connect FILE` with the connection details `cloudkeep sp host add` wrote"
    )]
    NotConnected,
    /// QEMU's tools failed (or are missing).
    #[error("QEMU could not {0}")]
    Qemu(String),
    /// No such replica.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The plan's storage or the host's disk is full.
    #[error("{0}")]
    Full(String),
    /// A gateway refused or did not answer.
    #[error(transparent)]
    Client(#[from] cloudkeep_client::ClientError),
}
