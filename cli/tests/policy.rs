//! Backup policies end to end with real processes on loopback: one gateway, one tenant CLI,
//! three agents (each its own `CLOUDKEEP_HOME` and user home). The policy makes three managed
//! subtenants; each agent backs up its own folder; `policy status` shows three successes; a
//! changed schedule reaches the agents on their next cycle; one computer over its quota fails
//! alone, clearly; an agent given a wrong pin refuses to connect; a subtenant sees only its own
//! points; the tenant restores one computer's file byte for byte.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{Cli, fingerprint_in, gateway_with_tenant, tenant_at, tenant_with_provider};
use cloudkeep_client::remote::{RemoteStore, RemoteTarget};
use cloudkeep_repo::backend::{MetaKind, RepoBackend};
use cloudkeep_tenant::policies::{open_enrollment, seal_enrollment};
use cloudkeep_tests::pseudo_random;

const POLICY_PW: &str = "policy passphrase 1";

/// One agent computer: its data home and the home folder of the user it runs as.
struct Agent {
    cli: Cli,
    home: PathBuf,
    user: PathBuf,
}

impl Agent {
    fn new(dir: &Path, name: &str) -> Self {
        let home = dir.join(format!("{name}-agent"));
        let agent = Self {
            cli: Cli { home: home.clone() },
            home,
            user: dir.join(format!("{name}-user")),
        };
        std::fs::create_dir_all(agent.user.join("data/docs")).unwrap();
        agent
    }

    /// `args`, with the user's home folder named to `agent enroll` (Windows finds a user's
    /// home by the account, not by an environment variable the test could set).
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut args = args.to_vec();
        if args.starts_with(&["agent", "enroll"]) {
            args.extend(["--home", self.user.to_str().unwrap()]);
        }
        args
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let secrets = Path::new("file");
        self.cli.run_with(
            &self.args(args),
            stdin,
            &[("HOME", &self.user), ("CLOUDKEEP_SECRETS", secrets)],
        )
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let secrets = Path::new("file");
        self.cli.ok_with(
            &self.args(args),
            stdin,
            &[("HOME", &self.user), ("CLOUDKEEP_SECRETS", secrets)],
        )
    }

    fn cycle(&self, now: bool) -> serde_json::Value {
        let mut args = vec!["agent", "run", "--once", "--json"];
        if now {
            args.push("--now");
        }
        let out = self.run(&args, None);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "agent cycle printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

fn status(tenant: &Cli) -> Vec<serde_json::Value> {
    let p = tenant.json(&["policy", "status", "laptops", "--sync"]);
    p["status"].as_array().cloned().unwrap()
}

fn computer<'a>(status: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    status
        .iter()
        .find(|s| s["computer"] == name)
        .unwrap_or_else(|| panic!("no status of {name}: {status:?}"))
}

