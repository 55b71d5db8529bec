//! Runs the application: unpacks the image into a new private folder in the temporary folder
//! (mode 0700, a name no one can guess), starts its `AppRun` with the variables the AppImage
//! specification names (`APPIMAGE`, `APPDIR`, `ARGV0`, `OWD`), waits, and removes the folder. Stopping the runtime
//! (Ctrl-C, `kill`, the session ending) stops the application first, so the folder still goes;
//! if the runtime is killed outright the application gets SIGTERM from the kernel, and the
//! folder is removed by the next start.

use std::ffi::OsString;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::extract::{ExtractError, extract};

/// Where AppImage runtimes put an application (`$TMPDIR/.mount_…`), which is also how Tauri
/// tells that it runs from an AppImage.
const PREFIX: &str = ".mount_cloudkeep-";

/// Why the application could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot make a private folder to unpack into under {base}: {source}; set TMPDIR to a folder you can write"
    )]
    Folder {
        base: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("cannot start {path}: {source}")]
    Start {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A private folder that is removed when dropped.
struct Unpacked(PathBuf);

impl Drop for Unpacked {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Unpacks and runs; returns the application's exit code (128 + the signal's number if a
/// signal ended it, as a shell reports it).
pub fn run(image: &Path, offset: u64, args: Vec<OsString>) -> Result<u8, RunError> {
    let base = std::env::temp_dir();
    let unpacked = Unpacked(private_folder(&base)?);
    remove_stale(&base, &unpacked.0);
    extract(image, offset, &unpacked.0)?;
    let apprun = unpacked.0.join("AppRun");
    let mut command = Command::new(&apprun);
    command
        .args(args)
        .env("APPIMAGE", image)
        .env("APPDIR", &unpacked.0)
        .env(
            "ARGV0",
            std::env::args_os().next().unwrap_or_else(|| image.into()),
        );
    if let Ok(cwd) = std::env::current_dir() {
        command.env("OWD", cwd);
    }
    stop_with_parent(&mut command);
    forward_stop_signals();
    let mut child = command.spawn().map_err(|source| RunError::Start {
        path: apprun,
        source,
    })?;
    CHILD.store(i32::try_from(child.id()).unwrap_or(0), Ordering::SeqCst);
    let status = child.wait().map_err(|source| RunError::Start {
        path: "AppRun".into(),
        source,
    })?;
    CHILD.store(0, Ordering::SeqCst);
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    })
}

/// The running application, for the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Passes a stop signal on to the application; the runtime itself goes on to wait for it and
/// clean up.
extern "C" fn forward(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; a stale pid is at worst an ESRCH.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

fn forward_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: the handler only reads an atomic and calls kill(2), both async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(signal, forward as *const () as libc::sighandler_t);
        }
    }
}

/// The application gets SIGTERM when the runtime dies, even by SIGKILL.
fn stop_with_parent(command: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe, as a pre_exec closure must be.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A new folder only this user can enter, named after this process and 64 random bits.
fn private_folder(base: &Path) -> Result<PathBuf, RunError> {
    let error = |source| RunError::Folder {
        base: base.into(),
        source,
    };
    loop {
        let random = getrandom::u64().map_err(|e| error(std::io::Error::other(e.to_string())))?;
        let path = base.join(format!("{PREFIX}{}-{random:016x}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(error(e)),
        }
    }
}

/// Removes folders earlier runs of this user left behind when they were killed: real folders
/// (not links), owned by the same user as `ours`, whose process is gone.
fn remove_stale(base: &Path, ours: &Path) {
    let (Ok(entries), Ok(own)) = (std::fs::read_dir(base), std::fs::symlink_metadata(ours)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_pid) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && meta.uid() == own.uid() && path != ours && !process_alive(pid) {
            remove_tree(&path);
        }
    }
}

/// The process number in a folder name this runtime makes.
fn stale_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes a tree even where read-only folders would stop it.
fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    let _ = make_writable(path);
    let _ = std::fs::remove_dir_all(path);
}

fn make_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(path)? {
            make_writable(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_private_folder_is_for_its_owner_alone() {
        let base = tempfile::tempdir().unwrap();
        let path = private_folder(base.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(stale_pid(name), Some(std::process::id()));
    }

    #[test]
    fn folders_of_dead_runs_are_removed_and_others_kept() {
        let base = tempfile::tempdir().unwrap();
        let ours = private_folder(base.path()).unwrap();
        // A pid above the kernel's limit (4194304) is never alive.
        let dead = base
            .path()
            .join(format!("{PREFIX}4999999-0123456789abcdef"));
        std::fs::create_dir_all(dead.join("usr/bin")).unwrap();
        std::fs::set_permissions(dead.join("usr/bin"), std::fs::Permissions::from_mode(0o555))
            .unwrap();
        let alive = base.path().join(format!("{PREFIX}1-0123456789abcdef"));
        std::fs::create_dir(&alive).unwrap();
        let unrelated = base.path().join(format!("{PREFIX}4999999-not-ours"));
        std::fs::create_dir(&unrelated).unwrap();
        let link = base
            .path()
            .join(format!("{PREFIX}4999998-0123456789abcdef"));
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(target.path(), &link).unwrap();

        remove_stale(base.path(), &ours);
        assert!(!dead.exists(), "a dead run's folder, read-only parts too");
        assert!(ours.exists() && alive.exists() && unrelated.exists());
        assert!(
            target.path().join("keep").exists(),
            "a link is never followed"
        );
    }
}
