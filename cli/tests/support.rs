//! Shared by the CLI's suites: the real `cloudkeep` binary on its own data home, a real
//! gateway process on loopback, and an SP set-up with one tenant.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const ADMIN_PW: &str = "admin-password-1";

pub struct Cli {
    pub home: PathBuf,
}

impl Cli {
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with(args, stdin, &[])
    }

    /// [`Cli::run`] with more environment variables.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &Path)]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
        child
            .args(args)
            .env("CLOUDKEEP_HOME", &self.home)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = start(&mut child);
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.ok_with(args, stdin, &[])
    }

    /// [`Cli::ok`] with more environment variables.
    pub fn ok_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &Path)]) -> String {
        let out = self.run_with(args, stdin, env);
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `restore files latest --job JOB --to TO [--path PATH]`.
    pub fn restore_latest(&self, job: &str, to: &Path, path: Option<&str>) {
        let to = to.display().to_string();
        let mut args = vec!["restore", "files", "latest", "--job", job, "--to", &to];
        if let Some(path) = path {
            args.extend(["--path", path]);
        }
        self.ok(&args, None);
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        self.json_with(args, None)
    }

    pub fn json_with(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all, stdin)).unwrap()
    }

    /// Runs a command expected to fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        stderr
    }
}

/// A running `cloudkeep gateway run`, stopped with SIGTERM when dropped.
pub struct Gateway {
    pub child: Child,
    pub addr: String,
    pub fingerprint: String,
}

