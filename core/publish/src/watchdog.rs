//! The publication's own watchdog: a small shell process that outlives a publishing process
//! killed with `kill -9` (or crashed) and takes its dead mount away. fusermount3's
//! `auto_unmount` helper does this only once, and loses a race with the kernel: it wakes when
//! the process's control socket closes, which can be before the process's `/dev/fuse` file
//! is, so its probe of the mount is still answered and it leaves the mount for good. The
//! watchdog waits until the mount answers "transport endpoint is not connected" — the kernel
//! has let go of it — and only then unmounts it, lazily; a mount that is live, gone, or not a
//! Cloudkeep publication is never touched. It reads the end of a pipe this process holds:
//! the end of file is this process ending, however it ends.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The script: `$1` is the publication's folder (absolute, canonical). It waits for the end of
/// its input, then for up to 10 s for the mount to be dead, and unmounts it.
const SCRIPT: &str = r#"
while read -r _; do :; done
LC_ALL=C
export LC_ALL
ours() { awk -v m="$1" '$2 == m && $3 == "fuse.cloudkeep" { f = 1 } END { exit !f }' /proc/self/mounts; }
i=0
while [ "$i" -lt 200 ] && ours "$1"; do
  if stat -- "$1" 2>&1 >/dev/null | grep -q 'not connected'; then
    fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
    exit 0
  fi
  sleep 0.05
  i=$((i + 1))
done
"#;

/// A running watchdog; ending it (or dropping it) tells it this publication ended by itself.
pub struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Starts the watchdog of the publication at `folder`; `None` (logged) when no shell runs.
    pub fn start(folder: &Path) -> Option<Watchdog> {
        use std::os::unix::process::CommandExt;
        let started = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("cloudkeep-publication-watchdog")
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the publishing command (which
            // unpublishes cleanly) does not end the watchdog first.
            .process_group(0)
            .spawn();
        match started {
            Ok(child) => Some(Watchdog { child: Some(child) }),
            Err(e) => {
                tracing::warn!(
                    "no watchdog for the publication at {} (sh: {e}); if this process is killed, `cloudkeep points unmount` cleans up",
                    folder.display()
                );
                None
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The end of its input: it looks once, finds the mount gone (or live), and ends;
            // reaped on a thread of its own so a slow look never holds this process up.
            drop(child.stdin.take());
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
    }
}
