//! `cloudkeep local …` as a user runs it: a real repository folder, real files.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(unix)]
use cloudkeep_tests::pseudo_random;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn cloudkeep(args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(pw) = password {
        writeln!(stdin, "{pw}").unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Restores `path` of the latest point of the unencrypted repository `repo` into `to`.
fn restore_latest(repo: &Path, to: &Path, path: &Path) {
    ok(&cloudkeep(
        &[
            "local",
            "restore",
            "-r",
            s(repo),
            "latest",
            "--to",
            s(to),
            "--path",
            s(path),
        ],
        None,
    ));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn init_backup_browse_restore_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src, out) = (
        tmp.path().join("repo"),
        tmp.path().join("src"),
        tmp.path().join("out"),
    );
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha\n".repeat(100)).unwrap();
    std::fs::write(src.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    let pw = Some("correct horse");

    let text = ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--password-stdin"],
        pw,
    ));
    assert!(text.contains("encrypted repository"), "{text}");
    let again = cloudkeep(&["local", "init", "-r", s(&repo), "--password-stdin"], pw);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let lines = ok(&cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--password-stdin",
            "--json",
            s(&src),
        ],
        pw,
    ));
    let done: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["result"], "success");
    assert_eq!(done["stats"]["files"], 2);

    let second = ok(&cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--password-stdin",
            "--json",
            s(&src),
        ],
        pw,
    ));
    let second: serde_json::Value = serde_json::from_str(second.lines().last().unwrap()).unwrap();
    assert_eq!(
        second["stats"]["files_read"], 0,
        "unchanged files are not read again"
    );

    let points: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &[
            "local",
            "points",
            "-r",
            s(&repo),
            "--password-stdin",
            "--json",
        ],
        pw,
    )))
    .unwrap();
    assert_eq!(points.as_array().unwrap().len(), 2);
    assert_eq!(points[0]["id"], done["point"]);

    let listing: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &[
            "local",
            "browse",
            "-r",
            s(&repo),
            "--password-stdin",
            "--json",
            "latest",
            s(&src),
        ],
        pw,
    )))
    .unwrap();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "sub"]);

    let point = done["point"].as_str().unwrap();
    let restored = ok(&cloudkeep(
        &[
            "local",
            "restore",
            "-r",
            s(&repo),
            "--password-stdin",
            &point[..8],
            "--to",
            s(&out),
            "--path",
            s(&src),
        ],
        pw,
    ));
    assert!(restored.contains("restored 2 files"), "{restored}");
    assert_eq!(
        std::fs::read(out.join("src/a.txt")).unwrap(),
        std::fs::read(src.join("a.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read(out.join("src/sub/b.bin")).unwrap(),
        vec![7u8; 300_000]
    );

    let verified = ok(&cloudkeep(
        &["local", "verify", "-r", s(&repo), "--password-stdin"],
        pw,
    ));
    assert!(verified.contains("no damage found"), "{verified}");
    let bad_sample = cloudkeep(&["local", "verify", "-r", s(&repo), "--sample", "0"], pw);
    assert_eq!(
        bad_sample.status.code(),
        Some(2),
        "a sample of 0 % is a usage error"
    );

    std::fs::write(src.join("new.txt"), b"added later").unwrap();
    ok(&cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--password-stdin",
            s(&src),
        ],
        pw,
    ));
    let changes: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &[
            "local",
            "diff",
            "-r",
            s(&repo),
            "--password-stdin",
            "--json",
            &point[..8],
            "latest",
        ],
        pw,
    )))
    .unwrap();
    assert_eq!(changes[0]["kind"], "added", "{changes}");
    assert!(
        changes[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("/src/new.txt"),
        "{changes}"
    );
    let found = ok(&cloudkeep(
        &[
            "local",
            "find",
            "-r",
            s(&repo),
            "--password-stdin",
            "latest",
            "*.bin",
        ],
        pw,
    ));
    assert!(
        found.contains("/src/sub/b.bin") && found.contains("1 found"),
        "{found}"
    );
}

