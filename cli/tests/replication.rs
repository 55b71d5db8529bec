//! Cloud replication's first stage as an SP and a tenant meet it, with real processes: the SP
//! adds a cloud host and gets its connection details once (owner-only file); `cloudkeep host
//! run` on the host reports what the machine has (its real CPUs, memory, pool); the SP makes
//! a hardware plan within what the host has (a plan the host could never run is refused,
//! saying why), gives it to a tenant, and the tenant sees it; what is in use is never removed;
//! and a host's login opens nothing else.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::*;

#[test]
fn an_sp_sells_a_hardware_plan_on_a_registered_cloud_host_and_the_tenant_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());

    // The host's connection details, written owner-only.
    let details = tmp.path().join("kvm1.txt");
    let d = details.display().to_string();
    let out = sp.ok(&["sp", "host", "add", "kvm1", "--to", &d], None);
    assert!(out.contains("cloud host kvm1 added"), "{out}");
    assert_owner_only(&details);
    let text = std::fs::read_to_string(&details).unwrap();
    assert!(
        text.contains("cloud host kvm1") && text.contains(&fp),
        "{text}"
    );
    assert!(text.contains("cloudkeep host run --connect"), "{text}");
    sp.fails(&["sp", "host", "add", "kvm1"], None, 1);

    // Before the host reports, no plan can be made on it.
    let listed = sp.json(&["sp", "host", "list"]);
    assert_eq!(listed[0]["seen_ms"], serde_json::Value::Null);
    let err = sp.fails(
        &[
            "sp",
            "plan",
            "add",
            "small",
            "--cpu",
            "1",
            "--memory",
            "1G",
            "--storage",
            "kvm1/main:1G",
        ],
        None,
        1,
    );
    assert!(err.contains("has not reported yet"), "{err}");

    // The host: its connection details once, a pool, one report.
    let host = Cli {
        home: tmp.path().join("host-home"),
    };
    let pool = tmp.path().join("pool");
    let p = format!("main={}", pool.display());
    let report = host.json(&["host", "run", "--connect", &d, "--pool", &p, "--once"]);
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(report["cpus"], cpus);
    assert_eq!(report["pools"][0]["name"], "main");
    assert!(report["pools"][0]["total"].as_u64().unwrap() > 0);
    let kept = host.home.join("host").join("host.json");
    assert_owner_only(&kept);
    assert!(pool.is_dir(), "the pool's folder is made");
    // Later runs need no details: they were kept.
    let again = host.ok(&["host", "run", "--once"], None);
    assert!(again.contains("host kvm1 reported to"), "{again}");

    let listed = sp.json(&["sp", "host", "list"]);
    let facts = &listed[0]["facts"];
    assert_eq!(facts["cpus"], cpus);
    assert!(facts["kvm"].is_boolean());
    let qemu = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(facts["qemu"].is_string(), qemu, "{facts}");
    let memory = facts["memory"].as_u64().unwrap();
    assert!(memory > 0);
    let shown = sp.ok(&["sp", "host", "list"], None);
    assert!(shown.contains("kvm1") && shown.contains(" up "), "{shown}");

    // A plan the host could never run is refused with why; one within it is made.
    let too_many = (cpus + 1).to_string();
    let err = sp.fails(
        &[
            "sp",
            "plan",
            "add",
            "huge",
            "--cpu",
            &too_many,
            "--memory",
            "1G",
            "--storage",
            "kvm1:1G",
        ],
        None,
        1,
    );
    assert!(
        err.contains(&format!("has {cpus} CPUs")),
        "the CPUs the host has are named: {err}"
    );
    let err = sp.fails(
        &[
            "sp",
            "plan",
            "add",
            "huge",
            "--cpu",
            "1",
            "--memory",
            "1G",
            "--storage",
            "kvm1:900P",
        ],
        None,
        1,
    );
    assert!(err.contains("pool kvm1/main holds"), "{err}");
    let err = sp.fails(
        &[
            "sp",
            "plan",
            "add",
            "huge",
            "--cpu",
            "1",
            "--memory",
            "1G",
            "--storage",
            "kvm1/fast:1G",
        ],
        None,
        1,
    );
    assert!(
        err.contains("no storage pool \"fast\" (it has: main)"),
        "{err}"
    );
    let plan = sp.json(&[
        "sp",
        "plan",
        "add",
        "small",
        "--cpu",
        "1",
        "--memory",
        "512M",
        "--storage",
        "kvm1:1G",
        "--networks",
        "2",
        "--internet",
    ]);
    assert_eq!(plan["plan"]["memory"], 512u64 << 20);
    assert_eq!(plan["plan"]["storage"][0]["pool"], "main");
    assert_eq!(plan["plan"]["internet"], true);

    // The tenant has no plan until the SP gives it one.
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let none = laptop.ok(&["replica", "plans"], None);
    assert!(none.contains("has given you no hardware plan"), "{none}");
    let err = sp.fails(&["sp", "plan", "subscribe", "small", "acme/sub"], None, 1);
    assert!(err.contains("not subtenants"), "{err}");
    let given = sp.ok(&["sp", "plan", "subscribe", "small", "acme"], None);
    assert!(given.contains("tenants: acme"), "{given}");
    let plans = laptop.json(&["replica", "plans"]);
    assert_eq!(plans[0]["plan"]["name"], "small");
    assert_eq!(plans[0]["used"]["cpu"], 0);
    let shown = laptop.ok(&["replica", "plans"], None);
    assert!(shown.contains("CPUs:     0 of 1 in use"), "{shown}");

    // What is in use stays: the plan while the tenant has it, the host while a plan is on it.
    let err = sp.fails(&["sp", "plan", "remove", "small"], None, 1);
    assert!(err.contains("take it from them first"), "{err}");
    let err = sp.fails(&["sp", "host", "remove", "kvm1"], None, 1);
    assert!(err.contains("remove them first"), "{err}");
    let list = sp.ok(&["sp", "plan", "list"], None);
    assert!(list.contains("small") && list.contains("acme"), "{list}");

    // The audit log names every change.
    let audit = sp.ok(&["sp", "audit"], None);
    for action in ["host.add", "plan.add", "plan.subscribe"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }

    // Taken away, removed; the removed host can no longer log in.
    sp.ok(&["sp", "plan", "unsubscribe", "small", "acme"], None);
    assert!(
        laptop
            .ok(&["replica", "plans"], None)
            .contains("no hardware plan")
    );
    sp.ok(&["sp", "plan", "remove", "small"], None);
    sp.ok(&["sp", "host", "remove", "kvm1"], None);
    let err = host.fails(&["host", "run", "--once"], None, 4);
    assert!(err.contains("wrong user name or password"), "{err}");
}

