//! Publishing restore points from the console (Publish / Unpublish on the Restore points
//! screen): the same publication as `cloudkeep points mount`
//! (`cloudkeep_publish::publication`), served by the console's own process while it runs and
//! ended when it closes; the list shows every publication of this data home, the CLI's too,
//! with where and since when. Linux (FUSE); elsewhere every call says so.

#[cfg(target_os = "linux")]
use std::path::PathBuf;

use serde::Serialize;
use tauri::State;

#[cfg(target_os = "linux")]
use super::blocking;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// A volume of a publication attached for the OS's own driver.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedView {
    /// Its name (`sda1`).
    pub volume: String,
    /// Where it is mounted.
    pub at: String,
    /// Its loop device.
    pub device: String,
}

/// A publication as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PublicationView {
    /// Where it is published.
    pub folder: String,
    /// Whose point.
    pub job: String,
    /// The point's id.
    pub point: String,
    /// Its first 12 characters.
    pub short_id: String,
    /// The point's time, ms since the epoch.
    pub point_time_ms: i64,
    /// When it was published, ms since the epoch.
    pub since_ms: i64,
    /// The process serving it.
    pub pid: u32,
    /// Whether this console serves it (it ends when the console closes).
    pub here: bool,
    /// Volumes attached.
    pub attached: Vec<AttachedView>,
    /// Volumes that could not be attached, and why (only as it is published).
    pub not_attached: Vec<String>,
}

impl PublicationView {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn of(p: &cloudkeep_publish::registry::Publication) -> Self {
        Self {
            folder: p.folder.display().to_string(),
            job: p.job.clone(),
            point: p.point.clone(),
            short_id: p.point[..12.min(p.point.len())].to_owned(),
            point_time_ms: p.point_time_ns.div_euclid(1_000_000),
            since_ms: p.since.saturating_mul(1000),
            pid: p.pid,
            here: p.pid == std::process::id(),
            attached: p
                .attached
                .iter()
                .map(|a| AttachedView {
                    volume: a.volume.clone(),
                    at: a.at.display().to_string(),
                    device: a.device.clone(),
                })
                .collect(),
            not_attached: Vec::new(),
        }
    }
}

/// The folder the Publish form suggests: `<home>/Cloudkeep/<job> <point id>`.
#[tauri::command]
pub fn publish_folder_hint(job: String, point: String) -> String {
    let short = &point[..12.min(point.len())];
    let base = cloudkeep_model::paths::user_home().unwrap_or_else(std::env::temp_dir);
    base.join("Cloudkeep")
        .join(format!("{job} {short}"))
        .display()
        .to_string()
}

/// Every publication of this data home whose mount is there (this console's and the CLI's).
#[tauri::command]
pub async fn publications_list(
    state: State<'_, ConsoleState>,
) -> Result<Vec<PublicationView>, CommandError> {
    #[cfg(target_os = "linux")]
    {
        let registry = cloudkeep_publish::registry::Registry::at(state.home.publications());
        blocking(move || {
            Ok(cloudkeep_publish::publication::list(&registry)
                .iter()
                .map(PublicationView::of)
                .collect())
        })
        .await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = state;
        Ok(Vec::new())
    }
}

/// Publishes `point` of `job` read-only at `folder` (created when missing; it must be
/// empty), attaching its volumes for the OS's drivers when `attach`.
#[tauri::command]
pub async fn point_publish(
    state: State<'_, ConsoleState>,
    job: String,
    point: String,
    folder: String,
    attach: bool,
) -> Result<PublicationView, CommandError> {
    #[cfg(target_os = "linux")]
    {
        let folder = PathBuf::from(cloudkeep_model::paths::expand_home(
            folder.trim(),
            cloudkeep_model::paths::user_home().as_deref(),
        ));
        if !folder.is_absolute() {
            return Err(CommandError::invalid(
                "choose the folder to publish at with its full path (or Browse…)",
            ));
        }
        if !folder.exists() {
            std::fs::create_dir_all(&folder).map_err(|e| {
                CommandError::invalid(format!("cannot create {}: {e}", folder.display()))
            })?;
        }
        let ctx = state.ctx.clone();
        let registry = cloudkeep_publish::registry::Registry::at(state.home.publications());
        let published = blocking(move || {
            let record = ctx.block_on(ctx.state().job(&job))?;
            let repo = cloudkeep_tenant::runner::open_job_repository(&ctx, &record)?;
            let request = cloudkeep_publish::publication::Request {
                job: &job,
                point: &point,
                folder: &folder,
                attach,
            };
            let (published, not_attached) =
                cloudkeep_publish::publication::start(repo, &request, registry)
                    .map_err(|e| CommandError::invalid(e.to_string()))?;
            let not_attached: Vec<String> = not_attached
                .iter()
                .map(|n| format!("{}: {}", n.volume, n.reason))
                .collect();
            for n in &not_attached {
                tracing::warn!("volume not attached: {n}");
            }
            Ok((published, not_attached))
        })
        .await?;
        let (published, not_attached) = published;
        let mut view = PublicationView::of(published.record());
        view.not_attached = not_attached;
        state.publications.keep(published);
        Ok(view)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (state, job, point, folder, attach);
        Err(CommandError::invalid(
            "publishing a restore point needs FUSE, on Linux; restore its files instead",
        ))
    }
}

/// Unpublishes the point at `folder`: this console's own publication ends; one of another
/// process (the CLI's, or one left by a killed process) is unmounted.
#[tauri::command]
pub async fn point_unpublish(
    state: State<'_, ConsoleState>,
    folder: String,
) -> Result<(), CommandError> {
    #[cfg(target_os = "linux")]
    {
        let folder = PathBuf::from(folder);
        let mine = state.publications.take(&folder);
        let registry = cloudkeep_publish::registry::Registry::at(state.home.publications());
        blocking(move || {
            match mine {
                Some(p) => p.stop(),
                None => {
                    let r = cloudkeep_publish::fs::unpublish(&folder);
                    registry.forget_folder(&folder);
                    r
                }
            }
            .map_err(CommandError::invalid)
        })
        .await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (state, folder);
        Err(CommandError::invalid(
            "publishing a restore point needs FUSE, on Linux",
        ))
    }
}
