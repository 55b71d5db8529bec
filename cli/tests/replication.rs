//! Cloud replication's first stage as an SP and a tenant meet it, with real processes: the SP
//! adds a cloud host and gets its connection details once (owner-only file); `cloudkeep host
//! run` on the host reports what the machine has (its real CPUs, memory, pool); the SP makes
//! a hardware plan within what the host has (a plan the host could never run is refused,
//! saying why), gives it to a tenant, and the tenant sees it; what is in use is never removed;
//! and a host's login opens nothing else. Then a tenant replicates a disk to the running host:
//! the first cycle sends its blocks of data, the next only those that changed; the host keeps
//! them encrypted (checked by decrypting the chain with QEMU's own tools and by looking for
//! the data in the clear), keeps the points asked for, and removes everything with the
//! replica.

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

/// A running `cloudkeep host run`, stopped when dropped.
/// A running `cloudkeep host run` (or `nea run`), its log in a file: stopped when dropped,
/// its log printed when a test failed.
struct HostProcess(std::process::Child, std::path::PathBuf);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("--- {} ---\n{log}--- end ---", self.1.display());
        }
    }
}

/// The key of the tenant's replica, from its secrets file.
fn replica_key(laptop: &Cli, provider: &str, name: &str) -> String {
    let text = std::fs::read_to_string(laptop.home.join("secrets.json")).unwrap();
    let map: serde_json::Value = serde_json::from_str(&text).unwrap();
    map[format!("replica-key:{provider}:{name}")]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The replica's disk as the host keeps it, decrypted with `key` through QEMU's own tools:
/// the chain of point `upto` (the newest when `None`).
fn replica_disk(dir: &std::path::Path, disk: &str, key: &str, out: &std::path::Path) -> Vec<u8> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut opts = serde_json::Value::Null;
    let mut layers = vec![dir.join(format!("{disk}.base.qcow2"))];
    for p in manifest["points"].as_array().unwrap() {
        layers.push(dir.join(format!("{disk}.p{}.qcow2", p["id"])));
    }
    for layer in &layers {
        opts = serde_json::json!({
            "driver": "qcow2",
            "encrypt": {"format": "luks", "key-secret": "key"},
            "file": {"driver": "file", "filename": layer.display().to_string()},
            "backing": opts,
        });
    }
    let mut child = std::process::Command::new("qemu-img")
        .args(["convert", "--object", "secret,id=key,file=/dev/stdin"])
        .arg(format!("json:{opts}"))
        .args(["-O", "raw"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read(out).unwrap()
}

#[test]
fn a_disk_is_replicated_to_the_host_encrypted_and_only_changed_blocks_travel() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let (_running, pool) = running_host(tmp.path(), &sp);
    sp.ok(
        &[
            "sp",
            "plan",
            "add",
            "small",
            "--cpu",
            "2",
            "--memory",
            "1G",
            "--storage",
            "kvm1:100M",
        ],
        None,
    );
    sp.ok(&["sp", "plan", "subscribe", "small", "acme"], None);

    // A 64 MiB disk: 24 blocks of data, the rest empty.
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];
    let image = tmp.path().join("web.img");
    let mut disk = vec![0u8; 64 << 20];
    for b in 0..24 {
        let at = (b * 2) << 20;
        disk[at..at + (1 << 20)]
            .copy_from_slice(&cloudkeep_tests::pseudo_random(1 << 20, b as u64));
    }
    std::fs::write(&image, &disk).unwrap();
    let img = format!("sda={}", image.display());
    // A replica whose disks could never fit the plan, or that could never start, is refused.
    let big = tmp.path().join("big.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let err = laptop.run_with(
        &[
            "replica",
            "create",
            "big",
            "--plan",
            "small",
            "--disk",
            &big.display().to_string(),
        ],
        None,
        &file,
    );
    assert_eq!(
        err.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let err = laptop.run_with(
        &[
            "replica", "create", "fat", "--plan", "small", "--disk", &img, "--cpu", "3",
        ],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("plan small has 2 CPUs"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    let made = laptop.ok_with(
        &[
            "replica", "create", "web", "--plan", "small", "--disk", &img, "--memory", "256M",
            "--keep", "2", "--json",
        ],
        None,
        &file,
    );
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    assert_eq!(made["host"], "kvm1");
    assert_eq!(made["key_escrowed"], true);
    let dir = pool.join("replicas").join("acme").join("web");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the replica's folder is the host's alone"
        );
    }
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_owner_only(&e.path());
    }

    // First cycle: the 24 blocks of data travel, the empty ones do not.
    let first: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "web", "--json"], None, &file))
            .unwrap();
    assert_eq!(first["blocks"], 24);
    assert_eq!(first["point"]["bytes"], 24u64 << 20);
    let key = replica_key(&laptop, "acme-sp", "web");
    let out = tmp.path().join("check.raw");
    assert!(
        replica_disk(&dir, "sda", &key, &out) == disk,
        "the replica is the disk"
    );

    // Encrypted at rest: no block of the disk is in the host's files in the clear.
    let needle = &disk[2 << 20..(2 << 20) + 64];
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(
            !bytes.windows(64).any(|w| w == needle),
            "{} holds the disk's data in the clear",
            e.path().display()
        );
    }

    // Change two blocks (one rewritten, one emptied): only they travel.
    disk[5 << 20..(5 << 20) + 100].copy_from_slice(&[7u8; 100]);
    disk[10 << 20..11 << 20].fill(0);
    std::fs::write(&image, &disk).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "web", "--json"], None, &file))
            .unwrap();
    assert_eq!(second["blocks"], 2, "{second}");
    assert_eq!(
        second["point"]["bytes"],
        1u64 << 20,
        "a block emptied sends no data"
    );
    assert!(replica_disk(&dir, "sda", &key, &out) == disk);

    // Nothing changed: a point with nothing sent.
    let third: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "web", "--json"], None, &file))
            .unwrap();
    assert_eq!(third["blocks"], 0);
    // Two points kept: the oldest was merged into the base, the disk is still whole.
    let shown: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "show", "web", "--json"], None, &file))
            .unwrap();
    let ids: Vec<u64> = shown["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
    assert!(replica_disk(&dir, "sda", &key, &out) == disk);
    assert!(!dir.join("sda.p1.qcow2").exists());
    let plans = laptop.json(&["replica", "plans"]);
    assert!(plans[0]["used"]["storage"][0]["bytes"].as_u64().unwrap() > 24 << 20);

    // A disk that grew is refused; the points stay.
    let grown = std::fs::OpenOptions::new()
        .append(true)
        .open(&image)
        .unwrap();
    grown.set_len((64 << 20) + 4096).unwrap();
    let err = laptop.run_with(&["replica", "run", "web"], None, &file);
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("make a new replica"));
    grown.set_len(64 << 20).unwrap();
    let listed = laptop.ok_with(&["replica", "list"], None, &file);
    assert!(listed.contains("failed"), "{listed}");

    // The key: revoked, given back.
    let revoked = laptop.ok_with(&["replica", "revoke-key", "web"], None, &file);
    assert!(revoked.contains("only you can start it"), "{revoked}");
    let shown = laptop.ok_with(&["replica", "show", "web"], None, &file);
    assert!(shown.contains("on this computer only"), "{shown}");
    laptop.ok_with(&["replica", "escrow-key", "web"], None, &file);

    // Removed: its disks at the host go too, and the plan can be taken away.
    laptop.ok_with(&["replica", "delete", "web"], None, &file);
    assert!(!dir.exists());

    // A QEMU/KVM machine's qcow2 image, replicated on a schedule: the daemon runs a cycle
    // when one is due (a replica never sent: at once), and not again before its time; taken
    // off, cycles run only when asked. The replica is the image's disk (its virtual size, its
    // contents).
    let qcow2 = tmp.path().join("web.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&image)
        .arg(&qcow2)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert!(std::fs::metadata(&qcow2).unwrap().len() < disk.len() as u64);
    let q = format!("sda={}", qcow2.display());
    laptop.ok_with(
        &[
            "replica", "create", "web2", "--plan", "small", "--disk", &q, "--memory", "256M",
            "--every", "15m",
        ],
        None,
        &file,
    );
    let listed = laptop.ok_with(&["replica", "list"], None, &file);
    assert!(listed.contains("every 15 min"), "{listed}");
    let ran = laptop.ok_with(&["daemon", "--once"], None, &file);
    assert!(ran.contains("replica web2: point 1"), "{ran}");
    let web2 = pool.join("replicas").join("acme").join("web2");
    let key2 = replica_key(&laptop, "acme-sp", "web2");
    assert!(
        replica_disk(&web2, "sda", &key2, &tmp.path().join("check2.raw")) == disk,
        "the replica of the qcow2 image is its disk"
    );
    let err = laptop.run_with(
        &[
            "replica",
            "failback",
            "web2",
            "--onto",
            &qcow2.display().to_string(),
        ],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("is a qcow2 image"),
        "failback writes raw disks: {}",
        String::from_utf8_lossy(&err.stderr)
    );
    let again = laptop.ok_with(&["daemon", "--once"], None, &file);
    assert!(!again.contains("replica web2"), "not due yet: {again}");
    let err = laptop.run_with(
        &["replica", "schedule", "web2", "--every", "0s"],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("every 1 minute to 7 days"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let out = laptop.ok_with(&["replica", "schedule", "web2", "--manual"], None, &file);
    assert!(out.contains("run when asked"), "{out}");
    laptop.ok_with(&["replica", "delete", "web2"], None, &file);

    // A computer under an image-level job: the replica's disks are those the job images.
    image_job(&laptop, "machine", &image);
    let err = laptop.run_with(
        &[
            "replica",
            "create",
            "web3",
            "--plan",
            "small",
            "--from-job",
            "nosuch",
        ],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no backup job \"nosuch\""),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    laptop.ok_with(
        &[
            "replica",
            "create",
            "web3",
            "--plan",
            "small",
            "--from-job",
            "machine",
            "--memory",
            "256M",
        ],
        None,
        &file,
    );
    let first: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "web3", "--json"], None, &file))
            .unwrap();
    assert!(first["blocks"].as_u64().unwrap() > 0, "{first}");
    let web3 = pool.join("replicas").join("acme").join("web3");
    let key3 = replica_key(&laptop, "acme-sp", "web3");
    assert!(
        replica_disk(&web3, "disk0", &key3, &tmp.path().join("check3.raw")) == disk,
        "the replica is the job's disk"
    );
    laptop.ok_with(&["replica", "delete", "web3"], None, &file);

    sp.ok(&["sp", "plan", "unsubscribe", "small", "acme"], None);
}