#[test]
fn a_host_login_opens_no_tenant_or_admin_call_and_bad_details_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gw, sp, _fp) = gateway_with_tenant(tmp.path());
    let details = tmp.path().join("kvm1.txt");
    let d = details.display().to_string();
    sp.ok(&["sp", "host", "add", "kvm1", "--to", &d], None);
    let text = std::fs::read_to_string(&details).unwrap();

    // The host's own details, as a tenant's provider login: refused (another realm).
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap()
        .to_owned();
    let address = text
        .lines()
        .find_map(|l| l.strip_prefix("Gateway address: "))
        .unwrap()
        .to_owned();
    let fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("Certificate fingerprint (SHA-256): "))
        .unwrap()
        .to_owned();
    let tenant = Cli {
        home: tmp.path().join("as-tenant"),
    };
    tenant.fails(
        &[
            "provider",
            "add",
            "x",
            "--host",
            &address,
            "--user",
            "kvm1",
            "--password-stdin",
            "--trust",
            &fingerprint,
        ],
        Some(&password),
        4,
    );
    // …and as an SP admin: refused.
    let admin = Cli {
        home: tmp.path().join("as-admin"),
    };
    admin.fails(
        &[
            "sp",
            "login",
            "--gateway",
            &address,
            "--user",
            "kvm1",
            "--password-stdin",
            "--trust",
            &fingerprint,
        ],
        Some(&password),
        4,
    );

    // Details that are not details, or lack the password, say what to use.
    let host = Cli {
        home: tmp.path().join("host-home"),
    };
    let junk = tmp.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let pool = format!("main={}", tmp.path().join("pool").display());
    let j = junk.display().to_string();
    let err = host.fails(
        &["host", "run", "--connect", &j, "--pool", &pool, "--once"],
        None,
        1,
    );
    assert!(err.contains("sp host add"), "{err}");
    let no_password = tmp.path().join("no-password.txt");
    std::fs::write(
        &no_password,
        text.lines()
            .filter(|l| !l.starts_with("Password: "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let n = no_password.display().to_string();
    let err = host.fails(
        &["host", "run", "--connect", &n, "--pool", &pool, "--once"],
        None,
        1,
    );
    assert!(err.contains("has no password"), "{err}");
    let err = host.fails(&["host", "run", "--once"], None, 1);
    assert!(err.contains("storage pool"), "{err}");
    let err = host.fails(
        &["host", "run", "--pool", "main=relative/dir", "--once"],
        None,
        1,
    );
    assert!(err.contains("absolute path"), "{err}");
    let err = host.fails(&["host", "run", "--pool", &pool, "--once"], None, 1);
    assert!(err.contains("not connected to a gateway yet"), "{err}");
}