#[test]
fn a_policy_protects_three_computers_through_their_agents() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(dir.path());
    let tenant = tenant_with_provider(dir.path(), &gw, &fp);

    // The policy: each computer's ~/data, a quota of 4 MiB each, 5 points kept.
    laptops_policy(&tenant, &["--keep-points", "5"]);
    let agents: Vec<(String, Agent)> = ["pc1", "pc2", "pc3"]
        .iter()
        .map(|n| (n.to_string(), Agent::new(dir.path(), n)))
        .collect();
    let mut codes = Vec::new();
    for (name, agent) in &agents {
        tenant.ok(&["policy", "add-computer", "laptops", name], None);
        let file = dir.path().join(format!("{name}.enroll"));
        let out = tenant.json(&[
            "policy",
            "enroll-file",
            "laptops",
            name,
            "--out",
            &file.display().to_string(),
        ]);
        let code = out["code"].as_str().unwrap().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the enrollment file is owner-only");
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("acme/laptops"), "the file is sealed: {text}");
        let enrolled = agent.ok(
            &["agent", "enroll", &file.display().to_string()],
            Some(&code),
        );
        assert!(enrolled.contains("enrolled as computer"), "{enrolled}");
        codes.push((file, code));
        std::fs::write(
            agent.user.join("data/docs/report.txt"),
            format!("report of {name}\n"),
        )
        .unwrap();
        std::fs::write(
            agent.user.join("data/photo.bin"),
            pseudo_random(300_000, name.len() as u64 + 7),
        )
        .unwrap();
    }

    // Three managed subtenants, visible to the SP, whose passwords only the tenant may change.
    let accounts = sp.json(&["sp", "tenant", "list"]).to_string();
    for n in ["pc1", "pc2", "pc3"] {
        assert!(
            accounts.contains(&format!("acme/laptops-{n}")),
            "{accounts}"
        );
    }
    let refused = sp.fails(
        &[
            "sp",
            "tenant",
            "set",
            "acme/laptops-pc1",
            "--password-stdin",
        ],
        Some("new-password-1"),
        1,
    );
    assert!(refused.contains("only the tenant"), "{refused}");

    // Each agent backs up its own folder; the tenant sees three successes after syncing.
    let before = tenant.json(&["policy", "status", "laptops"]);
    assert!(
        before["synced_ms"].is_null(),
        "nothing synced yet: {before}"
    );
    for (_, agent) in &agents {
        let cycle = agent.cycle(true);
        assert_eq!(cycle["ran"]["result"], "success", "{cycle}");
        assert_eq!(cycle["reported"], 1, "{cycle}");
    }
    let s = status(&tenant);
    for n in ["pc1", "pc2", "pc3"] {
        let c = computer(&s, n);
        assert_eq!(c["last"]["result"], "success", "{c}");
        assert_eq!(c["applied_revision"], 1, "{c}");
        assert!(
            c["used_bytes"].as_i64().unwrap() > 300_000,
            "quota use is shown: {c}"
        );
        assert!(
            c["next_run_ms"].as_i64().is_some(),
            "the next run is shown: {c}"
        );
    }
    let table = tenant.ok(&["policy", "status", "laptops"], None);
    assert_eq!(table.matches("success").count(), 3, "{table}");

    // A changed schedule reaches every agent on its next cycle (no run is due yet).
    tenant.ok(
        &["policy", "edit", "laptops", "--schedule", "every:6h"],
        None,
    );
    for (_, agent) in &agents {
        let cycle = agent.cycle(false);
        assert_eq!(cycle["changed"], true, "{cycle}");
        assert_eq!(cycle["revision"], 2, "{cycle}");
        assert!(
            cycle["ran"].is_null(),
            "nothing due right after a run: {cycle}"
        );
    }
    let s = status(&tenant);
    for n in ["pc1", "pc2", "pc3"] {
        assert_eq!(computer(&s, n)["applied_revision"], 2);
    }

    // As a service: `agent run` keeps cycling (each cycle reaches the provider) until stopped.
    let seen = |s: &[serde_json::Value]| computer(s, "pc1")["seen_ms"].as_i64().unwrap();
    let before = seen(&s);
    let mut service = std::process::Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
        .args(["agent", "run", "--interval", "1"])
        .env("CLOUDKEEP_HOME", &agents[0].1.home)
        .env("CLOUDKEEP_SECRETS", "file")
        .env("HOME", &agents[0].1.user)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut cycles = 0;
    let mut last = before;
    while cycles < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let now = seen(&status(&tenant));
        if now > last {
            cycles += 1;
            last = now;
        }
    }
    crate::support::stop(&mut service);
    assert_eq!(cycles, 2, "the service cycled on its own");

    // pc3 outgrows its quota: only pc3 fails, and says why.
    std::fs::write(
        agents[2].1.user.join("data/video.bin"),
        pseudo_random(6_000_000, 99),
    )
    .unwrap();
    for (name, agent) in &agents {
        let cycle = agent.cycle(true);
        let expected = if name == "pc3" { "failed" } else { "success" };
        assert_eq!(cycle["ran"]["result"], expected, "{name}: {cycle}");
    }
    let s = status(&tenant);
    let pc3 = computer(&s, "pc3");
    let message = pc3["last"]["message"].as_str().unwrap();
    assert!(
        message.contains("full") || message.contains("quota"),
        "a clear error: {message}"
    );
    assert_eq!(
        pc3["last_success"]["result"], "success",
        "its last good point is still shown"
    );
    assert_eq!(computer(&s, "pc1")["last"]["result"], "success");
    let sessions = tenant.json(&["policy", "sessions", "laptops", "pc3"]);
    let results: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["failed", "success"],
        "pc3's sessions, newest first: {sessions}"
    );

    // A wrong pin: the agent refuses to connect (exit 3, certificate).
    let (file, code) = &codes[0];
    let mut e = open_enrollment(&std::fs::read_to_string(file).unwrap(), code).unwrap();
    e.fingerprint = "00:".repeat(31) + "00";
    let forged = dir.path().join("forged.enroll");
    std::fs::write(&forged, seal_enrollment(&e, code).unwrap()).unwrap();
    let stranger = Agent::new(dir.path(), "stranger");
    let out = stranger.run(
        &["agent", "enroll", &forged.display().to_string()],
        Some(code),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(
        !stranger.home.join("agent.json").exists(),
        "nothing enrolled"
    );

    // A subtenant sees only its own restore points.
    let pc1 = open_enrollment(&std::fs::read_to_string(&codes[0].0).unwrap(), &codes[0].1).unwrap();
    let snoop = Cli {
        home: dir.path().join("snoop"),
    };
    snoop.ok(
        &[
            "provider",
            "add",
            "sp",
            "--host",
            &gw.addr,
            "--user",
            &pc1.login,
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some(&pc1.password),
    );
    let repos = snoop.json(&["repo", "list"]).to_string();
    assert!(repos.contains("Cloud"), "{repos}");
    let subs = snoop.run(&["subtenant", "list"], None);
    assert!(
        !subs.status.success(),
        "a subtenant cannot list its siblings"
    );
    // With pc1's token the gateway lists pc1's points only, and pc2's are not found.
    let pc2 = open_enrollment(&std::fs::read_to_string(&codes[1].0).unwrap(), &codes[1].1).unwrap();
    let target = |user: &str, password: &str, act_as: Option<&str>| RemoteTarget {
        addresses: vec![gw.addr.clone()],
        fingerprint: fp.clone(),
        user: user.into(),
        password: password.into(),
        repo: "Cloud".into(),
        act_as: act_as.map(Into::into),
    };
    let store_of = |e: &cloudkeep_tenant::policies::Enrollment| {
        RemoteStore::connect(&target(&e.login, &e.password, None)).unwrap()
    };
    let (as_pc1, as_pc2) = (store_of(&pc1), store_of(&pc2));
    let pc1_points = as_pc1.list_meta(MetaKind::Point).unwrap();
    let pc2_points = as_pc2.list_meta(MetaKind::Point).unwrap();
    // The tenant reaches its own subtenant's points with its own login (no subtenant
    // password: from a computer that lost them); a subtenant acts for no one, and a name
    // is only looked up below the tenant itself.
    let pc1_name = pc1.login.rsplit('/').next().unwrap().to_owned();
    let pc2_name = pc2.login.rsplit('/').next().unwrap().to_owned();
    let as_tenant_for_pc1 =
        RemoteStore::connect(&target("acme", "tenant-password", Some(&pc1_name))).unwrap();
    assert_eq!(
        as_tenant_for_pc1.list_meta(MetaKind::Point).unwrap(),
        pc1_points
    );
    assert!(
        RemoteStore::connect(&target(&pc1.login, &pc1.password, Some(&pc2_name))).is_err(),
        "a subtenant cannot act for its sibling"
    );
    for bad in ["nobody", "../acme", "acme/pc1"] {
        assert!(
            RemoteStore::connect(&target("acme", "tenant-password", Some(bad))).is_err(),
            "{bad}"
        );
    }
    assert!(!pc1_points.is_empty() && !pc2_points.is_empty());
    assert!(
        pc1_points.iter().all(|p| !pc2_points.contains(p)),
        "{pc1_points:?} / {pc2_points:?}"
    );
    assert!(
        as_pc1.get_meta(MetaKind::Point, &pc2_points[0]).is_err(),
        "pc1's token cannot read pc2's point"
    );

    // The tenant restores pc2's file from its own side, byte for byte.
    let restored = dir.path().join("restored");
    tenant.ok(
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "laptops-pc2",
            "--to",
            &restored.display().to_string(),
        ],
        None,
    );
    let found: Vec<PathBuf> = walk(&restored)
        .into_iter()
        .filter(|p| p.ends_with("docs/report.txt"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(std::fs::read(&found[0]).unwrap(), b"report of pc2\n");
    let photo = found[0]
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("photo.bin");
    assert_eq!(std::fs::read(photo).unwrap(), pseudo_random(300_000, 10));
    let points = tenant.json(&["points", "list", "--job", "laptops-pc2"]);
    assert!(
        points
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["job"] == "laptops-pc2"),
        "the tenant sees pc2's points under its job: {points}"
    );
    // The tenant does not run a computer's job itself: its agent does.
    let run = tenant.run(&["job", "run", "laptops-pc1"], None);
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("its agent"),
        "{run:?}"
    );
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Policy "laptops" of acme-sp's "Cloud": each computer's ~/data, 4 MiB each (and `more`).
fn laptops_policy(tenant: &Cli, more: &[&str]) {
    crate::support::policy_create(tenant, "laptops", "daily@23:59", POLICY_PW, more);
}

/// Computer `name` added to "laptops" and its agent enrolled.
fn enrolled(dir: &Path, tenant: &Cli, name: &str) -> Agent {
    let agent = Agent::new(dir, name);
    tenant.ok(&["policy", "add-computer", "laptops", name], None);
    let file = dir.join(format!("{name}.enroll"));
    let out = tenant.json(&[
        "policy",
        "enroll-file",
        "laptops",
        name,
        "--out",
        &file.display().to_string(),
    ]);
    agent.ok(
        &["agent", "enroll", &file.display().to_string()],
        Some(out["code"].as_str().unwrap()),
    );
    agent
}

/// Certificates renew without an outage (issue 21, point 3): the SP announces the next
/// self-signed certificate, a tenant and an agent learn it when they connect and follow the
/// rollover with no action (the session log and `provider show` say so); a change that was
/// not announced is still refused with both fingerprints, until trusted by hand
/// (`agent trust` on the agent).
#[test]
fn an_announced_certificate_rollover_is_followed_and_an_unannounced_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(dir.path());
    let tenant = tenant_with_provider(dir.path(), &gw, &fp);
    laptops_policy(&tenant, &[]);
    let agent = enrolled(dir.path(), &tenant, "pc1");
    std::fs::write(agent.user.join("data/docs/report.txt"), "report\n").unwrap();
    assert_eq!(agent.cycle(true)["ran"]["result"], "success");
    let source = dir.path().join("docs");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a.txt"), "a\n").unwrap();
    crate::support::job_create(&tenant, "docs", &source);
    tenant.ok(&["job", "run", "docs"], None);

    // Announced; both learn it the next time they connect.
    let next = fingerprint_in(&sp.ok(&["sp", "cert", "next", "--hostname", "127.0.0.1"], None));
    assert_ne!(next, fp);
    assert!(sp.ok(&["sp", "cert", "show"], None).contains(&next));
    tenant.ok(&["provider", "rescan", "acme-sp"], None);
    agent.cycle(false);
    let shown = tenant.json(&["provider", "show", "acme-sp"]);
    assert_eq!(shown["cert"]["next"], next.as_str(), "{shown}");

    // The rollover: nobody does anything, both keep working, and say so.
    sp.ok(&["sp", "cert", "rollover"], None);
    tenant.ok(&["job", "run", "docs"], None);
    let log = tenant.ok(&["job", "log", "docs"], None);
    assert!(
        log.contains("announced in advance") && log.contains(&next),
        "the session log names the change: {log}"
    );
    let shown = tenant.ok(&["provider", "show", "acme-sp"], None);
    assert!(shown.contains("announced in advance"), "{shown}");
    std::fs::write(agent.user.join("data/docs/report.txt"), "report 2\n").unwrap();
    let cycle = agent.cycle(true);
    assert_eq!(cycle["ran"]["result"], "success", "{cycle}");

    // Unannounced: refused with both fingerprints (exit 3), by the tenant and the agent.
    let replaced =
        fingerprint_in(&sp.ok(&["sp", "cert", "generate", "--hostname", "127.0.0.1"], None));
    let err = tenant.fails(&["job", "run", "docs"], None, 3);
    assert!(err.contains(&replaced) && err.contains(&next), "{err}");
    let refused = agent.run(&["agent", "run", "--once", "--now", "--json"], None);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    agent.ok(&["agent", "trust", &replaced], None);
    let cycle = agent.cycle(true);
    assert_eq!(
        cycle["ran"]["result"], "success",
        "after agent trust: {cycle}"
    );
    drop(gw);
}

