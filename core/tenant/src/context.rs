//! The tenant side of one process, opened once: the data home, the local state (its SQLite
//! pool), the secrets, and the async runtime its blocking entry points drive their async parts
//! on. The CLI opens one at start (`TenantContext::open`, with a runtime of its own); the
//! console opens one on its own runtime (`TenantContext::on_runtime`) and keeps it in its state.
//! Every blocking entry point of this crate (running a job, a restore, a policy change, an
//! agent's cycle) takes it; none reopens the database or builds a runtime per call.
//!
//! Invariant: [`TenantContext::block_on`] is for blocking entry points only, never called
//! from inside an async task (async code awaits [`TenantContext::state`]'s methods directly).

use std::future::Future;
use std::sync::Arc;

use cloudkeep_model::paths::DataHome;

use super::TenantError;
use super::secrets::Secrets;
use super::state::TenantState;

/// The tenant side of this process; cheap to clone (one shared inside).
#[derive(Clone)]
pub struct TenantContext(Arc<Inner>);

struct Inner {
    home: DataHome,
    state: TenantState,
    secrets: Secrets,
    driver: Driver,
}

/// Who drives the async parts.
enum Driver {
    /// A runtime of the context's own (a command-line process): one worker keeps the state's
    /// connections served while a blocking entry point waits.
    Own(tokio::runtime::Runtime),
    /// A runtime that runs anyway (the console's).
    Shared(tokio::runtime::Handle),
}

impl std::fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantContext")
            .field("home", &self.0.home)
            .finish_non_exhaustive()
    }
}

impl TenantContext {
    /// Opens the context of `home` with a runtime of its own. Blocking; call it from outside
    /// any async runtime.
    pub fn open(home: DataHome) -> Result<Self, TenantError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cloudkeep-tenant")
            .enable_all()
            .build()
            .map_err(|source| TenantError::Start {
                what: "the async runtime",
                source,
            })?;
        let state = runtime.block_on(TenantState::open(&home))?;
        Ok(Self::with(home, state, Driver::Own(runtime)))
    }

    /// The context of `home` on the running runtime of the caller (the console's), with the
    /// state already opened on it.
    pub fn on_runtime(home: DataHome, state: TenantState, runtime: tokio::runtime::Handle) -> Self {
        Self::with(home, state, Driver::Shared(runtime))
    }

    fn with(home: DataHome, state: TenantState, driver: Driver) -> Self {
        let secrets = Secrets::open(&home);
        Self(Arc::new(Inner {
            home,
            state,
            secrets,
            driver,
        }))
    }

    /// The data home.
    pub fn home(&self) -> &DataHome {
        &self.0.home
    }

    /// The local state.
    pub fn state(&self) -> &TenantState {
        &self.0.state
    }

    /// The passwords.
    pub fn secrets(&self) -> &Secrets {
        &self.0.secrets
    }

    /// Runs `work` to its end on the context's runtime, for a blocking entry point.
    pub fn block_on<F: Future>(&self, work: F) -> F::Output {
        match &self.0.driver {
            Driver::Own(runtime) => runtime.block_on(work),
            Driver::Shared(handle) => handle.block_on(work),
        }
    }
}
