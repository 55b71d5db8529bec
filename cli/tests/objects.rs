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
    // Garage has no object lock: said, and nothing fails for it.
    assert!(
        passed.contains("object lock: not immutable: the object store has no object lock"),
        "{passed}"
    );
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
    assert_eq!(listed[0]["object_lock"]["state"], "unsupported");
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

/// A bucket with S3 Object Lock (Moto's server: Garage has none) makes the repository
/// immutable: the connection test and the list say so, every pack, chunk set, index file,
/// keyring and restore point of a new point is locked in compliance mode for at least the
/// tenant's insider-protection window, and someone holding the bucket's own keys can delete
/// no locked version — the delete markers they can leave are removed and the point restores
/// byte for byte. A point the tenant deletes stays locked in the recycle bin, and five days
/// on (a gateway started ahead) the background pass has extended every lock a window past
/// that day. A bucket without object lock is said to be not immutable.
#[test]
fn a_bucket_with_object_lock_keeps_every_point_immutable_even_to_its_own_keys() {
    use cloudkeep_tests::moto::{self, Moto};
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let listen = free_address();
    let (gw, sp, fp) = sp_gateway(tmp.path(), |data| {
        Gateway::start_listening(data, &listen, &[])
    });
    let endpoint = moto.endpoint();
    let keys = format!("{}\n{}\n", moto::ACCESS_KEY, moto::SECRET_KEY);
    let args = |bucket: &'static str| -> Vec<String> {
        [
            "--s3",
            &endpoint,
            "--bucket",
            bucket,
            "--prefix",
            "sp",
            "--region",
            moto::REGION,
            "--access-key-stdin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let with = |head: &[&str], bucket| {
        let mut all: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        all.extend(args(bucket));
        all
    };
    let plain = sp.ok(
        &as_strs(&with(&["sp", "repo", "test"], "plain")),
        Some(&keys),
    );
    assert!(plain.contains("object lock: not immutable"), "{plain}");
    // A store that asks every upload under a default retention for Content-MD5: the test
    // fails at the write and says what to change.
    let defaulted = sp.fails(
        &as_strs(&with(&["sp", "repo", "test"], moto::DEFAULTED)),
        Some(&keys),
        1,
    );
    assert!(
        defaulted.contains("\"write an object\" FAILED"),
        "{defaulted}"
    );
    assert!(
        defaulted.contains("remove the bucket's default retention"),
        "{defaulted}"
    );
    let tested = sp.ok(
        &as_strs(&with(&["sp", "repo", "test"], moto::BUCKET)),
        Some(&keys),
    );
    assert!(
        tested.contains("object lock: immutable (object lock, compliance mode)"),
        "{tested}"
    );
    let added = sp.ok(
        &as_strs(&with(&["sp", "repo", "add", "vault"], moto::BUCKET)),
        Some(&keys),
    );
    assert!(added.contains("immutable"), "{added}");
    let repos = sp.json(&["sp", "repo", "list"]);
    let vault = repos
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "vault")
        .unwrap();
    assert_eq!(vault["object_lock"]["state"], "on", "{vault}");
    assert_eq!(vault["object_lock"]["mode"], "compliance", "{vault}");
    let listed = sp.ok(&["sp", "repo", "list"], None);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("vault") && l.contains(" yes ")),
        "{listed}"
    );

    add_acme(&sp, "vault=2G:Cloud");
    sp.ok(
        &["sp", "tenant", "set", "acme", "--keep-deleted-days", "7"],
        None,
    );
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..3u64 {
        std::fs::write(
            source.join(format!("f{i}.bin")),
            cloudkeep_tests::pseudo_random(3 << 20, 601 + i),
        )
        .unwrap();
    }
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);

    // Every object the point needs, locked for at least the 7-day window.
    let survey = "
now = datetime.datetime.now(datetime.timezone.utc)
out = []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=BUCKET, Prefix='sp/q'):
    for o in page.get('Contents', []):
        key = o['Key']
        if '/locks/' in key or '/uploads/' in key:
            continue
        h = s3.head_object(Bucket=BUCKET, Key=key)
        until = h.get('ObjectLockRetainUntilDate')
        out.append({'key': key, 'mode': h.get('ObjectLockMode'),
                    'days': (until - now).total_seconds() / 86400 if until else None})
