//! The fault suite: the real `cloudkeep` binary and real gateway processes under what a
//! killed process, a full or damaged disk, concurrent processes and a local user on the
//! server do to them. Every case states what it tried and what held, in numbers
//! (`fault_report`, printed in the test command's summary):
//!
//! - files the gateway writes are owner-only, and it refuses to start when they are not;
//! - a gateway killed (`kill -9`) mid-upload, again and again, leaks no quota and leaves no
//!   file the database does not know once it runs again (and `sp check` agrees);
//! - a backup killed at many points leaves no partial point and the next run completes;
//! - opening a repository (points, verify) while a backup writes never breaks it;
//! - a full provider disk is said as such, and earlier points stay intact;
//! - two gateways on one database and storage serve two tenants' backups at once;
//! - concurrent backups, garbage collection and verify on one repository never corrupt it.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Child;
#[cfg(target_os = "linux")]
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;
use cloudkeep_tests::{fault_report, files_under, pseudo_random};

const SUITE: &str = "faults";

/// `count` files of `size` pseudo-random bytes in `dir`.
fn random_files(dir: &Path, count: u64, size: usize, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::write(
            dir.join(format!("f{i:02}.bin")),
            pseudo_random(size, seed + i),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// Whether `path` lies in the folder `name` directly under `area`.
fn in_folder(area: &Path, path: &Path, name: &str) -> bool {
    path.strip_prefix(area)
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| c.as_os_str() == name)
}

/// Bytes a storage area holds for its tenant: every file but temporary ones and packs set
/// aside.
fn stored_bytes(area: &Path) -> i64 {
    files_under(area, &|p| {
        !in_folder(area, p, "tmp") && !in_folder(area, p, "damaged")
    })
    .iter()
    .map(|(_, len)| *len as i64)
    .sum()
}

/// Temporary files left in a storage area.
fn temporary_files(area: &Path) -> Vec<(PathBuf, u64)> {
    files_under(area, &|p| in_folder(area, p, "tmp"))
}

/// The one storage area (quota folder) under a cloud repository folder.
fn only_area(storage: &Path) -> PathBuf {
    let areas: Vec<PathBuf> = std::fs::read_dir(storage)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(areas.len(), 1, "{areas:?}");
    areas[0].clone()
}

fn used_of(sp: &Cli, tenant: &str) -> i64 {
    let usage = sp.json(&["sp", "usage"]);
    usage
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == tenant)
        .unwrap()["used_bytes"]
        .as_i64()
        .unwrap()
}

