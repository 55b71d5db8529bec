//! Jobs sharing one cloud repository (issue 21, point 2): each has its own password (a slot
//! of the repository's keyring) and sees, restores and deletes only its own restore points.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::support::{Cli, gateway_with_tenant, tenant_with_provider};

fn create_encrypted(
    laptop: &Cli,
    name: &str,
    source: &Path,
    password: &str,
) -> std::process::Output {
    laptop.run(
        &[
            "job",
            "create",
            name,
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &source.display().to_string(),
            "--encryption-password-stdin",
        ],
        Some(password),
    )
}

fn ids(laptop: &Cli, job: &str) -> Vec<String> {
    laptop
        .json(&["points", "list", "--job", job])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_jobs_on_one_repository_keep_their_passwords_and_their_points_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let (a_src, b_src) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_src).unwrap();
    std::fs::create_dir_all(&b_src).unwrap();
    std::fs::write(a_src.join("a.txt"), "job A's file").unwrap();
    std::fs::write(b_src.join("b.txt"), "job B's file").unwrap();

    let out = create_encrypted(&laptop, "A", &a_src, "password-of-job-a");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // B has a password of its own: it joins the repository with a slot of its own.
    let out = create_encrypted(&laptop, "B", &b_src, "password-of-job-b");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slots = laptop.json(&["job", "key", "B", "list"]);
    assert!(
        slots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["label"] == "job B"),
        "{slots}"
    );
    // Both run (B first: it does not depend on A having run).
    laptop.ok(&["job", "run", "B"], None);
    laptop.ok(&["job", "run", "A"], None);
    laptop.ok(&["job", "run", "B"], None);
    let (a_points, b_points) = (ids(&laptop, "A"), ids(&laptop, "B"));
    assert_eq!((a_points.len(), b_points.len()), (1, 2));

    // latest of A is A's, though B's is newer.
    let out = tmp.path().join("out-a");
    laptop.restore_latest("A", &out, None);
    assert!(
        cloudkeep_tests::restored_at(&out, &a_src)
            .join("a.txt")
            .exists()
    );
    assert!(
        !cloudkeep_tests::restored_at(&out, &b_src).exists(),
        "job B's files restored for job A"
    );
    // Another job's point by id: refused, saying whose it is.
    let err = laptop.fails(
        &["points", "browse", &b_points[0][..8], "--job", "A"],
        None,
        1,
    );
    assert!(err.contains("belongs to job \"B\""), "{err}");
    // Deleting A's latest never touches B's.
    laptop.ok(&["points", "delete", "latest", "--job", "A"], None);
    assert!(ids(&laptop, "A").is_empty());
    assert_eq!(ids(&laptop, "B"), b_points);
    let err = laptop.fails(
        &["restore", "files", "latest", "--job", "A", "--to", "/tmp/x"],
        None,
        1,
    );
    assert!(err.contains("job \"A\" has no restore points"), "{err}");

    // A third job whose password opens nothing and whose siblings cannot help is refused up
    // front, and leaves no job behind — here: an unencrypted job on the encrypted repository.
    let err = laptop.fails(
        &[
            "job",
            "create",
            "C",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &a_src.display().to_string(),
            "--no-encryption",
        ],
        None,
        1,
    );
    assert!(err.contains("is encrypted"), "{err}");
    let jobs = laptop.json(&["job", "list"]);
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs}");
    drop(gw);
}

/// Another computer of the same tenant made the repository under a password this computer
/// does not know: a new job here must give that password; a wrong one is refused at
/// creation, never on the first run.
#[test]
fn a_job_with_a_password_the_repository_does_not_know_is_refused_at_creation() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let first = tenant_with_provider(tmp.path(), &gw, &fp);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let out = create_encrypted(&first, "docs", &src, "the-first-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let other = Cli {
        home: tmp.path().join("other-home"),
    };
    other.ok(
        &[
            "provider",
            "add",
            "acme-sp",
            "--host",
            &gw.addr,
            "--user",
            "acme",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some("tenant-password"),
    );
    let out = create_encrypted(&other, "docs", &src, "another-password");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already holds restore points under another encryption password"),
        "{err}"
    );
    assert_eq!(other.json(&["job", "list"]), serde_json::json!([]));
    let out = create_encrypted(&other, "docs", &src, "the-first-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    other.ok(&["job", "run", "docs"], None);
    drop(gw);
}