/// A policy computer gets its own files back (issue 21, point 5): on the computer with
/// `agent restore`, and by a restore the tenant orders, which the computer's agent carries out
/// on its next cycle from its own points (queued → done); "where it came from" is that
/// computer's paths.
#[test]
fn a_policy_computer_restores_its_own_files_by_itself_or_on_the_tenants_order() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(dir.path());
    let tenant = tenant_with_provider(dir.path(), &gw, &fp);
    laptops_policy(&tenant, &[]);
    let agents: Vec<Agent> = ["pc1", "pc2"]
        .iter()
        .map(|name| {
            let agent = enrolled(dir.path(), &tenant, name);
            std::fs::write(
                agent.user.join("data/docs/report.txt"),
                format!("report of {name}\n"),
            )
            .unwrap();
            assert_eq!(agent.cycle(true)["ran"]["result"], "success");
            agent
        })
        .collect();
    let (pc1, pc2) = (&agents[0], &agents[1]);
    let report = pc1.user.join("data/docs/report.txt");

    // On the computer itself: its own latest point, back where it came from.
    std::fs::remove_file(&report).unwrap();
    pc1.ok(&["agent", "restore"], None);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "report of pc1\n");

    // Ordered by the tenant: queued until pc1's agent runs its cycle, then done, on pc1 only.
    std::fs::write(&report, "overwritten by mistake\n").unwrap();
    let path = report.display().to_string();
    let refused = tenant.fails(
        &[
            "policy",
            "restore",
            "laptops",
            "pc1",
            "--to",
            "relative/dir",
        ],
        None,
        1,
    );
    assert!(refused.contains("not an absolute path"), "{refused}");
    let queued = tenant.json(&[
        "policy",
        "restore",
        "laptops",
        "pc1",
        "latest",
        "--path",
        &path,
        "--conflict",
        "overwrite",
    ]);
    assert_eq!(queued["state"], "queued", "{queued}");
    let listed = tenant.json(&["policy", "restores", "laptops"]);
    assert_eq!(listed[0]["state"], "queued");
    pc2.cycle(false);
    assert_eq!(
        tenant.json(&["policy", "restores", "laptops"])[0]["state"],
        "queued",
        "another computer's agent does not take it"
    );
    let cycle = pc1.cycle(false);
    assert_eq!(cycle["restores"][0]["state"], "done", "{cycle}");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "report of pc1\n");
    let listed = tenant.json(&["policy", "restores", "laptops"]);
    assert_eq!(listed[0]["state"], "done", "{listed}");
    assert!(
        listed[0]["message"].as_str().unwrap().contains("1 file"),
        "{listed}"
    );
    // A point of another computer is not in this one's repository: the order fails, saying so.
    let pc2_point = tenant.json(&["points", "list", "--job", "laptops-pc2"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tenant.ok(
        &["policy", "restore", "laptops", "pc1", &pc2_point[..12]],
        None,
    );
    let cycle = pc1.cycle(false);
    assert_eq!(cycle["restores"][0]["state"], "failed", "{cycle}");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "report of pc1\n");

    // The tenant's computer is lost: a new one with only the provider finds each policy
    // computer's backups (in its managed subtenant, reached with the tenant's own login),
    // opens pc2's with the policy's password and restores its report here.
    let fresh = tenant_at(dir.path().join("new-console"), &gw, &fp);
    let rescan = fresh.ok(&["provider", "rescan", "acme-sp"], None);
    for pc in ["pc1", "pc2"] {
        assert!(
            rescan.contains(&format!(
                "of policy computer acme/laptops-{pc} holds backups"
            )),
            "{rescan}"
        );
    }
    let found = [
        "provider",
        "found",
        "acme-sp",
        "--repo",
        "Cloud",
        "--account",
        "acme/laptops-pc2",
        "--password-stdin",
    ];
    let jobs = fresh.json_with(&found, Some(POLICY_PW));
    assert_eq!(jobs[0]["name"], "laptops-pc2", "{jobs}");
    assert_eq!(jobs[0]["points"], 1, "{jobs}");
    fresh.ok(
        &[found.as_slice(), &["--adopt", "laptops-pc2"]].concat(),
        Some(POLICY_PW),
    );
    let out = dir.path().join("pc2-report-here");
    fresh.ok(
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "laptops-pc2",
            "--to",
            &out.display().to_string(),
        ],
        None,
    );
    let pc2_report = pc2.user.join("data/docs/report.txt");
    let here = cloudkeep_tests::restored_at(&out, &pc2_report);
    assert_eq!(std::fs::read_to_string(here).unwrap(), "report of pc2\n");
    // Browsed and restored here, backed up only by its agent.
    let refused = fresh.fails(&["job", "run", "laptops-pc2"], None, 1);
    assert!(refused.contains("its agent backs it up"), "{refused}");
    drop(gw);
}