#[test]
fn wrong_or_missing_password_exits_4_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--password-stdin"],
        Some("right"),
    ));
    let wrong = cloudkeep(
        &["local", "points", "-r", s(&repo), "--password-stdin"],
        Some("wrong"),
    );
    assert_eq!(wrong.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("password is wrong"));
    let missing = cloudkeep(&["local", "points", "-r", s(&repo)], None);
    assert_eq!(missing.status.code(), Some(4));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("--password-stdin"), "{err}");
    assert!(
        !err.contains("wrong"),
        "no password is not a wrong password: {err}"
    );
    let no_choice = cloudkeep(&["local", "init", "-r", s(&tmp.path().join("r2"))], None);
    assert_eq!(no_choice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_choice.stderr).contains("--no-encryption"));
}

/// A file that cannot be read does not fail the backup: it ends as a warning naming it, and
/// the restore point holds everything else. `/proc/self/mem` fails to read even for root.
#[cfg(target_os = "linux")]
#[test]
fn unreadable_files_end_as_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = (tmp.path().join("repo"), tmp.path().join("src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("fine.txt"), b"readable").unwrap();
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    let out = cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--json",
            s(&src),
            "/proc/self/mem",
        ],
        None,
    );
    let text = ok(&out);
    let done: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(done["result"], "warning");
    let warnings = done["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["path"], "/proc/self/mem");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{warnings:?}"
    );
    assert_eq!(
        done["stats"]["files"], 1,
        "the readable file is in the point"
    );
}

#[test]
fn forget_keeps_by_policy_per_job_and_dry_run_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = (tmp.path().join("repo"), tmp.path().join("src"));
    std::fs::create_dir_all(&src).unwrap();
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    for i in 0..4 {
        std::fs::write(src.join("f.txt"), format!("version {i}")).unwrap();
        ok(&cloudkeep(
            &["local", "backup", "-r", s(&repo), "--job", "docs", s(&src)],
            None,
        ));
    }
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), "--job", "other", s(&src)],
        None,
    ));
    let count = || {
        let v: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
            &["local", "points", "-r", s(&repo), "--json"],
            None,
        )))
        .unwrap();
        v.as_array().unwrap().len()
    };
    assert_eq!(count(), 5);

    let none = cloudkeep(&["local", "forget", "-r", s(&repo)], None);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("at least one rule"));

    let dry = ok(&cloudkeep(
        &[
            "local",
            "forget",
            "-r",
            s(&repo),
            "--keep-last",
            "2",
            "--dry-run",
        ],
        None,
    ));
    assert!(dry.contains("would remove 2"), "{dry}");
    assert_eq!(count(), 5, "a dry run removes nothing");

    let done: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &[
            "local",
            "forget",
            "-r",
            s(&repo),
            "--keep-last",
            "2",
            "--json",
        ],
        None,
    )))
    .unwrap();
    assert_eq!(done.as_array().unwrap().len(), 2, "one group per job");
    assert_eq!(count(), 3, "docs keeps 2, other keeps its only point");
    // The newest point of "docs" still restores the newest content.
    let out = tmp.path().join("out");
    restore_latest(&repo, &out, &src);
    assert_eq!(
        std::fs::read_to_string(out.join("src/f.txt")).unwrap(),
        "version 3"
    );
}