impl Gateway {
    /// Starts a gateway on any free loopback port, registered in the gateway list under the
    /// address it listens on.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_listening(data_dir, "127.0.0.1:0", extra)
    }

    /// Starts a gateway listening on `listen` (a fixed port, to restart it where tenants
    /// know it).
    pub fn start_listening(data_dir: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_cloudkeep")),
            data_dir,
            listen,
            extra,
        )
    }

    /// Starts a gateway whose clock runs `days` ahead (libfaketime), listening on `listen`:
    /// windows of days end without waiting for them.
    pub fn start_days_ahead(data_dir: &Path, listen: &str, days: u32) -> Self {
        // The library itself (not the `faketime` wrapper, whose pid a SIGTERM would stop
        // instead of the gateway's).
        let lib = [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib",
        ]
        .iter()
        .map(|dir| Path::new(dir).join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists())
        .expect("libfaketime is installed (Debian package faketime; scripts/test installs it)");
        let mut faked = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
        faked
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", format!("+{days}d"))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        Self::spawn(faked, data_dir, listen, &[])
    }

    /// Starts a gateway on any free loopback port that logs everything (`RUST_LOG=debug`)
    /// into `log`, for tests that read what it wrote.
    pub fn start_logged(data_dir: &Path, extra: &[&str], log: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
        command
            .env("RUST_LOG", "debug")
            .env("CLOUDKEEP_HOME", log.with_extension("home"))
            .stderr(std::fs::File::create(log).unwrap());
        Self::spawn(command, data_dir, "127.0.0.1:0", extra)
    }

    fn spawn(mut command: Command, data_dir: &Path, listen: &str, extra: &[&str]) -> Self {
        if command.get_envs().all(|(k, _)| k != "RUST_LOG") {
            command.env_remove("RUST_LOG").stderr(Stdio::null());
        }
        command
            .args(["gateway", "run", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", listen, "--allow-root"])
            .args(["--advertise", "127.0.0.1"])
            .args(extra)
            .stdout(Stdio::piped());
        let mut child = start(&mut command);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first.rsplit(' ').next().unwrap().to_owned();
        assert!(first.contains("listening on"), "{first}");
        let second = lines.next().unwrap().unwrap();
        let fingerprint = second.rsplit(' ').next().unwrap().to_owned();
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            addr,
            fingerprint,
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        stop(&mut self.child)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Stops a long-running command as its service manager would: SIGTERM on Unix (a graceful
/// stop); on Windows, where a console program without a console gets no stop event from
/// another process, the process is ended. Reaps it.
pub fn stop(child: &mut Child) -> std::process::ExitStatus {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    #[cfg(windows)]
    let _ = child.kill();
    child.wait().unwrap()
}

/// Whether a command [`stop`] stopped ended cleanly: exit 0 on Unix; on Windows the process
/// was ended from outside, so there is nothing to tell.
pub fn stopped_cleanly(status: std::process::ExitStatus) -> bool {
    cfg!(windows) || status.success()
}

/// `policy create NAME` on acme-sp's "Cloud": each computer's `~/data`, 4 MiB each, on
/// `schedule` (and `more` options), its encryption password given on stdin.
pub fn policy_create(tenant: &Cli, name: &str, schedule: &str, password: &str, more: &[&str]) {
    let mut args = vec![
        "policy",
        "create",
        name,
        "--provider",
        "acme-sp",
        "--repo",
        "Cloud",
        "--source",
        "~/data",
        "--schedule",
        schedule,
        "--quota",
        "4M",
        "--encryption-password-stdin",
    ];
    args.extend_from_slice(more);
    tenant.ok(&args, Some(password));
}

/// Kills a process with SIGKILL and reaps it.
pub fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `cloudkeep ARGS` on `cli`'s data home without waiting for it (stderr piped).
pub fn spawn(cli: &Cli, args: &[&str]) -> Child {
    start(
        Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(args)
            .env("CLOUDKEEP_HOME", &cli.home)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
}

/// Starts a command. Under Wine, process creation now and then fails at once with
/// ERROR_INTERNAL_ERROR (1359) when the machine is busy; nothing has run then, so it is tried
/// again (three times at most). Every other failure is the test's.
pub fn start(command: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 3 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            started => return started.unwrap(),
        }
    }
}

/// Runs a command to its end with [`start`]'s retry, its output captured (stdin closed).
pub fn output(command: &mut Command) -> Output {
    let child = start(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    child.wait_with_output().unwrap()
}

/// `GET path` over plain HTTP/1.1 (a gateway's admin listener): the body.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(text)
}

/// A loopback address with a free port, to start (and restart) a gateway on.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub fn fingerprint_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 95 && w.matches(':').count() == 31)
        .unwrap_or_else(|| panic!("no fingerprint in: {text}"))
        .trim_end_matches([',', ';', ')'])
        .to_owned()
}

/// A running gateway with a folder repository "main" and a tenant "acme" (password
/// "tenant-password", 1 GiB quota named "Cloud", lease until 2031-12-31), and the SP's CLI
/// logged in; returns the gateway, the SP's CLI and the certificate fingerprint.
pub fn gateway_with_tenant(dir: &Path) -> (Gateway, Cli, String) {
    gateway_with_tenant_on(dir, "127.0.0.1:0")
}

/// [`gateway_with_tenant`] with the gateway listening on `listen`.
pub fn gateway_with_tenant_on(dir: &Path, listen: &str) -> (Gateway, Cli, String) {
    let (gw, sp, fp) = sp_gateway(dir, |data| Gateway::start_listening(data, listen, &[]));
    let storage = dir.join("storage").display().to_string();
    sp.ok(&["sp", "repo", "add", "main", "--path", &storage], None);
    add_acme(&sp, "main=1G:Cloud");
    (gw, sp, fp)
}

/// Adds tenant `acme` (password "tenant-password", lease to 2031) with `quota`
/// (`REPO=SIZE:NAME`).
pub fn add_acme(sp: &Cli, quota: &str) {
    sp.ok(
        &[
            "sp",
            "tenant",
            "add",
            "acme",
            "--password-stdin",
            "--quota",
            quota,
            "--lease-until",
            "2031-12-31",
        ],
        Some("tenant-password"),
    );
}

/// A gateway initialised in `dir/gw` and started by `start`, with the SP's CLI (home
/// `dir/sp-home`) logged in to it; no repository, no tenant yet.
pub fn sp_gateway(dir: &Path, start: impl FnOnce(&Path) -> Gateway) -> (Gateway, Cli, String) {
    let data = dir.join("gw");
    let sp = Cli {
        home: dir.join("sp-home"),
    };
    let d = data.display().to_string();
    let fp = fingerprint_in(&sp.ok(
        &[
            "gateway",
            "init",
            "--data-dir",
            &d,
            "--hostname",
            "127.0.0.1",
            "--admin-password-stdin",
        ],
        Some(ADMIN_PW),
    ));
    let gw = start(&data);
    sp.ok(
        &[
            "sp",
            "login",
            "--gateway",
            &gw.addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some(ADMIN_PW),
    );
    (gw, sp, fp)
}

/// The tenant's CLI (its own data folder) with the gateway added as provider "acme-sp" (as
/// `acme`, its certificate trusted).
pub fn tenant_with_provider(dir: &Path, gw: &Gateway, fp: &str) -> Cli {
    tenant_at(dir.join("laptop-home"), gw, fp)
}

/// [`tenant_with_provider`] in data home `home` (another computer of the same tenant).
pub fn tenant_at(home: PathBuf, gw: &Gateway, fp: &str) -> Cli {
    let laptop = Cli { home };
    laptop.ok(
        &[
            "provider",
            "add",
            "acme-sp",
            "--host",
            &gw.addr,
            "--user",
            "acme",
            "--password-stdin",
            "--trust",
            fp,
        ],
        Some("tenant-password"),
    );
    laptop
}

/// Creates job `name` of provider "acme-sp"'s repository "Cloud" over `source`, unencrypted.
pub fn job_create(laptop: &Cli, name: &str, source: &Path) {
    laptop.ok(
        &[
            "job",
            "create",
            name,
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &source.display().to_string(),
            "--no-encryption",
        ],
        None,
    );
}

/// Creates job `name` of provider "acme-sp"'s repository "Cloud" imaging `volume` (a disk, a
/// partition or a disk image file), unencrypted, and runs it once.
pub fn image_job(laptop: &Cli, name: &str, volume: &Path) {
    laptop.ok(
        &[
            "job",
            "create",
            name,
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--mode",
            "volumes",
            "--volume",
            &volume.display().to_string(),
            "--no-encryption",
        ],
        None,
    );
    laptop.ok(&["job", "run", name], None);
}

/// Asserts that `path` is readable by its owner only (mode 0600). Unix only: on Windows the
/// same promise is kept with an ACL, checked by the Windows suite.
#[cfg(unix)]
pub fn assert_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} is owner-only", path.display());
}

/// Writes a partition table onto the disk image `disk` with `sfdisk` (its script on stdin).
#[cfg(target_os = "linux")]
pub fn partition(disk: &Path, script: &str) {
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(disk)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk (install the Debian package fdisk)");
    std::io::Write::write_all(sfdisk.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    assert!(
        sfdisk.wait().unwrap().success(),
        "sfdisk refused {script:?}"
    );
}

/// A GPT disk image `name` of `disk_mib` MiB in `dir` with one ext4 volume of `sectors`
/// 512-byte sectors from 1 MiB, made from `tree` (`mkfs.ext4 -d`), without root. Returns the
/// disk and the volume's own image (what the volume must equal byte for byte).
#[cfg(target_os = "linux")]
pub fn ext4_disk(
    dir: &Path,
    name: &str,
    disk_mib: u64,
    sectors: u64,
    tree: &Path,
) -> (PathBuf, PathBuf) {
    const MIB: u64 = 1 << 20;
    let disk = dir.join(name);
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(disk_mib * MIB)
        .unwrap();
    partition(
        &disk,
        &format!("label: gpt\nstart=2048, size={sectors}, type=L\n"),
    );
    let volume = dir.join(format!("{name}.volume"));
    std::fs::File::create(&volume)
        .unwrap()
        .set_len(sectors * 512)
        .unwrap();
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(tree)
        .arg(&volume)
        .status()
        .expect("mkfs.ext4 (install the Debian package e2fsprogs)");
    assert!(made.success(), "mkfs.ext4 -d {}", tree.display());
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&disk).unwrap(),
        &std::fs::read(&volume).unwrap(),
        MIB,
    )
    .unwrap();
    (disk, volume)
}
