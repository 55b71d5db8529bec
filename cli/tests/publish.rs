//! Publishing restore points (`points mount|unmount`, FUSE) through a real gateway: the
//! computer's own tools (`find`, `stat`, `sha256sum`, `readlink`) see over the mount what was
//! backed up — names, kinds, sizes, modes, owners, modification times, contents, link
//! targets; writes are refused; another local user reads nothing; a publication killed with
//! `kill -9` leaves no mount behind; `points unmount` and SIGTERM end a live one; a folder
//! that is not a publication is refused. An image-level point shows its disks and volumes as
//! raw images and each volume's files; `--attach` mounts a volume with the kernel's driver
//! from a read-only loop device, and nothing of it is left after `kill -9`. Runs as root (the test command runs it so): FUSE mounts need
//! it here.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cloudkeep_tests::pseudo_random;

use crate::support::{Cli, gateway_with_tenant, job_create, kill9, spawn, tenant_with_provider};

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mounted(at: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(at.to_str().unwrap()) && l.contains("fuse.cloudkeep"))
}

fn wait_until(what: &str, secs: u64, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `points mount`, killed when dropped: a test that fails half-way leaves no
/// publication (and, with `auto_unmount`, no mount) behind.
struct Publication(std::process::Child);

impl std::ops::Deref for Publication {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Publication {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `points mount latest --job JOB MNT` started, once the mount is there.
fn publish(laptop: &Cli, job: &str, mnt: &Path) -> Publication {
    publish_with(laptop, job, mnt, &[])
}

/// `points mount latest --job JOB MNT EXTRA…` started, once the mount is there.
fn publish_with(laptop: &Cli, job: &str, mnt: &Path, extra: &[&str]) -> Publication {
    let mut args = vec![
        "points",
        "mount",
        "latest",
        "--job",
        job,
        mnt.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = Publication(spawn(laptop, &args));
    wait_until("the point is published", 30, || mounted(mnt));
    run
}

/// What the OS's tools say of every entry under `root`: `find -printf` (type, mode, owner,
/// size, mtime to the second, link target) and `sha256sum` of every file, by relative path.
fn seen(root: &Path) -> BTreeMap<String, String> {
    let listing = tool(
        "find",
        &[
            root.to_str().unwrap(),
            "-mindepth",
            "1",
            "-printf",
            "%P|%y %m %u %g %s %T@ %l\\n",
        ],
    );
    let mut out = BTreeMap::new();
    for line in listing.lines() {
        let (path, facts) = line.split_once('|').unwrap();
        // Directory sizes are the file system's own business; times to the second.
        let mut f: Vec<String> = facts.split(' ').map(str::to_owned).collect();
        if f[0] == "d" {
            f[4] = "-".into();
        }
        f[5] = f[5].split('.').next().unwrap().to_owned();
        let mut fact = f.join(" ");
        if f[0] == "f" {
            let sum = tool("sha256sum", &[root.join(path).to_str().unwrap()]);
            fact.push_str(&format!(" {}", sum.split(' ').next().unwrap()));
        }
        out.insert(path.to_owned(), fact);
    }
    out
}

#[test]
fn a_file_level_point_published_through_a_gateway_reads_as_the_source() {
    assert_eq!(
        tool("id", &["-u"]).trim(),
        "0",
        "publishing tests need root (FUSE mounts): run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("docs/deep")).unwrap();
    for (i, len) in [0usize, 1, 4095, 70_000, 3_000_000, 9 << 20]
        .iter()
        .enumerate()
    {
        let at = if i % 2 == 0 { "docs" } else { "docs/deep" };
        std::fs::write(
            tree.join(at).join(format!("f{i}.bin")),
            pseudo_random(*len, i as u64),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("docs/f0.bin", tree.join("link")).unwrap();
    tool(
        "chmod",
        &["0640", tree.join("docs/f2.bin").to_str().unwrap()],
    );
    tool(
        "chown",
        &["1234:2345", tree.join("docs/deep/f3.bin").to_str().unwrap()],
    );
    tool(
        "touch",
        &[
            "-d",
            "2001-02-03 04:05:06",
            tree.join("docs/f4.bin").to_str().unwrap(),
        ],
    );

    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop: Cli = tenant_with_provider(d, &gw, &fp);
    job_create(&laptop, "docs", &tree);
    laptop.ok(&["job", "run", "docs"], None);

    let mnt = d.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut run = publish(&laptop, "docs", &mnt);
    let inside = mnt.join(tree.strip_prefix("/").unwrap());
    let source = seen(&tree);
    assert_eq!(
        source.len(),
        9,
        "two folders, six files, a link: {source:?}"
    );
    assert_eq!(
        seen(&inside),
        source,
        "find, stat and sha256sum over the mount"
    );
    // Another local user reads nothing, not even a file whose mode lets everyone read it.
    let other = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(inside.join("docs/deep/f1.bin"))
        .output()
        .unwrap();
    assert!(
        !other.status.success()
            && String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
        "another user reads a published point: {}",
        String::from_utf8_lossy(&other.stderr)
    );
    let write = std::fs::write(inside.join("docs/new.txt"), b"x").unwrap_err();
    assert_eq!(write.raw_os_error(), Some(30), "EROFS: {write}");

    // kill -9: the mount goes with the process (the publication's watchdog, or fusermount3's
    // `auto_unmount` helper, takes it away once the kernel lets go of it).
    kill9(&mut run.0);
    wait_until("a killed publication leaves no mount", 10, || {
        !mounted(&mnt)
    });
    assert!(
        laptop
            .ok(&["points", "published"], None)
            .contains("no restore point is published"),
        "a killed publication is not listed"
    );
    assert!(
        std::fs::read_dir(&mnt).unwrap().next().is_none(),
        "the folder is empty again"
    );
    // Killed with its helpers (the watchdog and fusermount3's): the mount stays, dead
    // ("transport endpoint is not connected"), until the next look. `points mount` takes it
    // away and publishes at the folder again; `points published` takes it away and lists
    // nothing.
    let kill_with_helpers = |mut run: Publication| {
        let helpers = tool("pgrep", &["-P", &run.id().to_string()]);
        assert_eq!(
            helpers.lines().count(),
            2,
            "the watchdog and fusermount3: {helpers}"
        );
        for helper in helpers.lines() {
            tool("kill", &["-9", helper.trim()]);
        }
        kill9(&mut run.0);
        std::thread::sleep(Duration::from_millis(300));
        assert!(mounted(&mnt), "with its helpers killed, the mount stays");
        assert_eq!(
            std::fs::read_dir(&mnt).unwrap_err().raw_os_error(),
            Some(107),
            "ENOTCONN"
        );
    };
    kill_with_helpers(publish(&laptop, "docs", &mnt));
    let run = Publication(spawn(
        &laptop,
        &[
            "points",
            "mount",
            "latest",
            "--job",
            "docs",
            mnt.to_str().unwrap(),
        ],
    ));
    wait_until("published again over the dead mount", 30, || {
        std::fs::read_dir(&mnt).is_ok_and(|mut d| d.next().is_some())
    });
    assert_eq!(seen(&inside), source, "published again over the dead mount");
    kill_with_helpers(run);
    assert!(
        laptop
            .ok(&["points", "published"], None)
            .contains("no restore point is published"),
        "a dead publication is not listed"
    );
    assert!(!mounted(&mnt), "listing took the dead mount away");

    // Unpublished by `points unmount`: the publishing process ends by itself.
    let mut run = publish(&laptop, "docs", &mnt);
    laptop.ok(&["points", "unmount", mnt.to_str().unwrap()], None);
    wait_until("the publishing process ends", 10, || {
        run.try_wait().unwrap().is_some()
    });
    assert!(run.wait().unwrap().success());
    assert!(!mounted(&mnt));
    // SIGTERM (as Ctrl-C): unpublished, and the process ends by itself.
    let mut run = publish(&laptop, "docs", &mnt);
    tool("kill", &["-TERM", &run.id().to_string()]);
    wait_until("SIGTERM ends the publication", 15, || {
        run.try_wait().unwrap().is_some()
    });
    assert!(run.wait().unwrap().success());
    assert!(!mounted(&mnt), "no mount after SIGTERM");
    // A folder that is not a publication is left alone, and so is what is mounted below it.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    tool("mount", &["-t", "tmpfs", "tmpfs", other.to_str().unwrap()]);
    let refused = laptop.run(&["points", "unmount", d.to_str().unwrap()], None);
    let still = !mounts_at(&other).is_empty();
    tool("umount", &[other.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not a published restore point"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        still,
        "a mount below a folder that is not a publication stays"
    );
}

/// The mount-table lines (type, source, options) of what is mounted at `at`.
fn mounts_at(at: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
        .map(|l| l.split(" - ").nth(1).unwrap().to_owned())
        .collect()
}

/// An image-level point published: each disk and volume is a raw image file equal to what was
/// imaged, which the OS's own tools read through the mount (`e2fsck`, `sha256sum`); each
/// volume's files are there as they were (names, kinds, modes, owners, times, contents, link
/// targets), read through the user-space reader; `--attach` hands the volume to the kernel's
/// own ext4 (a read-only loop device), and a publication killed with `kill -9` leaves neither
/// mount nor loop device behind.
#[test]
fn an_image_level_point_publishes_its_disks_volumes_and_their_files() {
    assert_eq!(
        tool("id", &["-u"]).trim(),
        "0",
        "publishing tests need root (FUSE mounts): run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("docs/deep/er")).unwrap();
    std::fs::write(tree.join("docs/big.bin"), pseudo_random(5 << 20, 7)).unwrap();
    std::fs::write(tree.join("docs/small.txt"), b"small").unwrap();
    std::fs::write(tree.join("docs/deep/er/empty"), b"").unwrap();
    std::fs::write(tree.join("docs/deep/odd.bin"), pseudo_random(12_345, 9)).unwrap();
    std::os::unix::fs::symlink("../small.txt", tree.join("docs/deep/link")).unwrap();
    tool(
        "chmod",
        &["600", tree.join("docs/small.txt").to_str().unwrap()],
    );
    tool(
        "chown",
        &[
            "1234:5678",
            tree.join("docs/deep/odd.bin").to_str().unwrap(),
        ],
    );
    // A 64 MiB GPT disk with one ext4 volume from 1 MiB, made without root.
    let (disk, volume) = crate::support::ext4_disk(d, "pub.img", 64, 120832, &tree);

    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop: Cli = tenant_with_provider(d, &gw, &fp);
    crate::support::image_job(&laptop, "disk", &disk);
    let mnt = d.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut run = publish(&laptop, "disk", &mnt);
    let sum = |p: &Path| {
        tool("sha256sum", &[p.to_str().unwrap()])
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let raw_disk = mnt.join("pub.img.raw");
    let raw_volume = mnt.join("pub.img/pub.img1.raw");
    assert_eq!(sum(&raw_disk), sum(&disk), "the whole disk, byte for byte");
    assert_eq!(sum(&raw_volume), sum(&volume), "the volume, byte for byte");
    tool("e2fsck", &["-fn", raw_volume.to_str().unwrap()]);
    let mode = tool("stat", &["-c", "%a %u", raw_disk.to_str().unwrap()]);
    assert_eq!(
        mode.trim(),
        "400 0",
        "a raw disk is its publisher's alone to read"
    );
    // The volume's files, through the user-space reader: as they were.
    let files = mnt.join("pub.img/pub.img1");
    let mut inside = seen(&files);
    assert!(inside.remove("lost+found").is_some(), "{inside:?}");
    let want = seen(&tree);
    assert_eq!(inside, want, "the volume's files as backed up");
    assert_eq!(want.len(), 8, "{want:?}");
    // A read in the middle of a file (not from its start) is the file's bytes there.
    let mut middle = vec![0u8; 3 * 4096];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(files.join("docs/big.bin")).unwrap(),
        &mut middle,
        700 * 4096 + 5,
    )
    .unwrap();
    let big = pseudo_random(5 << 20, 7);
    assert_eq!(
        middle,
        &big[700 * 4096 + 5..703 * 4096 + 5],
        "a read at an offset"
    );
    // Listed while it is published, with where and which point.
    let listed = laptop.ok(&["points", "published", "--json"], None);
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(rows[0]["folder"], mnt.to_str().unwrap(), "{listed}");
    assert_eq!(rows[0]["job"], "disk", "{listed}");
    laptop.ok(&["points", "unmount", mnt.to_str().unwrap()], None);
    wait_until("the publishing process ends", 10, || {
        run.try_wait().unwrap().is_some()
    });
    assert!(
        laptop
            .ok(&["points", "published"], None)
            .contains("no restore point is published")
    );

    // --attach: the kernel's own ext4 mounts the volume from a read-only loop device.
    let mut run = publish_with(&laptop, "disk", &mnt, &["--attach"]);
    wait_until("the volume is attached", 30, || {
        mounts_at(&files).iter().any(|m| m.starts_with("ext4 "))
    });
    let line = mounts_at(&files)
        .into_iter()
        .find(|m| m.starts_with("ext4 "))
        .unwrap();
    let device = line.split(' ').nth(1).unwrap().to_owned();
    assert!(device.starts_with("/dev/loop"), "{line}");
    assert!(line.split(' ').nth(2).unwrap().starts_with("ro"), "{line}");
    let loop_name = device.trim_start_matches("/dev/").to_owned();
    let ro = std::fs::read_to_string(format!("/sys/block/{loop_name}/ro")).unwrap();
    assert_eq!(ro.trim(), "1", "a read-only loop device");
    let mut attached = seen(&files);
    attached.remove("lost+found");
    assert_eq!(attached, want, "the kernel reads the same files");
    let listed = laptop.ok(&["points", "published", "--json"], None);
    assert!(listed.contains(&device), "{listed}");
    // Killed: the mount, the attached volume and its loop device all go.
    crate::support::kill9(&mut run);
    let backed_by_us = || {
        std::fs::read_to_string(format!("/sys/block/{loop_name}/loop/backing_file"))
            .is_ok_and(|b| b.contains("pub.img1.raw"))
    };
    wait_until("nothing is left after kill -9", 60, || {
        !mounted(&mnt) && mounts_at(&files).is_empty() && !backed_by_us()
    });
    // Whatever `auto_unmount` left, `points unmount` says so and cleans up.
    let _ = laptop.run(&["points", "unmount", mnt.to_str().unwrap()], None);
    assert!(!backed_by_us());
    assert!(
        laptop
            .ok(&["points", "published"], None)
            .contains("no restore point is published"),
        "a killed publication's record is dropped"
    );
}