/// A policy's restore test reaches its computers (their jobs take its schedule), a computer's
/// test is reported to the provider under the computer's own login, and the tenant's policy
/// status shows when each computer was last proven restorable.
#[test]
fn a_policy_computers_restore_test_shows_in_the_policy_status() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(dir.path());
    let tenant = tenant_with_provider(dir.path(), &gw, &fp);
    laptops_policy(
        &tenant,
        &[
            "--restore-test",
            "daily@05:00",
            "--restore-test-sample",
            "5",
        ],
    );
    let pc1 = enrolled(dir.path(), &tenant, "pc1");
    std::fs::write(pc1.user.join("data/docs/plan.txt"), "the plan\n").unwrap();
    assert_eq!(pc1.cycle(true)["ran"]["result"], "success");
    let job = pc1.ok(&["job", "show", "laptops-pc1"], None);
    assert!(
        job.contains("restore test: daily@05:00 (5 % of the files)"),
        "{job}"
    );
    let before = status(&tenant);
    assert!(
        computer(&before, "pc1")["health"]["proven_ms"].is_null(),
        "{before:?}"
    );

    let said = pc1.ok(&["job", "restore-test", "laptops-pc1"], None);
    assert!(said.contains("proven restorable"), "{said}");
    let after = status(&tenant);
    let health = &computer(&after, "pc1")["health"];
    assert_eq!(health["test_result"], "success", "{after:?}");
    assert_eq!(health["login"], "acme/laptops-pc1", "{after:?}");
    let table = tenant.ok(&["policy", "status", "laptops"], None);
    assert!(table.contains("proven restorable"), "{table}");
    assert!(!table.contains("never "), "pc1's proof is a date: {table}");
    // The SP sees the tenant (with its computers) proven.
    let tenants = sp.ok(&["sp", "tenant", "list"], None);
    assert!(tenants.contains("proven since"), "{tenants}");
}
