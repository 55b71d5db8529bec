//! The console's commands: each a few lines that call core and return its answer or a
//! [`CommandError`]. Every command here is listed in `build.rs` and granted by name in
//! `capabilities/main-window.json`.

use cloudkeep_core::about::AboutInfo;
use cloudkeep_core::logging::{self, LogTail};
use tauri::State;

use crate::error::CommandError;
use crate::state::{ConsoleState, LOG_PREFIX};

/// Most log lines one request may ask for.
pub const MAX_LOG_LINES: u32 = 5_000;

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
