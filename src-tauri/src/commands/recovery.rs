//! Recovery media from the console: the wizard makes the ISO (`recovery_media_create`, the
//! same `cloudkeep_tenant::recovery::create_media` as `cloudkeep recovery-media create`) into
//! a file, or onto a USB stick whose current contents were shown and whose path the person
//! typed to confirm.

use std::path::PathBuf;

use cloudkeep_tenant::recovery::{MediaOptions, MediaReport};
use serde::Serialize;
use tauri::State;

use super::blocking;
use crate::error::CommandError;
use crate::state::ConsoleState;

/// What the wizard made.
#[derive(Debug, Clone, Serialize)]
pub struct MediaView {
    /// The ISO (or the ISO written onto `device`).
    pub report: MediaReport,
    /// The USB stick it was written onto, if any.
    pub device: Option<String>,
}

/// Makes recovery media for `provider` (the only one when absent): an ISO at `to`, or — when
/// `to` is a device — onto it, if `confirm` repeats its path.
#[tauri::command]
pub async fn recovery_media_create(
    state: State<'_, ConsoleState>,
    provider: Option<String>,
    serial: bool,
    with_password: bool,
    to: String,
    confirm: Option<String>,
) -> Result<MediaView, CommandError> {
    let to = PathBuf::from(to.trim());
    if !to.is_absolute() {
        return Err(CommandError::invalid(
            "give the full path of the ISO or of the USB stick (or choose it)",
        ));
    }
    let ctx = state.ctx.clone();
    blocking(move || {
        let device = cloudkeep_repo::image::target::inspect(&to)
            .map(|t| t.is_device)
            .unwrap_or(false);
        if device && confirm.as_deref().map(str::trim) != Some(&*to.to_string_lossy()) {
            return Err(CommandError::invalid(format!(
                "type {} exactly to confirm that everything on it is replaced",
                to.display()
            )));
        }
        let work = tempfile::tempdir().map_err(CommandError::failed)?;
        let out = if device {
            work.path().join("recovery.iso")
        } else {
            to.clone()
        };
        let options = MediaOptions {
            out,
            provider: provider.filter(|p| !p.is_empty()),
            with_password,
            serial,
            kernel: None,
        };
        let report = cloudkeep_tenant::recovery::create_media(&ctx, &options)?;
        if device {
            cloudkeep_tenant::recovery::write_to_device(
                &report.path,
                &to,
                confirm.as_deref().unwrap_or_default(),
            )?;
        }
        Ok(MediaView {
            report,
            device: device.then(|| to.display().to_string()),
        })
    })
    .await
}
