//! The console's state, registered once with `.manage()` at startup: the tenant context (data
//! home, local state and secrets, opened once on the console's runtime), the runs in progress,
//! the browse cache, the lab (when this console started it), the SP admin connection and the
//! restore points it publishes.

use cloudkeep_client::SpClient;
use cloudkeep_gateway::lab::LabInfo;
use cloudkeep_model::paths::DataHome;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::catalog::Catalogs;
use cloudkeep_tenant::live::Runs;
use cloudkeep_tenant::state::TenantState;

use crate::error::CommandError;

/// File name prefix of the console's rotating log files.
pub const LOG_PREFIX: &str = "console";

/// What every command may read.
pub struct ConsoleState {
    /// The data home resolved at startup; created and writable.
    pub home: DataHome,
    /// Problems found at startup that the user should see (shown as a banner).
    pub startup_warnings: Vec<String>,
    /// The tenant side, opened once: local state (providers, jobs, sessions) and passwords;
    /// every blocking entry point of the tenant crate takes it.
    pub ctx: TenantContext,
    /// Backups, restores and health checks running in this console.
    pub runs: Runs,
    /// Open repositories for browsing restore points.
    pub catalogs: Catalogs,
    /// The lab this console runs, once started.
    pub lab: tokio::sync::Mutex<Option<LabInfo>>,
    /// The SP admin connection (SP mode), shared with `cloudkeep sp` through the saved session.
    pub sp: tokio::sync::Mutex<Option<SpClient>>,
    /// Restore points this console publishes (ended when it closes).
    pub publications: Publications,
    /// When the process started.
    pub started: std::time::Instant,
    /// How long after `started` the first screen became interactive (set once).
    pub ready_after: std::sync::OnceLock<std::time::Duration>,
}

/// The publications this console serves (Linux; none elsewhere).
#[derive(Default)]
pub struct Publications {
    #[cfg(target_os = "linux")]
    live: std::sync::Mutex<Vec<cloudkeep_publish::publication::Published>>,
}

#[cfg(target_os = "linux")]
impl Publications {
    /// Keeps `p` served until it is taken or the console closes.
    pub fn keep(&self, p: cloudkeep_publish::publication::Published) {
        if let Ok(mut live) = self.live.lock() {
            live.push(p);
        }
    }

    /// The publication at `folder`, when this console serves it.
    pub fn take(
        &self,
        folder: &std::path::Path,
    ) -> Option<cloudkeep_publish::publication::Published> {
        let mut live = self.live.lock().ok()?;
        let at = live.iter().position(|p| p.record().folder == folder)?;
        Some(live.remove(at))
    }
}

impl Publications {
    /// Ends every publication this console serves (the console is closing).
    pub fn stop_all(&self) {
        #[cfg(target_os = "linux")]
        {
            let all = self
                .live
                .lock()
                .map(|mut l| std::mem::take(&mut *l))
                .unwrap_or_default();
            for p in all {
                if let Err(e) = p.stop() {
                    tracing::warn!("ending a publication: {e}");
                }
            }
        }
    }
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl ConsoleState {
    /// State for a resolved data home, with its local state open.
    pub fn new(
        home: DataHome,
        tenant: TenantState,
        startup_warnings: Vec<String>,
        started: std::time::Instant,
    ) -> Self {
        let catalogs = Catalogs::default();
        let runs = Runs::default();
        {
            // After a run, its job's repository is opened afresh: new points, new packs.
            let catalogs = catalogs.clone();
            // An opened backup file stays open for the next restore from it.
            runs.on_done(move |job, _| {
                if !job.starts_with(cloudkeep_tenant::catalog::FILE_KEY) {
                    catalogs.forget(job);
                }
            });
        }
        let ctx = TenantContext::on_runtime(
            home.clone(),
            tenant,
            tauri::async_runtime::handle().inner().clone(),
        );
        Self {
            home,
            startup_warnings,
            ctx,
            runs,
            catalogs,
            lab: tokio::sync::Mutex::new(None),
            sp: tokio::sync::Mutex::new(None),
            publications: Publications::default(),
            started,
            ready_after: std::sync::OnceLock::new(),
        }
    }

    /// The SP admin connection, from this console's login or the saved session.
    pub async fn sp_client(&self) -> Result<SpClient, CommandError> {
        let mut sp = self.sp.lock().await;
        if let Some(client) = sp.as_ref() {
            return Ok(client.clone());
        }
        let session = cloudkeep_client::SpSession::load(&self.home)?;
        let client = SpClient::from_session(&session)?;
        *sp = Some(client.clone());
        Ok(client)
    }
}
