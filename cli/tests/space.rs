//! Space comes back (issue 21, point 1): retention and compaction keep a quota near the size
//! of the restore points kept, the SP's disk shrinks with it, insider protection still holds
//! every deleted point until its window ends, and a compaction killed at any step loses
//! nothing.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::support::{
    Cli, Gateway, free_address, gateway_with_tenant, gateway_with_tenant_on, job_create, kill9,
    spawn, tenant_with_provider,
};

const FILES: u64 = 16;
const FILE_LEN: usize = 384 << 10;

/// The tree of day `day`: file i holds version `version(i, day)` (3 files change a day).
fn version(file: u64, day: u64) -> u64 {
    // File i changes on the days where (day + i) % 5 == 0 — about 3 of 16 a day.
    (day + file) / 5
}

/// Content `version` of file `file`: distinct for every pair (`pseudo_random` ignores the
/// lowest bit of its seed).
fn content(file: u64, version: u64) -> Vec<u8> {
    cloudkeep_tests::pseudo_random(FILE_LEN, (file * 100_000 + version) * 2)
}

fn write_day(source: &Path, day: u64) {
    write_tree(source, day, FILES);
}

/// The tree of day `day` with `files` files.
fn write_tree(source: &Path, day: u64, files: u64) {
    std::fs::create_dir_all(source).unwrap();
    for i in 0..files {
        let path = source.join(format!("file-{i:02}.bin"));
        let data = content(i, version(i, day));
        if std::fs::read(&path).ok().as_deref() != Some(&data[..]) {
            std::fs::write(&path, &data).unwrap();
        }
    }
}

/// Bytes of the distinct file versions the points of `days` hold: what the kept points
/// need stored (the data is random, so nothing deduplicates but equal versions).
fn kept_bytes(days: std::ops::RangeInclusive<u64>) -> u64 {
    let mut versions = std::collections::HashSet::new();
    for day in days {
        for i in 0..FILES {
            versions.insert((i, version(i, day)));
        }
    }
    versions.len() as u64 * FILE_LEN as u64
}

fn usage(sp: &Cli) -> (i64, i64, i64) {
    let rows = sp.json(&["sp", "usage"]);
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == "acme")
        .unwrap()
        .clone();
    (
        row["used_bytes"].as_i64().unwrap(),
        row["recycle_bytes"].as_i64().unwrap(),
        row["reclaimable_bytes"].as_i64().unwrap(),
    )
}

/// Bytes of pack files under the SP's storage folder.
fn disk_bytes(storage: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![storage.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.components().any(|c| c.as_os_str() == "packs") {
                total += entry.metadata().unwrap().len();
            }
        }
    }
    total
}