/// Starts the SP's cloud host "kvm1" (plain emulation: KVM guests hang on some test machines)
/// with a pool, and waits until it reported; the host process and its pool.
fn running_host(tmp: &std::path::Path, sp: &Cli) -> (HostProcess, std::path::PathBuf) {
    let details = tmp.join("kvm1.txt");
    let d = details.display().to_string();
    sp.ok(&["sp", "host", "add", "kvm1", "--to", &d], None);
    let host = Cli {
        home: tmp.join("host-home"),
    };
    let pool = tmp.join("pool");
    let p = format!("main={}", pool.display());
    let log = tmp.join("host.log");
    let running = HostProcess(
        crate::support::start(
            std::process::Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
                .args([
                    "host",
                    "run",
                    "--connect",
                    &d,
                    "--pool",
                    &p,
                    "--listen",
                    "127.0.0.1:0",
                    "--accel",
                    "tcg",
                ])
                .env("CLOUDKEEP_HOME", &host.home)
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        ),
        log,
    );
    let started = std::time::Instant::now();
    while sp.json(&["sp", "host", "list"])[0]["seen_ms"].is_null() {
        assert!(started.elapsed().as_secs() < 60, "the host never reported");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    (running, pool)
}

/// Waits until the replica's console shows `needle`.
fn wait_console(laptop: &Cli, name: &str, needle: &str, env: &[(&str, &std::path::Path)]) {
    let started = std::time::Instant::now();
    loop {
        let console = laptop.ok_with(&["replica", "console", name], None, env);
        if console.contains(needle) {
            return;
        }
        assert!(
            started.elapsed().as_secs() < 180,
            "the replica never printed {needle}: {console}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[test]
fn a_replica_boots_at_the_host_within_its_plan_and_a_public_port_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let (_host, pool) = running_host(tmp.path(), &sp);
    sp.ok(
        &[
            "sp",
            "plan",
            "add",
            "small",
            "--cpu",
            "2",
            "--memory",
            "384M",
            "--storage",
            "kvm1:400M",
        ],
        None,
    );
    sp.ok(&["sp", "plan", "subscribe", "small", "acme"], None);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];

    // The test machine: it prints its marker on its serial console and serves it over HTTP.
    let image = tmp.path().join("web.img");
    cloudkeep_tests::bootdisk::build(&image, "marker-of-web-1");
    let img = format!("sda={}", image.display());
    for name in ["web", "db"] {
        laptop.ok_with(
            &[
                "replica", "create", name, "--plan", "small", "--disk", &img, "--memory", "256M",
            ],
            None,
            &file,
        );
    }
    laptop.ok_with(&["replica", "run", "web"], None, &file);

    // Test failover: the replica boots at the host, its marker shows, a public port reaches
    // its web server from the host's loopback.
    let port = free_address().rsplit_once(':').unwrap().1.to_owned();
    let rule = format!("{port}:80");
    let started = std::time::Instant::now();
    let out = laptop.ok_with(
        &["replica", "failover", "web", "--test", "--port", &rule],
        None,
        &file,
    );
    assert!(out.contains("test failover"), "{out}");
    wait_console(
        &laptop,
        "web",
        "CLOUDKEEP-TEST-MACHINE marker-of-web-1",
        &file,
    );
    eprintln!(
        "failover to the first marker: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let page = http_get(&format!("127.0.0.1:{port}"), "/");
    assert!(page.contains("marker-of-web-1"), "{page}");
    let dir = pool.join("replicas").join("acme").join("web");
    for file in ["console.log", "qemu.log", "run.json", "sda.run.qcow2"] {
        assert_owner_only(&dir.join(file));
    }

    // Replication goes on during a test failover.
    laptop.ok_with(&["replica", "run", "web"], None, &file);
    // A second replica does not fit what the plan has left while the first runs.
    laptop.ok_with(&["replica", "run", "db"], None, &file);
    let refused = laptop.run_with(&["replica", "failover", "db", "--test"], None, &file);
    assert_eq!(refused.status.code(), Some(5));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("plan small has 384 MiB of memory and running replicas use 256 MiB"),
        "{why}"
    );
    let listed = sp.ok(&["sp", "replica", "list"], None);
    assert!(
        listed.contains("web") && listed.contains("test"),
        "{listed}"
    );

    // Ended: the machine stops, what it wrote goes, the port closes.
    laptop.ok_with(&["replica", "undo", "web"], None, &file);
    assert!(!dir.join("run.json").exists() && !dir.join("sda.run.qcow2").exists());
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());

    // A failover pauses replication until it is undone.
    laptop.ok_with(&["replica", "failover", "web"], None, &file);
    let paused = laptop.run_with(&["replica", "run", "web"], None, &file);
    assert!(
        String::from_utf8_lossy(&paused.stderr).contains("replication waits"),
        "{:?} {} {}",
        paused.status,
        String::from_utf8_lossy(&paused.stdout),
        String::from_utf8_lossy(&paused.stderr)
    );
    laptop.ok_with(&["replica", "undo", "web"], None, &file);
    laptop.ok_with(&["replica", "run", "web"], None, &file);

    // The SP starts it on the tenant's behalf with the key it holds — not once revoked.
    let started = sp.ok(
        &["sp", "replica", "failover", "acme", "web", "--test"],
        None,
    );
    assert!(started.contains("test failover"), "{started}");
    laptop.ok_with(&["replica", "undo", "web"], None, &file);
    laptop.ok_with(&["replica", "revoke-key", "web"], None, &file);
    let err = sp.fails(
        &["sp", "replica", "failover", "acme", "web", "--test"],
        None,
        1,
    );
    assert!(err.contains("revoked the key"), "{err}");
    let audit = sp.ok(&["sp", "audit"], None);
    assert!(audit.contains("replica.test_failover"), "{audit}");

    // A tenant with replicas is deleted only with its data, and its replicas go from the host.
    let err = sp.fails(&["sp", "tenant", "delete", "acme"], None, 1);
    assert!(err.contains("replicas on your cloud hosts"), "{err}");
    assert!(dir.exists());
    sp.ok(
        &["sp", "tenant", "delete", "acme", "--with-data", "--yes"],
        None,
    );
    assert!(!pool.join("replicas").join("acme").join("web").exists());
    assert!(!pool.join("replicas").join("acme").join("db").exists());
}

/// The SP's hardware plan `name` (`args`: the rest of `sp plan add`), given to acme.
fn plan_for_acme(sp: &Cli, name: &str, args: &[&str]) {
    let mut all = vec!["sp", "plan", "add", name];
    all.extend_from_slice(args);
    sp.ok(&all, None);
    sp.ok(&["sp", "plan", "subscribe", name, "acme"], None);
}

/// Replica `name` of a new test machine printing `marker` (its disk in `dir`), made on `plan`
/// with `memory`, its first cycle run; the machine's disk.
fn test_machine_replica(
    laptop: &Cli,
    dir: &std::path::Path,
    plan: &str,
    name: &str,
    marker: &str,
    memory: &str,
) -> std::path::PathBuf {
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];
    let image = dir.join(format!("{name}.img"));
    cloudkeep_tests::bootdisk::build(&image, marker);
    let img = format!("sda={}", image.display());
    laptop.ok_with(
        &[
            "replica", "create", name, "--plan", plan, "--disk", &img, "--memory", memory,
        ],
        None,
        &file,
    );
    laptop.ok_with(&["replica", "run", name], None, &file);
    image
}