#[test]
fn passwords_and_recovery_keys_are_managed_without_reencrypting() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = (tmp.path().join("repo"), tmp.path().join("src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("x.txt"), b"keep me").unwrap();
    let file = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p
    };
    let (old, second, renewed) = (
        file("old", "old-pw"),
        file("second", "second-pw"),
        file("renewed", "renewed-pw"),
    );
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--password-file", s(&old)],
        None,
    ));
    ok(&cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
            s(&src),
        ],
        None,
    ));

    ok(&cloudkeep(
        &[
            "local",
            "key",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
            "add-password",
            "--new-password-file",
            s(&second),
        ],
        None,
    ));
    let recovery = tmp.path().join("recovery.txt");
    ok(&cloudkeep(
        &[
            "local",
            "key",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
            "recovery-key",
            "--out",
            s(&recovery),
        ],
        None,
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&recovery).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = cloudkeep(
        &[
            "local",
            "key",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
            "recovery-key",
            "--out",
            s(&recovery),
        ],
        None,
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing recovery key file is never overwritten"
    );

    ok(&cloudkeep(
        &[
            "local",
            "key",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
            "change-password",
            "--new-password-file",
            s(&renewed),
        ],
        None,
    ));
    let stale = cloudkeep(
        &[
            "local",
            "points",
            "-r",
            s(&repo),
            "--password-file",
            s(&old),
        ],
        None,
    );
    assert_eq!(
        stale.status.code(),
        Some(4),
        "the old password no longer opens"
    );

    let slots: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &[
            "local",
            "key",
            "-r",
            s(&repo),
            "--password-file",
            s(&renewed),
            "--json",
            "list",
        ],
        None,
    )))
    .unwrap();
    let kinds: Vec<&str> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["password", "password", "recovery"]);

    // Every remaining secret restores the same data: nothing was re-encrypted.
    for (i, unlock) in [
        vec!["--password-file", s(&renewed)],
        vec!["--password-file", s(&second)],
        vec!["--recovery-key-file", s(&recovery)],
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("out{i}"));
        let mut args = vec!["local", "restore", "-r", s(&repo)];
        args.extend(unlock);
        args.extend(["latest", "--to", s(&out), "--path", s(&src)]);
        ok(&cloudkeep(&args, None));
        assert_eq!(std::fs::read(out.join("src/x.txt")).unwrap(), b"keep me");
    }
}

/// Runs `cloudkeep args` and kills it with SIGKILL the moment `happened` is true; fails when
/// the command ends first (it could not be interrupted) or nothing happens in two minutes.
#[cfg(unix)]
fn kill_when(args: &[&str], happened: impl Fn() -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !happened() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{args:?}: nothing happened in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// kill -9 in the middle of a backup: no partial restore point becomes visible, the earlier
/// point stays intact and restorable, the repository verifies, and running the backup again
/// completes, reusing what the killed run had stored.
#[cfg(unix)]
#[test]
fn a_killed_backup_leaves_no_partial_point_and_can_simply_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, small, big) = (
        tmp.path().join("repo"),
        tmp.path().join("small"),
        tmp.path().join("big"),
    );
    std::fs::create_dir_all(&small).unwrap();
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(small.join("keep.txt"), b"the earlier point").unwrap();
    for i in 0..48 {
        std::fs::write(
            big.join(format!("f{i:02}.bin")),
            pseudo_random(4 << 20, i + 1),
        )
        .unwrap();
    }
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), s(&small)],
        None,
    ));
    let before = pack_names(&repo);
    // SIGKILL as soon as the first pack is stored.
    kill_when(
        &["local", "backup", "-r", s(&repo), "--job", "big", s(&big)],
        || pack_names(&repo) != before,
    );

    let points: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &["local", "points", "-r", s(&repo), "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(
        points.as_array().unwrap().len(),
        1,
        "no partial point: {points}"
    );
    assert!(ok(&cloudkeep(&["local", "verify", "-r", s(&repo)], None)).contains("no damage found"));
    let out = tmp.path().join("out");
    restore_latest(&repo, &out, &small);
    assert_eq!(
        std::fs::read(out.join("small/keep.txt")).unwrap(),
        b"the earlier point"
    );

    // What the killed run was writing is no longer locked by anyone; an open removes such
    // leftovers once they have not changed for a minute (a fresh one may belong to a writer
    // that has not locked it yet). Let that minute pass.
    for leftover in std::fs::read_dir(repo.join("tmp")).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(leftover.unwrap().path())
            .unwrap();
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
            .unwrap();
    }
    let rerun = ok(&cloudkeep(
        &[
            "local",
            "backup",
            "-r",
            s(&repo),
            "--job",
            "big",
            "--json",
            s(&big),
        ],
        None,
    ));
    let done: serde_json::Value = serde_json::from_str(rerun.lines().last().unwrap()).unwrap();
    assert_eq!(done["result"], "success");
    assert_eq!(done["stats"]["files"], 48);
    let stored = done["stats"]["new_stored_bytes"].as_u64().unwrap();
    assert!(
        stored < (192 << 20) - (24 << 20),
        "what the killed run stored (a pack at least) is reused, not stored again: {stored}"
    );
    assert_eq!(
        std::fs::read_dir(repo.join("tmp")).unwrap().count(),
        0,
        "interrupted writes are cleaned up"
    );
    let out2 = tmp.path().join("out2");
    restore_latest(&repo, &out2, &big);
    assert_eq!(
        std::fs::read(out2.join("big/f47.bin")).unwrap(),
        pseudo_random(4 << 20, 48)
    );

    // Nothing the killed run stored is left unaccounted: the rerun adopted its packs.
    let report: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &["local", "gc", "-r", s(&repo), "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(report["orphan_packs"], 0, "{report}");
    assert_eq!(report["damaged_blobs"], 0);
    assert!(ok(&cloudkeep(&["local", "verify", "-r", s(&repo)], None)).contains("no damage found"));
    let out3 = tmp.path().join("out3");
    restore_latest(&repo, &out3, &big);
    assert_eq!(
        std::fs::read(out3.join("big/f00.bin")).unwrap(),
        pseudo_random(4 << 20, 1)
    );
}

