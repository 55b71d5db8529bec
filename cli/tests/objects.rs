//! Object-storage cloud repositories as an SP runs them: a real three-node Garage cluster
//! (replication factor 3) behind real gateway processes, driven through the CLI — the
//! connection test, adding the repository with credentials on stdin, backup, restore,
//! retention, compaction and verify through two gateways, a storage node killed mid-backup,
//! and the credentials never written anywhere in clear.

use std::path::Path;

use cloudkeep_tests::garage::{ACCESS_KEY, BUCKET, Garage, REGION, SECRET_KEY};

use crate::support::*;

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// Bytes of every file under `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    cloudkeep_tests::files_under(dir, &|_| true)
        .iter()
        .map(|(_, len)| len)
        .sum()
}

fn s3_args<'a>(endpoint: &'a str, prefix: &'a str) -> Vec<&'a str> {
    vec![
        "--s3",
        endpoint,
        "--bucket",
        BUCKET,
        "--prefix",
        prefix,
        "--region",
        REGION,
        "--access-key-stdin",
    ]
}

#[test]
fn an_object_storage_repository_serves_backups_through_two_gateways_and_a_lost_node() {
    let mut garage = Garage::start(3);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gw");
    let log1 = tmp.path().join("gw-1.log");
    let (mut first, sp, fp) =
        sp_gateway(tmp.path(), |data| Gateway::start_logged(data, &[], &log1));
    let endpoint = garage.endpoint(0);
    let good = format!("{ACCESS_KEY}\n{SECRET_KEY}\n");

    // The connection test: wrong credentials are named as such, right ones pass every step.
    let mut test = vec!["sp", "repo", "test"];
    test.extend(s3_args(&endpoint, "sp"));
    let wrong = format!("{ACCESS_KEY}\n{}\n", "0".repeat(64));
    let refused = sp.fails(&test, Some(&wrong), 1);
    assert!(refused.contains("FAILED"), "{refused}");
    assert!(refused.contains("credentials"), "{refused}");
    let passed = sp.ok(&test, Some(&good));
    assert!(passed.contains("ok      write an object"), "{passed}");
    assert!(passed.contains("ok      read a range"), "{passed}");
    // A bucket that is not there, and an endpoint nobody answers: refused before adding.
    let mut add = vec!["sp", "repo", "add", "objects"];
    let missing_bucket: Vec<&str> = s3_args(&endpoint, "sp")
        .into_iter()
        .map(|a| if a == BUCKET { "no-such-bucket" } else { a })
        .collect();
    add.extend(&missing_bucket);
    let refused = sp.fails(&add, Some(&good), 1);
    assert!(refused.contains("connection test"), "{refused}");
    assert!(!sp.ok(&["sp", "repo", "list"], None).contains("objects"));

    let mut add = vec!["sp", "repo", "add", "objects"];
    add.extend(s3_args(&endpoint, "sp"));
    let added = sp.ok(&add, Some(&good));
    assert!(added.contains("s3://cloudkeep/sp"), "{added}");
    let listed = sp.json(&["sp", "repo", "list"]);
    assert_eq!(listed[0]["kind"], "s3");
    assert_eq!(listed[0]["s3"]["bucket"], BUCKET);
    add_acme(&sp, "objects=2G:Cloud");
    // A second gateway on the same database and storage.
    let log2 = tmp.path().join("gw-2.log");
    let _second = Gateway::start_logged(&data, &["--id", "gw-2"], &log2);

    // Backup 1 through the first gateway, a storage node killed while it runs: the cluster
    // keeps a quorum and the run completes.
    let laptop = tenant_with_provider(tmp.path(), &first, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(source.join("docs")).unwrap();
    std::fs::write(
        source.join("big.bin"),
        cloudkeep_tests::pseudo_random(96 << 20, 1),
    )
    .unwrap();
    std::fs::write(source.join("docs/a.txt"), "first\n".repeat(1000)).unwrap();
    laptop.ok(
        &[
            "job",
            "create",
            "nightly",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &source.display().to_string(),
            "--no-encryption",
            "--keep-points",
            "2",
        ],
        None,
    );
    let mut run = spawn(&laptop, &["job", "run", "nightly"]);
    // Killed once the first pack is in the bucket, while the run still goes on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while garage.data_bytes() < 8 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "no pack reached the bucket"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    garage.kill(2);
    assert!(
        run.try_wait().unwrap().is_none(),
        "the backup ended before the node was killed"
    );
    let status = run.wait().unwrap();
    assert!(
        status.success(),
        "the backup failed with a storage node down"
    );

    // Backups 2 and 3 through the second gateway (the first stopped: the tenant fails over
    // along the gateway list), retention keeping two, then compaction.
    assert!(stopped_cleanly(first.terminate()));
    std::fs::write(source.join("docs/b.txt"), "second\n".repeat(1000)).unwrap();
    laptop.ok(&["job", "run", "nightly"], None);
    std::fs::write(
        source.join("big.bin"),
        cloudkeep_tests::pseudo_random(20 << 20, 2),
    )
    .unwrap();
    laptop.ok(&["job", "run", "nightly"], None);
    let points = laptop.json(&["points", "list", "--job", "nightly"]);
    assert_eq!(points.as_array().unwrap().len(), 2, "{points}");
    garage.restart(2);
    laptop.ok(&["job", "compact", "nightly"], None);
    let verified = laptop.ok(&["verify", "--job", "nightly"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let out = tmp.path().join("out");
    laptop.restore_latest("nightly", &out, None);
    let restored = cloudkeep_tests::restored_at(&out, &source);
    for name in ["big.bin", "docs/a.txt", "docs/b.txt"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(source.join(name)).unwrap(),
            "{name}"
        );
    }

    // The secret key is nowhere in clear: not in either gateway's debug log, its data folder
    // (configuration, SQLite database), the SP's or the tenant's files; the access key id is
    // not logged either.
    for needle in [SECRET_KEY.as_bytes(), ACCESS_KEY.as_bytes()] {
        let found = files_containing(tmp.path(), needle);
        assert!(found.is_empty(), "credentials found in {found:?}");
    }
    let log = std::fs::read_to_string(&log1).unwrap();
    assert!(
        log.contains("DEBUG") || log.contains("INFO"),
        "the log is empty: {log}"
    );
}

#[test]
fn a_quota_moves_from_a_folder_to_object_storage_while_a_backup_runs() {
    let garage = Garage::start(3);
    let tmp = tempfile::tempdir().unwrap();
    // A gateway with folder repository "main" and tenant acme on it (1 GiB, "Cloud").
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let endpoint = garage.endpoint(1);
    let good = format!("{ACCESS_KEY}\n{SECRET_KEY}\n");
    let mut add = vec!["sp", "repo", "add", "objects"];
    add.extend(s3_args(&endpoint, "moved"));
    sp.ok(&add, Some(&good));

    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("first.bin"),
        cloudkeep_tests::pseudo_random(6 << 20, 11),
    )
    .unwrap();
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);

    // A larger backup runs while the quota moves: it keeps writing into the old repository,
    // waits out the switch, and finishes in the new one.
    for i in 0..6u64 {
        std::fs::write(
            source.join(format!("more-{i}.bin")),
            cloudkeep_tests::pseudo_random(12 << 20, 101 + 2 * i),
        )
        .unwrap();
    }
    // A repository without room for the quota takes no move.
    sp.ok(
        &["sp", "repo", "edit", "objects", "--capacity", "100M"],
        None,
    );
    let refused = sp.fails(
        &[
            "sp", "repo", "move", "acme", "--from", "main", "--to", "objects",
        ],
        None,
        5,
    );
    assert!(refused.contains("does not fit"), "{refused}");
    sp.ok(
        &["sp", "repo", "edit", "objects", "--capacity", "unlimited"],
        None,
    );

    let before = folder_bytes(&tmp.path().join("storage"));
    let mut run = spawn(&laptop, &["job", "run", "docs"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while folder_bytes(&tmp.path().join("storage")) < before + (8 << 20) {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup stored nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        run.try_wait().unwrap().is_none(),
        "the backup ended before the move"
    );
    let moved = sp.ok(
        &[
            "sp", "repo", "move", "acme", "--from", "main", "--to", "objects", "--wait",
        ],
        None,
    );
    assert!(moved.contains(": done"), "{moved}");
    assert!(
        run.wait().unwrap().success(),
        "the backup failed across the move"
    );
    std::fs::write(source.join("after.txt"), "after the move\n").unwrap();
    laptop.ok(&["job", "run", "docs"], None);

    // The quota is on the object store now; the old copy is gone; every point is whole.
    let usage = sp.json(&["sp", "usage"]);
    assert_eq!(usage[0]["repo"], "objects", "{usage}");
    assert!(
        !tmp.path().join("storage/q1").exists(),
        "the old copy was not released"
    );
    let points = laptop.json(&["points", "list", "--job", "docs"]);
    assert_eq!(points.as_array().unwrap().len(), 3, "{points}");
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let out = tmp.path().join("out");
    laptop.restore_latest("docs", &out, None);
    let restored = cloudkeep_tests::restored_at(&out, &source);
    for name in ["first.bin", "more-5.bin", "after.txt"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(source.join(name)).unwrap(),
            "{name}"
        );
    }
    let moves = sp.json(&["sp", "repo", "moves"]);
    assert_eq!(moves[0]["state"], "done", "{moves}");
    assert_eq!(moves[0]["packs_done"], moves[0]["packs_total"], "{moves}");

    // Managed: a repository with a quota on it stays; one out of service takes no new
    // tenant; a capacity holds; an empty one goes.
    let refused = sp.fails(&["sp", "repo", "remove", "objects"], None, 1);
    assert!(refused.contains("move them"), "{refused}");
    sp.ok(&["sp", "repo", "edit", "main", "--out-of-service"], None);
    let refused = sp.fails(
        &[
            "sp",
            "tenant",
            "add",
            "newcomer",
            "--password-stdin",
            "--quota",
            "main=1G:Cloud",
        ],
        Some("newcomer-password"),
        1,
    );
    assert!(refused.contains("out of service"), "{refused}");
    sp.ok(
        &[
            "sp",
            "repo",
            "edit",
            "objects",
            "--capacity",
            "1500M",
            "--title",
            "EU object store",
        ],
        None,
    );
    let refused = sp.fails(
        &[
            "sp",
            "tenant",
            "add",
            "newcomer",
            "--password-stdin",
            "--quota",
            "objects=1G:Cloud",
        ],
        Some("newcomer-password"),
        5,
    );
    assert!(refused.contains("does not fit"), "{refused}");
    let listed = sp.json(&["sp", "repo", "list"]);
    let objects = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "objects")
        .unwrap();
    assert_eq!(objects["title"], "EU object store");
    sp.ok(&["sp", "repo", "remove", "main"], None);
    assert!(!sp.ok(&["sp", "repo", "list"], None).contains("main "));
}