print(json.dumps(out))
";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let objects = loop {
        let objects: Vec<serde_json::Value> = serde_json::from_str(&moto.boto3(survey)).unwrap();
        let locked = |o: &serde_json::Value| {
            o["mode"] == "COMPLIANCE" && o["days"].as_f64().is_some_and(|d| d >= 7.0)
        };
        if !objects.is_empty() && objects.iter().all(locked) {
            break objects;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every object was locked for the window: {objects:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    for kind in ["/packs/", "/points/", "/sets/", "/index/", "/keys/"] {
        assert!(
            objects
                .iter()
                .any(|o| o["key"].as_str().unwrap().contains(kind)),
            "no {kind} object among {objects:?}"
        );
    }

    // A second point; the first deleted by the tenant: in the recycle bin, kept locked.
    let first = laptop.json(&["points", "list", "--job", "docs"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        source.join("f3.bin"),
        cloudkeep_tests::pseudo_random(3 << 20, 611),
    )
    .unwrap();
    laptop.ok(&["job", "run", "docs"], None);
    laptop.ok(&["points", "delete", &first[..12], "--job", "docs"], None);
    // Five days on, the gateway's background pass extends every lock that would end inside
    // the window: everything, the recycled point's file too, is locked 7 days past that day.
    drop(gw);
    let gw = Gateway::start_days_ahead(&tmp.path().join("gw"), &listen, 5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let objects = loop {
        let objects: Vec<serde_json::Value> = serde_json::from_str(&moto.boto3(survey)).unwrap();
        if objects
            .iter()
            .all(|o| o["days"].as_f64().is_some_and(|d| d >= 12.0))
        {
            break objects;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the locks were not extended five days on: {objects:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(
        objects.iter().any(|o| o["key"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/points/{first}"))),
        "the recycled point is still there, locked: {objects:?}"
    );
    drop(gw);
    let _gw = Gateway::start_listening(&tmp.path().join("gw"), &listen, &[]);

    // Someone with the bucket's own keys tries to destroy the point (the tenant's area: the
    // connection test's probe objects, removed at once, were never locked).
    let attack = "
refused = deleted = 0
gone = []
versions = s3.list_object_versions(Bucket=BUCKET, Prefix='sp/q')
for v in versions.get('Versions', []):
    if '/locks/' in v['Key'] or '/uploads/' in v['Key']:
        continue
    try:
        s3.delete_object(Bucket=BUCKET, Key=v['Key'], VersionId=v['VersionId'])
        deleted += 1
        gone.append([v['Key'], v['IsLatest']])
    except Exception as e:
        assert 'AccessDenied' in str(e), str(e)
        refused += 1
    s3.delete_object(Bucket=BUCKET, Key=v['Key'])
print(json.dumps({'refused': refused, 'deleted': deleted, 'gone': gone}))
";
    let tried: serde_json::Value = serde_json::from_str(&moto.boto3(attack)).unwrap();
    assert_eq!(
        tried["deleted"], 0,
        "a locked version was destroyed: {tried}"
    );
    assert!(
        tried["refused"].as_u64().unwrap() >= objects.len() as u64,
        "{tried}"
    );
    let hidden = moto
        .boto3("print(len(s3.list_objects_v2(Bucket=BUCKET, Prefix='sp/').get('Contents', [])))");
    assert_eq!(hidden.trim(), "0", "the attacker hid every object");
    // The SP takes the delete markers away: every locked version is back.
    moto.boto3(
        "
for m in s3.list_object_versions(Bucket=BUCKET, Prefix='sp/').get('DeleteMarkers', []):
    s3.delete_object(Bucket=BUCKET, Key=m['Key'], VersionId=m['VersionId'])
",
    );
    let verified = laptop.ok(&["verify", "--job", "docs"], None);
    assert!(verified.contains("no damage found"), "{verified}");
    let restored = tmp.path().join("out");
    laptop.restore_latest("docs", &restored, None);
    for i in 0..4u64 {
        let name = format!("f{i}.bin");
        assert_eq!(
            std::fs::read(cloudkeep_tests::restored_at(&restored, &source).join(&name)).unwrap(),
            std::fs::read(source.join(&name)).unwrap(),
            "{name}"
        );
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
