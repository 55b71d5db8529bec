//! `cloudkeep points mount|unmount`: a restore point published read-only at a folder
//! (FUSE, Linux) for the computer's own tools, until Ctrl-C, SIGTERM or `points unmount`. The
//! repository stays locked shared while it is published, so no compaction removes what the
//! mount reads; a killed publication unmounts itself where the system allows
//! (`auto_unmount`), and `points unmount` cleans up where it does not.

use std::path::Path;
use std::process::ExitCode;

use cloudkeep_repo::repo::Repository;

/// Blobs a publication keeps opened (bytes).
#[cfg(target_os = "linux")]
const CACHE_BYTES: usize = 64 << 20;

/// Publishes point `point` of `repo` (job `job`) at `mountpoint`; returns when unpublished.
#[cfg(target_os = "linux")]
pub fn mount(
    repo: Repository,
    job: &str,
    point: &str,
    mountpoint: &Path,
) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    if !mountpoint.is_dir() {
        anyhow::bail!(
            "{} is not a folder; create an empty folder to publish the point at",
            mountpoint.display()
        );
    }
    let found = repo.find_job_point(job, point)?;
    let _lock =
        cloudkeep_repo::lock::acquire(repo.backend(), cloudkeep_repo::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    let short = found.short_id().to_owned();
    let tree = cloudkeep_publish::tree::Tree::new(repo, index, found);
    let fs = cloudkeep_publish::fs::PointFs::new(tree, CACHE_BYTES);
    let session =
        cloudkeep_publish::fs::publish(fs, mountpoint, &format!("cloudkeep:{job}:{short}"))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot publish at {}: {e} (is FUSE installed: the fuse3 package?)",
                    mountpoint.display()
                )
            })?;
    println!(
        "restore point {short} of job \"{job}\" published read-only at {}; unpublish with Ctrl-C or `cloudkeep points unmount {}`",
        mountpoint.display(),
        mountpoint.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(crate::gateway::shutdown_signal());
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    while !stop.load(Ordering::SeqCst) && !session.guard.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let unmounted_outside = session.guard.is_finished();
    if !unmounted_outside {
        // Unmounting ends the kernel's connection, so the serving threads stop; fuser's own
        // unmount waits for them first and, with `auto_unmount`, never returns.
        if let Err(e) = cloudkeep_publish::fs::unpublish(mountpoint) {
            tracing::warn!("ending the publication: {e}");
        }
        let started = std::time::Instant::now();
        while !session.guard.is_finished() && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    if session.guard.is_finished()
        && let Err(e) = session.join()
    {
        tracing::debug!("ending the publication: {e}");
    }
    println!(
        "restore point {short} unpublished{}",
        if unmounted_outside {
            " (unmounted)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Unpublishes the point published at `mountpoint`.
#[cfg(target_os = "linux")]
pub fn unmount(mountpoint: &Path) -> anyhow::Result<ExitCode> {
    cloudkeep_publish::fs::unpublish(mountpoint).map_err(|e| anyhow::anyhow!(e))?;
    println!("{} unpublished", mountpoint.display());
    Ok(ExitCode::SUCCESS)
}

/// Publishing needs FUSE: Linux for now (WinFsp is the Windows shape, not built yet).
#[cfg(not(target_os = "linux"))]
pub fn mount(
    _repo: Repository,
    _job: &str,
    _point: &str,
    _mountpoint: &Path,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("publishing a restore point needs FUSE, on Linux; restore files instead")
}

/// See [`mount`].
#[cfg(not(target_os = "linux"))]
pub fn unmount(_mountpoint: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("publishing a restore point needs FUSE, on Linux")
}