#[test]
fn a_failed_over_machine_is_failed_back_with_what_it_wrote_and_replication_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let (_host, pool) = running_host(tmp.path(), &sp);
    let plan = ["--cpu", "1", "--memory", "256M", "--storage", "kvm1:400M"];
    plan_for_acme(&sp, "small", &plan);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];
    let image = test_machine_replica(&laptop, tmp.path(), "small", "app", "marker-of-app", "256M");

    // Nothing to fail back yet; a test failover is never failed back.
    let err = laptop.run_with(&["replica", "failback", "app"], None, &file);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("not failed over"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    laptop.ok_with(&["replica", "failover", "app", "--test"], None, &file);
    let err = laptop.run_with(&["replica", "failback", "app"], None, &file);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("test failover"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    laptop.ok_with(&["replica", "undo", "app"], None, &file);

    // Failover; the machine at the provider changes its disk.
    let port = free_address().rsplit_once(':').unwrap().1.to_owned();
    let rule = format!("{port}:80");
    laptop.ok_with(
        &["replica", "failover", "app", "--port", &rule],
        None,
        &file,
    );
    wait_console(
        &laptop,
        "app",
        "CLOUDKEEP-TEST-MACHINE marker-of-app",
        &file,
    );
    let written = http_get(
        &format!("127.0.0.1:{port}"),
        "/cgi-bin/write?changed-at-the-provider",
    );
    assert!(
        written.contains("written changed-at-the-provider"),
        "{written}"
    );
    let at = cloudkeep_tests::bootdisk::DATA_OFFSET as usize;
    let text_at = |path: &std::path::Path| {
        let disk = std::fs::read(path).unwrap();
        String::from_utf8_lossy(&disk[at..at + 64])
            .trim_end_matches('\0')
            .to_owned()
    };
    assert_eq!(text_at(&image), "", "the machine here is not touched");
    let before = std::fs::read(&image).unwrap();

    // Failback: the machine there stops, its change comes back here, and only the blocks
    // that differ travel.
    let out = laptop.ok_with(&["replica", "failback", "app", "--json"], None, &file);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(text_at(&image), "changed-at-the-provider\n");
    let blocks = report["blocks"].as_u64().unwrap();
    assert!((1..=4).contains(&blocks), "{report}");
    let after = std::fs::read(&image).unwrap();
    let changed = before
        .chunks(1 << 20)
        .zip(after.chunks(1 << 20))
        .filter(|(a, b)| a != b)
        .count() as u64;
    assert_eq!(
        changed, blocks,
        "exactly the blocks that differ were written"
    );
    let dir = pool.join("replicas").join("acme").join("app");
    assert!(!dir.join("run.json").exists() && !dir.join("sda.run.qcow2").exists());
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    let shown: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "show", "app", "--json"], None, &file))
            .unwrap();
    assert!(shown["state"].is_null(), "{shown}");
    assert_eq!(shown["points"].as_array().unwrap().len(), 2, "{shown}");
    // The host's newest point is what the machine wrote.
    let key = replica_key(&laptop, "acme-sp", "app");
    let check = tmp.path().join("check.raw");
    assert!(replica_disk(&dir, "sda", &key, &check) == after);

    // Replication goes on from there: nothing to send.
    let next: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "app", "--json"], None, &file))
            .unwrap();
    assert_eq!(next["blocks"], 0, "{next}");

    // Again, onto a new machine: the whole disk comes to a new image, and replication reads
    // that one afterwards. The point booted holds the change.
    laptop.ok_with(&["replica", "failover", "app"], None, &file);
    wait_console(
        &laptop,
        "app",
        "CLOUDKEEP-TEST-DATA changed-at-the-provider",
        &file,
    );
    let fresh = tmp.path().join("new-machine.img");
    let f = fresh.display().to_string();
    let out = laptop.ok_with(&["replica", "failback", "app", "--onto", &f], None, &file);
    assert!(out.contains("failed back onto"), "{out}");
    assert!(std::fs::read(&fresh).unwrap() == after);
    std::fs::write(&image, b"the old machine is gone").unwrap();
    let next: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "run", "app", "--json"], None, &file))
            .unwrap();
    assert_eq!(
        next["blocks"], 0,
        "replication reads the new machine: {next}"
    );
    let listed = laptop.ok_with(&["replica", "list", "--json"], None, &file);
    assert!(listed.contains("new-machine.img"), "{listed}");

    // The site is lost: a bare machine booted from recovery media adopts the replica with
    // its key (exported beforehand, owner-only) and fails it back onto its own disk.
    let keyfile = tmp.path().join("app.key");
    let k = keyfile.display().to_string();
    laptop.ok_with(&["replica", "export-key", "app", "--to", &k], None, &file);
    assert_owner_only(&keyfile);
    laptop.ok_with(&["replica", "failover", "app"], None, &file);
    // A wrong key (well-formed) fails the failback, and from then on only a failback ends it:
    // an undo would mix what the host took with the disks here.
    let wrong = tmp.path().join("wrong.key");
    std::fs::write(&wrong, "ab".repeat(32)).unwrap();
    let w = wrong.display().to_string();
    let mistaken = tenant_at(tmp.path().join("mistaken-home"), &gw, &fp);
    mistaken.ok_with(&["replica", "adopt", "app", "--key-file", &w], None, &file);
    let scratch = tmp.path().join("scratch.img").display().to_string();
    let err = mistaken.run_with(
        &["replica", "failback", "app", "--onto", &scratch],
        None,
        &file,
    );
    assert!(!err.status.success(), "a wrong key fails the failback");
    let err = laptop.run_with(&["replica", "undo", "app"], None, &file);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("being failed back"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let rescue = tenant_at(tmp.path().join("rescue-home"), &gw, &fp);
    let bad = tmp.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let b = bad.display().to_string();
    let err = rescue.run_with(&["replica", "adopt", "app", "--key-file", &b], None, &file);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("not a replica key"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    rescue.ok_with(&["replica", "adopt", "app", "--key-file", &k], None, &file);
    let err = rescue.run_with(&["replica", "run", "app"], None, &file);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no disks on this computer yet"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let bare = tmp.path().join("bare-machine.img");
    let bare_text = bare.display().to_string();
    rescue.ok_with(
        &["replica", "failback", "app", "--onto", &bare_text],
        None,
        &file,
    );
    assert!(
        std::fs::read(&bare).unwrap() == after,
        "the bare machine has the disk"
    );
    let next: serde_json::Value =
        serde_json::from_str(&rescue.ok_with(&["replica", "run", "app", "--json"], None, &file))
            .unwrap();
    assert_eq!(
        next["blocks"], 0,
        "replication goes on from the bare machine: {next}"
    );
}

#[test]
fn a_failover_plan_starts_replicas_in_order_each_waiting_for_the_last_to_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let (_host, _pool) = running_host(tmp.path(), &sp);
    let plan = ["--cpu", "2", "--memory", "384M", "--storage", "kvm1:400M"];
    plan_for_acme(&sp, "site", &plan);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];
    for name in ["db", "web"] {
        let marker = format!("{name}-ready");
        test_machine_replica(&laptop, tmp.path(), "site", name, &marker, "192M");
    }

    // Plans are checked: replicas it names exist, each once, waits make sense.
    let err = laptop.run_with(
        &["failover-plan", "create", "bad", "--step", "nosuch"],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no replica \"nosuch\""),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    for (steps, why) in [
        (["db", "db"], "in the plan twice"),
        (["db@port:x", "web"], "is not a port"),
        (["db@disk:1", "web"], "port:N or marker:TEXT"),
    ] {
        let err = laptop.run_with(
            &[
                "failover-plan",
                "create",
                "bad",
                "--step",
                steps[0],
                "--step",
                steps[1],
            ],
            None,
            &file,
        );
        assert!(
            String::from_utf8_lossy(&err.stderr).contains(why),
            "{why}: {}",
            String::from_utf8_lossy(&err.stderr)
        );
    }

    // The database first, waited for by its console marker; then the web server, waited for
    // by its port 80, reached through a public port.
    let port = free_address().rsplit_once(':').unwrap().1.to_owned();
    let rule = format!("web={port}:80");
    laptop.ok_with(
        &[
            "failover-plan",
            "create",
            "site",
            "--step",
            "db@marker:CLOUDKEEP-TEST-MACHINE db-ready",
            "--step",
            "web@port:80",
            "--port",
            &rule,
            "--timeout",
            "4m",
        ],
        None,
        &file,
    );
    let out = laptop.ok_with(&["failover-plan", "run", "site", "--test"], None, &file);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in: {out}"))
    };
    assert!(at("step 1: starting replica db") < at("step 1: replica db answered"));
    assert!(
        at("step 1: replica db answered") < at("step 2: starting replica web"),
        "web starts only once db answered: {out}"
    );
    assert!(at("step 2: replica web answered") > 0);
    let console = laptop.ok_with(&["replica", "console", "db"], None, &file);
    assert!(console.contains("db-ready"), "{console}");
    let page = http_get(&format!("127.0.0.1:{port}"), "/");
    assert!(page.contains("web-ready"), "{page}");
    let shown = laptop.ok_with(&["failover-plan", "show", "site"], None, &file);
    assert!(shown.contains("every replica answered"), "{shown}");

    // Undone in reverse order.
    let out = laptop.ok_with(&["failover-plan", "undo", "site"], None, &file);
    assert!(out.contains("web, db"), "{out}");
    for name in ["db", "web"] {
        let shown: serde_json::Value = serde_json::from_str(&laptop.ok_with(
            &["replica", "show", name, "--json"],
            None,
            &file,
        ))
        .unwrap();
        assert!(shown["state"].is_null(), "{shown}");
    }

    // A step that never answers stops the plan there, saying which and why; later steps do
    // not start.
    laptop.ok_with(
        &[
            "failover-plan",
            "create",
            "broken",
            "--step",
            "db@port:22",
            "--step",
            "web",
            "--timeout",
            "20s",
        ],
        None,
        &file,
    );
    let failed = laptop.run_with(&["failover-plan", "run", "broken", "--test"], None, &file);
    assert!(!failed.status.success());
    let why = String::from_utf8_lossy(&failed.stderr);
    assert!(
        why.contains("step 1: replica db started but did not answer in 20 s"),
        "{why}"
    );
    let web: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "show", "web", "--json"], None, &file))
            .unwrap();
    assert!(web["state"].is_null(), "web never started: {web}");
    let out = laptop.ok_with(&["failover-plan", "undo", "broken"], None, &file);
    assert!(out.contains("db"), "{out}");
    laptop.ok_with(&["failover-plan", "delete", "broken"], None, &file);
    let listed = laptop.ok_with(&["failover-plan", "list"], None, &file);
    assert!(
        listed.contains("db → web") && !listed.contains("broken"),
        "{listed}"
    );
}