#[cfg(unix)]
fn pack_names(repo: &Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(repo.join("packs"))
        .unwrap()
        .filter_map(Result::ok)
        .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap())
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect()
}

/// kill -9 of a garbage collection in the middle of compacting: the remaining restore point
/// stays intact and restorable, the repository verifies, the next collection cleans up
/// everything the killed one left (its lock included), and backups go on. Every other moment
/// of a collection is covered step by step in `core/repo/tests/gc_crash.rs`.
#[cfg(unix)]
#[test]
fn a_killed_gc_loses_nothing_and_the_next_one_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, big) = (tmp.path().join("repo"), tmp.path().join("big"));
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..64 {
        std::fs::write(
            big.join(format!("f{i:02}.bin")),
            pseudo_random(4 << 20, i + 100),
        )
        .unwrap();
    }
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), s(&big)],
        None,
    ));
    // Keep every fourth file: every pack becomes sparse and gc must compact them all.
    for i in (0..64).filter(|i| i % 4 != 0) {
        std::fs::remove_file(big.join(format!("f{i:02}.bin"))).unwrap();
    }
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), s(&big)],
        None,
    ));
    ok(&cloudkeep(
        &["local", "forget", "-r", s(&repo), "--keep-last", "1"],
        None,
    ));

    let before = pack_names(&repo);
    // SIGKILL as soon as the first compacted pack is stored.
    kill_when(&["local", "gc", "-r", s(&repo)], || {
        pack_names(&repo) != before
    });

    let points: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &["local", "points", "-r", s(&repo), "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
    assert!(ok(&cloudkeep(&["local", "verify", "-r", s(&repo)], None)).contains("no damage found"));
    let out = tmp.path().join("out");
    restore_latest(&repo, &out, &big);
    for i in (0..64).filter(|i| i % 4 == 0) {
        assert_eq!(
            std::fs::read(out.join(format!("big/f{i:02}.bin"))).unwrap(),
            pseudo_random(4 << 20, i + 100),
            "f{i:02}.bin"
        );
    }

    // The killed run's lock is stale (its process is gone): the next gc runs and finishes.
    let report: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &["local", "gc", "-r", s(&repo), "--json"],
        None,
    )))
    .unwrap();
    assert!(report["dead_blobs"].as_u64().unwrap() > 0, "{report}");
    let again: serde_json::Value = serde_json::from_str(&ok(&cloudkeep(
        &["local", "gc", "-r", s(&repo), "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(again["dead_blobs"], 0, "{again}");
    assert_eq!(again["orphan_packs"], 0, "{again}");
    assert!(
        again["bytes_after"].as_u64().unwrap() < 128 << 20,
        "about the 16 kept files' 64 MiB (packs at least half live are kept whole), not the 64 files' 256 MiB: {again}"
    );
    assert!(ok(&cloudkeep(&["local", "verify", "-r", s(&repo)], None)).contains("no damage found"));
    std::fs::write(big.join("new.txt"), b"after the crash").unwrap();
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), s(&big)],
        None,
    ));
}

