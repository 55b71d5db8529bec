//! `cloudkeep.exe` — the CLI built for Windows — run under Wine by the Windows step of
//! `scripts/test`, which builds it and names it in
//! `CLOUDKEEP_WINE_EXE` with its prefix in `WINEPREFIX`: a local round trip of a tree with
//! the names Windows treats specially, and the cross-platform story, a Linux gateway on
//! loopback with `cloudkeep.exe` as its tenant. Marked `ignore` for the Linux run (they need
//! Wine and the Windows build); the Windows step runs them with `--ignored` and fails when
//! either is missing.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::gateway_with_tenant;

/// `cloudkeep.exe` under Wine, on a data home inside the Wine prefix.
struct Wine {
    exe: PathBuf,
    prefix: PathBuf,
    /// `C:\…` of the data home.
    home: String,
}

impl Wine {
    fn new(home: &str) -> Self {
        let exe = std::env::var_os("CLOUDKEEP_WINE_EXE")
            .map(PathBuf::from)
            .expect(
                "CLOUDKEEP_WINE_EXE names cloudkeep.exe (the Windows step of scripts/test sets it)",
            );
        let prefix = std::env::var_os("WINEPREFIX")
            .map(PathBuf::from)
            .expect("WINEPREFIX names the Wine prefix (the Windows step of scripts/test sets it)");
        assert!(exe.is_file(), "{} is not built", exe.display());
        Self {
            exe,
            prefix,
            home: format!("C:\\cktest\\{home}"),
        }
    }

    /// The Linux path of a `C:\…` path.
    fn linux(&self, windows: &str) -> PathBuf {
        let rest = windows.trim_start_matches("C:\\").replace('\\', "/");
        self.prefix.join("drive_c").join(rest)
    }

