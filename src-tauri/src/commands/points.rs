//! Restore points: the list by job, the tree browser (a folder a page at a time, from the
//! cached open repository), search by name, compare two points, and the restore wizard's
//! run (its progress and report through a Tauri channel).

use std::path::PathBuf;

use cloudkeep_repo::engine::browse::{Change, Found};
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions};
use cloudkeep_tenant::catalog::{Page, PointChangesView, PointView};
use cloudkeep_tenant::live::RunEvent;
use tauri::State;
use tauri::ipc::Channel;

use super::blocking;
use super::jobs::to_channel;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// Most search hits one search returns.
const MAX_HITS: usize = 2_000;

/// The restore points of `job` (never another job's, even on the same repository).
#[tauri::command]
pub async fn points_list(
    state: State<'_, ConsoleState>,
    job: String,
) -> Result<Vec<PointView>, CommandError> {
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.points(&ctx, &job)?)).await
}

/// Reads `job`'s repository afresh next time (new points from elsewhere).
#[tauri::command]
pub fn points_refresh(state: State<'_, ConsoleState>, job: String) {
    state.catalogs.forget(&job);
}

/// A page of a folder of a point.
#[tauri::command]
pub async fn point_list_dir(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    path: String,
    offset: usize,
    limit: usize,
) -> Result<Page, CommandError> {
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.list(&ctx, &job, &point, &path, offset, limit)?)).await
}

/// Entries whose name matches `pattern` (a glob such as `*.pdf`; a plain word matches
/// names containing it).
#[tauri::command]
pub async fn point_find(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    pattern: String,
) -> Result<Vec<Found>, CommandError> {
    let pattern = pattern.trim().to_owned();
    if pattern.is_empty() {
        return Err(CommandError::invalid(
            "type a name or a pattern such as *.pdf",
        ));
    }
    let glob = if pattern.contains(['*', '?', '[']) {
        pattern
    } else {
        format!("*{pattern}*")
    };
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.find(&ctx, &job, &point, &glob, MAX_HITS)?)).await
}

/// Deletes a restore point of `job` (to the provider's recycle bin where the tenant has
/// insider protection); returns its short id.
#[tauri::command]
pub async fn point_delete(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
) -> Result<String, CommandError> {
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.delete(&ctx, &job, &point)?)).await
}

/// What each point of `job` changed since the one before it, newest first.
#[tauri::command]
pub async fn point_changes(
    state: State<'_, ConsoleState>,
    job: String,
) -> Result<Vec<PointChangesView>, CommandError> {
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.changes(&ctx, &job)?)).await
}

/// What changed from point `from` to point `to`.
#[tauri::command]
pub async fn point_diff(
    state: State<'_, ConsoleState>,
    job: String,
    from: String,
    to: String,
) -> Result<Vec<Change>, CommandError> {
    let (catalogs, ctx) = (state.catalogs.clone(), state.ctx.clone());
    blocking(move || Ok(catalogs.diff(&ctx, &job, &from, &to)?)).await
}

/// Starts a restore of `paths` (everything when empty) from `point` of `job` into `to` (where
/// they came from when absent); its progress and report go to `on_event`. `job` may be the
/// key of an opened backup file.
#[tauri::command]
pub fn restore_start(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    paths: Vec<String>,
    to: Option<String>,
    conflict: String,
    on_event: Channel<RunEvent>,
) -> Result<(), CommandError> {
    let conflict: Conflict = conflict.parse().map_err(CommandError::bad_request)?;
    let destination = match to.as_deref().map(str::trim) {
        None | Some("") => Destination::Original,
        Some(folder) if std::path::Path::new(folder).is_absolute() => {
            Destination::Folder(PathBuf::from(folder))
        }
        Some(folder) => {
            return Err(CommandError::invalid(format!(
                "\"{folder}\" is not a full path; choose the folder with Browse"
            )));
        }
    };
    let options = RestoreOptions {
        destination,
        paths,
        conflict,
        cancel: Default::default(),
    };
    if job.starts_with(cloudkeep_tenant::catalog::FILE_KEY) {
        // An opened backup file: no job, no session.
        state
            .runs
            .start_file_restore(&state.ctx, &state.catalogs, &job, &point, options)?;
    } else {
        state
            .runs
            .start_restore(&state.ctx, &job, &point, options)?;
    }
    state.runs.watch(
        &job,
        cloudkeep_tenant::live::RunKind::Restore,
        to_channel(on_event),
    );
    Ok(())
}

