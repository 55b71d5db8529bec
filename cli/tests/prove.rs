//! Restore tests and notifications as a tenant and its provider meet them, through a real
//! gateway: a file-level and an image-level point are proven restorable (the SP's tenant list
//! says since when); then one stored blob is damaged at the SP and the next restore test fails
//! with exit code 6, naming the file — in `job show`, in the SP's view, by email through a real
//! SMTP server requiring STARTTLS (the tenant's channel) and by webhook on loopback (the
//! tenant's and the SP's).

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

#[cfg(unix)]
use cloudkeep_tests::notify::{Smtp, Webhook};

use crate::support::*;

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Flips one byte of the stored copy of `needle` (bytes of a file, stored as they are: the
/// job is unencrypted and random bytes do not compress) in the SP's storage.
fn damage_at_sp(storage: &Path, needle: &[u8]) {
    for pack in files_under(storage)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
    {
        let mut bytes = std::fs::read(&pack).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + 7] ^= 0xa5;
            std::fs::write(&pack, bytes).unwrap();
            return;
        }
    }
    panic!(
        "the file's bytes are in no pack under {}",
        storage.display()
    );
}

// The SMTP server is Debian's aiosmtpd, a Linux program (the Windows build of this suite runs
// under Wine): the restore test itself is also checked everywhere, below.
#[cfg(unix)]
#[test]
fn a_restore_test_proves_a_point_then_fails_on_damage_at_the_sp_and_everyone_hears_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let smtp = Smtp::start();
    let (tenant_hook, sp_hook) = (Webhook::start(), Webhook::start());
    let port = smtp.port.to_string();
    let ca = smtp.ca_file.display().to_string();

    // Where the tenant's computer and the SP send word; each channel tried once.
    laptop.ok(
        &[
            "notify",
            "set",
            "--smtp-server",
            "localhost",
            "--smtp-port",
            &port,
            "--smtp-ca",
            &ca,
            "--from",
            "cloudkeep@acme.test",
            "--to",
            "ops@acme.test",
            "--webhook",
            &tenant_hook.url,
        ],
        None,
    );
    let tried = laptop.ok(&["notify", "test"], None);
    assert!(
        tried.contains("email: sent") && tried.contains("webhook: sent"),
        "{tried}"
    );
    smtp.wait_for(&["Cloudkeep: test notification", "ops@acme.test"]);
    // A webhook in the clear beyond this computer is refused before it is kept.
    let refused = laptop.fails(
        &["notify", "set", "--webhook", "http://hooks.example.com/x"],
        None,
        1,
    );
    assert!(refused.contains("https://"), "{refused}");
    sp.ok(
        &[
            "sp",
            "notify",
            "set",
            "--smtp-server",
            "localhost",
            "--smtp-port",
            &port,
            "--smtp-ca",
            &ca,
            "--from",
            "gateway@sp.test",
            "--to",
            "noc@sp.test",
            "--webhook",
            &sp_hook.url,
        ],
        None,
    );
    let tried = sp.ok(&["sp", "notify", "test"], None);
    assert!(
        tried.contains("email: sent") && tried.contains("webhook: sent"),
        "{tried}"
    );
    sp_hook.wait_for(&["\"event\":\"test\""]);
    smtp.wait_for(&["noc@sp.test", "service provider"]);

    // A tree with one file whose bytes the test finds at the SP.
    let source = tmp.path().join("docs");
    std::fs::create_dir_all(source.join("reports")).unwrap();
    for i in 0..40 {
        std::fs::write(
            source.join(format!("note{i}.txt")),
            format!("note {i}\n").repeat(200),
        )
        .unwrap();
    }
    let victim = cloudkeep_tests::pseudo_random(1 << 20, 77);
    std::fs::write(source.join("reports/victim.bin"), &victim).unwrap();
    job_create(&laptop, "docs", &source);
    laptop.ok(&["job", "run", "docs"], None);

    // Proven: every file restored and read back against what was backed up.
    let said = laptop.ok(&["job", "restore-test", "docs", "--sample", "100"], None);
    assert!(
        said.contains("proven restorable: 41 of 41 sampled files"),
        "{said}"
    );
    let shown = laptop.json(&["job", "show", "docs"]);
    assert_eq!(shown["proof"]["result"], "success", "{shown}");
    assert!(
        shown["proof"]["proven_point_ms"].as_i64().is_some(),
        "{shown}"
    );
    assert!(laptop.ok(&["job", "list"], None).contains("proven "));
    let points = laptop.ok(&["points", "list", "--job", "docs"], None);
    assert!(points.contains("proven restorable"), "{points}");
    // The SP sees the result, never the content.
    let tenants = sp.ok(&["sp", "tenant", "list"], None);
    assert!(tenants.contains("proven since"), "{tenants}");
    let acme = sp.json(&["sp", "tenant", "show", "acme"]);
    let health = &acme["health"][0];
    assert_eq!(
        (health["job"].as_str(), health["test_result"].as_str()),
        (Some("docs"), Some("success")),
        "{acme}"
    );
    assert!(
        !acme.to_string().contains("victim.bin"),
        "no file name reaches the SP: {acme}"
    );

    // One stored blob damaged at the SP: the next test fails, exit code 6, naming the file.
    damage_at_sp(&tmp.path().join("storage"), &victim[4096..4096 + 64]);
    let out = laptop.run(&["job", "restore-test", "docs", "--sample", "100"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(
        text.contains("NOT restorable") && text.contains("reports/victim.bin"),
        "{text}"
    );
    let shown = laptop.ok(&["job", "show", "docs"], None);
    assert!(
        shown.contains("RESTORE TEST FAILED") && shown.contains("victim.bin"),
        "{shown}"
    );
    let tenants = sp.ok(&["sp", "tenant", "list"], None);
    assert!(tenants.contains("restore test FAILED (1 job)"), "{tenants}");
    // Everyone hears of it: the tenant's email and webhook, the SP's webhook.
    let mail = smtp.wait_for(&[
        "restore test failed: docs",
        "victim.bin",
        "To: ops@acme.test",
    ]);
    assert!(mail.contains("From: cloudkeep@acme.test"), "{mail}");
    let hook = tenant_hook.wait_for(&["\"event\":\"restore-test-failed\"", "victim.bin"]);
    assert!(hook.contains("\"job\":\"docs\""), "{hook}");
    let sp_said = sp_hook.wait_for(&["\"event\":\"restore-test-failed\""]);
    assert!(sp_said.contains("\"account\":\"acme\""), "{sp_said}");
    smtp.wait_for(&["To: noc@sp.test", "restore test failed: docs (acme)"]);
    // The SP's channels are its own: the tenant's addresses never reach them.
    let sp_channels = sp.json(&["sp", "notify", "show"]);
    assert_eq!(
        sp_channels["email"]["to"][0], "noc@sp.test",
        "{sp_channels}"
    );
    assert!(
        !sp_channels.to_string().contains("ops@acme.test"),
        "{sp_channels}"
    );

    // A failed backup is told too, by this computer and by the provider.
    std::fs::rename(&source, tmp.path().join("docs-moved")).unwrap();
    laptop.fails(&["job", "run", "docs"], None, 1);
    let hook = tenant_hook.wait_for(&["\"event\":\"run-failed\"", "nothing to back up"]);
    assert!(hook.contains("\"job\":\"docs\""), "{hook}");
    smtp.wait_for(&["backup failed: docs", "To: ops@acme.test"]);
    sp_hook.wait_for(&["\"event\":\"run-failed\"", "\"account\":\"acme\""]);
}

#[cfg(target_os = "linux")]
#[test]
fn an_image_level_point_is_proven_with_every_volume_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    for i in 0..30 {
        std::fs::write(
            tree.join(format!("etc/conf{i}")),
            format!("setting {i}\n").repeat(100),
        )
        .unwrap();
    }
    let (disk, _) = ext4_disk(tmp.path(), "server.img", 24, 20480, &tree);
    image_job(&laptop, "server", &disk);
    let said = laptop.ok(&["job", "restore-test", "server"], None);
    assert!(said.contains("ext4): opened"), "{said}");
    assert!(said.contains("proven restorable"), "{said}");
    let shown = laptop.json(&["job", "show", "server"]);
    let test = shown["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "restore-test")
        .unwrap()
        .clone();
    assert_eq!(test["result"], "success", "{test}");
    assert!(
        test["stats"]["files_proven"].as_u64().unwrap() >= 20,
        "{test}"
    );
    assert_eq!(test["stats"]["volumes"][0]["opened"], true, "{test}");
}

/// The restore test on every platform (Windows too, under Wine): a job to a local folder is
/// proven restorable — read-only files and names this platform finds awkward among the sample
/// — then one stored blob is damaged and the next test exits with code 6 naming the file.
#[test]
fn a_local_restore_test_proves_then_names_the_damaged_file() {
    let tmp = tempfile::tempdir().unwrap();
    let laptop = Cli {
        home: tmp.path().join("home"),
    };
    let source = tmp.path().join("papers");
    std::fs::create_dir_all(source.join("deep/er")).unwrap();
    for i in 0..12 {
        std::fs::write(
            source.join(format!("letter {i}.txt")),
            format!("letter {i}\n").repeat(50),
        )
        .unwrap();
    }
    let readonly = source.join("deep/signed.txt");
    std::fs::write(&readonly, "signed and sealed\n").unwrap();
    let mut perms = std::fs::metadata(&readonly).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&readonly, perms).unwrap();
    let victim = cloudkeep_tests::pseudo_random(512 << 10, 31);
    std::fs::write(source.join("deep/er/scan.bin"), &victim).unwrap();
    let repo = tmp.path().join("repo");
    laptop.ok(
        &[
            "job",
            "create",
            "papers",
            "--folder",
            &repo.display().to_string(),
            "--source",
            &source.display().to_string(),
            "--no-encryption",
        ],
        None,
    );
    laptop.ok(&["job", "run", "papers"], None);
    let said = laptop.ok(&["job", "restore-test", "papers"], None);
    assert!(
        said.contains("proven restorable: 14 of 14 sampled files"),
        "{said}"
    );
    let scratch = laptop.home.join("restore-tests");
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "the scratch folder is emptied, read-only files and all"
    );
    damage_at_sp(&repo, &victim[1000..1064]);
    let out = laptop.run(&["job", "restore-test", "papers"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(text.contains("scan.bin"), "{text}");
}