    /// Runs `cloudkeep.exe` and waits for it. Its output goes through files, not pipes: a
    /// command that brings the wineserver and the Service Control Manager up hands them
    /// its descriptors, and a pipe would then never end.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("wine")
            .arg(&self.exe)
            .args(args)
            .env("CLOUDKEEP_HOME", &self.home)
            .env("CLOUDKEEP_SECRETS", "file")
            .env("WINEDEBUG", "-all")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .expect("wine runs (the Windows step of scripts/test installs it)");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        let status = child.wait().unwrap();
        Output {
            status,
            stdout: std::fs::read(out.path()).unwrap(),
            stderr: std::fs::read(err.path()).unwrap(),
        }
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "cloudkeep.exe {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Files below `root` by relative path, with their bytes.
fn files(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A tree with what Windows reads specially: a reserved device name, trailing dot and space,
/// a path beyond 260 characters, names differing only in case, and some content.
fn awkward_tree(src: &Path) {
    let _ = std::fs::remove_dir_all(src);
    let deep = src
        .join("docs")
        .join("d".repeat(120))
        .join("e".repeat(120))
        .join("f".repeat(40));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("beyond 260 characters.txt"), b"long path\n").unwrap();
    std::fs::write(src.join("docs").join("plan.txt"), b"the plan\n").unwrap();
    std::fs::write(
        src.join("docs").join("photo.raw"),
        cloudkeep_tests::pseudo_random(400_000, 23),
    )
    .unwrap();
    for (name, text) in [
        ("CON", "a reserved device name"),
        ("trailing dot.", "a trailing dot"),
        ("trailing space ", "a trailing space"),
        ("Report.txt", "upper case"),
        ("report.txt", "lower case"),
        ("ünïcödé ✓.txt", "unicode"),
    ] {
        std::fs::write(src.join(name), text).unwrap();
    }
}

#[test]
#[ignore = "run by the Windows step of scripts/test: needs Wine and cloudkeep.exe"]
fn a_tree_of_windows_awkward_names_round_trips_under_wine() {
    let wine = Wine::new("local");
    let _ = std::fs::remove_dir_all(wine.linux(&wine.home));
    let src = wine.linux("C:\\cktest\\awkward");
    awkward_tree(&src);
    let repo = "C:\\cktest\\local-repo";
    let _ = std::fs::remove_dir_all(wine.linux(repo));
    let pw = Some("wine-password-1");
    wine.ok(&["local", "init", "-r", repo, "--password-stdin"], pw);
    let backup = wine.ok(
        &[
            "local",
            "backup",
            "-r",
            repo,
            "--password-stdin",
            "C:\\cktest\\awkward",
        ],
        pw,
    );
    assert!(
        backup.contains("(success): 9 files"),
        "every name is read: {backup}"
    );
    wine.ok(&["local", "verify", "-r", repo, "--password-stdin"], pw);

    // Into another folder: the drive becomes a folder `C`, never the current directory.
    let out = "C:\\cktest\\restored";
    let _ = std::fs::remove_dir_all(wine.linux(out));
    let restored = wine.run(
        &[
            "local",
            "restore",
            "-r",
            repo,
            "--password-stdin",
            "latest",
            "--to",
            out,
            "--conflict",
            "keep-both",
        ],
        pw,
    );
    let (said, warned) = (
        String::from_utf8_lossy(&restored.stdout),
        String::from_utf8_lossy(&restored.stderr),
    );
    assert!(
        restored.status.success() && said.contains("restored 9 files"),
        "{said}{warned}"
    );
    assert!(
        warned.contains("renamed:") && warned.contains("report (2).txt"),
        "the report names the renamed entry: {warned}"
    );
    let mut back = files(&wine.linux("C:\\cktest\\restored\\C\\cktest\\awkward"));
    let mut expected = files(&src);
    // One folder cannot hold Report.txt and report.txt on Windows: the walker gives the
    // second in name order its own name before any writer starts, and the report says so.
    let lower = expected.remove(Path::new("report.txt")).unwrap();
    assert_eq!(
        back.remove(Path::new("report (2).txt")),
        Some(lower),
        "{back:?}"
    );
    assert_eq!(back, expected, "byte for byte, every awkward name");

    // Where it came from: a deleted file comes back in place.
    std::fs::remove_file(src.join("trailing dot.")).unwrap();
    wine.ok(
        &[
            "local",
            "restore",
            "-r",
            repo,
            "--password-stdin",
            "latest",
            "--original",
        ],
        pw,
    );
    assert_eq!(
        std::fs::read(src.join("trailing dot.")).unwrap(),
        b"a trailing dot"
    );
}

#[test]
#[ignore = "run by the Windows step of scripts/test: needs Wine and cloudkeep.exe"]
fn cloudkeep_exe_is_the_tenant_of_a_linux_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let wine = Wine::new("tenant");
    let _ = std::fs::remove_dir_all(wine.linux(&wine.home));
    let src = wine.linux("C:\\cktest\\tenant-docs");
    awkward_tree(&src);
    let add = [
        "provider",
        "add",
        "acme-sp",
        "--host",
        &gw.addr,
        "--user",
        "acme",
        "--password-stdin",
    ];
    // The trust step: refused until the fingerprint is given, then pinned.
    let untrusted = wine.run(&add, Some("tenant-password"));
    assert_eq!(
        untrusted.status.code(),
        Some(3),
        "an untrusted certificate is refused"
    );
    wine.ok(
        &[add.as_slice(), &["--trust", &fp]].concat(),
        Some("tenant-password"),
    );
    wine.ok(
        &[
            "job",
            "create",
            "docs",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            "C:\\cktest\\tenant-docs",
            "--encryption-password-stdin",
        ],
        Some("job-secret"),
    );
    let run = wine.ok(&["job", "run", "docs"], None);
    assert!(run.starts_with("success"), "{run}");
    let out = "C:\\cktest\\tenant-restored";
    let _ = std::fs::remove_dir_all(wine.linux(out));
    wine.ok(
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "docs",
            "--to",
            out,
            "--conflict",
            "keep-both",
        ],
        None,
    );
    let back = files(&wine.linux("C:\\cktest\\tenant-restored\\C\\cktest\\tenant-docs"));
    let expected = files(&src);
    assert_eq!(back.len(), expected.len(), "{back:?}");
    assert_eq!(
        back.get(Path::new("docs/photo.raw")),
        expected.get(Path::new("docs/photo.raw")),
        "byte for byte through the gateway"
    );
}

/// A Linux path as Windows programs under Wine see it (drive Z: is /).
fn z_path(linux: &Path) -> String {
    format!("Z:{}", linux.display()).replace('/', "\\")
}

