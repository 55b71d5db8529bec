//! The async runtimes the CLI's commands block on: a small one for calls to a gateway and the
//! local state, a multi-threaded one for serving (gateway, lab).

use anyhow::Context;

/// A current-thread runtime for a command's requests.
pub fn small() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A multi-threaded runtime for serving.
pub fn server() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