/// A network namespace standing for one of the tenant's sites: a bridge with `address`/24 (a
/// machine still at the site); removed with everything in it when dropped.
struct Site(String);

impl Site {
    fn new(tag: &str, address: &str) -> Self {
        let name = format!("ck-{tag}-{}", std::process::id());
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let site = Self(name);
        site.ip(&["netns", "add", &site.0]);
        for args in [
            &["link", "add", "br0", "type", "bridge"][..],
            &["addr", "add", &format!("{address}/24"), "dev", "br0"],
            &["link", "set", "br0", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut all = vec!["-n", site.0.as_str()];
            all.extend_from_slice(args);
            site.ip(&all);
        }
        site
    }

    fn ip(&self, args: &[&str]) {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A network extension appliance of `laptop` on the plan's network 0, its interface
    /// `iface` bridged into this site; it writes to `log`.
    fn appliance(&self, laptop: &Cli, iface: &str, log_at: &std::path::Path) -> HostProcess {
        let log = std::fs::File::create(log_at).unwrap();
        let nea = HostProcess(
            start(
                std::process::Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
                    .args(["nea", "run", "--plan", "site", "--interface", iface])
                    .env("CLOUDKEEP_HOME", &laptop.home)
                    .env("CLOUDKEEP_SECRETS", "file")
                    .stdin(std::process::Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log),
            ),
            log_at.to_path_buf(),
        );
        let started = std::time::Instant::now();
        while !std::process::Command::new("ip")
            .args(["link", "show", iface])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                started.elapsed().as_secs() < 30,
                "the appliance made no interface"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        self.ip(&["link", "set", iface, "netns", &self.0]);
        self.ip(&["-n", &self.0, "link", "set", iface, "master", "br0"]);
        self.ip(&["-n", &self.0, "link", "set", iface, "up"]);
        nea
    }

    /// Whether `address` answers a ping from the site within 2 s.
    fn ping(&self, address: &str) -> bool {
        std::process::Command::new("ip")
            .args([
                "netns", "exec", &self.0, "ping", "-c", "1", "-W", "2", address,
            ])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// `GET http://ADDRESS/` from the site (curl), if it answers within 3 s.
    fn get(&self, address: &str) -> Option<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "curl", "-s", "-m", "3"])
            .arg(format!("http://{address}/"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn a_replica_on_the_tenants_network_keeps_its_address_at_the_site_through_the_appliance() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: network namespaces and TAP interfaces need root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let (_host, _pool) = running_host(tmp.path(), &sp);
    let plan = [
        "--cpu",
        "1",
        "--memory",
        "256M",
        "--storage",
        "kvm1:400M",
        "--networks",
        "1",
    ];
    plan_for_acme(&sp, "site", &plan);
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let file = [("CLOUDKEEP_SECRETS", std::path::Path::new("file"))];
    // The machine is a libvirt domain: its definition gives the replica its disk, CPUs,
    // memory and MAC address.
    let image = tmp.path().join("web.img");
    cloudkeep_tests::bootdisk::build(&image, "web-at-the-site");
    let domain = tmp.path().join("web.xml");
    std::fs::write(
        &domain,
        format!(
            "<domain type='kvm'><name>web</name><memory unit='MiB'>192</memory><vcpu>1</vcpu>\
             <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk>\
             <interface type='network'><mac address='52:54:00:12:34:56'/></interface>\
             </devices></domain>",
            image.display()
        ),
    )
    .unwrap();
    let d = domain.display().to_string();
    laptop.ok_with(
        &[
            "replica",
            "create",
            "web",
            "--plan",
            "site",
            "--libvirt",
            &d,
        ],
        None,
        &file,
    );
    let made: serde_json::Value =
        serde_json::from_str(&laptop.ok_with(&["replica", "show", "web", "--json"], None, &file))
            .unwrap();
    let spec = &made["spec"];
    assert_eq!(
        (
            &spec["cpu"],
            &spec["memory"],
            &spec["disks"][0]["name"],
            &spec["mac"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(192u64 << 20),
            &serde_json::json!("vda"),
            &serde_json::json!("52:54:00:12:34:56")
        ),
        "{made}"
    );
    laptop.ok_with(&["replica", "run", "web"], None, &file);

    // What the plan does not have is refused: a network past its count, for the replica and
    // for the appliance, and public ports on the tenant's own network.
    let err = laptop.run_with(
        &["replica", "failover", "web", "--network", "1"],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("has 1 networks: give network 0 to 0"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let err = laptop.run_with(
        &[
            "replica",
            "failover",
            "web",
            "--network",
            "0",
            "--port",
            "2000:80",
        ],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("public address rules"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let iface = format!("ckn{}", std::process::id() % 100_000);
    let err = laptop.run_with(
        &[
            "nea",
            "run",
            "--plan",
            "site",
            "--network",
            "4",
            "--interface",
            &iface,
        ],
        None,
        &file,
    );
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("give network 0 to 0"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    // The site, and the appliance bridged into it.
    let site = Site::new("site", "10.0.2.20");
    let _nea = site.appliance(&laptop, &iface, &tmp.path().join("nea.log"));
    // A second site with its own appliance: the two reach each other through the provider's
    // network.
    let branch = Site::new("branch", "10.0.2.21");
    let iface2 = format!("ckb{}", std::process::id() % 100_000);
    let _nea2 = branch.appliance(&laptop, &iface2, &tmp.path().join("nea2.log"));
    let started = std::time::Instant::now();
    while !site.ping("10.0.2.21") {
        assert!(
            started.elapsed().as_secs() < 60,
            "the two sites never reached each other: {} / {}",
            std::fs::read_to_string(tmp.path().join("nea.log")).unwrap_or_default(),
            std::fs::read_to_string(tmp.path().join("nea2.log")).unwrap_or_default()
        );
    }

    // Failover onto the tenant's network: the site reaches the replica at the machine's own
    // address (10.0.2.15), through the appliance, the gateway and the host.
    laptop.ok_with(
        &["replica", "failover", "web", "--network", "0"],
        None,
        &file,
    );
    wait_console(
        &laptop,
        "web",
        "CLOUDKEEP-TEST-MACHINE web-at-the-site",
        &file,
    );
    let started = std::time::Instant::now();
    let page = loop {
        if let Some(page) = site.get("10.0.2.15") {
            break page;
        }
        if started.elapsed().as_secs() >= 120 {
            let links = std::process::Command::new("ip")
                .args(["-n", &site.0, "-s", "link"])
                .output()
                .unwrap();
            let neigh = std::process::Command::new("ip")
                .args(["-n", &site.0, "neigh"])
                .output()
                .unwrap();
            panic!(
                "the site never reached the replica; the appliance said: {}\n{}\n{}",
                std::fs::read_to_string(tmp.path().join("nea.log")).unwrap_or_default(),
                String::from_utf8_lossy(&links.stdout),
                String::from_utf8_lossy(&neigh.stdout),
            );
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    assert!(page.contains("web-at-the-site"), "{page}");
    // The machine kept its MAC address: the site's neighbour table has it.
    let neigh = std::process::Command::new("ip")
        .args(["-n", &site.0, "neigh", "show", "10.0.2.15"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&neigh.stdout).contains("52:54:00:12:34:56"),
        "{}",
        String::from_utf8_lossy(&neigh.stdout)
    );
    let said = std::fs::read_to_string(tmp.path().join("nea.log")).unwrap();
    assert!(
        said.contains("joined network 0 of hardware plan site"),
        "{said}"
    );
    laptop.ok_with(&["replica", "undo", "web"], None, &file);

    // A test failover on the same network is a copy the site never reaches.
    laptop.ok_with(
        &["replica", "failover", "web", "--test", "--network", "0"],
        None,
        &file,
    );
    wait_console(
        &laptop,
        "web",
        "CLOUDKEEP-TEST-MACHINE web-at-the-site",
        &file,
    );
    for _ in 0..3 {
        assert_eq!(site.get("10.0.2.15"), None, "the test copy is isolated");
    }
    laptop.ok_with(&["replica", "undo", "web"], None, &file);
}
