//! Garbage collection stopped at every step: the process "dies" before its k-th change to the
//! repository (for every k a complete run makes), then a new process finds every restore point
//! intact and restorable, and the next collection leaves nothing behind.
//!
//! The crash is injected by a wrapper around the real folder store that refuses every change
//! after a budget — exactly what the repository sees when the process is killed between two
//! writes (each single write is atomic in the folder store, which its own tests show). A real
//! `kill -9` of `cloudkeep local gc` is in `cli/tests/local.rs`.
//!
//! The same wrapper kills storage in the middle of a backup of many packs: the run must end
//! with the storage's error, not wait forever for pack writers that have stopped.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backend::{MetaKind, PackStore, RepoBackend, StoreError};
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::engine::gc::gc;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
use cloudkeep_repo::engine::verify::verify;
use cloudkeep_repo::pack::PackEntry;
use cloudkeep_repo::pack::PackId;
use cloudkeep_repo::repo::{NewRepo, Repository, RestorePoint, Unlock};
use cloudkeep_tests::pseudo_random;

/// The real folder store, dead after `budget` changes.
struct Dying {
    inner: FolderStore,
    budget: usize,
    changes: AtomicUsize,
}

impl Dying {
    fn change(&self) -> Result<(), StoreError> {
        if self.changes.fetch_add(1, Ordering::SeqCst) >= self.budget {
            return Err(StoreError::Io {
                path: self.inner.root().to_path_buf(),
                source: std::io::Error::other("the process was killed"),
            });
        }
        Ok(())
    }
}

impl PackStore for Dying {
    fn put_pack(&self, id: &PackId, bytes: &[u8], blobs: &[PackEntry]) -> Result<(), StoreError> {
        self.change()?;
        self.inner.put_pack(id, bytes, blobs)
    }
    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        self.inner.read_range(id, offset, len)
    }
    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError> {
        self.inner.pack_len(id)
    }
    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        self.inner.list_packs()
    }
    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError> {
        self.change()?;
        self.inner.delete_pack(id)
    }
    fn set_aside(&self, id: &PackId) -> Result<cloudkeep_repo::backend::PackHealth, StoreError> {
        self.change()?;
        self.inner.set_aside(id)
    }
}

impl RepoBackend for Dying {
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.change()?;
        self.inner.put_meta(kind, name, bytes)
    }
    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get_meta(kind, name)
    }
    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        self.inner.list_meta(kind)
    }
    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError> {
        self.change()?;
        self.inner.delete_meta(kind, name)
    }
}

fn options(source: &Path, parent: Option<RestorePoint>) -> BackupOptions {
    BackupOptions {
        sources: vec![source.to_path_buf()],
        disks: vec![],
        excludes: vec![],
        one_file_system: false,
        compression: Compression::Fast,
        host: "crash-host".into(),
        job: "crash".into(),
        parent,
        cancel: Default::default(),
    }
}