/// A gateway killed (`kill -9`) while a pack goes up to the object store as a multipart
/// upload: the upload is left unfinished in the bucket, and the gateway aborts it when it
/// starts again (its marker names it), so no parts are paid for forever; the rerun completes
/// and verifies.
#[test]
fn a_gateway_killed_mid_upload_aborts_the_multipart_upload_at_restart() {
    let garage = Garage::start(1);
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_address();
    let (mut gw, sp, fp) = sp_gateway(tmp.path(), |data| {
        Gateway::start_listening(data, &addr, &[])
    });
    let mut add = vec!["sp", "repo", "add", "objects"];
    let endpoint = garage.endpoint(0);
    add.extend(s3_args(&endpoint, "killed"));
    sp.ok(&add, Some(&format!("{ACCESS_KEY}\n{SECRET_KEY}\n")));
    add_acme(&sp, "objects=2G:Cloud");
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..8u64 {
        std::fs::write(
            source.join(format!("f{i}.bin")),
            cloudkeep_tests::pseudo_random(12 << 20, 401 + 2 * i),
        )
        .unwrap();
    }
    job_create(&laptop, "docs", &source);
    let mut run = spawn(&laptop, &["job", "run", "docs"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while garage.unfinished_multipart_uploads() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no multipart upload began"
        );
        assert!(run.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill9(&mut gw.child);
    let _ = run.wait();
    assert!(
        garage.unfinished_multipart_uploads() >= 1,
        "the dead writer's upload is left"
    );

    let _gw = Gateway::start_listening(&tmp.path().join("gw"), &addr, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while garage.unfinished_multipart_uploads() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted gateway left the dead upload unfinished"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    laptop.ok(&["job", "run", "docs"], None);
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    assert_eq!(garage.unfinished_multipart_uploads(), 0);
}

/// An object store that refuses writes for want of room (here Garage's bucket quota, as a
/// provider's full or capped store): the backup fails saying the provider's storage is full,
/// not with a raw error, and the earlier point stays whole and restorable.
#[test]
fn a_full_object_store_is_said_as_such_and_earlier_points_stay_intact() {
    let garage = Garage::start(1);
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = sp_gateway(tmp.path(), Gateway::start);
    let mut add = vec!["sp", "repo", "add", "objects"];
    let endpoint = garage.endpoint(0);
    add.extend(s3_args(&endpoint, "full"));
    sp.ok(&add, Some(&format!("{ACCESS_KEY}\n{SECRET_KEY}\n")));
    add_acme(&sp, "objects=2G:Cloud");
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("first.bin"),
        cloudkeep_tests::pseudo_random(4 << 20, 501),
    )
    .unwrap();
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);

    garage.cap_bucket(8 << 20);
    for i in 0..4u64 {
        std::fs::write(
            source.join(format!("more-{i}.bin")),
            cloudkeep_tests::pseudo_random(12 << 20, 503 + 2 * i),
        )
        .unwrap();
    }
    let out = laptop.run(&["job", "run", "docs"], None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.to_lowercase().contains("full"), "{said}");
    let points = laptop.json(&["points", "list", "--job", "docs"]);
    assert_eq!(
        points.as_array().unwrap().len(),
        1,
        "no partial point: {points}"
    );
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let restored = tmp.path().join("out");
    laptop.restore_latest("docs", &restored, None);
    assert_eq!(
        std::fs::read(cloudkeep_tests::restored_at(&restored, &source).join("first.bin")).unwrap(),
        std::fs::read(source.join("first.bin")).unwrap()
    );
}
