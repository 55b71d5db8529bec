//! `cloudkeep.exe` — the CLI built for Windows — run under Wine by the Windows step of
//! `scripts/test` (`scripts/windows/check`), which builds it and names it in
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
            .expect("CLOUDKEEP_WINE_EXE names cloudkeep.exe (scripts/windows/check sets it)");
        let prefix = std::env::var_os("WINEPREFIX")
            .map(PathBuf::from)
            .expect("WINEPREFIX names the Wine prefix (scripts/windows/check sets it)");
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

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("wine")
            .arg(&self.exe)
            .args(args)
            .env("CLOUDKEEP_HOME", &self.home)
            .env("CLOUDKEEP_SECRETS", "file")
            .env("WINEDEBUG", "-all")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wine runs (scripts/windows/check installs it)");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
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
#[ignore = "run by scripts/windows/check: needs Wine and cloudkeep.exe"]
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
#[ignore = "run by scripts/windows/check: needs Wine and cloudkeep.exe"]
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
