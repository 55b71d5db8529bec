//! Backup files through the engine: a point exported to one file restores identically from
//! that file alone (opened as a read-only repository with the file's own password), verifies,
//! resumes after an interrupted export, is refused when cut short or damaged (naming the part),
//! and imports into another repository — under that repository's own key — sending only the
//! blobs it lacks.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backupfile::store::FileStore;
use cloudkeep_repo::backupfile::{BackupFile, FileError, Tag, partial_path};
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::backup::backup;
use cloudkeep_repo::engine::portable::{ExportOptions, export_point, file_point, import_point};
use cloudkeep_repo::engine::verify::verify;
use cloudkeep_repo::repo::{NewRepo, Repository, RestorePoint, Unlock};

use super::engine::{assert_same_tree, make_source, options, restore_into};

fn repo_at(dir: &Path, password: &str) -> Repository {
    let store = Arc::new(FolderStore::open(dir).unwrap());
    Repository::init(
        store,
        NewRepo::Encrypted {
            password,
            kdf: KdfParams::minimum(),
        },
    )
    .unwrap()
}

fn export(repo: &Repository, point: &RestorePoint, to: &Path, password: &str) -> u64 {
    export_point(
        repo,
        point,
        to,
        &ExportOptions {
            password: Some(password),
            kdf: KdfParams::minimum(),
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap()
    .resumed_blobs
}

fn open_file(path: &Path, password: &str) -> Repository {
    let store = Arc::new(FileStore::open(path).unwrap());
    Repository::open(store, Unlock::Password(password)).unwrap()
}

#[test]
fn a_point_exported_to_a_file_restores_from_it_alone_and_imports_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = d.join("source");
    make_source(&source);
    let repo = repo_at(&d.join("repo"), "job password");
    let first = backup(&repo, &options(&source, None), &|_| {})
        .unwrap()
        .point;

    // Exported under a password of its own; the repository's is not needed after.
    let file = d.join("point.ckb");
    assert_eq!(export(&repo, &first, &file, "file password"), 0);
    assert!(!partial_path(&file).exists());
    let refused = export_point(
        &repo,
        &first,
        &file,
        &ExportOptions {
            password: Some("file password"),
            kdf: KdfParams::minimum(),
            cancel: Default::default(),
        },
        &|_| {},
    );
    assert!(
        refused.unwrap_err().to_string().contains("already exists"),
        "an existing file is never overwritten"
    );
    drop(repo);
    fs::remove_dir_all(d.join("repo")).unwrap();

    let store = Arc::new(FileStore::open(&file).unwrap());
    assert!(
        Repository::open(store.clone(), Unlock::Password("job password")).is_err(),
        "the job's password does not open the file"
    );
    let from_file = Repository::open(store, Unlock::Password("file password")).unwrap();
    let point = file_point(&from_file).unwrap();
    assert_eq!(point.manifest, first.manifest);
    let out = d.join("out");
    let report = restore_into(&from_file, &point, &out, vec![]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_same_tree(&source, &out.join(source.strip_prefix("/").unwrap()));
    let checked = verify(&from_file, 100).unwrap();
    assert!(checked.is_healthy(), "{checked:?}");
    assert!(checked.blobs_checked > 0);

    // Imported into another repository (its own key): everything is sent once, and the
    // point restores from there.
    let other = repo_at(&d.join("other"), "other password");
    let imported =
        import_point(&from_file, &point, &other, "carried", &Default::default()).unwrap();
    assert!(imported.rekeyed);
    assert!(imported.blobs_sent > 0);
    assert_eq!(imported.blobs_present, 0);
    let there = other.find_job_point("carried", "latest").unwrap();
    let out2 = d.join("out2");
    restore_into(&other, &there, &out2, vec![]);
    assert_same_tree(&source, &out2.join(source.strip_prefix("/").unwrap()));
    assert!(verify(&other, 100).unwrap().is_healthy());

    // A newer point of the same data, exported and imported: only what changed is sent.
    let again = repo_at(&d.join("repo"), "job password");
    let base = backup(&again, &options(&source, None), &|_| {})
        .unwrap()
        .point;
    fs::write(source.join("docs/new.txt"), "a new file\n").unwrap();
    let newer = backup(&again, &options(&source, Some(base.clone())), &|_| {})
        .unwrap()
        .point;
    let base_file = d.join("base.ckb");
    let newer_file = d.join("newer.ckb");
    export(&again, &base, &base_file, "p");
    export(&again, &newer, &newer_file, "p");
    let third = repo_at(&d.join("third"), "third password");
    let full = import_point(
        &open_file(&base_file, "p"),
        &file_point(&open_file(&base_file, "p")).unwrap(),
        &third,
        "carried",
        &Default::default(),
    )
    .unwrap();
    let newer_repo = open_file(&newer_file, "p");
    let delta = import_point(
        &newer_repo,
        &file_point(&newer_repo).unwrap(),
        &third,
        "carried",
        &Default::default(),
    )
    .unwrap();
    assert!(
        delta.bytes_sent * 20 < full.bytes_sent && delta.blobs_present > 0,
        "the second import sends only what the first did not: {delta:?} after {full:?}"
    );
    // Into a repository with the file's own key (the one it came from): blobs as they are,
    // and a point already there is refused.
    let same = import_point(
        &newer_repo,
        &file_point(&newer_repo).unwrap(),
        &again,
        "copy",
        &Default::default(),
    )
    .unwrap();
    assert!(!same.rekeyed);
    assert_eq!(same.blobs_sent, 0, "{same:?}");
    let twice = import_point(
        &newer_repo,
        &file_point(&newer_repo).unwrap(),
        &again,
        "copy",
        &Default::default(),
    );
    assert!(twice.unwrap_err().to_string().contains("already holds"));
}

#[test]
fn an_interrupted_export_resumes_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = d.join("source");
    make_source(&source);
    // More than one pack of data.
    fs::write(
        source.join("big.bin"),
        cloudkeep_tests::pseudo_random(70 << 20, 3),
    )
    .unwrap();
    let repo = repo_at(&d.join("repo"), "pw");
    let point = backup(&repo, &options(&source, None), &|_| {})
        .unwrap()
        .point;
    let file = d.join("point.ckb");
    export(&repo, &point, &file, "pw2");
    let whole = fs::read(&file).unwrap();
    let parts = BackupFile::open(&file).unwrap().parts().to_vec();
    let packs: Vec<_> = parts.iter().filter(|p| p.tag == Tag::Pack).collect();
    assert!(packs.len() >= 2, "{packs:?}");

    // Killed half-way through its second pack: the rerun keeps the first.
    fs::remove_file(&file).unwrap();
    let cut = (packs[1].data_at + packs[1].len / 2) as usize;
    fs::write(partial_path(&file), &whole[..cut]).unwrap();
    let resumed = export(&repo, &point, &file, "pw2");
    assert!(resumed > 0, "the first pack's blobs were kept");
    let again = open_file(&file, "pw2");
    assert!(verify(&again, 100).unwrap().is_healthy());
    // Another password: the partial file is not reused.
    fs::remove_file(&file).unwrap();
    fs::write(partial_path(&file), &whole[..cut]).unwrap();
    assert_eq!(export(&repo, &point, &file, "other"), 0);
    fs::remove_file(&file).unwrap();
    export(&repo, &point, &file, "pw2");

    // Cut short: refused, saying where.
    let short = d.join("short.ckb");
    fs::write(&short, &whole[..whole.len() - 100]).unwrap();
    match FileStore::open(&short) {
        Err(e @ FileError::Truncated { .. }) => {
            assert!(e.to_string().contains("is incomplete"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A flipped bit in a pack: opening works (packs are checked when read); restoring or
    // verifying names the part, and nothing of it reaches the destination.
    let flipped = d.join("flipped.ckb");
    let mut bad = whole.clone();
    bad[(packs[0].data_at + 100) as usize] ^= 1;
    fs::write(&flipped, &bad).unwrap();
    let repo_bad = open_file(&flipped, "pw2");
    let found = verify(&repo_bad, 100).unwrap();
    assert!(!found.is_healthy());
    let said = format!("{:?}", found.damaged);
    assert!(said.contains("part 5 (pack of data"), "{said}");
    // A flip in the point: refused on opening, naming it.
    let mut bad = whole.clone();
    let point_part = parts.iter().find(|p| p.tag == Tag::Point).unwrap();
    bad[(point_part.data_at + 3) as usize] ^= 1;
    fs::write(&flipped, &bad).unwrap();
    let e = FileStore::open(&flipped).unwrap_err().to_string();
    assert!(e.contains("part 4 (restore point"), "{e}");
}
