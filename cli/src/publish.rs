//! `cloudkeep points mount|unmount|published`: a restore point published read-only at a
//! folder (FUSE, Linux) for the computer's own tools, until Ctrl-C, SIGTERM or `points
//! unmount`; `--attach` also hands its volumes to the OS's own drivers (loop devices). The
//! publication itself (lock, mount, attach, record) is `cloudkeep_publish::publication`,
//! shared with the console; a killed publication unmounts itself where the system allows
//! (`auto_unmount`), and `points unmount` cleans up where it does not.

use std::path::Path;
use std::process::ExitCode;

use cloudkeep_model::paths::DataHome;
use cloudkeep_repo::repo::Repository;

/// Publishes point `point` of `repo` (job `job`) at `mountpoint`; returns when unpublished.
#[cfg(target_os = "linux")]
pub fn mount(
    home: &DataHome,
    repo: Repository,
    job: &str,
    point: &str,
    mountpoint: &Path,
    attach: bool,
) -> anyhow::Result<ExitCode> {
    use cloudkeep_publish::publication::{self, Request};
    use cloudkeep_publish::registry::Registry;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let request = Request {
        job,
        point,
        folder: mountpoint,
        attach,
    };
    // The stop signals are listened for before the point is published: a SIGTERM sent as soon
    // as the mount is there unpublishes it instead of killing this process.
    let signals = crate::runtime::small()?;
    let shutdown = {
        let _in = signals.enter();
        crate::shutdown::Shutdown::install()
    };
    let (published, not_attached) =
        publication::start(repo, &request, Registry::at(home.publications()))?;
    let record = published.record().clone();
    let short = &record.point[..12.min(record.point.len())];
    for a in &record.attached {
        println!(
            "volume {} attached read-only as {} and mounted at {}",
            a.volume,
            a.device,
            a.at.display()
        );
    }
    for n in &not_attached {
        eprintln!("volume {} not attached: {}", n.volume, n.reason);
    }
    println!(
        "restore point {short} of job \"{job}\" published read-only at {}; unpublish with Ctrl-C or `cloudkeep points unmount {}`",
        record.folder.display(),
        record.folder.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            signals.block_on(shutdown.recv());
            stop.store(true, Ordering::SeqCst);
        });
    }
    while !stop.load(Ordering::SeqCst) && !published.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let unmounted_outside = published.is_finished();
    if let Err(e) = published.stop() {
        tracing::warn!("ending the publication: {e}");
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
pub fn unmount(home: &DataHome, mountpoint: &Path) -> anyhow::Result<ExitCode> {
    let result = cloudkeep_publish::fs::unpublish(mountpoint);
    if let Ok(at) = std::fs::canonicalize(mountpoint) {
        cloudkeep_publish::registry::Registry::at(home.publications()).forget_folder(&at);
    }
    result.map_err(|e| anyhow::anyhow!(e))?;
    println!("{} unpublished", mountpoint.display());
    Ok(ExitCode::SUCCESS)
}

/// The points published from this data home: where, which, since when.
#[cfg(target_os = "linux")]
pub fn published(home: &DataHome, json: bool) -> anyhow::Result<ExitCode> {
    let registry = cloudkeep_publish::registry::Registry::at(home.publications());
    let all = cloudkeep_publish::publication::list(&registry);
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no restore point is published");
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now().timestamp();
    for p in all {
        println!(
            "{}  job \"{}\"  point {} ({})  published {} ago  by process {}",
            p.folder.display(),
            p.job,
            &p.point[..12.min(p.point.len())],
            crate::show::time_text(p.point_time_ns),
            cloudkeep_model::units::human_duration(now.saturating_sub(p.since).unsigned_abs()),
            p.pid
        );
        for a in &p.attached {
            println!(
                "    {} attached as {} at {}",
                a.volume,
                a.device,
                a.at.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishing needs FUSE: Linux for now (WinFsp is the Windows shape, not built yet).
#[cfg(not(target_os = "linux"))]
pub fn mount(
    _home: &DataHome,
    _repo: Repository,
    _job: &str,
    _point: &str,
    _mountpoint: &Path,
    _attach: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("publishing a restore point needs FUSE, on Linux; restore files instead")
}

/// See [`mount`].
#[cfg(not(target_os = "linux"))]
pub fn unmount(_home: &DataHome, _mountpoint: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("publishing a restore point needs FUSE, on Linux")
}

/// See [`mount`].
#[cfg(not(target_os = "linux"))]
pub fn published(_home: &DataHome, _json: bool) -> anyhow::Result<ExitCode> {
    println!("no restore point is published (publishing needs FUSE, on Linux)");
    Ok(ExitCode::SUCCESS)
}