/// Waits until `ready` holds, or fails after `secs` (or as soon as `child` ends).
fn wait_for(child: &mut Child, secs: u64, what: &str, ready: &dyn Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(child.try_wait().unwrap().is_none(), "ended before {what}");
        assert!(Instant::now() < deadline, "no {what} in {secs} s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_same_files(source: &Path, restored: &Path) {
    let mut n = 0;
    for (path, _) in files_under(source, &|_| true) {
        let rel = path.strip_prefix(source).unwrap();
        assert_eq!(
            std::fs::read(restored.join(rel)).unwrap(),
            std::fs::read(&path).unwrap(),
            "{}",
            rel.display()
        );
        n += 1;
    }
    assert!(n > 0);
}

/// Everything the gateway writes is owner-only; started with a folder or database other
/// local users can read, it refuses and says how to fix it.
#[cfg(unix)]
#[test]
fn the_gateway_keeps_its_files_owner_only_and_refuses_exposed_ones() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (mut gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = random_files(&tmp.path().join("src"), 2, 200_000, 1);
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);
    let mut checked = 0;
    for root in [tmp.path().join("gw"), tmp.path().join("storage")] {
        let mut stack = vec![root];
        while let Some(path) = stack.pop() {
            let meta = std::fs::metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            let public_cert = path.extension().is_some_and(|e| e == "pem")
                && !path.to_string_lossy().contains("key");
            assert!(
                mode & 0o077 == 0 || public_cert,
                "{} is {mode:o}",
                path.display()
            );
            checked += 1;
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
    gw.terminate();
    let home = Cli {
        home: tmp.path().join("sp-home"),
    };
    let data = tmp.path().join("gw").display().to_string();
    let mut refused = 0;
    for (path, mode) in [
        (tmp.path().join("gw"), 0o755),
        (tmp.path().join("gw/meta.db"), 0o644),
        (tmp.path().join("storage"), 0o750),
    ] {
        let before = std::fs::metadata(&path).unwrap().permissions();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = home.fails(
            &["gateway", "run", "--data-dir", &data, "--allow-root"],
            None,
            1,
        );
        assert!(
            err.contains("other users")
                && err.contains("chmod -R go-rwx")
                && err.contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::set_permissions(&path, before).unwrap();
        refused += 1;
    }
    let _again = Gateway::start(&tmp.path().join("gw"));
    fault_report(
        SUITE,
        &format!(
            "permissions: {checked} files and folders of a gateway and its storage after a backup, all owner-only; started with {refused} kinds of exposed folder or database, refused {refused} times with the chmod to run; starts once fixed"
        ),
    );
}

/// `kill -9` of the gateway while a pack streams in, three times: at each restart the
/// reservations are given back and what the cut uploads left is removed; the quota figure
/// equals the bytes stored, `sp check` finds nothing to correct, and the rerun completes.
#[cfg(unix)]
#[test]
fn a_gateway_killed_mid_upload_leaks_no_quota_and_leaves_no_stray_files() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = free_address();
    let (mut gw, sp, fp) = gateway_with_tenant_on(tmp.path(), &listen);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = random_files(&tmp.path().join("big"), 12, 4 << 20, 100);
    job_create(&laptop, "big", &source);
    let storage = tmp.path().join("storage");
    let data = tmp.path().join("gw");
    let uploading = |storage: &Path| {
        !files_under(storage, &|p| {
            p.extension().is_some_and(|e| e == "upload")
                && std::fs::metadata(p).is_ok_and(|m| m.len() > (1 << 20))
        })
        .is_empty()
    };
    let mut kills = 0;
    for _ in 0..3 {
        let mut run = spawn(&laptop, &["job", "run", "big"]);
        wait_for(&mut run, 120, "an upload in flight", &|| {
            uploading(&storage)
        });
        kill9(&mut gw.child);
        kills += 1;
        let status = run.wait().unwrap();
        assert!(!status.success(), "the run fails when its gateway dies");
        gw = Gateway::start_listening(&data, &listen, &[]);
        let area = only_area(&storage);
        assert_eq!(
            used_of(&sp, "acme"),
            stored_bytes(&area),
            "after restart {kills}: the quota counts exactly what is stored"
        );
    }
    let check = sp.json(&["sp", "check"]);
    assert_eq!(check["recounted"], serde_json::json!([]), "{check}");
    assert_eq!(check["lost"], serde_json::json!([]), "{check}");
    let area = only_area(&storage);
    assert_eq!(used_of(&sp, "acme"), stored_bytes(&area));
    let rerun = laptop.ok(&["job", "run", "big", "--json"], None);
    assert!(rerun.contains("\"success\""), "{rerun}");
    let out = tmp.path().join("restored");
    laptop.restore_latest("big", &out, None);
    assert_same_files(&source, &cloudkeep_tests::restored_at(&out, &source));
    assert_eq!(used_of(&sp, "acme"), stored_bytes(&area));
    let leftovers = temporary_files(&area);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    fault_report(
        SUITE,
        &format!(
            "gateway kill -9 mid-upload: {kills} kills; after each restart the quota equalled the bytes on disk; sp check then found 0 drift, {} orphan files; the rerun completed and restored byte-identical; 0 temporary files left",
            check["orphans_removed"]
        ),
    );
    drop(gw);
}

/// `kill -9` of a local backup at many points of its run (fractions of a full run's time, each
/// on a fresh repository): never a partial point, the repository verifies healthy, and the
/// rerun completes and restores byte-identical.
#[cfg(unix)]
#[test]
fn a_backup_killed_at_many_points_leaves_no_partial_point() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let source = random_files(&tmp.path().join("src"), 16, 4 << 20, 300);
    let s = source.display().to_string();
    let fresh = |name: &str| {
        let repo = tmp.path().join(name).display().to_string();
        cli.ok(&["local", "init", "-r", &repo, "--no-encryption"], None);
        repo
    };
    let timing = fresh("timing");
    let started = Instant::now();
    cli.ok(&["local", "backup", "-r", &timing, &s], None);
    let full = started.elapsed();
    let fractions = [0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95];
    let (mut killed, mut finished_first) = (0, 0);
    for (n, fraction) in fractions.iter().enumerate() {
        let r = fresh(&format!("repo-{n}"));
        let mut run = spawn(&cli, &["local", "backup", "-r", &r, &s]);
        std::thread::sleep(full.mul_f64(*fraction));
        if run.try_wait().unwrap().is_some() {
            finished_first += 1;
            continue;
        }
        kill9(&mut run);
        killed += 1;
        let verify = cli.run(&["local", "verify", "-r", &r], None);
        assert!(
            verify.status.success(),
            "after a kill at {:.0} % of the run: {}",
            fraction * 100.0,
            String::from_utf8_lossy(&verify.stdout)
        );
        // A run killed after its commit but before it exited has a whole point (the restore
        // below checks it byte for byte); before the commit, none.
        let points = cli.json(&["local", "points", "-r", &r]);
        let committed = points.as_array().unwrap().len();
        assert!(committed <= 1, "{points}");
        if committed == 0 {
            cli.ok(&["local", "backup", "-r", &r, &s], None);
        }
        let out = tmp.path().join(format!("out-{n}"));
        cli.ok(
            &[
                "local",
                "restore",
                "-r",
                &r,
                "latest",
                "--to",
                &out.display().to_string(),
            ],
            None,
        );
        assert_same_files(&source, &cloudkeep_tests::restored_at(&out, &source));
    }
    assert!(
        killed >= 5,
        "only {killed} runs could be killed ({finished_first} finished first)"
    );
    fault_report(
        SUITE,
        &format!(
            "backup kill -9: {killed} local backups of 64 MiB killed at 2 % to 95 % of a full run ({:.1} s); 0 partial points, {killed} verifies healthy, {killed} reruns completed and restored byte-identical",
            full.as_secs_f64()
        ),
    );
}

/// While a backup writes, other processes open the same repository again and again (list
/// points, verify): the backup completes and no verify ever reports damage.
#[cfg(unix)]
#[test]
fn opening_a_repository_never_breaks_a_running_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let repo = tmp.path().join("repo");
    let r = repo.display().to_string();
    cli.ok(&["local", "init", "-r", &r, "--no-encryption"], None);
    let small = random_files(&tmp.path().join("small"), 2, 100_000, 7);
    cli.ok(
        &["local", "backup", "-r", &r, &small.display().to_string()],
        None,
    );
    let source = random_files(&tmp.path().join("src"), 24, 4 << 20, 500);
    let mut run = spawn(
        &cli,
        &["local", "backup", "-r", &r, &source.display().to_string()],
    );
    let (mut opens, mut verifies) = (0, 0);
    while run.try_wait().unwrap().is_none() {
        let points = cli.run(&["local", "points", "-r", &r], None);
        assert!(points.status.success());
        opens += 1;
        let verify = cli.run(&["local", "verify", "-r", &r, "--sample", "100"], None);
        assert!(
            verify.status.success(),
            "verify during the backup: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        verifies += 1;
    }
    let status = run.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "the backup survives: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(opens >= 1, "the backup ended before it could be disturbed");
    let points = cli.json(&["local", "points", "-r", &r]);
    assert_eq!(points.as_array().unwrap().len(), 2);
    assert!(
        cli.run(&["local", "verify", "-r", &r], None)
            .status
            .success()
    );
    fault_report(
        SUITE,
        &format!(
            "concurrent opens: {opens} point listings and {verifies} full verifies of a repository while a 96 MiB backup wrote to it; the backup completed, 0 verifies reported damage"
        ),
    );
}

/// The provider's disk fills up mid-backup (a 24 MiB tmpfs): the run fails saying the
/// provider's storage is full and that earlier points are intact; the earlier point
/// restores; nothing half-written stays; once there is room the next run completes.
#[cfg(target_os = "linux")]
#[test]
fn a_full_provider_disk_is_said_plainly_and_keeps_earlier_points() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs"])
        .arg(&storage)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs and needs root (the test command runs as root in CI)"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(storage.clone());
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = random_files(&tmp.path().join("src"), 1, 1 << 20, 1);
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);
    std::fs::write(source.join("big.bin"), pseudo_random(40 << 20, 9)).unwrap();
    let err = laptop.fails(&["job", "run", "docs"], None, 1);
    assert!(
        err.contains("storage is full") && err.contains("earlier restore points are intact"),
        "{err}"
    );
    let points = laptop.json(&["points", "list", "--job", "docs"]);
    assert_eq!(points.as_array().unwrap().len(), 1, "no partial point");
    let out = tmp.path().join("out");
    laptop.restore_latest("docs", &out, None);
    assert_eq!(
        std::fs::read(cloudkeep_tests::restored_at(&out, &source).join("f00.bin")).unwrap(),
        pseudo_random(1 << 20, 1)
    );
    let area = only_area(&storage);
    let leftovers = temporary_files(&area);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(used_of(&sp, "acme"), stored_bytes(&area));
    std::fs::remove_file(source.join("big.bin")).unwrap();
    std::fs::write(source.join("medium.bin"), pseudo_random(4 << 20, 10)).unwrap();
    laptop.ok(&["job", "run", "docs"], None);
    fault_report(
        SUITE,
        "full disk: a 40 MiB backup onto a 24 MiB provider disk failed with \"storage is full … earlier restore points are intact\"; 0 partial points, the earlier point restored byte-identical, 0 temporary files left, quota = bytes on disk; the next run fit and completed",
    );
    drop(gw);
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    files_under(dir, &|_| true).iter().map(|(_, len)| len).sum()
}

