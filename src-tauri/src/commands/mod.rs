//! The console's commands: each a few lines that call core and return its answer or a
//! [`CommandError`]. Every command is listed in `build.rs`, registered in `lib.rs` and granted
//! by name in `capabilities/main-window.json` (a test checks all three). Work that blocks
//! (the engine, a remote repository with its own runtime) runs on a blocking thread.
//!
//! Parts: this module (app, logs, overview), [`providers`] (service providers, the lab),
//! [`jobs`] (jobs, runs, sessions), [`points`] (browse, find, compare, restore),
//! [`publish`] (publish and unpublish points), [`backupfiles`] (export a point, open a
//! backup file), [`recovery`] (recovery media), [`subtenants`], [`policies`] (backup policies and their computers), [`notify`] (notifications, both modes), [`sp`] (SP mode), [`desktop`] (native dialogs, opening a folder).

pub mod backupfiles;
pub mod desktop;
pub mod jobs;
pub mod notify;
pub mod points;
pub mod policies;
pub mod providers;
pub mod publish;
pub mod recovery;
pub mod replication;
pub mod sp;
pub mod subtenants;

use cloudkeep_model::about::AboutInfo;
use cloudkeep_tenant::logging::{self, LogTail};
use cloudkeep_tenant::overview::{self, Overview};
use tauri::State;

use crate::error::CommandError;
use crate::state::{ConsoleState, LOG_PREFIX};

/// Most log lines one request may ask for.
pub const MAX_LOG_LINES: u32 = 5_000;

/// Runs blocking work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| CommandError::failed(format!("the console's worker failed: {e}")))?
}

/// The rules the forms check as you type (names, password length), from the shared model so
/// that the page never spells them again; the crates check them once more.
#[tauri::command]
pub fn input_rules() -> cloudkeep_model::names::InputRules {
    cloudkeep_model::names::input_rules()
}

/// Version, protocol and folders: the About panel.
#[tauri::command]
pub fn app_info(state: State<'_, ConsoleState>) -> AboutInfo {
    AboutInfo::for_home(&state.home)
}

/// The last `lines` lines of the console's newest log file.
#[tauri::command]
pub fn log_tail(state: State<'_, ConsoleState>, lines: u32) -> Result<LogTail, CommandError> {
    if lines == 0 || lines > MAX_LOG_LINES {
        return Err(CommandError::bad_request(format!(
            "asked for {lines} log lines; ask for 1 to {MAX_LOG_LINES}"
        )));
    }
    Ok(logging::tail(
        &state.home.logs(),
        LOG_PREFIX,
        lines as usize,
    )?)
}

/// Problems found at startup, for the banner.
#[tauri::command]
pub fn startup_warnings(state: State<'_, ConsoleState>) -> Vec<String> {
    state.startup_warnings.clone()
}

/// The page calls this once its first screen is interactive: the time since the process
/// started is logged (the first time only) and returned, in milliseconds.
#[tauri::command]
pub fn app_ready(state: State<'_, ConsoleState>) -> f64 {
    let after = *state.ready_after.get_or_init(|| {
        let after = state.started.elapsed();
        tracing::info!(
            ms = format!("{:.1}", after.as_secs_f64() * 1e3),
            "first screen interactive"
        );
        after
    });
    after.as_secs_f64() * 1e3
}

/// Home: latest sessions, quota use, jobs with next runs, warnings. With `rescan`, providers
/// are asked for fresh figures first.
#[tauri::command]
pub async fn overview(
    state: State<'_, ConsoleState>,
    rescan: bool,
) -> Result<HomeView, CommandError> {
    let overview = overview::overview(
        state.ctx.state(),
        state.ctx.secrets(),
        chrono::Local::now(),
        rescan,
    )
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(HomeView {
        overview,
        daemon_running: cloudkeep_tenant::scheduler::daemon_running(state.ctx.home(), now),
    })
}

/// Home's overview and who runs the scheduled jobs.
#[derive(Debug, serde::Serialize)]
pub struct HomeView {
    /// Sessions, repositories, jobs, warnings.
    #[serde(flatten)]
    pub overview: Overview,
    /// Whether `cloudkeep daemon` runs this data folder's scheduled jobs (else they run only
    /// while the console is open).
    pub daemon_running: bool,
}
