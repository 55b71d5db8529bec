//! Windows behaviour of the engine, run under Wine by the test command's Windows step
//! (`scripts/windows/tests`): file attributes (hidden, read-only, system) kept and put back,
//! a read-only file replaced by an overwriting restore, and excludes written the Windows way
//! (backslashes, any case).

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(windows)]

use std::fs;
use std::os::windows::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::engine::fsmeta::KEPT_ATTRIBUTES;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
use cloudkeep_repo::repo::{NewRepo, Repository};

/// Sets attributes with Windows' own `attrib` (Wine has it too).
fn attrib(path: &Path, flags: &[&str]) {
    let status = Command::new("attrib")
        .args(flags)
        .arg(path)
        .status()
        .expect("attrib runs");
    assert!(status.success(), "attrib {flags:?} {}", path.display());
}

fn attributes(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().file_attributes() & KEPT_ATTRIBUTES
}

fn restore_all(repo: &Repository, to: &Path, conflict: Conflict) {
    let point = repo
        .latest_point("windows-test", "pc-win")
        .unwrap()
        .expect("the backup made a point");
    let report = restore(
        repo,
        &point,
        &RestoreOptions {
            destination: Destination::Folder(to.to_path_buf()),
            paths: vec![],
            conflict,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

#[test]
fn attributes_and_windows_excludes_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("Docs").join("skip")).unwrap();
    fs::write(src.join("plain.txt"), "plain").unwrap();
    fs::write(src.join("hidden.txt"), "hidden").unwrap();
    fs::write(src.join("readonly.txt"), "read only").unwrap();
    fs::write(src.join("system.bin"), "system").unwrap();
    fs::write(src.join("Docs").join("note.txt"), "note").unwrap();
    fs::write(src.join("Docs").join("skip").join("big.iso"), "skipped").unwrap();
    fs::write(src.join("~$draft.TMP"), "lock file").unwrap();
    attrib(&src.join("hidden.txt"), &["+h"]);
    attrib(&src.join("readonly.txt"), &["+r"]);
    attrib(&src.join("system.bin"), &["+s", "+h"]);
    attrib(&src.join("Docs"), &["+h"]);
    assert_ne!(
        attributes(&src.join("hidden.txt")) & 0x2,
        0,
        "attrib +h took"
    );

    let backend = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    let repo = Repository::init(backend, NewRepo::Unencrypted).unwrap();
    let skip = format!("{}\\Docs\\skip\\**", src.display());
    backup(
        &repo,
        &BackupOptions {
            sources: vec![src.clone()],
            disks: vec![],
            excludes: vec!["*.tmp".into(), skip],
            one_file_system: false,
            compression: Compression::Default,
            host: "pc-win".into(),
            job: "windows-test".into(),
            parent: None,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();

    let out = tmp.path().join("out");
    restore_all(&repo, &out, Conflict::Skip);
    let back = cloudkeep_tests::restored_at(&out, &src);
    for name in [
        "plain.txt",
        "hidden.txt",
        "readonly.txt",
        "system.bin",
        "Docs",
    ] {
        assert_eq!(
            attributes(&back.join(name)),
            attributes(&src.join(name)),
            "attributes of {name}"
        );
    }
    assert_eq!(fs::read(back.join("readonly.txt")).unwrap(), b"read only");
    assert!(back.join("Docs").join("note.txt").is_file());
    assert!(
        !back.join("Docs").join("skip").join("big.iso").exists(),
        "a backslash pattern excludes"
    );
    assert!(!back.join("~$draft.TMP").exists(), "*.tmp matches any case");

    // Restored again over itself: the read-only file is replaced, still read-only.
    fs::write(src.join("plain.txt"), "changed").unwrap();
    restore_all(&repo, &out, Conflict::Overwrite);
    assert_ne!(attributes(&back.join("readonly.txt")) & 0x1, 0);
    assert_eq!(fs::read(back.join("readonly.txt")).unwrap(), b"read only");
}
