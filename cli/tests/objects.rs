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
    let sp = Cli {
        home: tmp.path().join("sp-home"),
    };
    let d = data.display().to_string();
    let fp = fingerprint_in(&sp.ok(
        &[
            "gateway",
            "init",
            "--data-dir",
            &d,
            "--hostname",
            "127.0.0.1",
            "--admin-password-stdin",
        ],
        Some(ADMIN_PW),
    ));
    let log1 = tmp.path().join("gw-1.log");
    let mut first = Gateway::start_logged(&data, &[], &log1);
    sp.ok(
        &[
            "sp",
            "login",
            "--gateway",
            &first.addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some(ADMIN_PW),
    );
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
    sp.ok(
        &[
            "sp",
            "tenant",
            "add",
            "acme",
            "--password-stdin",
            "--quota",
            "objects=2G:Cloud",
            "--lease-until",
            "2031-12-31",
        ],
        Some("tenant-password"),
    );
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