/// The agent as a native Windows service (issue 23, point 3): enrolled by `cloudkeep.exe`,
/// installed with the Service Control Manager (automatic, delayed start; restart after a
/// failure), started — the service's agent backs the computer's `~\data` up to a Linux
/// gateway on its own — stopped and removed. Wine's SCM runs it; Wine's Event Log keeps no
/// entries to read back (said in the output).
#[test]
#[ignore = "run by the Windows step of scripts/test: needs Wine and cloudkeep.exe"]
fn the_agent_runs_as_a_windows_service() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let tenant = crate::support::tenant_with_provider(tmp.path(), &gw, &fp);
    // Due two minutes from now (local time, as the agent reads its schedule): the backup
    // the service makes is its own, not one a command asked for.
    let due = (chrono::Local::now() + chrono::Duration::minutes(2)).format("daily@%H:%M");
    let due = due.to_string();
    crate::support::policy_create(&tenant, "desks", &due, "policy passphrase", &[]);
    tenant.ok(&["policy", "add-computer", "desks", "pc-win"], None);
    let file = tmp.path().join("pc-win.enroll");
    let enroll = tenant.json(&[
        "policy",
        "enroll-file",
        "desks",
        "pc-win",
        "--out",
        &file.display().to_string(),
    ]);

    let wine = Wine::new("agent-service");
    let _ = std::fs::remove_dir_all(wine.linux(&wine.home));
    // Left over from an interrupted run: a service of the same name.
    let _ = wine.run(&["agent", "service", "uninstall"], None);
    // `~` is the Wine user's profile folder.
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let data = wine.linux(&format!("C:\\users\\{user}\\data"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/plan.txt"), "the plan\n".repeat(500)).unwrap();

    // A program in a folder everyone may change is never made a LocalSystem service: whoever
    // replaced it would run their code as the system. (Wine lists a mode 0777 as Everyone.)
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let shared = wine.linux("C:\\cktest\\shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::copy(&wine.exe, shared.join("cloudkeep.exe")).unwrap();
        let planted = Wine {
            exe: shared.join("cloudkeep.exe"),
            prefix: wine.prefix.clone(),
            home: wine.home.clone(),
        };
        let refused = planted.run(&["agent", "service", "install"], None);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success()
                && said.contains("cannot be the service's program")
                && said.contains("Everyone")
                && said.contains("Program Files"),
            "{said}"
        );
        std::fs::remove_dir_all(&shared).unwrap();
    }
    let refused = wine.run(&["agent", "service", "install"], None);
    assert!(!refused.status.success(), "not enrolled yet");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("agent enroll"),
        "{refused:?}"
    );
    wine.ok(
        &["agent", "enroll", &z_path(&file)],
        Some(enroll["code"].as_str().unwrap()),
    );
    let installed = wine.ok(&["agent", "service", "install", "--interval", "5"], None);
    assert!(installed.contains("installed"), "{installed}");
    let status: serde_json::Value =
        serde_json::from_str(&wine.ok(&["agent", "service", "status", "--json"], None)).unwrap();
    // Windows starts an automatic service at the next boot; Wine's SCM starts it when it
    // comes up itself, which may be for this very command.
    assert!(
        status["state"] == "stopped" || status["state"] == "running",
        "{status}"
    );
    // Wine's SCM refuses a delayed start and keeps no failure actions; the install says so
    // (Windows' SCM takes both).
    if installed.contains("does not support a delayed automatic start") {
        eprintln!("not checked under Wine: the delayed automatic start (its SCM refuses it)");
        assert_eq!(status["starts"], "automatically", "{status}");
    } else {
        assert_eq!(status["starts"], "automatically (delayed)", "{status}");
    }
    if status["restarts_after_failure"] == 3 {
        assert!(!installed.contains("does not support restarts after a failure"));
    } else {
        eprintln!(
            "not checked under Wine: the restart after a failure (its SCM keeps no failure actions)"
        );
    }
    assert!(
        status["command"]
            .as_str()
            .unwrap()
            .contains("agent service run --home"),
        "{status}"
    );

    // Wine keeps its services only while a Windows program of the prefix runs (the
    // wineserver ends them with the last one): a command prompt waiting for input is
    // that program here, as the logged-in desktop is on Windows.
    let mut keep_alive = Command::new("wine")
        .arg("cmd.exe")
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wine runs");
    let started = wine.ok(&["agent", "service", "start"], None);
    assert!(started.contains("running"), "{started}");
    // The service's agent backs up on its own and reports; the tenant sees it.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let last = loop {
        let status = tenant.json(&["policy", "status", "desks", "--sync"]);
        let pc = status["status"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["computer"] == "pc-win").cloned())
            .unwrap_or_default();
        if pc["last"]["result"] == "success" || std::time::Instant::now() > until {
            break pc;
        }
        std::thread::sleep(std::time::Duration::from_secs(3));
    };
    assert_eq!(
        last["last"]["result"], "success",
        "the service backed up: {last}"
    );

    let stopped = wine.ok(&["agent", "service", "stop"], None);
    assert!(stopped.contains("stopped"), "{stopped}");
    let log_dir = wine.linux(&format!("{}\\logs", wine.home));
    let logs: String = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("agent"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(logs.contains("The Cloudkeep agent started"), "{logs}");
    assert!(logs.contains("backup success"), "{logs}");
    eprintln!(
        "not checked under Wine: the Event Log entries (Wine's event log prints them to its debug channel and keeps none)"
    );
    wine.ok(&["agent", "service", "uninstall"], None);
    // Its input closed, the prompt ends (as it would if this test failed earlier).
    drop(keep_alive.stdin.take());
    let _ = keep_alive.wait();
    let gone = wine.run(&["agent", "service", "status"], None);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("not installed"),
        "{gone:?}"
    );
}
