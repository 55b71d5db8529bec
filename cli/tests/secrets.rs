//! Where the CLI keeps secrets: in a real Secret Service (gnome-keyring on a private D-Bus
//! session bus, as on a Linux desktop) when one answers, in the owner-only file otherwise or
//! when `CLOUDKEEP_SECRETS=file` says so; a job's encryption password works from either.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A private session bus with an unlocked gnome-keyring on it; stopped when dropped.
struct Keyring {
    address: String,
    pids: Vec<u32>,
}

impl Keyring {
    fn start(home: &Path) -> Self {
        let run = home.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .output()
            .expect("dbus-daemon (Debian package dbus-daemon) must be installed");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let address = lines.next().unwrap().trim().to_owned();
        let mut pids = vec![lines.next().unwrap().trim().parse().unwrap()];
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &run)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gnome-keyring-daemon (Debian package gnome-keyring) must be installed");
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"keyring-password")
            .unwrap();
        let out = daemon.wait_with_output().unwrap();
        assert!(out.status.success());
        let pid = Command::new("pgrep")
            .args([
                "-n",
                "-f",
                "gnome-keyring-daemon --unlock --components=secrets",
            ])
            .output()
            .unwrap();
        if let Ok(pid) = String::from_utf8_lossy(&pid.stdout).trim().parse() {
            pids.push(pid);
        }
        Self { address, pids }
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn cloudkeep(
    home: &Path,
    bus: Option<&str>,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
    cmd.args(args)
        .env("CLOUDKEEP_HOME", home.join("ck"))
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("CLOUDKEEP_SECRETS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(bus) = bus {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn file_secrets(home: &Path) -> String {
    std::fs::read_to_string(home.join("ck/secrets.json")).unwrap_or_default()
}

#[test]
fn secrets_go_to_the_os_keyring_when_one_answers_and_to_the_file_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let src = home.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "hello").unwrap();
    let src = src.to_str().unwrap();
    let keyring = Keyring::start(home);
    let bus = Some(keyring.address.as_str());

    // With a keyring: the password is there, not in the file, and the job runs with it.
    let repo = home.join("repo-a");
    cloudkeep(
        home,
        bus,
        &[],
        &[
            "job",
            "create",
            "a",
            "--folder",
            repo.to_str().unwrap(),
            "--source",
            src,
            "--encryption-password-stdin",
        ],
        "password-a\n",
    );
    assert!(!file_secrets(home).contains("password-a"));
    cloudkeep(home, bus, &[], &["job", "run", "a"], "");

    // Chosen file: the password is in the owner-only file.
    let repo = home.join("repo-b");
    cloudkeep(
        home,
        bus,
        &[("CLOUDKEEP_SECRETS", "file")],
        &[
            "job",
            "create",
            "b",
            "--folder",
            repo.to_str().unwrap(),
            "--source",
            src,
            "--encryption-password-stdin",
        ],
        "password-b\n",
    );
    assert!(file_secrets(home).contains("password-b"));
    cloudkeep(home, bus, &[], &["job", "run", "b"], "");

    // No keyring in the session (a server, a bare session): the file, and it still runs.
    let repo = home.join("repo-c");
    cloudkeep(
        home,
        None,
        &[],
        &[
            "job",
            "create",
            "c",
            "--folder",
            repo.to_str().unwrap(),
            "--source",
            src,
            "--encryption-password-stdin",
        ],
        "password-c\n",
    );
    assert!(file_secrets(home).contains("password-c"));
    cloudkeep(home, None, &[], &["job", "run", "c"], "");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("ck/secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner only");
    }

    drop(keyring);
}