/// A loop device detached when dropped.
#[cfg(unix)]
struct LoopDevice(String);

#[cfg(unix)]
impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// `local backup --disk` on a real block device (a loop device over an image, when this runs
/// as root and loop devices exist; otherwise the image file itself): restored as a raw image
/// equal to the device's content.
#[cfg(unix)]
#[test]
fn a_disk_is_backed_up_whole_and_restores_as_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, image) = (tmp.path().join("repo"), tmp.path().join("disk.img"));
    let mut bytes = vec![0u8; 16 << 20];
    bytes[..3 << 20].copy_from_slice(&pseudo_random(3 << 20, 7));
    bytes[12 << 20..13 << 20].copy_from_slice(&pseudo_random(1 << 20, 8));
    std::fs::write(&image, &bytes).unwrap();
    let loop_dev = Command::new("losetup")
        .args(["-f", "--show", s(&image)])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| LoopDevice(String::from_utf8_lossy(&o.stdout).trim().to_owned()));
    let disk = loop_dev
        .as_ref()
        .map_or(image.clone(), |d| std::path::PathBuf::from(&d.0));
    eprintln!("backing up {}", disk.display());

    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    let done: serde_json::Value = serde_json::from_str(
        ok(&cloudkeep(
            &[
                "local",
                "backup",
                "-r",
                s(&repo),
                "--json",
                "--disk",
                s(&disk),
            ],
            None,
        ))
        .lines()
        .last()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(done["result"], "success", "{done}");
    assert_eq!(done["stats"]["bytes"], 16 << 20, "{done}");
    drop(loop_dev);

    let out = tmp.path().join("out");
    restore_latest(&repo, &out, &disk);
    let restored = out.join(disk.file_name().unwrap());
    assert_eq!(std::fs::read(&restored).unwrap(), bytes);

    let missing = cloudkeep(&["local", "backup", "-r", s(&repo)], None);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a source or a disk is required"
    );
}