fn write_files(dir: &Path, prefix: &str, count: u64, seed: u64) {
    for i in 0..count {
        fs::write(
            dir.join(format!("{prefix}{i}.bin")),
            pseudo_random(1 << 20, seed + i),
        )
        .unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A repository where gc has every kind of work: a sparse pack to compact, a dead pack,
/// an orphan pack, several index files, and chunk sets of deleted points.
fn prepare(root: &Path) -> (Vec<RestorePoint>, Vec<(String, Vec<u8>)>) {
    let source = root.join("src");
    fs::create_dir_all(&source).unwrap();
    let backend = Arc::new(FolderStore::open(root.join("repo")).unwrap());
    let repo = Repository::init(backend.clone(), NewRepo::Unencrypted).unwrap();

    write_files(&source, "a", 6, 100);
    let first = backup(&repo, &options(&source, None), &|_| {})
        .unwrap()
        .point;
    for i in 1..6 {
        fs::remove_file(source.join(format!("a{i}.bin"))).unwrap();
    }
    write_files(&source, "b", 2, 200);
    let second = backup(&repo, &options(&source, Some(first.clone())), &|_| {})
        .unwrap()
        .point;
    let scratch = root.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    write_files(&scratch, "c", 2, 300);
    let dead = backup(&repo, &options(&scratch, None), &|_| {})
        .unwrap()
        .point;
    fs::write(source.join("b0.bin"), b"changed").unwrap();
    let third = backup(&repo, &options(&source, Some(second.clone())), &|_| {})
        .unwrap()
        .point;
    repo.delete_point(&first.id).unwrap();
    repo.delete_point(&dead.id).unwrap();
    let orphan = cloudkeep_repo::pack::PackBuilder::new()
        .finish(repo.keys())
        .unwrap();
    backend.put_pack(&orphan.id, &orphan.bytes, &[]).unwrap();

    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&source)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    (vec![second, third], files)
}

/// What a process started after the crash must find.
fn check_after_crash(repo_dir: &Path, points: &[RestorePoint], files: &[(String, Vec<u8>)]) {
    // The killed process's lock is stale for the next process; here the "dead" process is
    // this one, so its lock is removed the way a new process would.
    for entry in fs::read_dir(repo_dir.join("locks")).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let backend = Arc::new(FolderStore::open(repo_dir).unwrap());
    let repo = Repository::open(backend.clone(), Unlock::Unencrypted).unwrap();
    let ids: Vec<String> = repo
        .list_points()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        ids,
        points.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        "every restore point is still there, and only those"
    );
    let report = verify(&repo, 100).unwrap();
    assert!(report.is_healthy(), "{report:?}");

    let out = tempfile::tempdir().unwrap();
    let latest = repo.find_point("latest").unwrap();
    restore(
        &repo,
        &latest,
        &RestoreOptions {
            destination: Destination::Folder(out.path().to_path_buf()),
            paths: vec![],
            conflict: Conflict::Overwrite,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    let restored = out
        .path()
        .join(latest.manifest.paths[0].trim_start_matches('/'));
    for (name, bytes) in files {
        assert_eq!(&fs::read(restored.join(name)).unwrap(), bytes, "{name}");
    }

    // The next collection finishes the work and leaves nothing unreferenced.
    gc(&repo).unwrap();
    let again = gc(&repo).unwrap();
    assert_eq!(
        (
            again.dead_blobs,
            again.orphan_packs,
            again.packs_deleted,
            again.sets_deleted
        ),
        (0, 0, 0, 0),
        "nothing left behind: {again:?}"
    );
    assert_eq!(backend.list_meta(MetaKind::Index).unwrap().len(), 1);
    assert!(verify(&repo, 100).unwrap().is_healthy());
}

#[test]
fn gc_killed_at_every_step_loses_nothing_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (points, files) = prepare(tmp.path());
    let pristine = tmp.path().join("repo");

    // How many changes a complete collection makes.
    let full = tmp.path().join("full");
    copy_dir(&pristine, &full);
    let counting = Arc::new(Dying {
        inner: FolderStore::open(&full).unwrap(),
        budget: usize::MAX,
        changes: AtomicUsize::new(0),
    });
    let repo = Repository::open(counting.clone(), Unlock::Unencrypted).unwrap();
    let report = gc(&repo).unwrap();
    assert!(
        report.packs_repacked >= 1
            && report.packs_deleted >= 1
            && report.orphan_packs == 1
            && report.sets_deleted >= 1,
        "the scenario exercises every step: {report:?}"
    );
    let total = counting.changes.load(Ordering::SeqCst);
    assert!(total >= 8, "{total} changes");
    drop(repo);
    check_after_crash(&full, &points, &files);

    for budget in 0..total {
        let dir = tmp.path().join(format!("crash-{budget}"));
        copy_dir(&pristine, &dir);
        let dying = Arc::new(Dying {
            inner: FolderStore::open(&dir).unwrap(),
            budget,
            changes: AtomicUsize::new(0),
        });
        let repo = Repository::open(dying, Unlock::Unencrypted).unwrap();
        let result = gc(&repo);
        // The last change is releasing the lock: all work is done, only a stale lock stays.
        if budget + 1 < total {
            assert!(result.is_err(), "killed before change {budget}");
        }
        drop(repo);
        check_after_crash(&dir, &points, &files);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_backup_whose_storage_dies_fails_instead_of_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    // 80 MiB of incompressible files: several packs per writer.
    write_files(&source, "d", 80, 500);
    let dir = tmp.path().join("repo");
    Repository::init(
        Arc::new(FolderStore::open(&dir).unwrap()),
        NewRepo::Unencrypted,
    )
    .unwrap();
    // Two changes: the run's lock and one pack; every later write fails.
    let dying = Arc::new(Dying {
        inner: FolderStore::open(&dir).unwrap(),
        budget: 2,
        changes: AtomicUsize::new(0),
    });
    let repo = Repository::open(dying, Unlock::Unencrypted).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = backup(&repo, &options(&source, None), &|_| {});
        tx.send(result.map(|_| ()).map_err(|e| e.to_string()))
            .unwrap();
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("the backup ends when its storage dies");
    let error = result.expect_err("the backup fails");
    assert!(error.contains("the process was killed"), "{error}");
    let repo = Repository::open(
        Arc::new(FolderStore::open(&dir).unwrap()),
        Unlock::Unencrypted,
    )
    .unwrap();
    assert!(repo.list_points().unwrap().is_empty(), "no partial point");
}
