//! Backup files in the console: the Export wizard on a point (`point_export_start`, its
//! progress through a channel, recorded as an `export` session of the job) and "Open a backup
//! file" on the Restore points screen (`backup_file_info` without the password, then
//! `backup_file_open` with it: the file is kept open like a job's repository under a
//! `file:` key, and the usual browse, search and file restore work on it, with no provider).

use std::path::PathBuf;

use cloudkeep_repo::engine::portable::FileInfo;
use cloudkeep_tenant::catalog::PointView;
use cloudkeep_tenant::live::{RunEvent, RunKind};
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;

use super::blocking;
use super::jobs::to_channel;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// A backup file opened for restores.
#[derive(Debug, Clone, Serialize)]
pub struct OpenedFile {
    /// The key its browse and restore calls name instead of a job (`file:<path>`).
    pub key: String,
    /// Its point.
    pub point: PointView,
    /// What it holds.
    pub info: FileInfo,
}

fn full_path(path: &str) -> Result<PathBuf, CommandError> {
    let path = PathBuf::from(cloudkeep_model::paths::expand_home(
        path.trim(),
        cloudkeep_model::paths::user_home().as_deref(),
    ));
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(CommandError::invalid(
            "give the file's full path (or choose it with Browse)",
        ))
    }
}

/// The file name the Export wizard suggests: `<home>/<job> <YYYY-MM-DD HH.MM>.ckb`.
#[tauri::command]
pub fn export_file_hint(job: String, point_time_ms: i64) -> String {
    let when = chrono::DateTime::from_timestamp_millis(point_time_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H.%M")
                .to_string()
        })
        .unwrap_or_default();
    cloudkeep_model::paths::user_home()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("{job} {when}.ckb"))
        .display()
        .to_string()
}

/// Starts exporting `point` of `job` into a new backup file `to` under `password` (an
/// encrypted job's file needs one); its events go to `on_event`.
#[tauri::command]
pub fn point_export_start(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    to: String,
    password: Option<String>,
    on_event: Channel<RunEvent>,
) -> Result<(), CommandError> {
    let to = full_path(&to)?;
    if to.exists() {
        return Err(CommandError::invalid(format!(
            "{} already exists; choose another file name",
            to.display()
        )));
    }
    if let Some(p) = &password {
        cloudkeep_model::names::check_password(p).map_err(CommandError::invalid)?;
    }
    state
        .runs
        .start_export(&state.ctx, &job, &point, to, password)?;
    state
        .runs
        .watch(&job, RunKind::Export, to_channel(on_event));
    Ok(())
}

/// What the backup file at `path` holds (no password needed; a cut or damaged file is
/// refused here, naming the part).
#[tauri::command]
pub async fn backup_file_info(path: String) -> Result<FileInfo, CommandError> {
    let path = full_path(&path)?;
    blocking(move || Ok(cloudkeep_tenant::portable::file_info(&path)?)).await
}

/// Opens the backup file at `path` with `password` for browsing and restores.
#[tauri::command]
pub async fn backup_file_open(
    state: State<'_, ConsoleState>,
    path: String,
    password: Option<String>,
) -> Result<OpenedFile, CommandError> {
    let path = full_path(&path)?;
    let catalogs = state.catalogs.clone();
    blocking(move || {
        let info = cloudkeep_tenant::portable::file_info(&path)?;
        let (key, point) = catalogs.open_file(&path, password.as_deref())?;
        Ok(OpenedFile { key, point, info })
    })
    .await
}
