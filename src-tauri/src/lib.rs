//! Cloudkeep Console: the Tauri 2 shell over `cloudkeep-core`.
//!
//! Startup resolves the data home, starts the rotating file log and registers the state
//! once; commands (in [`commands`]) are a few lines that hand the work to core. Nothing here
//! is domain logic: if a command grows past a screen, its body belongs in core.

pub mod commands;
pub mod error;
pub mod state;

use std::process::ExitCode;

use cloudkeep_core::logging::{self, LogFile, LogOptions};
use cloudkeep_core::paths::DataHome;

use crate::state::ConsoleState;

/// How many daily log files the console keeps.
const KEEP_LOG_FILES: usize = 14;

/// Starts the console and blocks until its window closes.
pub fn run() -> ExitCode {
    let home = match DataHome::locate().and_then(|home| home.ensure().map(|()| home)) {
        Ok(home) => home,
        Err(e) => {
            eprintln!("Cloudkeep Console cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut warnings = Vec::new();
    let _log_guard = match logging::init(&LogOptions {
        stderr_level: None,
        file: Some(LogFile {
            dir: home.logs(),
            prefix: state::LOG_PREFIX,
            keep_files: KEEP_LOG_FILES,
        }),
    }) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("Cloudkeep Console runs without a log file: {e}");
            warnings.push(format!("The console is running without a log file: {e}"));
            None
        }
    };
    tracing::info!(
        version = cloudkeep_core::VERSION,
        data_folder = %home.root().display(),
        "console starting"
    );

    let result = tauri::Builder::default()
        .manage(ConsoleState::new(home, warnings))
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::log_tail,
            commands::startup_warnings,
        ])
        .run(tauri::generate_context!());
    match result {
        Ok(()) => {
            tracing::info!("console closed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "console failed");
            eprintln!(
                "Cloudkeep Console failed: {e}. On Linux it needs a graphical session (DISPLAY or WAYLAND_DISPLAY) and WebKitGTK 4.1."
            );
            ExitCode::FAILURE
        }
    }
}
