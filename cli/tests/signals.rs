//! Ransomware signals as a tenant meets them, through a real gateway: a run that encrypts
//! 30 % of a tree with random bytes and renames as many files to `.locked` is marked
//! suspicious (its session a warning naming why, `job show` saying so), an ordinary edit of
//! the same size is not, and retention keeping one point keeps the clean point before the
//! suspicious one too — from which the tree restores as it was.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::support::*;

/// The ids of job "share"'s points, newest first.
fn point_ids(laptop: &Cli) -> Vec<String> {
    let points = laptop.json(&["points", "list", "--job", "share"]);
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn write_tree(root: &Path) {
    for folder in 0..5 {
        let dir = root.join(format!("dept{folder}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..40 {
            let text = format!("minutes {folder}-{i}: the budget was agreed and the plan stands\n")
                .repeat(50);
            std::fs::write(dir.join(format!("doc{i}.txt")), text).unwrap();
        }
    }
}

#[test]
fn an_attack_is_marked_suspicious_and_retention_keeps_the_clean_point_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = sp_gateway(tmp.path(), Gateway::start);
    sp.ok(
        &[
            "sp",
            "repo",
            "add",
            "main",
            "--path",
            &tmp.path().join("storage").display().to_string(),
        ],
        None,
    );
    add_acme(&sp, "main=1G:Cloud");
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("share");
    write_tree(&source);
    job_create(&laptop, "share", &source);
    laptop.ok(&["job", "edit", "share", "--keep-points", "1"], None);
    laptop.ok(&["job", "run", "share"], None);
    laptop.ok(&["job", "run", "share"], None); // nothing changed: a quiet run for the history

    // An ordinary edit of 30 % of the files: changes, not an attack.
    for folder in 0..5 {
        for i in 0..12 {
            let path = source.join(format!("dept{folder}/doc{i}.txt"));
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str("amended after the meeting\n");
            std::fs::write(&path, text).unwrap();
        }
    }
    laptop.ok(&["job", "run", "share"], None);
    let clean = laptop.json(&["points", "list", "--job", "share"]);
    let clean_id = clean[0]["id"].as_str().unwrap().to_owned();
    let shown = laptop.json(&["job", "show", "share"]);
    let edit = &shown["sessions"][0];
    assert_eq!(edit["result"], "success", "{edit}");
    assert!(edit["stats"]["suspicious"].is_null(), "{edit}");
    assert_eq!(edit["stats"]["signals"]["changed"], 60, "{edit}");
    let before: Vec<(String, Vec<u8>)> = (0..5)
        .flat_map(|f| (0..40).map(move |i| format!("dept{f}/doc{i}.txt")))
        .map(|name| {
            let bytes = std::fs::read(source.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();

    // The attack: 30 % rewritten with random bytes, 30 % more renamed to .locked, encrypted.
    for folder in 0..5u64 {
        for i in 0..12u64 {
            let path = source.join(format!("dept{folder}/doc{i}.txt"));
            std::fs::write(
                &path,
                cloudkeep_tests::pseudo_random(3000, folder * 100 + i),
            )
            .unwrap();
        }
        for i in 12..24u64 {
            let old = source.join(format!("dept{folder}/doc{i}.txt"));
            std::fs::remove_file(&old).unwrap();
            std::fs::write(
                source.join(format!("dept{folder}/doc{i}.txt.locked")),
                cloudkeep_tests::pseudo_random(3000, 7000 + folder * 100 + i),
            )
            .unwrap();
        }
    }
    let said = laptop.ok(&["job", "run", "share"], None);
    let shown = laptop.json(&["job", "show", "share"]);
    let attack = &shown["sessions"][0];
    assert_eq!(attack["result"], "warning", "{attack}");
    let message = attack["message"].as_str().unwrap();
    assert!(
        message.contains("looks like ransomware"),
        "{message} / {said}"
    );
    assert!(message.contains("random-looking"), "{message}");
    assert!(message.contains("renamed"), "{message}");
    assert_eq!(
        attack["stats"]["signals"]["encrypted_rewrites"], 120,
        "{attack}"
    );
    let text = laptop.ok(&["job", "show", "share"], None);
    assert!(text.contains("looks like ransomware"), "{text}");
    let log = laptop.ok(&["job", "log", "share"], None);
    assert!(log.contains("SUSPICIOUS"), "{log}");
    // The SP's console and CLI see the mark (why, never which files).
    let tenants = sp.ok(&["sp", "tenant", "list"], None);
    assert!(tenants.contains("SUSPICIOUS runs (1 job)"), "{tenants}");
    let acme = sp.json(&["sp", "tenant", "show", "acme"]);
    assert!(
        acme["health"][0]["suspicious"][0]
            .as_str()
            .unwrap()
            .contains("random-looking"),
        "{acme}"
    );
    // Its point is marked in the list of points.
    let points = laptop.ok(&["points", "list", "--job", "share"], None);
    assert!(points.contains("SUSPICIOUS"), "{points}");

    // Keep-last 1 kept the suspicious point and the clean one before it.
    let ids = point_ids(&laptop);
    let points = &ids;
    assert_eq!(ids.len(), 2, "{points:?}");
    assert!(
        ids.contains(&clean_id),
        "the clean point is kept: {points:?}"
    );

    // The clean point gives the tree back as it was.
    let out = tmp.path().join("back");
    laptop.ok(
        &[
            "restore",
            "files",
            &clean_id[..12],
            "--job",
            "share",
            "--to",
            &out.display().to_string(),
        ],
        None,
    );
    let restored = cloudkeep_tests::restored_at(&out, &source);
    for (name, bytes) in &before {
        assert!(
            std::fs::read(restored.join(name)).unwrap() == *bytes,
            "{name}"
        );
    }

    // Quiet runs after it are not suspicious; the suspicious point goes by the policy, the
    // clean one before it stays.
    for _ in 0..2 {
        laptop.ok(&["job", "run", "share"], None);
        let shown = laptop.json(&["job", "show", "share"]);
        assert!(
            shown["sessions"][0]["stats"]["suspicious"].is_null(),
            "{shown}"
        );
    }
    let ids = point_ids(&laptop);
    let points = &ids;
    assert_eq!(ids.len(), 2, "the newest and the clean one: {points:?}");
    assert!(ids.contains(&clean_id), "{points:?}");
}
