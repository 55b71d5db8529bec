//! Holding a volume still while its image is read, so that the image is what the volume was
//! at one moment. How a volume is held depends on what it is:
//!
//! - an LVM logical volume is read from a temporary snapshot (`lvcreate --snapshot`), removed
//!   afterwards (and, if a run was killed, by the next run);
//! - a mounted file system is frozen (`fsfreeze`: the kernel flushes it and blocks writers)
//!   only while its own blocks are read, and thawed at once after — by a watchdog process too,
//!   so a killed backup or one over the time limit never leaves a machine's file system frozen;
//! - an unmounted volume is read as it is.
//!
//! A file system holding the backup's own files (its data home, a local repository, the
//! root file system) is never frozen — the backup would wait on itself — it is read live and
//! the session says so. Windows is designed for, not built: a `Holder` there asks VSS for a
//! shadow copy of the volume and reads the copy (`source`), as the LVM snapshot is read here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::devices::{self, BlockDevice, DeviceKind};

/// Longest a volume stays frozen: a watchdog thaws it then, and the image is marked as read
/// live from that point.
pub const MAX_FREEZE_SECS: u64 = 600;

/// How a volume was held while read.
pub struct Hold {
    /// For the session log: "frozen (mounted at /srv)", "read from an LVM snapshot", …
    pub how: String,
    /// Read the volume from here instead of the disk (a snapshot), from its start.
    pub source: Option<PathBuf>,
    /// Nothing writes to what is read: the volume is unmounted, frozen (after a sync) or a
    /// snapshot. Only then are its on-disk inodes as new as its data (`changes`).
    pub still: bool,
    release: Option<Release>,
}

enum Release {
    Thaw { mount: PathBuf, watchdog: Child },
    RemoveSnapshot { lv: String },
}

impl Hold {
    fn live(how: impl Into<String>) -> Self {
        Self {
            how: how.into(),
            source: None,
            still: false,
            release: None,
        }
    }

    fn unmounted() -> Self {
        Self {
            how: "read as it is (not mounted)".into(),
            source: None,
            still: true,
            release: None,
        }
    }

    /// Lets the volume go (thaws it, removes its snapshot); says how it went.
    pub fn release(mut self) -> Result<(), String> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), String> {
        match self.release.take() {
            None => Ok(()),
            Some(Release::Thaw {
                mount,
                mut watchdog,
            }) => {
                let thawed = run("fsfreeze", &["--unfreeze".as_ref(), mount.as_os_str()]);
                // The watchdog stands down only after the thaw; if it already thawed (time
                // limit), the image was partly read live.
                let early = matches!(watchdog.try_wait(), Ok(Some(_)));
                if let Some(mut stdin) = watchdog.stdin.take() {
                    let _ = stdin.write_all(b"done\n");
                }
                let _ = watchdog.wait();
                if early {
                    return Err(format!(
                        "{} stayed frozen longer than {MAX_FREEZE_SECS} s and was thawed: part of its image was read live",
                        mount.display()
                    ));
                }
                thawed
            }
            Some(Release::RemoveSnapshot { lv }) => run("lvremove", &["-f".as_ref(), lv.as_ref()]),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            tracing::warn!("releasing a volume: {e}");
        }
    }
}

/// Holds the volume at `offset` (of `len` bytes) of `disk` for reading. `busy` are paths the
/// backup itself writes to (data home, repository, temporary files): their file systems are
/// never frozen.
pub fn hold(disk: &Path, offset: u64, len: u64, busy: &[PathBuf]) -> Hold {
    let volumes = devices::volumes_on(disk);
    let found = volumes
        .iter()
        .find(|(d, at)| *at == offset && d.size == len)
        .map(|(d, _)| d.clone());
    let Some(dev) = found else {
        return Hold::unmounted();
    };
    if dev.kind == DeviceKind::Lvm
        && let Some(lv) = &dev.lvm_name
    {
        return lvm_snapshot(lv, len);
    }
    // The volume, or another device over the same bytes, may be mounted.
    let mounted = volumes
        .iter()
        .filter(|(d, at)| *at == offset && d.size == len)
        .find_map(|(d, _)| d.mountpoint.clone());
    match mounted {
        None => Hold::unmounted(),
        Some(mount) => freeze(&dev, &mount, busy),
    }
}

