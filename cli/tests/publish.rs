//! Publishing restore points (`points mount|unmount`, FUSE) through a real gateway: the
//! computer's own tools (`find`, `stat`, `sha256sum`, `readlink`) see over the mount what was
//! backed up — names, kinds, sizes, modes, owners, modification times, contents, link
//! targets; writes are refused; another local user reads nothing; a publication killed with
//! `kill -9` leaves no mount behind; `points unmount` and SIGTERM end a live one; a folder
//! that is not a publication is refused. Runs as root (the test command runs it so): FUSE mounts need
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
    let run = Publication(spawn(
        laptop,
        &[
            "points",
            "mount",
            "latest",
            "--job",
            job,
            mnt.to_str().unwrap(),
        ],
    ));
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

    // kill -9: the mount goes with the process.
    kill9(&mut run.0);
    wait_until("a killed publication leaves no mount", 10, || {
        !mounted(&mnt)
    });
    assert!(
        std::fs::read_dir(&mnt).unwrap().next().is_none(),
        "the folder is empty again"
    );

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
    // A folder that is not a publication is left alone.
    let refused = laptop.run(&["points", "unmount", d.to_str().unwrap()], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not a published restore point"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// An image-level point published: each disk and volume is a raw image file equal to what was
/// imaged, which the OS's own tools read through the mount (`e2fsck`, `sha256sum`).
#[test]
fn an_image_level_point_publishes_its_disk_and_volumes_as_raw_images() {
    assert_eq!(
        tool("id", &["-u"]).trim(),
        "0",
        "publishing tests need root (FUSE mounts): run scripts/test"
    );
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("docs")).unwrap();
    std::fs::write(tree.join("docs/big.bin"), pseudo_random(5 << 20, 7)).unwrap();
    std::fs::write(tree.join("docs/small.txt"), b"small").unwrap();
    // A 64 MiB GPT disk with one ext4 volume from 1 MiB, made without root.
    let disk = d.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    crate::support::partition(&disk, "label: gpt\nstart=2048, size=120832, type=L\n");
    let volume = d.join("volume.img");
    std::fs::File::create(&volume)
        .unwrap()
        .set_len(120832 * 512)
        .unwrap();
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            tree.to_str().unwrap(),
            volume.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&volume).unwrap();
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&disk).unwrap(),
        &bytes,
        MIB,
    )
    .unwrap();

    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop: Cli = tenant_with_provider(d, &gw, &fp);
    laptop.ok(
        &[
            "job",
            "create",
            "disk",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--mode",
            "volumes",
            "--volume",
            disk.to_str().unwrap(),
            "--no-encryption",
        ],
        None,
    );
    laptop.ok(&["job", "run", "disk"], None);
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
    let raw_disk = mnt.join("disk.img.raw");
    let raw_volume = mnt.join("disk.img/disk.img1.raw");
    assert_eq!(sum(&raw_disk), sum(&disk), "the whole disk, byte for byte");
    assert_eq!(sum(&raw_volume), sum(&volume), "the volume, byte for byte");
    tool("e2fsck", &["-fn", raw_volume.to_str().unwrap()]);
    let mode = tool("stat", &["-c", "%a %u", raw_disk.to_str().unwrap()]);
    assert_eq!(
        mode.trim(),
        "400 0",
        "a raw disk is its publisher's alone to read"
    );
    // The volume's files are listed beside it.
    let listed: Vec<String> = std::fs::read_dir(mnt.join("disk.img/disk.img1/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    laptop.ok(&["points", "unmount", mnt.to_str().unwrap()], None);
    wait_until("the publishing process ends", 10, || {
        run.try_wait().unwrap().is_some()
    });
}
