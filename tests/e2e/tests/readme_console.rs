//! README command 1, run exactly as written: it must bring up the console window.
//! Under Xvfb the window is found by its title with `xwininfo` and the screen is saved with
//! `xwd` + netpbm as a test artifact. Linux only: the README's commands are for Debian/Ubuntu.
#![cfg(target_os = "linux")]

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloudkeep_e2e::{artifacts_dir, repo_root, require_display, save_png, terminate};

/// First run may build the console.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(600);

fn readme_console_command() -> Result<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let block = readme
        .split("```")
        .nth(1)
        .context("README has no command block")?;
    block
        .lines()
        .skip(1)
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .context("README's command block is empty")
}

fn window_is_up() -> Result<bool> {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .context("run xwininfo (Debian package x11-utils)")?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("\"Cloudkeep Console\""))
}

fn screenshot_root() -> Result<Vec<u8>> {
    let out = Command::new("sh")
        .args([
            "-c",
            "xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng 2>/dev/null",
        ])
        .output()
        .context("run xwd | xwdtopnm | pnmtopng (x11-apps/x11-utils, netpbm)")?;
    Ok(out.stdout)
}

#[test]
fn readme_command_one_opens_the_console_window() -> Result<()> {
    require_display()?;
    let command = readme_console_command()?;
    assert!(command.contains("scripts/console"), "{command}");
    let home = tempfile::tempdir()?;
    let log = std::fs::File::create(artifacts_dir()?.join("readme-console-command.log"))?;
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .current_dir(repo_root())
        .env("CLOUDKEEP_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    let group = -i64::from(child.id());

    let started = Instant::now();
    let outcome = (|| -> Result<()> {
        // Our console has started once it logs into this test's data home (a window of an
        // earlier test's console may still be closing on the same display); then its window.
        let log_dir = home.path().join("logs");
        let logged = || {
            std::fs::read_dir(&log_dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        };
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "`{command}` exited ({status}) before the window appeared; see test-artifacts/readme-console-command.log"
                );
            }
            if logged() && window_is_up()? {
                break;
            }
            if started.elapsed() > WINDOW_TIMEOUT {
                bail!(
                    "no \"Cloudkeep Console\" window with a log in {} after {WINDOW_TIMEOUT:?}",
                    log_dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        // Let the page render before the picture.
        std::thread::sleep(Duration::from_secs(3));
        let png = screenshot_root()?;
        let path = save_png("readme-console-command", &png)?;
        assert!(
            png.len() > 10_000,
            "a real picture, not a blank: {}",
            path.display()
        );
        Ok(())
    })();

    terminate(group);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait()?.is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group.to_string()])
            .status();
        let _ = child.wait();
    }
    outcome?;

    let logs: String = std::fs::read_dir(home.path().join("logs"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(
        logs.contains("console starting"),
        "the console that opened is ours: {logs}"
    );
    Ok(())
}