fn freeze(dev: &BlockDevice, mount: &Path, busy: &[PathBuf]) -> Hold {
    let shown = mount.display();
    if mount == Path::new("/") || busy.iter().any(|b| same_fs(b, mount)) {
        return Hold::live(format!(
            "read live, not frozen: {} (mounted at {shown}) holds the backup's own files",
            dev.path.display()
        ));
    }
    // The watchdog thaws unless told "done" in time; in a session of its own, so a Ctrl-C
    // that stops the backup does not stop it too.
    let script = "l=$(timeout \"$2\" head -n 1); [ \"$l\" = done ] || fsfreeze --unfreeze \"$1\"";
    let watchdog = Command::new("setsid")
        .args(["sh", "-c", script, "sh"])
        .arg(mount)
        .arg(MAX_FREEZE_SECS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(watchdog) = watchdog else {
        return Hold::live(format!(
            "read live, not frozen: no watchdog could be started for {shown}"
        ));
    };
    match run("fsfreeze", &["--freeze".as_ref(), mount.as_os_str()]) {
        Ok(()) => Hold {
            how: format!("frozen while read (mounted at {shown})"),
            source: None,
            still: true,
            release: Some(Release::Thaw {
                mount: mount.to_path_buf(),
                watchdog,
            }),
        },
        Err(e) => {
            let mut watchdog = watchdog;
            if let Some(mut stdin) = watchdog.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = watchdog.wait();
            Hold::live(format!("read live, not frozen ({shown}): {e}"))
        }
    }
}

/// Whether `path` lies on the file system mounted at `mount`.
fn same_fs(path: &Path, mount: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(path), std::fs::metadata(mount)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev(),
            _ => path.starts_with(mount),
        }
    }
    #[cfg(not(unix))]
    {
        path.starts_with(mount)
    }
}

/// Prefix of the snapshots this code makes; a leftover one (a killed run's) is removed.
const SNAPSHOT_PREFIX: &str = "cloudkeep-snap-";

fn lvm_snapshot(lv: &str, len: u64) -> Hold {
    let Some((vg, _)) = lv.split_once('/') else {
        return Hold::live(format!("read live: {lv} is not a volume group/volume name"));
    };
    remove_stale_snapshots(vg);
    let name = format!("{SNAPSHOT_PREFIX}{}", std::process::id());
    // Room for the changes made while the image is read: a tenth of the volume, at least
    // 256 MiB (an overflowing snapshot becomes invalid and the read fails, never wrong).
    let room = (len / 10).max(256 << 20);
    let made = run(
        "lvcreate",
        &[
            "--snapshot".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            "--size".as_ref(),
            format!("{room}b").as_ref(),
            lv.as_ref(),
        ],
    );
    match made {
        Ok(()) => Hold {
            how: format!("read from an LVM snapshot of {lv}"),
            source: Some(PathBuf::from("/dev").join(vg).join(&name)),
            still: true,
            release: Some(Release::RemoveSnapshot {
                lv: format!("{vg}/{name}"),
            }),
        },
        Err(e) => Hold::live(format!(
            "read live: no LVM snapshot of {lv} could be made: {e}"
        )),
    }
}

fn remove_stale_snapshots(vg: &str) {
    let Ok(out) = Command::new("lvs")
        .args(["--noheadings", "-o", "lv_name", vg])
        .output()
    else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let Some(pid) = name.strip_prefix(SNAPSHOT_PREFIX) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new("/proc").join(p.to_string()).exists());
        if !alive {
            let _ = run(
                "lvremove",
                &["-f".as_ref(), format!("{vg}/{name}").as_ref()],
            );
        }
    }
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