/// The scheduler: a job that was never run since its creation three days ago (the computer
/// was off) runs once at the next pass, not once per missed run; a manual job never runs.
#[test]
fn the_daemon_runs_due_jobs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, src, target) = (
        tmp.path().join("home"),
        tmp.path().join("src"),
        tmp.path().join("target"),
    );
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"scheduled").unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(args)
            .env("CLOUDKEEP_HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        ok(&child.wait_with_output().unwrap())
    };
    for (name, schedule) in [("hourly", "every:6h"), ("by-hand", "manual")] {
        run(
            &[
                "job",
                "create",
                name,
                "--folder",
                s(&target),
                "--source",
                s(&src),
                "--schedule",
                schedule,
                "--restore-test",
                "manual",
                "--no-encryption",
            ],
            None,
        );
    }
    assert_eq!(
        run(&["daemon", "--once"], None),
        "",
        "nothing is due right after creation"
    );

    // Three days pass with the computer off.
    jobs_created_days_ago(&home, 3);
    let first = run(&["daemon", "--once"], None);
    assert!(first.starts_with("hourly success"), "{first}");
    assert!(!first.contains("by-hand"), "{first}");
    assert_eq!(
        run(&["daemon", "--once"], None),
        "",
        "once, not once per missed run"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&run(&["job", "show", "hourly", "--json"], None)).unwrap();
    assert_eq!(shown["sessions"].as_array().unwrap().len(), 1);
    // A restore test on a schedule of its own: missed while the computer was off, it runs
    // once at the next pass, on the point the job now has; not again until due.
    run(
        &["job", "edit", "hourly", "--restore-test", "every:6h"],
        None,
    );
    let tested = run(&["daemon", "--once"], None);
    assert!(
        tested.starts_with("hourly restore test success"),
        "{tested}"
    );
    assert_eq!(run(&["daemon", "--once"], None), "", "tested once");

    // Without a daemon, `about` says scheduled jobs need the console; a running daemon
    // beats its heartbeat (the console then leaves scheduled runs to it) and `about` says so.
    let about = run(&["about"], None);
    assert!(about.contains("only while the console is open"), "{about}");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
        .args(["daemon", "--interval", "3600"])
        .env("CLOUDKEEP_HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let beat = home.join("daemon.alive");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !beat.exists() {
        assert!(std::time::Instant::now() < deadline, "no heartbeat");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let about = run(&["about", "--json"], None);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let about: serde_json::Value = serde_json::from_str(&about).unwrap();
    assert_eq!(about["daemon_running"], true, "{about}");
    // A heartbeat older than 90 s is a daemon that stopped.
    std::fs::write(&beat, (chrono_now_ms() - 200_000).to_string()).unwrap();
    let about = run(&["about"], None);
    assert!(about.contains("only while the console is open"), "{about}");
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `job edit` changes what it says and keeps the rest; a scheduled run that fails is tried
/// again as the job says, and the session names every try; the health check runs on its own
/// schedule and is recorded.
#[test]
fn jobs_are_edited_retried_and_health_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, src, target) = (
        tmp.path().join("home"),
        tmp.path().join("src"),
        tmp.path().join("target"),
    );
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"checked").unwrap();
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file where the repository should go").unwrap();
    let run = |args: &[&str]| {
        crate::support::output(
            Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
                .args(args)
                .env("CLOUDKEEP_HOME", &home)
                .env("CLOUDKEEP_SECRETS", "file"),
        )
    };
    ok(&run(&[
        "job",
        "create",
        "good",
        "--folder",
        s(&target),
        "--source",
        s(&src),
        "--schedule",
        "every:6h",
        "--health-check",
        "every:24h",
        "--restore-test",
        "manual",
        "--no-encryption",
    ]));
    let bad_target = blocker.join("repo");
    ok(&run(&[
        "job",
        "create",
        "broken",
        "--folder",
        s(&bad_target),
        "--source",
        s(&src),
        "--schedule",
        "every:6h",
        "--retries",
        "2",
        "--retry-wait",
        "1s",
        "--no-encryption",
    ]));

    let edited = ok(&run(&[
        "job",
        "edit",
        "good",
        "--schedule",
        "daily@03:00:mon,thu",
        "--keep-points",
        "5",
        "--exclude",
        "*.tmp",
        "--retries",
        "1",
    ]));
    assert!(edited.contains("daily@03:00:mon,thu"), "{edited}");
    assert!(edited.contains("5 points"), "{edited}");
    assert!(edited.contains("*.tmp"), "{edited}");
    assert!(edited.contains("health check: every:24h"), "kept: {edited}");
    let bad = run(&["job", "edit", "good", "--schedule", "hourly"]);
    assert_eq!(bad.status.code(), Some(2), "a bad schedule is refused");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("daily@02:30"));
    let missing = run(&["job", "edit", "nope", "--retries", "1"]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("there is no job \"nope\"") && said.contains("\nto fix: cloudkeep job list"),
        "the error names the job, the remedy is a command: {said}"
    );
    ok(&run(&["job", "edit", "good", "--schedule", "every:6h"]));

    // Three days pass with the computer off: both jobs are due, and the health check.
    jobs_created_days_ago(&home, 3);
    let started = std::time::Instant::now();
    let pass = ok(&run(&["daemon", "--once"]));
    assert!(pass.contains("good success"), "{pass}");
    assert!(pass.contains("good health check success"), "{pass}");
    let broken = pass.lines().find(|l| l.starts_with("broken")).unwrap();
    assert!(broken.starts_with("broken failed"), "{pass}");
    assert!(
        broken.contains("try 1 failed") && broken.contains("try 3 failed"),
        "{broken}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "two waits of 1 s"
    );

    let shown: serde_json::Value =
        serde_json::from_str(&ok(&run(&["job", "show", "good", "--json"]))).unwrap();
    let kinds: Vec<&str> = shown["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"backup") && kinds.contains(&"health-check"),
        "{kinds:?}"
    );
    assert_eq!(ok(&run(&["daemon", "--once"])), "", "nothing more is due");
}

