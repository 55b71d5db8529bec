//! What the console does on its own while it is open: the tenant's scheduler (every half
//! minute it starts the backups and health checks that are due and not running, as
//! `cloudkeep daemon` does — and leaves them to the daemon while one runs for this data
//! folder), replicas' scheduled cycles on a thread of their own, and the lab gateway once the first-run screen asked for it (or
//! at startup, when this data folder has a lab).

use std::time::Duration;

use cloudkeep_gateway::lab::{self, LabInfo};
use tauri::Manager;

use crate::error::CommandError;
use crate::state::ConsoleState;

/// How often the scheduler looks for due jobs.
const SCHEDULER_TICK: Duration = Duration::from_secs(30);

/// How long the lab may take to listen.
const LAB_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the scheduler's thread.
pub fn start_scheduler(app: &tauri::AppHandle) {
    let app = app.clone();
    let spawned = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || {
            loop {
                let state = app.state::<ConsoleState>();
                // `cloudkeep daemon` runs scheduled jobs for this data folder: leave them to
                // it, so a due job never starts twice.
                let now = chrono::Utc::now().timestamp_millis();
                if cloudkeep_tenant::scheduler::daemon_running(state.ctx.home(), now) {
                    std::thread::sleep(SCHEDULER_TICK);
                    continue;
                }
                let pass = tauri::async_runtime::block_on(async {
                    let jobs = state.ctx.state().jobs().await?;
                    let sessions = state.ctx.state().sessions(None).await?;
                    Ok::<_, cloudkeep_tenant::TenantError>((jobs, sessions))
                });
                match pass {
                    Ok((jobs, sessions)) => {
                        for due in state.runs.start_due(
                            &state.ctx,
                            &jobs,
                            &sessions,
                            chrono::Local::now(),
                        ) {
                            tracing::info!(job = %due.job, kind = %due.kind, "scheduled run started");
                        }
                    }
                    Err(e) => tracing::warn!("the scheduler could not read the jobs: {e}"),
                }
                std::thread::sleep(SCHEDULER_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("the scheduler could not start: {e}");
    }
}

/// Starts the replication thread: replicas' scheduled cycles, one after another, on a thread
/// of their own (a first cycle may take long; backups do not wait for it) — left to
/// `cloudkeep daemon` while one runs for this data folder.
pub fn start_replication(app: &tauri::AppHandle) {
    let app = app.clone();
    let spawned = std::thread::Builder::new()
        .name("replication".into())
        .spawn(move || {
            loop {
                let state = app.state::<ConsoleState>();
                let now = chrono::Utc::now().timestamp_millis();
                if !cloudkeep_tenant::scheduler::daemon_running(state.ctx.home(), now) {
                    match cloudkeep_tenant::scheduler::run_due_replicas(&state.ctx, now) {
                        Ok(ran) => {
                            for (replica, outcome) in ran {
                                tracing::info!(%replica, ok = outcome.is_ok(), "scheduled replication cycle");
                            }
                        }
                        Err(e) => tracing::warn!("the replicas could not be read: {e}"),
                    }
                }
                std::thread::sleep(SCHEDULER_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("the replication thread could not start: {e}");
    }
}

/// Whether this data folder has a lab from an earlier run.
pub fn has_lab(state: &ConsoleState) -> bool {
    lab::lab_dir(&state.home).join("lab.json").is_file()
}

/// Starts the lab gateway in this console unless it runs already; returns how to reach it.
pub async fn start_lab(state: &ConsoleState) -> Result<LabInfo, CommandError> {
    let mut running = state.lab.lock().await;
    if let Some(info) = running.as_ref() {
        return Ok(info.clone());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let home = state.home.clone();
    tauri::async_runtime::spawn(async move {
        let served = lab::run_lab(
            &home,
            move |info| {
                let _ = tx.send(info);
            },
            std::future::pending::<()>(),
        )
        .await;
        if let Err(e) = served {
            tracing::error!("the lab gateway stopped: {e}");
        }
    });
    let info = tokio::time::timeout(LAB_START_TIMEOUT, rx)
        .await
        .map_err(|_| {
            CommandError::failed("the lab gateway did not start within a minute; see Logs")
        })?
        .map_err(|_| CommandError::failed("the lab gateway could not start; see Logs for why"))?;
    tracing::info!(address = %info.address, "lab gateway running");
    *running = Some(info.clone());
    Ok(info)
}