/// A gateway killed (`kill -9`) in the middle of a backup: the same run goes on through the
/// provider's other gateway (the session and the task live in the shared database) and
/// succeeds once; its point is complete, verifies and restores byte-identical, and the packs
/// the dead gateway had stored are not sent again.
#[test]
fn a_backup_goes_on_through_another_gateway_when_its_gateway_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let metrics_at = free_address();
    let _second = Gateway::start_with(
        &tmp.path().join("gw"),
        &["--id", "gw-2", "--metrics-listen", &metrics_at],
    );
    // The provider knows the first gateway first, then the second (from its gateway list).
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..10u64 {
        // Odd, distinct seeds: `pseudo_random` makes one stream per `seed | 1`.
        std::fs::write(
            source.join(format!("f{i:02}.bin")),
            pseudo_random(16 << 20, 901 + 2 * i),
        )
        .unwrap();
    }
    job_create(&laptop, "docs", &source);
    let packs = tmp.path().join("storage");
    let mut run = spawn(&laptop, &["job", "run", "docs"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while bytes_under(&packs) < 40 << 20 {
        assert!(Instant::now() < deadline, "no pack reached the storage");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored_before = bytes_under(&packs);
    kill9(&mut gw.child);
    assert!(
        run.try_wait().unwrap().is_none(),
        "the backup ended before its gateway was killed"
    );
    assert!(
        run.wait().unwrap().success(),
        "the run failed with its gateway"
    );

    // One run, one point: complete, verified, restored byte-identical.
    let points = laptop.json(&["points", "list", "--job", "docs"]);
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
    let shown = laptop.json(&["job", "show", "docs"]);
    let sessions = shown["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 1, "{shown}");
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let out = tmp.path().join("out");
    laptop.restore_latest("docs", &out, None);
    assert_same_files(&source, &cloudkeep_tests::restored_at(&out, &source));

    // What the second gateway received: what was still missing, plus at most the two
    // uploads that were in flight — never what the first had stored.
    let metrics = http_get(&metrics_at, "/metrics");
    let received: u64 = metrics
        .lines()
        .find(|l| l.starts_with("cloudkeep_gateway_tenant_received_bytes_total{tenant=\"acme\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bytes received by the second gateway:\n{metrics}"));
    let stored = bytes_under(&packs);
    let in_flight = 2 * (33 << 20);
    assert!(
        received <= stored - stored_before + in_flight,
        "the second gateway received {received} bytes; {stored_before} of {stored} were stored before the kill"
    );
    fault_report(
        SUITE,
        &format!(
            "gateway killed mid-backup: {} MiB stored through the first when it was killed; the same run went on through the second, which received {} MiB of the remaining {} MiB; 1 session, 1 point, verified, restored byte-identical",
            stored_before >> 20,
            received >> 20,
            (stored - stored_before) >> 20
        ),
    );
}

/// Two gateways on one database and one storage, two tenants backing up at once, one
/// through each: both complete, restore, and the storage check finds nothing wrong.
#[test]
fn two_gateways_sharing_database_and_storage_serve_backups_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let second = Gateway::start_with(&tmp.path().join("gw"), &["--id", "gw-2"]);
    sp.ok(
        &[
            "sp",
            "tenant",
            "add",
            "beta",
            "--password-stdin",
            "--quota",
            "main=1G:Cloud",
        ],
        Some("beta-password"),
    );
    let a = tenant_with_provider(tmp.path(), &gw, &fp);
    let b = Cli {
        home: tmp.path().join("beta-home"),
    };
    b.ok(
        &[
            "provider",
            "add",
            "acme-sp",
            "--host",
            &second.addr,
            "--user",
            "beta",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some("beta-password"),
    );
    let source_a = random_files(&tmp.path().join("a"), 6, 4 << 20, 700);
    let source_b = random_files(&tmp.path().join("b"), 6, 4 << 20, 800);
    job_create(&a, "a", &source_a);
    job_create(&b, "b", &source_b);
    let mut runs = [
        spawn(&a, &["job", "run", "a"]),
        spawn(&b, &["job", "run", "b"]),
    ];
    for run in &mut runs {
        let out = run.wait().unwrap();
        assert!(out.success());
    }
    for (cli, job, source) in [(&a, "a", &source_a), (&b, "b", &source_b)] {
        let out = tmp.path().join(format!("out-{job}"));
        cli.restore_latest(job, &out, None);
        assert_same_files(source, &cloudkeep_tests::restored_at(&out, source));
    }
    let check = sp.json(&["sp", "check", "--deep"]);
    assert_eq!(check["lost"], serde_json::json!([]), "{check}");
    assert_eq!(check["damaged"], serde_json::json!([]), "{check}");
    assert_eq!(check["recounted"], serde_json::json!([]), "{check}");
    fault_report(
        SUITE,
        &format!(
            "two gateways, one database and storage: two tenants backed up 24 MiB each at once, one through each; both restored byte-identical; the deep check re-read {} bytes in {} packs and found 0 lost, 0 damaged, 0 drift",
            check["bytes_hashed"], check["packs_checked"]
        ),
    );
    drop(second);
    drop(gw);
}

/// Two backups into one repository at once, garbage collection tried while they run, a
/// verify at the end: gc is refused while backups hold the repository, both points are whole.
#[cfg(unix)]
#[test]
fn concurrent_backups_and_gc_never_corrupt_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let repo = tmp.path().join("repo");
    let r = repo.display().to_string();
    cli.ok(&["local", "init", "-r", &r, "--no-encryption"], None);
    let one = random_files(&tmp.path().join("one"), 8, 4 << 20, 900);
    let two = random_files(&tmp.path().join("two"), 8, 4 << 20, 950);
    let mut runs = [
        spawn(
            &cli,
            &["local", "backup", "-r", &r, &one.display().to_string()],
        ),
        spawn(
            &cli,
            &["local", "backup", "-r", &r, &two.display().to_string()],
        ),
    ];
    let (mut gc_refused, mut gc_ran) = (0, 0);
    while runs.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let gc = cli.run(&["local", "gc", "-r", &r], None);
        if gc.status.success() {
            gc_ran += 1;
        } else {
            let err = String::from_utf8_lossy(&gc.stderr);
            assert!(err.contains("lock") || err.contains("backup"), "{err}");
            gc_refused += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A backup that starts while gc holds the repository backs off, saying so (the lock
    // protocol: never both go on); run again, it completes.
    let mut backups_refused = 0;
    for (run, source) in runs.into_iter().zip([&one, &two]) {
        let out = run.wait_with_output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("in use"), "a backup failed: {err}");
            backups_refused += 1;
            cli.ok(
                &["local", "backup", "-r", &r, &source.display().to_string()],
                None,
            );
        }
    }
    assert!(
        gc_refused + backups_refused > 0,
        "gc never met a running backup"
    );
    cli.ok(&["local", "gc", "-r", &r], None);
    assert!(
        cli.run(&["local", "verify", "-r", &r], None)
            .status
            .success()
    );
    let points = cli.json(&["local", "points", "-r", &r]);
    assert_eq!(points.as_array().unwrap().len(), 2);
    let mut whole = 0;
    for (n, point) in points.as_array().unwrap().iter().enumerate() {
        let out = tmp.path().join(format!("out-{n}"));
        let id = point["id"].as_str().unwrap();
        cli.ok(
            &[
                "local",
                "restore",
                "-r",
                &r,
                id,
                "--to",
                &out.display().to_string(),
            ],
            None,
        );
        for source in [&one, &two] {
            let restored = cloudkeep_tests::restored_at(&out, source);
            if restored.exists() {
                assert_same_files(source, &restored);
                whole += 1;
            }
        }
    }
    assert_eq!(whole, 2, "each backup's point restores its own files");
    fault_report(
        SUITE,
        &format!(
            "concurrency: two 32 MiB backups into one repository at once; gc tried {} times while they ran: refused {gc_refused} times (a backup held the lock), ran {gc_ran} times in between, and {backups_refused} backups that started under gc backed off and completed when run again; both points whole, verify healthy after a final gc",
            gc_refused + gc_ran
        ),
    );
}

/// A gateway killed (`kill -9`) in the middle of moving a tenant's quota to another
/// repository: at its restart the move is marked failed and the quota unfrozen (the tenant
/// backs up at once, into the old repository, where its data still is); the move started
/// again completes, keeping what was copied, and every point is whole afterwards.
#[test]
fn a_gateway_killed_mid_move_fails_the_move_and_frees_the_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_address();
    let (mut gw, sp, fp) = gateway_with_tenant_on(tmp.path(), &addr);
    let spare = tmp.path().join("spare");
    sp.ok(
        &[
            "sp",
            "repo",
            "add",
            "spare",
            "--path",
            &spare.display().to_string(),
        ],
        None,
    );
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = random_files(&tmp.path().join("src"), 24, 12 << 20, 301);
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);

    sp.ok(
        &[
            "sp", "repo", "move", "acme", "--from", "main", "--to", "spare",
        ],
        None,
    );
    // Killed while it copies, as soon as that is seen (the copy itself takes well under a
    // second here, and a loaded machine polls slowly: a move seen only once done tests
    // nothing).
    let progress = || sp.json(&["sp", "repo", "moves"])[0].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = progress();
    while seen["state"] != "copying" {
        assert!(Instant::now() < deadline, "the move never started: {seen}");
        assert_ne!(
            seen["state"], "done",
            "the move ended before the gateway could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
        seen = progress();
    }
    kill9(&mut gw.child);
    let copied_before = seen["packs_done"].as_i64().unwrap();

    let gw = Gateway::start_listening(&tmp.path().join("gw"), &addr, &[]);
    let moves = sp.json(&["sp", "repo", "moves"]);
    assert_eq!(moves[0]["state"], "failed", "{moves}");
    let usage = sp.json(&["sp", "usage"]);
    assert_eq!(usage[0]["repo"], "main", "still where its data is: {usage}");
    std::fs::write(source.join("after.txt"), "after the failed move\n").unwrap();
    laptop.ok(&["job", "run", "docs"], None);

    let moved = sp.ok(
        &[
            "sp", "repo", "move", "acme", "--from", "main", "--to", "spare", "--wait",
        ],
        None,
    );
    assert!(moved.contains(": done"), "{moved}");
    let usage = sp.json(&["sp", "usage"]);
    assert_eq!(usage[0]["repo"], "spare", "{usage}");
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let out = tmp.path().join("out");
    laptop.restore_latest("docs", &out, None);
    assert_same_files(&source, &cloudkeep_tests::restored_at(&out, &source));
    fault_report(
        SUITE,
        &format!(
            "gateway killed mid-move ({copied_before} of {} packs copied): the move marked failed at restart, the quota unfrozen and backed up into, the move again done, every point verified",
            moves[0]["packs_total"]
        ),
    );
    drop(gw);
}