/// Orders a restore on the policy computer whose job `job` is: its agent carries it out on
/// its next cycle (`to`: a folder on that computer; `None`: where the items came from there).
#[tauri::command]
pub async fn job_restore_order(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    paths: Vec<String>,
    to: Option<String>,
    conflict: String,
) -> Result<cloudkeep_api::policy::RestoreOrder, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        let (policy, computer) = cloudkeep_tenant::policies::policy_of_job(&ctx, &job)?;
        Ok(cloudkeep_tenant::policies::order_restore(
            &ctx,
            &policy.name,
            &cloudkeep_api::policy::RestoreOrderRequest {
                computer,
                point,
                paths,
                to,
                conflict,
            },
        )?)
    })
    .await
}

/// The restores ordered for the policy computer of job `job`, newest first.
#[tauri::command]
pub async fn job_restore_orders(
    state: State<'_, ConsoleState>,
    job: String,
) -> Result<Vec<cloudkeep_api::policy::RestoreOrder>, CommandError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        let (policy, computer) = cloudkeep_tenant::policies::policy_of_job(&ctx, &job)?;
        Ok(
            cloudkeep_tenant::policies::restore_orders(&ctx, &policy.name)?
                .into_iter()
                .filter(|o| o.computer == computer)
                .collect(),
        )
    })
    .await
}

/// This computer's disks and volumes (name, size, file system, mount point, space in use):
/// the Backup mode step's list.
#[tauri::command]
pub async fn computer_volumes()
-> Result<Vec<cloudkeep_repo::image::devices::VolumeInfo>, CommandError> {
    blocking(|| Ok(cloudkeep_repo::image::devices::inventory())).await
}

/// What a restore target holds now (a device or an image file), before the person confirms.
#[tauri::command]
pub async fn image_target(
    path: String,
) -> Result<cloudkeep_repo::image::target::Target, CommandError> {
    blocking(move || {
        cloudkeep_repo::image::target::inspect(std::path::Path::new(path.trim()))
            .map_err(|e| CommandError::invalid(e.to_string()))
    })
    .await
}

/// Starts an image-level restore: a volume (`volume`) or a whole disk of `point` onto `to` (a
/// device or an image file), a disk in `format` (raw, vhd, vhd-fixed, vhdx, vmdk). An
/// existing target is overwritten only when `confirm` repeats its path (the wizard's typed
/// confirmation); progress and report go to `on_event`.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub fn image_restore_start(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    disk: String,
    volume: Option<u32>,
    format: String,
    to: String,
    confirm: String,
    on_event: Channel<RunEvent>,
) -> Result<(), CommandError> {
    let format: cloudkeep_repo::image::export::Format =
        format.parse().map_err(CommandError::bad_request)?;
    let target = PathBuf::from(to.trim());
    if !target.is_absolute() {
        return Err(CommandError::invalid(
            "give the full path of the device or file, or choose it with Browse",
        ));
    }
    let found = cloudkeep_repo::image::target::inspect(&target)
        .map_err(|e| CommandError::invalid(e.to_string()))?;
    if found.exists && confirm.trim() != target.to_string_lossy() {
        return Err(CommandError::invalid(format!(
            "{} will be overwritten: type its path to confirm",
            target.display()
        )));
    }
    let what = cloudkeep_repo::engine::disk::ImageRestore {
        disk,
        volume,
        format,
    };
    state
        .runs
        .start_image_restore(&state.ctx, &job, &point, what, target)?;
    state.runs.watch(
        &job,
        cloudkeep_tenant::live::RunKind::Restore,
        to_channel(on_event),
    );
    Ok(())
}
