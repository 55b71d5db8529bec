//! Backup and restore end to end on real files in a real folder repository.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use cloudkeep_tests::pseudo_random;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::engine::browse;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
use cloudkeep_repo::engine::verify::verify;
use cloudkeep_repo::repo::{NewRepo, Repository, Unlock};

/// A source tree with the awkward cases: nested folders, an empty folder, text, random
/// data bigger than a chunk, a sparse file, a symlink, a hard link, odd names and modes.
pub(crate) fn make_source(root: &Path) {
    fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(
        root.join("docs/readme.txt"),
        "hello cloudkeep\n".repeat(1000),
    )
    .unwrap();
    fs::write(
        root.join("docs/deep/er/random.bin"),
        pseudo_random(3 << 20, 1),
    )
    .unwrap();
    fs::write(root.join("docs/empty.txt"), b"").unwrap();
    fs::write(root.join("we ird ñame.txt"), b"unicode").unwrap();
    let sparse = fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    drop(sparse);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(root.join("sparse.img"))
            .unwrap();
        f.seek(SeekFrom::Start(10 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
    }
    std::os::unix::fs::symlink("docs/readme.txt", root.join("link")).unwrap();
    fs::hard_link(root.join("docs/readme.txt"), root.join("hardlink.txt")).unwrap();
    fs::set_permissions(
        root.join("docs/empty.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::set_permissions(root.join("docs/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    filetime::set_file_mtime(
        root.join("we ird ñame.txt"),
        filetime::FileTime::from_unix_time(1_000_000_000, 5),
    )
    .unwrap();
}

/// Restores `paths` (all when empty) of `point` into `folder`, skipping existing files.
pub(crate) fn restore_into(
    repo: &Repository,
    point: &cloudkeep_repo::repo::RestorePoint,
    folder: &Path,
    paths: Vec<String>,
) -> cloudkeep_repo::engine::restore::RestoreReport {
    restore(
        repo,
        point,
        &RestoreOptions {
            destination: Destination::Folder(folder.to_path_buf()),
            paths,
            conflict: Conflict::Skip,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap()
}

pub(crate) fn options(
    source: &Path,
    parent: Option<cloudkeep_repo::repo::RestorePoint>,
) -> BackupOptions {
    BackupOptions {
        sources: vec![source.to_path_buf()],
        disks: vec![],
        excludes: vec!["*.tmp".into()],
        one_file_system: false,
        compression: Compression::Default,
        host: "test-host".into(),
        job: "engine-test".into(),
        parent,
        cancel: Default::default(),
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn assert_same_tree(original: &Path, restored: &Path) {
    assert_eq!(walk(original), walk(restored));
    for rel in walk(original) {
        let (a, b) = (original.join(&rel), restored.join(&rel));
        let (ma, mb) = (
            fs::symlink_metadata(&a).unwrap(),
            fs::symlink_metadata(&b).unwrap(),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "{rel:?}");
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "mode of {rel:?}");
        if ma.is_file() {
            assert_eq!(
                fs::read(&a).unwrap(),
                fs::read(&b).unwrap(),
                "content of {rel:?}"
            );
            assert_eq!(ma.mtime(), mb.mtime(), "mtime of {rel:?}");
            assert_eq!(ma.mtime_nsec(), mb.mtime_nsec(), "mtime ns of {rel:?}");
        }
        if ma.file_type().is_symlink() {
            assert_eq!(fs::read_link(&a).unwrap(), fs::read_link(&b).unwrap());
        }
    }
}

#[test]
fn backup_restore_and_incremental_forever() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    make_source(&source);
    fs::write(source.join("scratch.tmp"), b"excluded").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let kdf = KdfParams::minimum();
    Repository::init(
        backend.clone(),
        NewRepo::Encrypted {
            password: "s3cret",
            kdf,
        },
    )
    .unwrap();
    let repo = Repository::open(backend.clone(), Unlock::Password("s3cret")).unwrap();

    let progress_calls = std::sync::atomic::AtomicU64::new(0);
    let first = backup(&repo, &options(&source, None), &|_| {
        progress_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let stats = first.point.manifest.stats;
    assert_eq!(stats.files, 6, "{stats:?}"); // readme, random, empty, weird, sparse, hardlink (the link is no file)
    assert!(
        stats.new_stored_bytes < 4 << 20,
        "sparse holes and dedup keep it small: {stats:?}"
    );
    assert!(progress_calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // Browse without reading file data.
    let index = repo.load_index().unwrap();
    let listing = browse::list_dir(
        &repo,
        &index,
        &first.point,
        &format!("{}/docs", source.display()),
    )
    .unwrap();
    let names: Vec<_> = listing
        .iter()
        .map(|n| n.display_name().into_owned())
        .collect();
    assert_eq!(names, ["deep", "empty.txt", "readme.txt"]);

    // Restore everything elsewhere from a freshly opened repository.
    let repo = Repository::open(backend.clone(), Unlock::Password("s3cret")).unwrap();
    let target = tmp.path().join("restored");
    let report = restore_into(&repo, &first.point, &target, vec![]);
    assert_eq!(
        report
            .placed
            .iter()
            .map(|p| (p.from.as_str(), p.to.as_path()))
            .collect::<Vec<_>>(),
        [("/", target.as_path())],
        "a whole point keeps its full paths below the folder"
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let restored = cloudkeep_tests::restored_at(&target, &source);
    fs::remove_file(source.join("scratch.tmp")).unwrap();
    assert_same_tree(&source, &restored);
    let (a, b) = (
        fs::metadata(restored.join("docs/readme.txt")).unwrap(),
        fs::metadata(restored.join("hardlink.txt")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard links restored as hard links");
    let sparse = fs::metadata(restored.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 64 << 20);
    assert!(
        sparse.blocks() * 512 < 8 << 20,
        "restored sparse: {} blocks",
        sparse.blocks()
    );

    // Nothing changed: nothing is read and nothing new is stored.
    let second = backup(&repo, &options(&source, Some(first.point.clone())), &|_| {}).unwrap();
    let s2 = second.point.manifest.stats;
    assert_eq!(s2.files_read, 0, "{s2:?}");
    assert_eq!(s2.files, stats.files);
    let index = repo.load_index().unwrap();
    let subtree = |point| match browse::resolve(&repo, &index, point, &source.display().to_string())
        .unwrap()
    {
        browse::Resolved::Node(node) => node.subtree,
        browse::Resolved::Root => panic!("the source is a folder"),
    };
    assert_eq!(
        subtree(&first.point),
        subtree(&second.point),
        "same tree, same ids: stored once"
    );
    // Only the source's ancestors (/, /tmp, the test folder) may have changed listings.
    let ancestors = source.ancestors().count() as u64;
    assert!(
        s2.new_blobs < ancestors,
        "only changed ancestor listings are new: {s2:?}"
    );

    // One file changed: only it is read; the point is complete on its own.
    fs::write(source.join("we ird ñame.txt"), b"unicode, edited").unwrap();
    let third = backup(
        &repo,
        &options(&source, Some(second.point.clone())),
        &|_| {},
    )
    .unwrap();
    assert_eq!(third.point.manifest.stats.files_read, 1);
    let target3 = tmp.path().join("restored3");
    let selected = format!("{}/we ird ñame.txt", source.display());
    let report = restore_into(&repo, &third.point, &target3, vec![selected.clone()]);
    // The report says where the selected file went: straight into the folder, by its name.
    assert_eq!(report.placed.len(), 1);
    assert_eq!(report.placed[0].from, selected);
    assert_eq!(report.placed[0].to, target3.join("we ird ñame.txt"));
    assert_eq!(
        fs::read(target3.join("we ird ñame.txt")).unwrap(),
        b"unicode, edited"
    );
    assert_eq!(repo.list_points().unwrap().len(), 3);

    // Find by name and compare points, from the catalog only.
    let index = repo.load_index().unwrap();
    let found = browse::find(&repo, &index, &third.point, "*.txt").unwrap();
    let names: Vec<_> = found
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["empty.txt", "readme.txt", "hardlink.txt", "we ird ñame.txt"]
    );
    let changes = browse::diff(&repo, &index, &second.point, &third.point).unwrap();
    let changed_file = format!("{}/we ird ñame.txt", source.display());
    assert!(
        changes
            .iter()
            .any(|c| c.path == changed_file && c.kind == browse::ChangeKind::Changed),
        "{changes:?}"
    );
    assert!(
        changes.iter().all(|c| !c.path.contains("docs")),
        "unchanged folders are not reported: {changes:?}"
    );
    assert!(
        browse::diff(&repo, &index, &third.point, &third.point)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn conflicts_are_handled_as_asked_and_missing_sources_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("a.txt"), b"from backup").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
    let mut opts = options(&source, None);
    opts.sources.push(tmp.path().join("does-not-exist"));
    let done = backup(&repo, &opts, &|_| {}).unwrap();
    assert_eq!(done.warnings.len(), 1);
    assert!(
        done.warnings[0]
            .message
            .contains("cannot back up this source")
    );

    let restore_to = |conflict| {
        restore(
            &repo,
            &done.point,
            &RestoreOptions {
                destination: Destination::Original,
                paths: vec![format!("{}/a.txt", source.display())],
                conflict,
                cancel: Default::default(),
            },
            &|_| {},
        )
        .unwrap()
    };
    fs::write(source.join("a.txt"), b"edited since").unwrap();
    let skipped = restore_to(Conflict::Skip);
    assert_eq!(skipped.skipped.len(), 1);
    assert_eq!(fs::read(source.join("a.txt")).unwrap(), b"edited since");
    let both = restore_to(Conflict::KeepBoth);
    assert_eq!(
        both.placed[0].to,
        source.join("a (restored).txt"),
        "the report names the new name a kept-both file got"
    );
    assert_eq!(
        fs::read(source.join("a (restored).txt")).unwrap(),
        b"from backup"
    );
    assert_eq!(fs::read(source.join("a.txt")).unwrap(), b"edited since");
    restore_to(Conflict::Overwrite);
    assert_eq!(fs::read(source.join("a.txt")).unwrap(), b"from backup");
    let leftovers: Vec<_> = fs::read_dir(&source)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ckrestore"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left behind");
}

/// A run none of whose sources is left (a folder deleted, a drive unplugged) fails and makes
/// no point; and retention never counts an empty point among those it keeps.
#[test]
fn a_run_with_no_source_left_fails_and_empty_points_never_count() {
    use cloudkeep_model::retention::RetentionPolicy;
    use cloudkeep_repo::engine::EngineError;
    use cloudkeep_repo::engine::forget::{ForgetFilter, forget};
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("a.txt"), b"kept").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
    let good = backup(&repo, &options(&source, None), &|_| {}).unwrap();

    let gone = tmp.path().join("unplugged");
    let err = backup(&repo, &options(&gone, None), &|_| {}).unwrap_err();
    assert!(matches!(err, EngineError::SourcesGone(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{} is gone", gone.display()))
            && text.contains("reconnect the drive"),
        "{text}"
    );
    assert_eq!(repo.list_points().unwrap().len(), 1, "no point made");

    // An empty folder backs up to an empty point, twice: keep-last 1 still keeps the good one.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut opts = options(&empty, None);
    opts.sources = vec![empty.clone()];
    for _ in 0..2 {
        backup(&repo, &opts, &|_| {}).unwrap();
    }
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..RetentionPolicy::default()
    };
    forget(
        &repo,
        &policy,
        &ForgetFilter::default(),
        chrono::Utc::now(),
        false,
    )
    .unwrap();
    let left: Vec<String> = repo
        .list_points()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        left,
        [good.point.id],
        "the empty points went, the good one stayed"
    );
}

#[test]
fn damaged_chunks_never_reach_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("victim.bin"), pseudo_random(2 << 20, 9)).unwrap();
    fs::write(source.join("small.txt"), b"tiny file").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let kdf = KdfParams::minimum();
    let repo = Repository::init(
        backend.clone(),
        NewRepo::Encrypted {
            password: "pw",
            kdf,
        },
    )
    .unwrap();
    let done = backup(&repo, &options(&source, None), &|_| {}).unwrap();

    let healthy = verify(&repo, 100).unwrap();
    assert!(healthy.is_healthy(), "{healthy:?}");
    assert!(
        healthy.blobs_checked >= 4 && healthy.packs_checked >= 1,
        "{healthy:?}"
    );

    // Flip one byte inside victim.bin's first chunk, in its pack.
    let index = repo.load_index().unwrap();
    let listing =
        browse::list_dir(&repo, &index, &done.point, &source.display().to_string()).unwrap();
    let victim = listing.iter().find(|n| n.name == b"victim.bin").unwrap();
    let cloudkeep_repo::catalog::Extent::Data { id, .. } = victim.content[0] else {
        panic!("data expected")
    };
    let loc = index.get(&id).unwrap();
    let pack_path = tmp
        .path()
        .join("repo/packs")
        .join(&loc.pack.to_hex()[..2])
        .join(format!("{}.pack", loc.pack.to_hex()));
    let mut bytes = fs::read(&pack_path).unwrap();
    bytes[loc.offset as usize + 100] ^= 0xff;
    fs::write(&pack_path, bytes).unwrap();

    let target = tmp.path().join("out");
    let report = restore_into(
        &repo,
        &done.point,
        &target,
        vec![source.display().to_string()],
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(
        report.failed[0].message.contains("failed authentication"),
        "{:?}",
        report.failed
    );
    assert!(
        !target.join("src/victim.bin").exists(),
        "no damaged file written"
    );
    assert_eq!(
        fs::read(target.join("src/small.txt")).unwrap(),
        b"tiny file",
        "unaffected files restore"
    );

    let report = verify(&repo, 100).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert!(
        report.damaged[0].reason.contains("does not match its id"),
        "{report:?}"
    );
    assert_eq!(report.damaged[0].bad_blobs, 1);
    assert_eq!(report.affected.len(), 1);
    assert_eq!(report.affected[0].point, done.point.id);
    assert_eq!(
        report.affected[0].paths,
        [source.join("victim.bin").display().to_string()],
        "exactly the damaged file is named"
    );
    // Marked, so that it heals: the intact blobs were salvaged into a new pack, the damaged
    // pack set aside (kept, no longer listed), and the verify says so.
    assert_eq!(report.repaired.len(), 1, "{report:?}");
    assert_eq!(report.repaired[0].lost, 1);
    assert!(report.repaired[0].salvaged >= 1, "{report:?}");
    assert!(report.damaged[0].action.contains("set aside"), "{report:?}");
    assert!(!pack_path.exists());
    assert!(
        tmp.path()
            .join("repo/damaged")
            .join(format!("{}.pack", loc.pack.to_hex()))
            .exists()
    );
    let report = verify(&repo, 100).unwrap();
    assert!(report.damaged.is_empty(), "{report:?}");
    assert!(
        report.damaged_points[0]
            .reason
            .contains("the next backup sends them again"),
        "{report:?}"
    );
    assert_eq!(
        fs::read(target.join("src/small.txt")).unwrap(),
        b"tiny file",
        "salvaged files still restore"
    );

    // The next backup sends the lost chunk again (the file is unchanged, but its data is
    // gone), and the old point heals with it.
    let again = backup(&repo, &options(&source, Some(done.point.clone())), &|_| {}).unwrap();
    assert!(
        again.point.manifest.stats.new_blobs > 0,
        "{:?}",
        again.point.manifest.stats
    );
    assert!(verify(&repo, 100).unwrap().is_healthy());
    let healed = tmp.path().join("healed");
    let report = restore_into(
        &repo,
        &done.point,
        &healed,
        vec![source.display().to_string()],
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        fs::read(healed.join("src/victim.bin")).unwrap(),
        fs::read(source.join("victim.bin")).unwrap()
    );
}

/// `one_file_system` records a mount point inside a source but does not descend into it.
/// Mounting needs root (CI runs as root); elsewhere the test says so and checks nothing.
/// A point's chunk list lost, then every index file lost: verify names the point and why.
/// Without its chunk list (which only the SP's checks and gc need) the point still restores.
#[test]
fn verify_names_points_whose_chunk_list_or_index_is_lost() {
    use cloudkeep_repo::backend::{MetaKind, RepoBackend};
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("a.txt"), b"alpha").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
    let done = backup(&repo, &options(&source, None), &|_| {}).unwrap();
    assert!(verify(&repo, 100).unwrap().is_healthy());

    let set_bytes = backend
        .get_meta(MetaKind::ChunkSet, &done.point.set)
        .unwrap();
    backend
        .delete_meta(MetaKind::ChunkSet, &done.point.set)
        .unwrap();
    let report = verify(&repo, 100).unwrap();
    assert!(!report.is_healthy());
    assert_eq!(report.damaged_points.len(), 1, "{report:?}");
    assert_eq!(report.damaged_points[0].point, done.point.id);
    assert!(
        report.damaged_points[0].reason.contains("missing"),
        "{report:?}"
    );
    let out = tmp.path().join("out");
    restore_into(&repo, &done.point, &out, vec![source.display().to_string()]);
    assert_eq!(fs::read(out.join("src/a.txt")).unwrap(), b"alpha");
    backend
        .put_meta(MetaKind::ChunkSet, &done.point.set, &set_bytes)
        .unwrap();

    for name in backend.list_meta(MetaKind::Index).unwrap() {
        backend.delete_meta(MetaKind::Index, &name).unwrap();
    }
    let report = verify(&repo, 100).unwrap();
    assert!(
        report.damaged_points[0]
            .reason
            .contains("no index file names"),
        "{report:?}"
    );
    assert!(
        report.affected[0]
            .paths
            .iter()
            .any(|p| p.contains("folder listing")),
        "{report:?}"
    );
}

#[test]
fn one_file_system_stops_at_mount_points() {
    if !running_as_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    let mount = source.join("mnt");
    fs::create_dir_all(&mount).unwrap();
    fs::write(source.join("local.txt"), b"on the source's file system").unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs");
    fs::write(mount.join("other-fs.txt"), b"on another file system").unwrap();
    let result = std::panic::catch_unwind(|| {
        let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
        let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
        let index_of = |one_fs: bool| {
            let mut opts = options(&source, None);
            opts.one_file_system = one_fs;
            let done = backup(&repo, &opts, &|_| {}).unwrap();
            let index = repo.load_index().unwrap();
            browse::list_dir(&repo, &index, &done.point, &mount.display().to_string())
                .unwrap()
                .len()
        };
        assert_eq!(index_of(true), 0, "the mount point is recorded empty");
        assert_eq!(
            index_of(false),
            1,
            "without the option the mount is backed up"
        );
    });
    let _ = std::process::Command::new("umount").arg(&mount).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn gc_frees_unreferenced_data_and_keeps_everything_referenced() {
    use cloudkeep_repo::backend::PackStore;
    use cloudkeep_repo::engine::gc::gc;
    use cloudkeep_repo::lock::{self, LockKind};

    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    for i in 0..6 {
        fs::write(
            source.join(format!("f{i}.bin")),
            pseudo_random(4 << 20, i + 1),
        )
        .unwrap();
    }
    let backend: Arc<FolderStore> = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let kdf = KdfParams::minimum();
    let repo = Repository::init(
        backend.clone(),
        NewRepo::Encrypted {
            password: "pw",
            kdf,
        },
    )
    .unwrap();
    let first = backup(&repo, &options(&source, None), &|_| {}).unwrap();
    for i in 1..6 {
        fs::remove_file(source.join(format!("f{i}.bin"))).unwrap();
    }
    let second = backup(&repo, &options(&source, Some(first.point.clone())), &|_| {}).unwrap();

    // Nothing is unreferenced yet: gc keeps everything.
    let report = gc(&repo).unwrap();
    assert_eq!(report.dead_blobs, 0, "{report:?}");
    assert_eq!(report.sets_deleted, 0, "{report:?}");
    assert_eq!(report.bytes_after, report.bytes_before);

    // An interrupted run's pack that no index names is removed.
    let orphan = cloudkeep_repo::pack::PackBuilder::new()
        .finish(repo.keys())
        .unwrap();
    backend.put_pack(&orphan.id, &orphan.bytes, &[]).unwrap();

    // Held locks block gc; gc blocks backups; a dead process's lock is stale.
    {
        let _backup = lock::acquire(repo.backend(), LockKind::Shared).unwrap();
        let err = gc(&repo).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }
    {
        let _gc = lock::acquire(repo.backend(), LockKind::Exclusive).unwrap();
        assert!(backup(&repo, &options(&source, None), &|_| {}).is_err());
    }
    let stale = serde_json::json!({"kind": "exclusive", "host": lock::hostname(), "pid": 3_999_999, "created": "2026-01-01T00:00:00Z"});
    use cloudkeep_repo::backend::RepoBackend;
    backend
        .put_meta(
            cloudkeep_repo::backend::MetaKind::Lock,
            "exclusive-dead",
            stale.to_string().as_bytes(),
        )
        .unwrap();

    repo.delete_point(&first.point.id).unwrap();
    let report = gc(&repo).unwrap();
    assert_eq!(report.orphan_packs, 1, "{report:?}");
    assert_eq!(
        report.sets_deleted, 1,
        "the deleted point's chunk list goes: {report:?}"
    );
    assert!(
        report.dead_blobs >= 5,
        "five 4 MiB files (a chunk at least each) are unreferenced: {report:?}"
    );
    assert!(
        report.packs_deleted + report.packs_repacked >= 1,
        "{report:?}"
    );
    assert!(
        report.bytes_after < report.bytes_before / 3,
        "most space is freed: {report:?}"
    );
    assert_eq!(report.damaged_blobs, 0);

    let repo = Repository::open(backend, Unlock::Password("pw")).unwrap();
    assert!(verify(&repo, 100).unwrap().is_healthy());
    let index = repo.load_index().unwrap();
    assert!(
        repo.point_chunks(&second.point)
            .unwrap()
            .iter()
            .all(|c| index.contains(c)),
        "every referenced blob is kept"
    );
    let out = tmp.path().join("out");
    restore_into(
        &repo,
        &second.point,
        &out,
        vec![source.display().to_string()],
    );
    assert_eq!(
        fs::read(out.join("src/f0.bin")).unwrap(),
        pseudo_random(4 << 20, 1)
    );
    // A second run finds nothing more to do.
    let again = gc(&repo).unwrap();
    assert_eq!(
        (again.dead_blobs, again.packs_deleted, again.orphan_packs),
        (0, 0, 0)
    );
}

/// Writes a disk image: data blocks, a long zero run, data again and a short tail.
fn make_disk_image(path: &Path, tail_seed: u64) -> Vec<u8> {
    const BLOCK: usize = 4 << 20;
    let mut image = vec![0u8; 12 * BLOCK + 1000];
    image[..2 * BLOCK].copy_from_slice(&pseudo_random(2 * BLOCK, 41));
    image[9 * BLOCK..10 * BLOCK].copy_from_slice(&pseudo_random(BLOCK, 42));
    let tail = image.len() - 1000;
    image[tail..].copy_from_slice(&pseudo_random(1000, tail_seed));
    fs::write(path, &image).unwrap();
    image
}

#[test]
fn disk_images_back_up_block_by_block_and_restore_sparse() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disks/vm.img");
    fs::create_dir_all(disk.parent().unwrap()).unwrap();
    let image = make_disk_image(&disk, 43);
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
    let disk_options = |parent| BackupOptions {
        sources: vec![],
        disks: vec![disk.clone()],
        ..options(&disk, parent)
    };

    let first = backup(&repo, &disk_options(None), &|_| {}).unwrap();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let stats = first.point.manifest.stats;
    assert_eq!((stats.files, stats.bytes), (1, image.len() as u64));
    let data = 3 * (4 << 20) + 1000;
    assert!(
        (data..data + (64 << 10)).contains(&stats.new_stored_bytes),
        "three random data blocks and the tail are stored, the nine zero blocks are not: {stats:?}"
    );

    let out = tmp.path().join("out");
    restore_into(&repo, &first.point, &out, vec![disk.display().to_string()]);
    let restored = out.join("vm.img");
    assert_eq!(fs::read(&restored).unwrap(), image);
    assert!(
        fs::metadata(&restored).unwrap().blocks() * 512 < 5 * (4 << 20),
        "the zero blocks are restored as holes"
    );

    // One changed block: only it is stored again.
    let changed = make_disk_image(&disk, 44);
    let second = backup(&repo, &disk_options(Some(first.point.clone())), &|_| {}).unwrap();
    let stats = second.point.manifest.stats;
    assert!(
        stats.new_stored_bytes < 64 << 10 && stats.bytes_read == image.len() as u64,
        "the disk is read whole, but only the changed tail and folder listings are stored: {stats:?}"
    );
    let out2 = tmp.path().join("out2");
    restore_into(
        &repo,
        &second.point,
        &out2,
        vec![disk.display().to_string()],
    );
    assert_eq!(fs::read(out2.join("vm.img")).unwrap(), changed);

    // A folder named as a disk is refused with a warning, not read.
    let wrong = BackupOptions {
        sources: vec![],
        disks: vec![tmp.path().join("disks")],
        ..options(&disk, None)
    };
    let report = backup(&repo, &wrong, &|_| {}).unwrap();
    assert!(
        report.warnings[0].message.contains("not a disk"),
        "{:?}",
        report.warnings
    );
}

/// A file appended to while the backup reads it: the backup finishes with a warning naming
/// it, the point holds a consistent prefix of it, and the next backup catches up.
#[test]
fn files_changing_during_backup_end_as_warnings_and_the_next_backup_catches_up() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    let growing = source.join("growing.log");
    fs::write(&growing, pseudo_random(48 << 20, 5)).unwrap();
    fs::write(source.join("stable.txt"), b"stays the same").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, growing) = (stop.clone(), growing.clone());
        std::thread::spawn(move || {
            let mut file = fs::OpenOptions::new().append(true).open(growing).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                file.write_all(&pseudo_random(4096, 1000 + n)).unwrap();
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let first = backup(&repo, &options(&source, None), &|_| {});
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let first = first.unwrap();
    assert!(
        first
            .warnings
            .iter()
            .any(|w| w.path == growing && w.message.contains("changed while it was read")),
        "{:?}",
        first.warnings
    );

    let final_bytes = fs::read(&growing).unwrap();
    let out = tmp.path().join("out");
    restore_into(
        &repo,
        &first.point,
        &out,
        vec![source.display().to_string()],
    );
    let restored = fs::read(out.join("src/growing.log")).unwrap();
    assert!(restored.len() >= 48 << 20);
    assert_eq!(
        restored,
        final_bytes[..restored.len()],
        "what was read is a consistent prefix"
    );
    assert_eq!(
        fs::read(out.join("src/stable.txt")).unwrap(),
        b"stays the same"
    );

    let second = backup(&repo, &options(&source, Some(first.point)), &|_| {}).unwrap();
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    let out2 = tmp.path().join("out2");
    restore_into(
        &repo,
        &second.point,
        &out2,
        vec![source.display().to_string()],
    );
    assert_eq!(fs::read(out2.join("src/growing.log")).unwrap(), final_bytes);
}

/// A run stopped through its [`Cancel`] ends with `Cancelled`: a backup leaves no restore
/// point (the earlier ones stay, and the next run reuses what the stopped one stored), a
/// restore stops writing files.
#[test]
fn a_cancelled_run_stops_and_leaves_no_partial_point() {
    use cloudkeep_repo::engine::{Cancel, EngineError};
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("first.txt"), b"the first point").unwrap();
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
    let first = backup(&repo, &options(&source, None), &|_| {}).unwrap();

    // Stopped before it starts.
    let stopped = Cancel::default();
    stopped.cancel();
    let mut opts = options(&source, Some(first.point.clone()));
    opts.cancel = stopped;
    assert!(matches!(
        backup(&repo, &opts, &|_| {}),
        Err(EngineError::Cancelled)
    ));

    // Stopped while it runs: as soon as its first pack is stored.
    for i in 0..48 {
        fs::write(
            source.join(format!("big-{i:02}.bin")),
            pseudo_random(4 << 20, 100 + i),
        )
        .unwrap();
    }
    let packs_dir = tmp.path().join("repo").join("packs");
    let count_packs = || {
        walk(&packs_dir)
            .iter()
            .filter(|p| p.components().count() == 2 && !p.to_string_lossy().contains("tmp"))
            .count()
    };
    let packs_before = count_packs();
    let mut opts = options(&source, Some(first.point.clone()));
    let cancel = opts.cancel.clone();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while count_packs() == packs_before {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            cancel.cancel();
        });
        backup(&repo, &opts, &|_| {})
    });
    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    let points = repo.list_points().unwrap();
    assert_eq!(points.len(), 1, "only the first point: {points:?}");
    let stored_before = count_packs() - packs_before;
    let pack_bytes = || -> u64 {
        walk(&packs_dir)
            .iter()
            .map(|p| fs::metadata(packs_dir.join(p)).unwrap())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    };
    let stopped_bytes = pack_bytes();

    // The next run finishes and does not store again what the stopped one stored.
    opts.cancel = Cancel::default();
    let done = backup(&repo, &opts, &|_| {}).unwrap();
    assert_eq!(done.point.manifest.stats.files, 49);
    let total = count_packs() - packs_before;
    assert!(
        stored_before >= 1 && total >= stored_before,
        "{stored_before} packs before the stop, {total} in all"
    );
    // What the same backup stores into a fresh repository, against what the rerun stored.
    let fresh = Repository::init(
        Arc::new(FolderStore::open(tmp.path().join("fresh")).unwrap()),
        NewRepo::Unencrypted,
    )
    .unwrap();
    let full = backup(&fresh, &options(&source, None), &|_| {}).unwrap();
    let rerun = done.point.manifest.stats.new_stored_bytes;
    assert!(
        rerun + stopped_bytes * 9 / 10 <= full.point.manifest.stats.new_stored_bytes,
        "the rerun stored {rerun} bytes; the stopped run had stored {stopped_bytes}; all of it is {}",
        full.point.manifest.stats.new_stored_bytes
    );

    // A restore stopped at once writes nothing.
    let out = tmp.path().join("out");
    let cancel = Cancel::default();
    cancel.cancel();
    let stopped = restore(
        &repo,
        &done.point,
        &RestoreOptions {
            destination: Destination::Folder(out.clone()),
            paths: vec![],
            conflict: Conflict::Skip,
            cancel,
        },
        &|_| {},
    );
    assert!(
        matches!(stopped, Err(EngineError::Cancelled)),
        "{stopped:?}"
    );
    assert!(walk(&out).iter().all(|p| !p.ends_with("first.txt")));
}

/// A folder of many subfolders (one of them holding more entries than a tree part) restores
/// whole: the subfolders' listings are read a group at a time. An unchanged rerun stores
/// nothing and names its chunks as a (here empty) delta of the first point's set.
#[test]
fn many_subfolders_restore_across_listing_groups_and_an_unchanged_rerun_writes_a_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    for d in 0..150 {
        let folder = source.join(format!("d{d:03}"));
        fs::create_dir_all(&folder).unwrap();
        let files = if d == 7 { 5000 } else { 2 };
        for f in 0..files {
            fs::write(folder.join(format!("f{f:04}")), format!("{d}/{f}")).unwrap();
        }
    }
    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
    let first = backup(&repo, &options(&source, None), &|_| {}).unwrap();
    let second = backup(&repo, &options(&source, Some(first.point.clone())), &|_| {}).unwrap();
    assert_eq!(second.point.manifest.stats.new_blobs, 0);
    let set = repo.load_chunk_set(&second.point.set).unwrap();
    assert_eq!(set.base.as_deref(), Some(first.point.set.as_str()));
    assert!(set.added.is_empty() && set.removed.is_empty(), "{set:?}");

    let target = tmp.path().join("restored");
    let report = restore_into(&repo, &second.point, &target, vec![]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.files, 149 * 2 + 5000);
    let restored = target.join(source.strip_prefix("/").unwrap());
    for (d, f) in [(0, 1), (7, 4999), (149, 0)] {
        assert_eq!(
            fs::read_to_string(restored.join(format!("d{d:03}/f{f:04}"))).unwrap(),
            format!("{d}/{f}")
        );
    }
    assert_eq!(walk(&restored).len(), walk(&source).len());
}

/// What a run saw change, for the ransomware check: a tree of 200 text files; a run that
/// rewrites 30 % of them with random bytes in place and renames as many more to `.locked`
/// with random content counts encrypted rewrites and renamed extensions and is judged
/// suspicious against the quiet runs before it; an ordinary edit of as many files is counted
/// as changes only and is not.
#[test]
fn a_run_counts_what_changed_and_an_attack_stands_out_from_an_edit() {
    use cloudkeep_repo::signals::assess;
    let tmp = tempfile::tempdir().unwrap();
    let make = |root: &Path| {
        for folder in 0..4 {
            let dir = root.join(format!("dir{folder}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..50 {
                let text =
                    format!("file {folder}/{i}: the quick brown fox jumps over the lazy dog\n")
                        .repeat(60);
                fs::write(dir.join(format!("note{i}.txt")), text).unwrap();
            }
        }
    };
    let run = |source: &Path, repo: &Repository, parent| {
        backup(repo, &options(source, parent), &|_| {}).unwrap()
    };
    let setup = |name: &str| {
        let source = tmp.path().join(name).join("src");
        make(&source);
        let backend = Arc::new(FolderStore::open(tmp.path().join(name).join("repo")).unwrap());
        Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();
        let repo = Repository::open(backend, Unlock::Unencrypted).unwrap();
        (source, repo)
    };

    // The attack.
    let (source, repo) = setup("attacked");
    let first = run(&source, &repo, None);
    assert!(
        first.signals.is_none(),
        "a first backup has nothing to compare with"
    );
    let second = run(&source, &repo, Some(first.point.clone()));
    let quiet = second.signals.unwrap();
    assert_eq!(quiet.parent_files, 200);
    assert_eq!((quiet.changed, quiet.added, quiet.deleted), (0, 0, 0));
    for folder in 0..4 {
        let dir = source.join(format!("dir{folder}"));
        for i in 0..15 {
            let seed = (folder * 100 + i) as u64;
            fs::write(dir.join(format!("note{i}.txt")), pseudo_random(3000, seed)).unwrap();
        }
        for i in 15..30 {
            let old = dir.join(format!("note{i}.txt"));
            fs::remove_file(&old).unwrap();
            fs::write(
                dir.join(format!("note{i}.txt.locked")),
                pseudo_random(3000, 5000 + (folder * 100 + i) as u64),
            )
            .unwrap();
        }
    }
    let attack = run(&source, &repo, Some(second.point.clone()))
        .signals
        .unwrap();
    assert_eq!(attack.parent_files, 200);
    assert_eq!(attack.changed, 60, "{attack:?}");
    assert_eq!((attack.added, attack.deleted), (60, 60), "{attack:?}");
    assert_eq!(attack.renamed_extensions, 60, "{attack:?}");
    assert_eq!(
        attack.encrypted_rewrites, 120,
        "in place and renamed: {attack:?}"
    );
    let verdict = assess(&attack, &[quiet]);
    assert!(verdict.suspicious, "{verdict:?}");

    // An ordinary edit of as many files.
    let (source, repo) = setup("edited");
    let first = run(&source, &repo, None);
    let second = run(&source, &repo, Some(first.point.clone()));
    let quiet = second.signals.unwrap();
    for folder in 0..4 {
        let dir = source.join(format!("dir{folder}"));
        for i in 0..30 {
            let path = dir.join(format!("note{i}.txt"));
            let mut text = fs::read_to_string(&path).unwrap();
            text.push_str("an edited line of ordinary text\n");
            fs::write(&path, text).unwrap();
        }
    }
    let edit = run(&source, &repo, Some(second.point.clone()))
        .signals
        .unwrap();
    assert_eq!(edit.changed, 120, "{edit:?}");
    assert_eq!(
        (edit.encrypted_rewrites, edit.renamed_extensions),
        (0, 0),
        "{edit:?}"
    );
    assert!(!assess(&edit, &[quiet]).suspicious);
}
