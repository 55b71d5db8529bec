//! Backup jobs and their runs: the list with last result and next run, create (the New job
//! wizard), edit, delete, run now with live progress and log through a Tauri channel, stop,
//! a health check now, and the sessions with their logs.

use cloudkeep_tenant::jobs::{self, Job, JobSpec, SessionRecord};
use cloudkeep_tenant::keys;
use cloudkeep_tenant::live::{RunEvent, RunKind, Running};
use cloudkeep_tenant::overview::{JobSummary, brief, job_summaries};
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;

use super::blocking;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// The Jobs screen.
#[derive(Debug, Serialize)]
pub struct JobsView {
    /// Every job with its last result and next run.
    pub jobs: Vec<JobSummary>,
    /// What runs now.
    pub running: Vec<Running>,
}

/// Every job, and what runs now.
#[tauri::command]
pub async fn jobs_list(state: State<'_, ConsoleState>) -> Result<JobsView, CommandError> {
    let jobs = state.ctx.state().jobs().await?;
    let sessions = state.ctx.state().sessions(None).await?;
    Ok(JobsView {
        jobs: job_summaries(&jobs, &sessions),
        running: state.runs.running(),
    })
}

/// One job's settings.
#[tauri::command]
pub async fn job_get(state: State<'_, ConsoleState>, name: String) -> Result<Job, CommandError> {
    Ok(state.ctx.state().job(&name).await?)
}

/// Creates a job (`password`: its encryption password, for an encrypted job).
#[tauri::command]
pub async fn job_create(
    state: State<'_, ConsoleState>,
    name: String,
    spec: JobSpec,
    password: Option<String>,
) -> Result<Job, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        Ok(keys::create_job(
            &ctx,
            name.trim(),
            &spec,
            password.as_deref(),
        )?)
    })
    .await
}

/// Changes a job's settings (its target and encryption stay).
#[tauri::command]
pub async fn job_update(
    state: State<'_, ConsoleState>,
    name: String,
    spec: JobSpec,
) -> Result<Job, CommandError> {
    Ok(state.ctx.state().update_job(&name, &spec).await?)
}

/// Deletes a job and its stored password (its restore points stay).
#[tauri::command]
pub async fn job_delete(state: State<'_, ConsoleState>, name: String) -> Result<(), CommandError> {
    if !state.runs.running().iter().all(|r| r.job != name) {
        return Err(CommandError::invalid(format!(
            "\"{name}\" is running; stop it or wait for it before deleting the job"
        )));
    }
    state.catalogs.forget(&name);
    Ok(jobs::delete(state.ctx.state(), state.ctx.secrets(), &name).await?)
}

/// Compacts the repository of `name` now (recorded as a `compact` session); returns what it
/// did. Refused while the job runs.
#[tauri::command]
pub async fn job_compact(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<cloudkeep_repo::engine::gc::GcReport, CommandError> {
    if !state.runs.running().iter().all(|r| r.job != name) {
        return Err(CommandError::invalid(format!(
            "\"{name}\" is running; compact it when the run has finished"
        )));
    }
    state.catalogs.forget(&name);
    let ctx = state.ctx.clone();
    blocking(move || {
        let (_, outcome) = cloudkeep_tenant::runner::compact_job(&ctx, &name)?;
        Ok(outcome?)
    })
    .await
}

/// The key slots of job `name`'s repository.
#[tauri::command]
pub async fn job_keys(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<keys::SlotView>, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || Ok(keys::slots(&ctx, &name)?)).await
}

/// Adds a recovery-key slot to job `name`'s repository and writes the key to `path` (a new,
/// owner-only file chosen with the save dialog); returns the slot's id.
#[tauri::command]
pub async fn job_key_recovery(
    state: State<'_, ConsoleState>,
    name: String,
    path: String,
    label: String,
) -> Result<String, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        let path = std::path::PathBuf::from(&path);
        if path.exists() {
            return Err(CommandError::invalid(format!(
                "{} exists already; choose a new file for the recovery key",
                path.display()
            )));
        }
        let (id, key) = keys::add_recovery_key(&ctx, &name, &label)?;
        cloudkeep_model::paths::write_new_private_file(
            &path,
            format!("{}\n", key.to_text().as_str()).as_bytes(),
        )
        .map_err(|e| CommandError::invalid(format!("cannot write {}: {e}", path.display())))?;
        Ok(id)
    })
    .await
}

/// Changes the encryption password job `name` runs with (the data is not re-encrypted).
#[tauri::command]
pub async fn job_key_password(
    state: State<'_, ConsoleState>,
    name: String,
    password: String,
) -> Result<(), CommandError> {
    state.catalogs.forget(&name);
    let ctx = state.ctx.clone();
    blocking(move || Ok(keys::change_password(&ctx, &name, &password)?)).await
}

fn kind_of(kind: &str) -> Result<RunKind, CommandError> {
    match kind {
        "backup" => Ok(RunKind::Backup),
        "health-check" => Ok(RunKind::HealthCheck),
        "restore-test" => Ok(RunKind::RestoreTest),
        "restore" => Ok(RunKind::Restore),
        other => Err(CommandError::bad_request(format!(
            "no run kind \"{other}\"; use backup, health-check, restore-test or restore"
        ))),
    }
}

/// Sends a run's events to the page's channel.
pub(crate) fn to_channel(channel: Channel<RunEvent>) -> Box<dyn Fn(&RunEvent) + Send + Sync> {
    Box::new(move |event| {
        if let Err(e) = channel.send(event.clone()) {
            tracing::debug!("a view stopped listening to a run: {e}");
        }
    })
}

/// Starts a backup (or health check) of `name` now; its events go to `on_event`.
#[tauri::command]
pub fn job_run(
    state: State<'_, ConsoleState>,
    name: String,
    kind: String,
    on_event: Channel<RunEvent>,
) -> Result<(), CommandError> {
    let kind = kind_of(&kind)?;
    state.runs.start(&state.ctx, &name, kind)?;
    state.runs.watch(&name, kind, to_channel(on_event));
    Ok(())
}

/// Follows a run already going on (a view opened later); false when none runs.
#[tauri::command]
pub fn job_watch(
    state: State<'_, ConsoleState>,
    name: String,
    kind: String,
    on_event: Channel<RunEvent>,
) -> Result<bool, CommandError> {
    Ok(state
        .runs
        .watch(&name, kind_of(&kind)?, to_channel(on_event)))
}

/// Asks a run to stop; false when none runs.
#[tauri::command]
pub fn job_stop(
    state: State<'_, ConsoleState>,
    name: String,
    kind: String,
) -> Result<bool, CommandError> {
    Ok(state.runs.stop(&name, kind_of(&kind)?))
}

/// Every run going on.
#[tauri::command]
pub fn runs_list(state: State<'_, ConsoleState>) -> Vec<Running> {
    state.runs.running()
}

/// Sessions, newest first (of one job, or all), without their logs.
#[tauri::command]
pub async fn sessions_list(
    state: State<'_, ConsoleState>,
    job: Option<String>,
) -> Result<Vec<SessionRecord>, CommandError> {
    let all = state.ctx.state().sessions(job.as_deref()).await?;
    Ok(all.iter().map(brief).collect())
}

/// One session with its log.
#[tauri::command]
pub async fn session_get(
    state: State<'_, ConsoleState>,
    id: i64,
) -> Result<SessionRecord, CommandError> {
    Ok(state.ctx.state().session(id).await?)
}