/// Moves every job's creation `days` back, as if the computer had been off since.
fn jobs_created_days_ago(home: &Path, days: u32) {
    use sqlx::Connection;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let created = now_ms - i64::from(days) * 86_400_000;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(home.join("cloudkeep.db"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("UPDATE jobs SET created_ms = ?")
            .bind(created)
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    });
}

/// On a terminal a restore shows a progress bar (percent, files, bytes, rate); piped, the same
/// command writes no control characters at all. The terminal is a real pseudo-terminal made by
/// util-linux `script`.
#[cfg(unix)]
#[test]
fn progress_is_a_bar_on_a_terminal_and_silent_in_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), pseudo_random(24 << 20, 5)).unwrap();
    ok(&cloudkeep(
        &["local", "init", "-r", s(&repo), "--no-encryption"],
        None,
    ));
    ok(&cloudkeep(
        &["local", "backup", "-r", s(&repo), s(&src)],
        None,
    ));
    let restore = |to: &str| {
        format!(
            "{} local restore -r {} latest --to {}",
            env!("CARGO_BIN_EXE_cloudkeep"),
            s(&repo),
            s(&tmp.path().join(to))
        )
    };
    let out = Command::new("script")
        .args(["-qec", &restore("tty"), "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("100%") && shown.contains("1 files, 24.0 MiB") && shown.contains("/s"),
        "{shown}"
    );
    let piped = cloudkeep(
        &[
            "local",
            "restore",
            "-r",
            s(&repo),
            "latest",
            "--to",
            s(&tmp.path().join("pipe")),
        ],
        None,
    );
    ok(&piped);
    let piped = [piped.stdout, piped.stderr].concat();
    assert!(
        !piped.contains(&b'\r') && !piped.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&piped)
    );
}

/// A job whose source folder is gone (deleted, a drive unplugged) fails, says so and what to
/// do, and makes no restore point that retention could count against the good ones.
#[test]
fn a_job_whose_source_is_gone_fails_and_makes_no_point() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = crate::support::Cli {
        home: tmp.path().join("home"),
    };
    let (src, target) = (
        tmp.path().join("usb").join("docs"),
        tmp.path().join("target"),
    );
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "a\n").unwrap();
    cli.ok(
        &[
            "job",
            "create",
            "docs",
            "--folder",
            &target.display().to_string(),
            "--source",
            &src.display().to_string(),
            "--keep-points",
            "1",
            "--no-encryption",
        ],
        None,
    );
    cli.ok(&["job", "run", "docs"], None);
    std::fs::remove_dir_all(tmp.path().join("usb")).unwrap();
    let err = cli.fails(&["job", "run", "docs"], None, 1);
    assert!(
        err.contains(&format!("{} is gone", src.display())) && err.contains("reconnect the drive"),
        "{err}"
    );
    let points = cli.json(&["points", "list", "--job", "docs"]);
    assert_eq!(
        points.as_array().unwrap().len(),
        1,
        "the good point stays: {points}"
    );
    let shown = cli.json(&["job", "show", "docs"]);
    assert_eq!(shown["sessions"][0]["result"], "failed", "{shown}");
}