fn files_of(dir: &Path) -> HashMap<PathBuf, Vec<u8>> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.file_name().unwrap().into(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// Every kept point restores byte for byte: point k (oldest first) holds day `first + k`.
fn assert_points_restore(laptop: &Cli, tmp: &Path, first_day: u64) {
    let points = laptop.json(&["points", "list", "--job", "daily"]);
    let days: Vec<u64> = (0..points.as_array().unwrap().len() as u64)
        .map(|k| first_day + k)
        .collect();
    assert_days_restore(laptop, tmp, "daily", &days, FILES);
}

/// The points of `job` (oldest first) hold the trees of `days`, byte for byte.
fn assert_days_restore(laptop: &Cli, tmp: &Path, job: &str, days: &[u64], files: u64) {
    let points = laptop.json(&["points", "list", "--job", job]);
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), days.len(), "{points:?}");
    for (p, &day) in points.iter().zip(days) {
        let out = tmp.join(format!("check-{day}"));
        let id = p["id"].as_str().unwrap();
        laptop.ok(
            &[
                "restore",
                "files",
                id,
                "--job",
                job,
                "--to",
                &out.display().to_string(),
            ],
            None,
        );
        let restored = files_of(&out);
        assert_eq!(restored.len(), files as usize, "point of day {day}");
        for i in 0..files {
            let want = content(i, version(i, day));
            let name = PathBuf::from(format!("file-{i:02}.bin"));
            assert!(
                restored[&name] == want,
                "day {day}, file {i}: restored bytes differ"
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn thirty_daily_runs_keeping_seven_stay_near_the_size_of_the_seven() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("daily");
    let storage = tmp.path().join("storage");
    write_day(&source, 1);
    job_create(&laptop, "daily", &source);
    laptop.ok(&["job", "edit", "daily", "--keep-points", "7"], None);
    let mut worst: f64 = 0.0;
    for day in 1..=30 {
        write_day(&source, day);
        laptop.ok(&["job", "run", "daily"], None);
        let kept = kept_bytes(day.saturating_sub(6).max(1)..=day);
        let (used, recycled, _) = usage(&sp);
        let disk = disk_bytes(&storage);
        let ratio = used as f64 / kept as f64;
        worst = worst.max(ratio);
        assert!(
            ratio <= 1.3,
            "day {day}: {used} bytes used for {kept} bytes of kept points ({ratio:.2}x)"
        );
        assert_eq!(
            recycled, 0,
            "no insider protection: nothing waits in the bin"
        );
        assert!(
            disk as f64 <= 1.3 * kept as f64,
            "day {day}: the SP's disk holds {disk} bytes of packs for {kept} kept"
        );
    }
    eprintln!("worst quota use over 30 days: {worst:.2}x the kept points");
    let points = laptop.json(&["points", "list", "--job", "daily"]);
    assert_eq!(points.as_array().unwrap().len(), 7);
    assert_points_restore(&laptop, tmp.path(), 24);
    // Without waiting for a compaction threshold: the job's own command, then the SP's
    // figures say how much is left to reclaim (almost nothing).
    let compacted = laptop.json(&["job", "compact", "daily"]);
    assert_eq!(compacted["result"], "success", "{compacted}");
    let report = &compacted["report"];
    let (live, unused) = (
        report["live_bytes"].as_u64().unwrap(),
        report["unused_left"].as_u64().unwrap(),
    );
    assert!(unused * 20 <= live, "at most 5 % left unused: {report}");
    sp.ok(&["sp", "reclaim"], None);
    let (used, _, reclaimable) = usage(&sp);

    assert!(
        reclaimable as f64 <= 0.06 * used as f64,
        "the SP sees {reclaimable} of {used} bytes reclaimable after a compaction"
    );
    let verify = laptop.ok(&["verify", "--job", "daily"], None);
    assert!(verify.contains("no damage found"), "{verify}");
    drop(gw);
}

/// Writes files `changed` with contents of day `tag` (the others stay as they were).
#[cfg(unix)]
fn write_set(source: &Path, tag: u64, changed: std::ops::Range<u64>) {
    std::fs::create_dir_all(source).unwrap();
    for i in changed {
        std::fs::write(
            source.join(format!("file-{i:02}.bin")),
            content(i, 10_000 + tag),
        )
        .unwrap();
    }
}

#[cfg(unix)]
fn sp_login(sp: &Cli, gw: &Gateway, fp: &str) {
    sp.ok(
        &[
            "sp",
            "login",
            "--gateway",
            &gw.addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            fp,
        ],
        Some(crate::support::ADMIN_PW),
    );
}

/// Insider protection holds through compaction: a deleted point's data stays (and restores,
/// given back by the SP) until its window ends; data a compaction moved stays with the SP
/// until the window ends too; only then does the space come back, and every kept point still
/// restores. The gateway is restarted days ahead (libfaketime) instead of waiting.
#[cfg(unix)]
#[test]
fn insider_protection_keeps_deleted_and_compacted_data_until_the_window_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = free_address();
    let (gw, sp, fp) = gateway_with_tenant_on(tmp.path(), &listen);
    sp.ok(
        &["sp", "tenant", "set", "acme", "--keep-deleted-days", "7"],
        None,
    );
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("prot");
    let storage = tmp.path().join("storage");
    let data = tmp.path().join("gw");
    write_set(&source, 1, 0..4); // day 1: A
    job_create(&laptop, "prot", &source);
    laptop.ok(&["job", "edit", "prot", "--keep-points", "1"], None);
    laptop.ok(&["job", "run", "prot"], None);
    let first = laptop.json(&["points", "list", "--job", "prot"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    write_set(&source, 2, 0..4); // day 2: B, all new
    laptop.ok(&["job", "run", "prot"], None); // retention: day 1 goes to the recycle bin
    let compacted = laptop.json(&["job", "compact", "prot"]);
    assert_eq!(compacted["report"]["packs_deleted"], 0, "{compacted}");
    let a_and_b = 8 * FILE_LEN as u64;
    assert!(
        disk_bytes(&storage) >= a_and_b,
        "day 1's data is still stored: {} bytes of packs; {compacted}",
        disk_bytes(&storage)
    );
    // The SP gives the point back; it restores byte for byte.
    sp.ok(
        &[
            "sp",
            "recycle-bin",
            "restore",
            "--tenant",
            "acme",
            "--repo",
            "Cloud",
            &first,
        ],
        None,
    );
    let out = tmp.path().join("day1");
    laptop.ok(
        &[
            "restore",
            "files",
            &first[..12],
            "--job",
            "prot",
            "--to",
            &out.display().to_string(),
        ],
        None,
    );
    let restored = files_of(&out);
    for i in 0..4u64 {
        let want = content(i, 10_001);
        assert!(
            restored[&PathBuf::from(format!("file-{i:02}.bin"))] == want,
            "file {i}"
        );
    }
    laptop.ok(&["points", "delete", &first[..12], "--job", "prot"], None);
    let (_, recycled, _) = usage(&sp);
    assert!(recycled > 0, "the point is in the recycle bin again");

    // Eight days on: the bin's window is over, the point is purged, its data goes.
    drop(gw);
    let gw = Gateway::start_days_ahead(&data, &listen, 8);
    sp_login(&sp, &gw, &fp);
    sp.ok(&["sp", "reclaim"], None);
    assert!(
        sp.json(&["sp", "recycle-bin", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "purged when its window ended"
    );
    let disk = disk_bytes(&storage);
    assert!(
        disk < a_and_b - 3 * FILE_LEN as u64,
        "day 1's data left the SP's disk: {disk} bytes of packs"
    );

    // Day 3 keeps one of B's files: B's pack is partly used once day 2's point is purged.
    write_set(&source, 3, 1..4);
    laptop.ok(&["job", "run", "prot"], None); // day 2 → recycle bin (deleted at +8 days)
    drop(gw);
    let gw = Gateway::start_days_ahead(&data, &listen, 16);
    sp_login(&sp, &gw, &fp);
    sp.ok(&["sp", "reclaim"], None);
    let (used_before, _, reclaimable) = usage(&sp);
    assert!(
        reclaimable >= 2 * FILE_LEN as i64,
        "the SP sees B's dead files as reclaimable: {reclaimable}"
    );
    let compacted = laptop.json(&["job", "compact", "prot"]);
    assert_eq!(compacted["report"]["packs_repacked"], 1, "{compacted}");
    let (used, recycled, _) = usage(&sp);
    assert!(
        used < used_before - 2 * FILE_LEN as i64,
        "{used} after {used_before}"
    );
    assert!(
        recycled >= 3 * FILE_LEN as i64,
        "the compacted pack waits in the recycle bin while protection lasts: {recycled}"
    );
    let disk_during = disk_bytes(&storage);
    // The SP's storage check (files look 16 days old to it) keeps the retired pack: it is
    // known, not a leftover.
    sp.ok(&["sp", "check"], None);
    assert_eq!(
        disk_bytes(&storage),
        disk_during,
        "the storage check keeps retired packs"
    );
    let out = tmp.path().join("day3");
    laptop.restore_latest("prot", &out, None);
    assert_eq!(files_of(&out).len(), 4);
    drop(gw);
    // Another eight days: the compacted pack leaves the SP's disk; the point still restores.
    let gw = Gateway::start_days_ahead(&data, &listen, 24);
    sp_login(&sp, &gw, &fp);
    sp.ok(&["sp", "reclaim"], None);
    let (_, recycled, _) = usage(&sp);
    assert_eq!(recycled, 0);
    assert!(disk_bytes(&storage) < disk_during - 3 * FILE_LEN as u64);
    let out = tmp.path().join("day3-again");
    laptop.restore_latest("prot", &out, None);
    let restored = files_of(&out);
    assert!(
        restored[&PathBuf::from("file-00.bin")] == content(0, 10_002),
        "the file kept from day 2 restores from its new pack"
    );
    let verify = laptop.ok(&["verify", "--job", "prot"], None);
    assert!(verify.contains("no damage found"), "{verify}");
    drop(gw);
}

/// Pack files and index files in the SP's storage.
fn stored_counts(storage: &Path) -> (usize, usize) {
    let (mut packs, mut indexes) = (0, 0);
    let mut stack = vec![storage.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pack") {
                packs += 1;
            } else if path.parent().is_some_and(|p| p.ends_with("index")) {
                indexes += 1;
            }
        }
    }
    (packs, indexes)
}

/// A compaction killed — the client or the gateway, kill -9, at several moments — loses
/// nothing: every kept point restores byte for byte, and the next compaction finishes the
/// work.
#[test]
fn a_compaction_killed_at_any_step_loses_nothing_and_the_next_finishes() {
    const MANY: u64 = 48;
    let tmp = tempfile::tempdir().unwrap();
    let listen = free_address();
    let (mut gw, _sp, fp) = gateway_with_tenant_on(tmp.path(), &listen);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let data = tmp.path().join("gw");
    let source = tmp.path().join("daily");
    write_tree(&source, 1, MANY);
    job_create(&laptop, "daily", &source);
    // No retention: points are deleted by hand, so only the killed compactions compact.
    let mut day = 0;
    let mut kept: Vec<u64> = Vec::new();
    // Two more days, then all but the newest two points go: partly used packs to compact.
    let mut add_garbage = |laptop: &Cli, kept: &mut Vec<u64>| {
        for _ in 0..3 {
            day += 1;
            write_tree(&source, day, MANY);
            laptop.ok(&["job", "run", "daily"], None);
            kept.push(day);
        }
        let points = laptop.json(&["points", "list", "--job", "daily"]);
        let ids: Vec<String> = points
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        for id in &ids[..ids.len() - 2] {
            laptop.ok(&["points", "delete", &id[..12], "--job", "daily"], None);
        }
        kept.drain(..kept.len() - 2);
    };
    add_garbage(&laptop, &mut kept);
    let started = std::time::Instant::now();
    let timing = laptop.json(&["job", "compact", "daily"]);
    let full = started.elapsed();
    assert!(
        timing["report"]["bytes_moved"].as_u64().unwrap() > 0,
        "{timing}"
    );

    // Each compaction is killed at a step seen in the SP's storage: after its first new pack,
    // after its new index, once an old index is gone, once old packs start to go — the
    // client (kill -9 of `cloudkeep job compact`) or the gateway (kill -9, then restarted).
    let storage = tmp.path().join("storage");
    type Step = (&'static str, fn((usize, usize), (usize, usize)) -> bool);
    let steps: [Step; 4] = [
        ("a new pack stored", |(p0, _), (p, _)| p > p0),
        ("the new index stored", |(_, i0), (_, i)| i > i0),
        ("an old index gone", |(_, i0), (_, i)| i < i0),
        ("old packs going", |(p0, _), (p, _)| p < p0),
    ];
    let (mut client_kills, mut gateway_kills) = (0, 0);
    for kill_gateway in [false, true] {
        for (what, reached) in steps {
            add_garbage(&laptop, &mut kept);
            let before = stored_counts(&storage);
            let mut run = spawn(&laptop, &["job", "compact", "daily"]);
            let deadline =
                std::time::Instant::now() + full * 20 + std::time::Duration::from_secs(5);
            let landed = loop {
                if reached(before, stored_counts(&storage)) {
                    break run.try_wait().unwrap().is_none();
                }
                if run.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            };
            if landed && kill_gateway {
                kill9(&mut gw.child);
                gateway_kills += 1;
                eprintln!("gateway killed: {what}");
            } else if landed {
                client_kills += 1;
                eprintln!("client killed: {what}");
            }
            if run.try_wait().unwrap().is_none() {
                kill9(&mut run);
            } else {
                run.wait().unwrap();
            }
            if kill_gateway && landed {
                gw = Gateway::start_listening(&data, &listen, &[]);
            }
            assert_days_restore(&laptop, tmp.path(), "daily", &kept, MANY);
            // The next one finishes: what stays unused is within the 5 % it leaves.
            let done = laptop.json(&["job", "compact", "daily"]);
            let report = &done["report"];
            assert!(
                report["unused_left"].as_u64().unwrap() * 20
                    <= report["live_bytes"].as_u64().unwrap(),
                "{report}"
            );
            assert_days_restore(&laptop, tmp.path(), "daily", &kept, MANY);
        }
    }
    eprintln!(
        "compaction ({:.2} s) killed {client_kills} times on the client, {gateway_kills} on the gateway",
        full.as_secs_f64()
    );
    assert!(
        client_kills >= 2 && gateway_kills >= 2,
        "only {client_kills} client and {gateway_kills} gateway kills landed mid-compaction"
    );
    let verify = laptop.ok(&["verify", "--job", "daily"], None);
    assert!(verify.contains("no damage found"), "{verify}");
    drop(gw);
}
