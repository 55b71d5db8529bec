//! `cloudkeep gateway …` and `cloudkeep sp …` as an SP runs them: a real gateway process on
//! loopback with real TLS, administered through the real CLI, on SQLite and on PostgreSQL.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{
    ADMIN_PW, Cli, Gateway, fingerprint_in, gateway_with_tenant, stop, stopped_cleanly, tenant_at,
    tenant_with_provider,
};

/// A CA and a leaf for 127.0.0.1 signed by it, as PEM files.
fn ca_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let ca = cloudkeep_tests::tls::TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "gateway.test");
    let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&chain, &leaf.chain).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(&key, &leaf.key).unwrap();
    // Its renewal by the same CA (a new key, a new certificate): renewed.pem, renewed-key.pem.
    let renewed = ca.leaf(&["127.0.0.1"], "gateway.test");
    std::fs::write(dir.join("renewed.pem"), &renewed.chain).unwrap();
    std::fs::write(dir.join("renewed-key.pem"), &renewed.key).unwrap();
    (chain, key)
}

/// `sp cert import --chain CHAIN --key KEY`.
fn cert_import<'a>(chain: &'a Path, key: &'a Path) -> [&'a str; 7] {
    [
        "sp",
        "cert",
        "import",
        "--chain",
        chain.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]
}

fn sp_workflow(db: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gw");
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let d = data.display().to_string();

    // init: config, database, admin, certificate; the fingerprint printed is the one served.
    let mut init = vec![
        "gateway",
        "init",
        "--data-dir",
        &d,
        "--hostname",
        "127.0.0.1",
        "--admin-password-stdin",
    ];
    if let Some(url) = db {
        init.extend(["--db", url]);
    }
    let printed = fingerprint_in(&cli.ok(&init, Some(ADMIN_PW)));
    let again = cli.fails(&init, Some(ADMIN_PW), 1);
    assert!(again.contains("already holds a gateway"), "{again}");
    let mut gw = Gateway::start(&data);
    assert_eq!(gw.fingerprint, printed);
    let addr = gw.addr.clone();

    // TLS 1.3 only, HTTP/2 and HTTP/1.1, hello without login: checked with curl, so where
    // curl runs (the Linux run; the same gateway code is what runs under Wine).
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                "-o",
                "-",
                "-w",
                "\n%{http_version}",
            ])
            .args(extra)
            .arg(format!("https://{addr}/v1/hello"))
            .output()
            .unwrap()
    };
    if cfg!(unix) {
        let h2 = curl(&["--http2"]);
        let text = String::from_utf8_lossy(&h2.stdout);
        assert!(text.ends_with("\n2"), "HTTP/2 by ALPN: {text}");
        let hello: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(hello["product"], "Cloudkeep");
        assert_eq!(hello["protocols"], serde_json::json!([1]));
        assert_eq!(hello["gateways"][0]["address"], gw.addr.as_str());
        assert!(String::from_utf8_lossy(&curl(&["--http1.1"]).stdout).ends_with("\n1.1"));
        assert!(
            !curl(&["--tlsv1.2", "--tls-max", "1.2"]).status.success(),
            "TLS 1.2 is refused"
        );
    }

    // Login: untrusted certificate → exit 3 with the fingerprint; wrong password → 4.
    let login = [
        "sp",
        "login",
        "--gateway",
        &addr,
        "--user",
        "admin",
        "--password-stdin",
    ];
    let untrusted = cli.fails(&login, Some(ADMIN_PW), 3);
    assert!(
        untrusted.contains(&printed) && untrusted.contains("--trust"),
        "{untrusted}"
    );
    let mut trusted = login.to_vec();
    trusted.extend(["--trust", &printed]);
    cli.fails(&trusted, Some("wrong-password"), 4);
    let mut wrong_fp = login.to_vec();
    let bogus = printed.replace(&printed[..2], "00");
    wrong_fp.extend(["--trust", &bogus]);
    let wrong = cli.fails(&wrong_fp, Some(ADMIN_PW), 3);
    assert!(wrong.contains("does not match"), "{wrong}");
    assert!(cli.ok(&trusted, Some(ADMIN_PW)).contains("pinned"));

    // Repositories and tenants.
    let repo_dir = tmp.path().join("storage/main").display().to_string();
    cli.ok(&["sp", "repo", "add", "main", "--path", &repo_dir], None);
    assert!(
        cli.fails(&["sp", "repo", "add", "main", "--path", &repo_dir], None, 1)
            .contains("already exists")
    );
    assert_eq!(cli.json(&["sp", "repo", "list"])[0]["name"], "main");
    let acme = cli.json_with(
        &[
            "sp",
            "tenant",
            "add",
            "acme",
            "--password-stdin",
            "--quota",
            "main=1G:Cloud",
            "--lease-until",
            "2030-01-01",
            "--max-tasks",
            "2",
            "--throttle",
            "100Mbit",
            "--keep-deleted-days",
            "7",
            "--description",
            "ACME Corp",
        ],
        Some("tenant-password-1"),
    );
    assert_eq!(acme["tenant"]["login"], "acme");
    assert_eq!(acme["tenant"]["settings"]["bandwidth_bps"], 12_500_000);
    assert_eq!(acme["tenant"]["settings"]["max_tasks"], 2);
    assert_eq!(acme["quotas"][0]["friendly_name"], "Cloud");
    assert_eq!(acme["quotas"][0]["quota_bytes"], 1i64 << 30);
    let sub = cli.json(&[
        "sp",
        "tenant",
        "add",
        "acme/laptop-1",
        "--quota",
        "main=unlimited",
        "--disabled",
    ]);
    assert_eq!(sub["tenant"]["login"], "acme/laptop-1");
    assert_eq!(sub["tenant"]["settings"]["enabled"], false);
    assert!(
        cli.fails(
            &["sp", "tenant", "add", "acme", "--quota", "main=1G"],
            None,
            1
        )
        .contains("already exists")
    );
    assert!(
        cli.fails(
            &["sp", "tenant", "add", "zed", "--quota", "nope=1G"],
            None,
            1
        )
        .contains("does not exist")
    );
    let list = cli.ok(&["sp", "tenant", "list"], None);
    assert!(
        list.contains("acme/laptop-1") && list.contains("2030-01-01"),
        "{list}"
    );
    cli.ok(
        &[
            "sp",
            "tenant",
            "set",
            "acme",
            "--quota",
            "main=2G:Cloud",
            "--max-tasks",
            "3",
        ],
        None,
    );
    let shown = cli.json(&["sp", "tenant", "show", "acme"]);
    assert_eq!(shown["quotas"][0]["quota_bytes"], 2i64 << 30);
    assert_eq!(shown["tenant"]["settings"]["max_tasks"], 3);
    assert_eq!(
        shown["tenant"]["settings"]["description"], "ACME Corp",
        "unchanged settings stay"
    );
    cli.ok(&["sp", "tenant", "disable", "acme"], None);
    assert_eq!(
        cli.json(&["sp", "tenant", "show", "acme"])["tenant"]["settings"]["enabled"],
        false
    );
    cli.ok(&["sp", "tenant", "enable", "acme"], None);
    let csv = cli.ok(&["sp", "usage", "--csv"], None);
    assert!(
        csv.starts_with(
            "tenant,repository,name,quota_bytes,used_bytes,recycle_bin_bytes,reclaimable_bytes,restore_points"
        ),
        "{csv}"
    );
    assert!(csv.contains("acme,main,Cloud,2147483648,0,0,0"), "{csv}");
    assert!(
        cli.fails(&["sp", "tenant", "show", "nobody"], None, 1)
            .contains("no tenant")
    );

    // Maintenance mode shows in hello.
    cli.ok(
        &[
            "sp",
            "maintenance",
            "on",
            "--message",
            "storage upgrade until 14:00",
        ],
        None,
    );
    if cfg!(unix) {
        let hello = curl(&[]);
        assert!(String::from_utf8_lossy(&hello.stdout).contains("storage upgrade until 14:00"));
    }
    assert!(
        cli.ok(&["sp", "maintenance", "show"], None)
            .contains("is on")
    );
    cli.ok(&["sp", "maintenance", "off"], None);

    // The gateway list and the audit log.
    let gateways = cli.json(&["sp", "gateways"]);
    assert_eq!(gateways.as_array().unwrap().len(), 1);
    let audit = cli.ok(&["sp", "audit"], None);
    for action in [
        "repo.add",
        "tenant.create",
        "tenant.quota",
        "tenant.disable",
        "tenant.enable",
        "maintenance.on",
        "maintenance.off",
    ] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }

    // A new self-signed certificate is served at once, without a restart; the pinned
    // client refuses it, naming both fingerprints, until trusted again.
    let other_admin = Cli {
        home: tmp.path().join("other-home"),
    };
    std::fs::create_dir_all(&other_admin.home).unwrap();
    std::fs::copy(
        cli.home.join("sp-session.json"),
        other_admin.home.join("sp-session.json"),
    )
    .unwrap();
    let generated = cli.ok(&["sp", "cert", "generate", "--hostname", "127.0.0.1"], None);
    let new_fp = fingerprint_in(&generated);
    assert_ne!(new_fp, printed);
    cli.ok(&["sp", "tenant", "list"], None);
    let changed = other_admin.fails(&["sp", "tenant", "list"], None, 3);
    assert!(
        changed.contains(&printed) && changed.contains(&new_fp),
        "{changed}"
    );
    let mut retrust = login.to_vec();
    retrust.extend(["--trust", &new_fp]);
    other_admin.ok(&retrust, Some(ADMIN_PW));

    // A CA-signed chain imported through the admin API.
    let (chain, key) = ca_signed(tmp.path());
    let imported = cli.ok(&cert_import(&chain, &key), None);
    assert!(imported.contains("Cloudkeep Test CA"), "{imported}");
    let ca_fp = fingerprint_in(&imported);
    let probe = other_admin.fails(&login, Some(ADMIN_PW), 3);
    assert!(
        probe.contains(&ca_fp) && probe.contains("issued by CN=Cloudkeep Test CA"),
        "{probe}"
    );
    // A key that does not match is refused, and the served certificate stays.
    let (_, other_key) = ca_signed(&tmp.path().join("other").tap_mkdir());
    let bad = cli.fails(&cert_import(&chain, &other_key), None, 1);
    assert!(bad.contains("does not belong"), "{bad}");

    // Other SP admins: added, listed, their password set (their sessions end), removed —
    // never oneself, never the last.
    cli.ok(
        &["sp", "admin", "add", "ops", "--password-stdin"],
        Some("ops-password-123"),
    );
    let admins = cli.json(&["sp", "admin", "list"]);
    assert_eq!(admins.as_array().unwrap().len(), 2, "{admins}");
    let ops = Cli {
        home: tmp.path().join("ops-home"),
    };
    let ops_login = [
        "sp",
        "login",
        "--gateway",
        &addr,
        "--user",
        "ops",
        "--password-stdin",
        "--trust",
        &ca_fp,
    ];
    ops.ok(&ops_login, Some("ops-password-123"));
    ops.ok(&["sp", "tenant", "list"], None);
    let self_removal = cli.fails(&["sp", "admin", "remove", "admin"], None, 1);
    assert!(
        self_removal.contains("cannot remove yourself"),
        "{self_removal}"
    );
    cli.ok(
        &["sp", "admin", "password", "ops", "--password-stdin"],
        Some("ops-password-456"),
    );
    ops.fails(&["sp", "tenant", "list"], None, 4);
    ops.ok(&ops_login, Some("ops-password-456"));
    // ops removes admin: the last one left cannot go.
    ops.ok(&["sp", "admin", "remove", "admin"], None);
    cli.fails(&["sp", "tenant", "list"], None, 4);
    let last = ops.fails(&["sp", "admin", "remove", "ops"], None, 1);
    assert!(last.contains("cannot remove yourself"), "{last}");
    let audit = ops.ok(&["sp", "audit"], None);
    assert!(
        audit.contains("admin.remove") && audit.contains("admin.add"),
        "{audit}"
    );
    ops.ok(
        &["sp", "admin", "add", "admin", "--password-stdin"],
        Some(ADMIN_PW),
    );
    cli.ok(&login_trusting(&addr, &ca_fp), Some(ADMIN_PW));

    // Deleting a tenant (with data) takes its subtenants.
    cli.ok(
        &["sp", "tenant", "delete", "acme", "--with-data", "--yes"],
        None,
    );
    assert!(
        cli.json(&["sp", "tenant", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Graceful stop on SIGTERM.
    let status = gw.terminate();
    assert!(stopped_cleanly(status), "{status:?}");
}

/// `sp login --gateway ADDR --user admin --password-stdin --trust FP`.
fn login_trusting<'a>(addr: &'a str, fp: &'a str) -> [&'a str; 9] {
    [
        "sp",
        "login",
        "--gateway",
        addr,
        "--user",
        "admin",
        "--password-stdin",
        "--trust",
        fp,
    ]
}

trait TapMkdir {
    fn tap_mkdir(self) -> PathBuf;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn an_sp_runs_a_gateway_on_sqlite() {
    sp_workflow(None);
}

// PostgreSQL is started from Debian's own binaries (initdb, pg_ctl) on the Linux test host.
#[cfg(unix)]
#[test]
fn an_sp_runs_a_gateway_on_postgres() {
    let (_server, url) = cloudkeep_tests::postgres::fresh_database();
    sp_workflow(Some(&url));
}

#[test]
fn the_gateway_refuses_root_unless_told_and_explains_missing_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let missing = tmp.path().join("nothing").display().to_string();
    let err = cli.fails(
        &["gateway", "run", "--data-dir", &missing, "--allow-root"],
        None,
        1,
    );
    assert!(
        err.contains("holds no gateway") && err.contains("gateway init"),
        "{err}"
    );
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if cfg!(unix) && is_root {
        let err = cli.fails(&["gateway", "run", "--data-dir", &missing], None, 1);
        assert!(err.contains("refuses to run as root"), "{err}");
    }
    let err = cli.fails(&["sp", "tenant", "list"], None, 4);
    assert!(err.contains("sp login"), "{err}");
}

/// A gateway whose certificate a CA signed: a tenant whose computer trusts that CA adds it
/// without being asked (and pins it); one whose computer does not is asked as for a
/// self-signed one, with the reason.
#[test]
fn a_ca_signed_gateway_is_trusted_and_pinned_without_asking() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, _) = gateway_with_tenant(tmp.path());
    let (chain, key) = ca_signed(tmp.path());
    let ca_fp = fingerprint_in(&sp.ok(&cert_import(&chain, &key), None));
    let add = |home: &str, roots: &Path| {
        Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(["provider", "add", "acme-sp", "--host", &gw.addr])
            .args(["--user", "acme", "--password-stdin", "--json"])
            .env("CLOUDKEEP_HOME", tmp.path().join(home))
            .env("SSL_CERT_FILE", roots)
            .env_remove("SSL_CERT_DIR")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                writeln!(child.stdin.take().unwrap(), "tenant-password")?;
                child.wait_with_output()
            })
            .unwrap()
    };

    // This computer's roots (the public ones) do not include the test CA: asked, with the
    // reason.
    let refused = add(
        "untrusting",
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&ca_fp) && stderr.contains("not issued by a certificate authority"),
        "{stderr}"
    );

    // It does: trusted and pinned at once.
    let added = add("trusting", &tmp.path().join("ca.pem"));
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(shown["fingerprint"], ca_fp.as_str());
    assert_eq!(shown["repos"][0]["name"], "Cloud");

    // A routine renewal by the CA: followed by itself (the pin changes, and it says so).
    let renewed_fp = fingerprint_in(&sp.ok(
        &cert_import(
            &tmp.path().join("renewed.pem"),
            &tmp.path().join("renewed-key.pem"),
        ),
        None,
    ));
    assert_ne!(renewed_fp, ca_fp);
    let rescan = crate::support::output(
        Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(["provider", "rescan", "acme-sp"])
            .env("CLOUDKEEP_HOME", tmp.path().join("trusting"))
            .env("SSL_CERT_FILE", tmp.path().join("ca.pem"))
            .env_remove("SSL_CERT_DIR")
            .env_remove("RUST_LOG"),
    );
    let out = String::from_utf8_lossy(&rescan.stdout);
    assert!(
        rescan.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&rescan.stderr)
    );
    assert!(
        out.contains(&renewed_fp) && out.contains("a CA-signed renewal"),
        "{out}"
    );
}

/// A tenant adds its service provider through the trust step, sees its repositories, is refused
/// with both fingerprints after the SP replaces its certificate until it trusts the new one,
/// and gets clear exit codes for a wrong password, an expired lease and a disabled account.
/// A new tenant's connection details: printed once with the generated password, saved
/// owner-only for handing over, and enough for the tenant to add its provider.
#[test]
fn a_new_tenants_connection_details_are_handed_over_and_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let file = tmp.path().join("globex-handoff.txt");
    let f = file.display().to_string();
    let out = sp.ok(
        &[
            "sp",
            "tenant",
            "add",
            "globex",
            "--quota",
            "main=1G",
            "--handoff",
            &f,
        ],
        None,
    );
    assert!(
        out.contains(&format!("Gateway address: {}", gw.addr)),
        "{out}"
    );
    assert!(
        out.contains(&fp),
        "the fingerprint served is printed: {out}"
    );
    assert!(out.contains("shown once"), "{out}");
    // The file holds a password: owner only.
    #[cfg(unix)]
    crate::support::assert_owner_only(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    let details = cloudkeep_api::handoff::Handoff::parse(&text).expect("the file reads back");
    assert_eq!(details.addresses, std::slice::from_ref(&gw.addr));
    assert_eq!(details.user, "globex");
    let password = details
        .password
        .clone()
        .expect("the generated password is in the file");
    assert!(
        out.contains(&password),
        "the same password was printed once"
    );
    // The tenant adds its provider with exactly what it was handed.
    let tenant = Cli {
        home: tmp.path().join("globex-home"),
    };
    tenant.ok(
        &[
            "provider",
            "add",
            "sp",
            "--host",
            &details.addresses[0],
            "--user",
            &details.user,
            "--trust",
            &details.fingerprint,
            "--password-stdin",
        ],
        Some(&password),
    );
    // Later, the SP hands the details again: never the password, which it cannot read back.
    let again = sp.json(&["sp", "tenant", "handoff", "globex"]);
    assert_eq!(again["user"], "globex");
    assert!(again.get("password").is_none(), "{again}");
    let text = sp.ok(&["sp", "tenant", "handoff", "globex"], None);
    assert!(text.contains("given to you separately"), "{text}");
    let unknown = sp.fails(&["sp", "tenant", "handoff", "nobody"], None, 1);
    assert!(unknown.contains("nobody"), "{unknown}");
}

#[test]
fn a_tenant_adds_its_provider_with_the_trust_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let addr = gw.addr.clone();
    let tenant = Cli {
        home: tmp.path().join("tenant-home"),
    };

    let add = [
        "provider",
        "add",
        "acme-sp",
        "--host",
        &addr,
        "--user",
        "acme",
        "--password-stdin",
    ];
    let untrusted = tenant.fails(&add, Some("tenant-password"), 3);
    assert!(
        untrusted.contains(&fp) && untrusted.contains("issued by"),
        "{untrusted}"
    );
    let mut wrong = add.to_vec();
    let bogus = format!("00{}", &fp[2..]);
    wrong.extend(["--trust", &bogus]);
    assert!(
        tenant
            .fails(&wrong, Some("tenant-password"), 3)
            .contains("does not match")
    );
    let mut right = add.to_vec();
    right.extend(["--trust", &fp]);
    tenant.fails(&right, Some("not-the-password"), 4);
    let added = tenant.ok(&right, Some("tenant-password"));
    assert!(
        added.contains("Cloud") && added.contains("1.0 GiB") && added.contains("2031-12-31"),
        "{added}"
    );
    assert!(
        tenant
            .fails(&right, Some("tenant-password"), 1)
            .contains("already exists")
    );
    let shown = tenant.json(&["provider", "show", "acme-sp"]);
    assert_eq!(shown["addresses"][0], addr.as_str());
    assert_eq!(shown["fingerprint"], fp.as_str());
    assert_eq!(shown["repos"][0]["quota_bytes"], 1i64 << 30);
    assert!(tenant.ok(&["repo", "list"], None).contains("Cloud"));
    // Kept for later runs: in the owner-only file where no keyring answers (this Linux
    // test machine), in the Credential Manager on Windows (Wine has one), never in both.
    let secrets = std::fs::read_to_string(tenant.home.join("secrets.json")).unwrap_or_default();
    assert_eq!(
        secrets.contains("tenant-password"),
        cfg!(unix),
        "the password is kept for later runs, where the platform keeps secrets"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tenant.home.join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "secrets are owner-only");
    }

    // Subtenants carved from the tenant's quota.
    let sub = tenant.json(&[
        "subtenant",
        "add",
        "laptop-1",
        "--repo",
        "Cloud",
        "--quota",
        "300M",
    ]);
    assert_eq!(sub["tenant"]["login"], "acme/laptop-1");
    assert_eq!(sub["quotas"][0]["quota_bytes"], 300i64 << 20);
    let too_big = tenant.fails(&["subtenant", "set", "laptop-1", "--quota", "2G"], None, 5);
    assert!(too_big.contains("does not fit"), "{too_big}");
    tenant.ok(
        &[
            "subtenant",
            "set",
            "laptop-1",
            "--quota",
            "500M",
            "--disable",
        ],
        None,
    );
    let listed = tenant.ok(&["subtenant", "list"], None);
    assert!(
        listed.contains("acme/laptop-1")
            && listed.contains("disabled")
            && listed.contains("500.0 MiB"),
        "{listed}"
    );
    let seen_by_sp = sp.json(&["sp", "tenant", "show", "acme/laptop-1"]);
    assert_eq!(
        seen_by_sp["tenant"]["settings"]["enabled"], false,
        "the SP sees the same"
    );
    tenant.ok(&["subtenant", "delete", "laptop-1"], None);
    assert_eq!(tenant.json(&["subtenant", "list"]), serde_json::json!([]));

    // The SP replaces its certificate: every call is refused until the tenant trusts it.
    let new_fp =
        fingerprint_in(&sp.ok(&["sp", "cert", "generate", "--hostname", "127.0.0.1"], None));
    let changed = tenant.fails(&["provider", "rescan", "acme-sp"], None, 3);
    assert!(
        changed.contains(&fp)
            && changed.contains(&new_fp)
            && changed.contains("\nto fix: cloudkeep provider trust acme-sp --fingerprint"),
        "{changed}"
    );
    tenant.fails(&["repo", "list"], None, 3);
    tenant.fails(
        &["provider", "trust", "acme-sp", "--fingerprint", &fp],
        None,
        3,
    );
    tenant.ok(
        &["provider", "trust", "acme-sp", "--fingerprint", &new_fp],
        None,
    );
    tenant.ok(&["provider", "rescan", "acme-sp"], None);

    // Lease and account state reach the tenant as clear errors and exit codes. A lease that
    // ended yesterday still lets the tenant restore (the SP's grace period), not back up.
    assert!(
        sp.ok(&["sp", "settings", "--lease-grace-days", "10"], None)
            .contains("for 10 days")
    );
    assert_eq!(sp.json(&["sp", "settings"])["lease_grace_days"], 10);
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    sp.ok(
        &["sp", "tenant", "set", "acme", "--lease-until", &yesterday],
        None,
    );
    let listed = tenant.ok(&["repo", "list"], None);
    assert!(
        listed.contains("backups are refused, restores work until"),
        "{listed}"
    );
    sp.ok(
        &["sp", "tenant", "set", "acme", "--lease-until", "2020-01-01"],
        None,
    );
    let expired = tenant.fails(&["provider", "rescan", "acme-sp"], None, 5);
    assert!(expired.contains("lease"), "{expired}");
    sp.ok(
        &["sp", "tenant", "set", "acme", "--lease-until", "none"],
        None,
    );
    sp.ok(&["sp", "tenant", "disable", "acme"], None);
    assert!(
        tenant
            .fails(&["provider", "rescan", "acme-sp"], None, 4)
            .contains("disabled")
    );
    sp.ok(&["sp", "tenant", "enable", "acme"], None);

    // The SP changes the tenant's password: refused (exit 4) until the tenant gives the new
    // one; a wrong one is checked with a login first and changes nothing.
    sp.ok(
        &["sp", "tenant", "set", "acme", "--password-stdin"],
        Some("acme-new-password\n"),
    );
    tenant.fails(&["provider", "rescan", "acme-sp"], None, 4);
    tenant.fails(
        &["provider", "set", "acme-sp", "--password-stdin"],
        Some("not-the-new-one\n"),
        4,
    );
    tenant.fails(&["provider", "rescan", "acme-sp"], None, 4);
    let set = tenant.ok(
        &["provider", "set", "acme-sp", "--password-stdin"],
        Some("acme-new-password\n"),
    );
    assert!(set.contains("\"acme-sp\" is reached as acme"), "{set}");
    tenant.ok(&["provider", "rescan", "acme-sp"], None);

    tenant.ok(&["provider", "remove", "acme-sp"], None);
    assert_eq!(tenant.json(&["provider", "list"]), serde_json::json!([]));
    let secrets = std::fs::read_to_string(tenant.home.join("secrets.json")).unwrap_or_default();
    assert!(!secrets.contains("tenant-password") && !secrets.contains("acme-new-password"));
    drop(gw);
}

/// `cloudkeep provider found` on the test's provider and repository.
const FOUND: [&str; 6] = [
    "provider",
    "found",
    "acme-sp",
    "--repo",
    "Cloud",
    "--password-stdin",
];

/// The computer with the jobs is lost: a new one adds the provider, and the rescan says the
/// repository holds backups (no key needed for that); the password lists the jobs in it (a
/// wrong one is refused, nothing kept); adopting one makes its points browsable and
/// restorable here, with a retention that removes none of them.
#[test]
fn a_fresh_computer_finds_the_backups_already_at_the_provider_and_adopts_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let old = tenant_with_provider(tmp.path(), &gw, &fp);
    let (docs, photos) = (tmp.path().join("docs"), tmp.path().join("photos"));
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(docs.join("plan.txt"), "the plan\n").unwrap();
    std::fs::write(
        photos.join("a.raw"),
        cloudkeep_tests::pseudo_random(200_000, 3),
    )
    .unwrap();
    for (name, src) in [("docs", &docs), ("photos", &photos)] {
        old.ok(
            &[
                "job",
                "create",
                name,
                "--provider",
                "acme-sp",
                "--repo",
                "Cloud",
                "--source",
                &src.display().to_string(),
                "--keep-points",
                "2",
                "--encryption-password-stdin",
            ],
            Some("job-secret"),
        );
    }
    for i in 0..3 {
        std::fs::write(docs.join("plan.txt"), format!("the plan, version {i}\n")).unwrap();
        old.ok(&["job", "run", "docs"], None);
    }
    old.ok(&["job", "run", "photos"], None);
    let kept = old
        .json(&["points", "list", "--job", "docs"])
        .as_array()
        .unwrap()
        .len();
    assert_eq!(kept, 2, "the old computer's retention kept two");

    // The new computer: only the provider and its account.
    let fresh = tenant_at(tmp.path().join("new-computer"), &gw, &fp);
    let rescan = fresh.ok(&["provider", "rescan", "acme-sp"], None);
    assert!(
        rescan.contains("Cloud holds backups: 3 restore points")
            && rescan.contains("encrypted")
            && rescan.contains("cloudkeep provider found acme-sp --repo 'Cloud' --password-stdin"),
        "{rescan}"
    );
    let wrong = fresh.fails(&FOUND, Some("not-the-password"), 4);
    assert!(wrong.contains("encryption password is wrong"), "{wrong}");
    let jobs = fresh.json_with(&FOUND, Some("job-secret"));
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["photos", "docs"], "newest first");
    assert_eq!(jobs[1]["points"], 2);
    assert_eq!(jobs[1]["sources"][0], docs.display().to_string());

    // Adopted: a job of this computer, manual, keeping every point; restorable at once.
    fresh.ok(
        &[FOUND.as_slice(), &["--adopt", "docs"]].concat(),
        Some("job-secret"),
    );
    let shown = fresh.json(&["job", "show", "docs"]);
    assert_eq!(
        shown["job"]["spec"]["schedule"]["kind"], "manual",
        "{shown}"
    );
    assert!(
        shown["job"]["spec"]["retention"]["keep_last"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(
        fresh
            .json(&["points", "list", "--job", "docs"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = tmp.path().join("restored");
    fresh.ok(
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "docs",
            "--to",
            &out.display().to_string(),
        ],
        None,
    );
    let restored = cloudkeep_tests::restored_at(&out, &docs).join("plan.txt");
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(docs.join("plan.txt")).unwrap()
    );
    // Adopting again is refused (it is this computer's already), and a name that is not in
    // the repository is named with the ones that are.
    let again = fresh.fails(
        &[FOUND.as_slice(), &["--adopt", "docs"]].concat(),
        Some("job-secret"),
        1,
    );
    assert!(again.contains("already stores there"), "{again}");
    let none = fresh.fails(
        &[FOUND.as_slice(), &["--adopt", "music"]].concat(),
        Some("job-secret"),
        1,
    );
    assert!(none.contains("photos"), "{none}");
    let rescan = fresh.ok(&["provider", "rescan", "acme-sp"], None);
    assert!(rescan.contains("used by job docs"), "{rescan}");
}

/// A backup job to the provider's cloud repository: run, listed, restored to another folder;
/// the next run stores almost nothing; and a fresh machine with only the provider, the
/// credentials and the encryption password restores the same point.
#[test]
fn a_tenant_backs_up_through_the_gateway_and_restores_on_a_fresh_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let source = tmp.path().join("data");
    std::fs::create_dir_all(source.join("Reports 2026/Q1")).unwrap();
    std::fs::write(
        source.join("Reports 2026/Q1/überblick.txt"),
        "quarterly numbers\n".repeat(1000),
    )
    .unwrap();
    std::fs::write(
        source.join("photo.raw"),
        cloudkeep_tests::pseudo_random(3 << 20, 5),
    )
    .unwrap();
    let src = source.display().to_string();

    let laptop = Cli {
        home: tmp.path().join("laptop-home"),
    };
    let add = [
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
    ];
    laptop.ok(&add, Some("tenant-password"));
    let create = [
        "job",
        "create",
        "docs",
        "--provider",
        "acme-sp",
        "--repo",
        "Cloud",
        "--source",
        &src,
        "--keep-points",
        "3",
        "--schedule",
        "daily@02:30:mon,thu",
        "--encryption-password-stdin",
    ];
    assert!(
        laptop
            .ok(&create, Some("job-secret"))
            .contains("keep the encryption password safe")
    );
    let mut wrong_repo = create.to_vec();
    wrong_repo[2] = "docs2";
    wrong_repo[6] = "Nope";
    assert!(
        laptop
            .fails(&wrong_repo, Some("job-secret"), 1)
            .contains("no cloud repository")
    );

    let run = laptop.ok(&["job", "run", "docs", "--json"], None);
    let done: serde_json::Value = serde_json::from_str(run.lines().last().unwrap()).unwrap();
    assert_eq!(done["result"], "success", "{run}");
    assert_eq!(done["stats"]["files"], 2);
    let first_point = done["point"].as_str().unwrap().to_owned();
    // Folder listings are kept in a local cache; a damaged entry is noticed and fetched again.
    let cached: Vec<std::path::PathBuf> = {
        let mut found = Vec::new();
        let mut stack = vec![laptop.home.join("cache")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    found.push(entry.path());
                }
            }
        }
        found
    };
    assert!(!cached.is_empty(), "the run cached its folder listings");
    std::fs::write(&cached[0], b"garbage").unwrap();
    let again: serde_json::Value = serde_json::from_str(
        laptop
            .ok(&["job", "run", "docs", "--json"], None)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        again["stats"]["files_read"], 0,
        "unchanged files are not read: {again}"
    );
    assert!(
        again["stats"]["new_stored_bytes"].as_u64().unwrap() < 64 << 10,
        "{again}"
    );
    let points = laptop.json(&["points", "list", "--job", "docs"]);
    assert_eq!(points.as_array().unwrap().len(), 2);
    let shown = laptop.json(&["job", "show", "docs"]);
    assert_eq!(shown["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(shown["sessions"][0]["result"], "success");
    // Each session keeps its log: what it backed up from where, what it stored.
    let log = laptop.ok(&["job", "log", "docs"], None);
    assert!(
        log.contains("incremental from restore point")
            && log.contains("0 files read")
            && log.contains("finished: success"),
        "{log}"
    );
    let first_id = shown["sessions"][1]["id"].as_i64().unwrap();
    let first_log = laptop.ok(&["job", "log", "docs", &first_id.to_string()], None);
    assert!(first_log.contains("a full backup"), "{first_log}");

    // Browse, find, compare and check without restoring.
    let top = laptop.ok(&["points", "browse", "latest", &src, "--job", "docs"], None);
    assert!(
        top.contains("Reports 2026/") && top.contains("photo.raw"),
        "{top}"
    );
    let found = laptop.json(&["points", "find", "latest", "*.txt", "--job", "docs"]);
    assert!(
        found[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("Reports 2026/Q1/überblick.txt"),
        "{found}"
    );
    let ids: Vec<String> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let same = laptop.ok(&["points", "diff", &ids[0], &ids[1], "--job", "docs"], None);
    assert!(same.contains("0 changes"), "{same}");
    assert!(
        laptop
            .ok(&["verify", "--job", "docs"], None)
            .contains("no damage found")
    );

    let out = tmp.path().join("restored");
    let o = out.display().to_string();
    laptop.ok(
        &[
            "restore",
            "files",
            &first_point[..12],
            "--job",
            "docs",
            "--to",
            &o,
            "--path",
            &src,
        ],
        None,
    );
    let restored = out.join("data");
    assert_eq!(
        std::fs::read_to_string(restored.join("Reports 2026/Q1/überblick.txt")).unwrap(),
        "quarterly numbers\n".repeat(1000)
    );
    // The restore is a session of the job too.
    let shown = laptop.json(&["job", "show", "docs"]);
    let restore_session = &shown["sessions"][0];
    assert_eq!(restore_session["kind"], "restore", "{shown}");
    assert_eq!(restore_session["result"], "success");
    assert_eq!(restore_session["point"], first_point.as_str());
    assert!(
        restore_session["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("restored 2 files")),
        "{restore_session}"
    );
    assert_eq!(
        std::fs::read(restored.join("photo.raw")).unwrap(),
        cloudkeep_tests::pseudo_random(3 << 20, 5)
    );

    // A fresh machine: the provider, the credentials and the encryption password.
    let fresh = Cli {
        home: tmp.path().join("fresh-home"),
    };
    fresh.ok(&add, Some("tenant-password"));
    let mut recreate = create.to_vec();
    recreate[2] = "docs";
    fresh.ok(&recreate, Some("job-secret"));
    let listed = fresh.json(&["points", "list", "--job", "docs"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let out2 = tmp.path().join("fresh-restore");
    fresh.restore_latest("docs", &out2, Some(&src));
    assert_eq!(
        std::fs::read(out2.join("data/photo.raw")).unwrap(),
        cloudkeep_tests::pseudo_random(3 << 20, 5)
    );

    // The wrong encryption password opens nothing.
    let thief = Cli {
        home: tmp.path().join("thief-home"),
    };
    thief.ok(&add, Some("tenant-password"));
    let err = thief.fails(&recreate, Some("guessed"), 1);
    assert!(err.contains("under another encryption password"), "{err}");
    assert_eq!(thief.json(&["job", "list"]), serde_json::json!([]));

    // The cloud job's keys, as a local repository's: a recovery key, then a new password the
    // job runs with; the machine that still has the old one is refused.
    let key_file = tmp.path().join("docs.recovery");
    let key_path = key_file.display().to_string();
    assert!(
        laptop
            .ok(
                &["job", "key", "docs", "recovery-key", "--out", &key_path],
                None
            )
            .contains("recovery key slot")
    );
    #[cfg(unix)]
    crate::support::assert_owner_only(&key_file);
    laptop.fails(
        &[
            "job",
            "key",
            "docs",
            "change-password",
            "--new-password-stdin",
        ],
        Some("short\n"),
        1,
    );
    laptop.ok(
        &[
            "job",
            "key",
            "docs",
            "change-password",
            "--new-password-stdin",
        ],
        Some("a-new-job-secret\n"),
    );
    let slots = laptop.json(&["job", "key", "docs", "list"]);
    let kinds: Vec<&str> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["recovery", "password"], "{slots}");
    let ran = laptop.ok(&["job", "run", "docs"], None);
    assert!(
        ran.contains("success"),
        "the job runs with the new password: {ran}"
    );
    let listed = fresh.fails(&["points", "list", "--job", "docs"], None, 4);
    assert!(
        listed.to_lowercase().contains("password"),
        "the old password opens nothing: {listed}"
    );
    drop(gw);
}

/// The sizes of the pack files stored under `dir`.
#[cfg(unix)]
fn pack_sizes(dir: &Path) -> Vec<u64> {
    cloudkeep_tests::files_under(dir, &|p| p.extension().is_some_and(|e| e == "pack"))
        .into_iter()
        .map(|(_, len)| len)
        .collect()
}

#[cfg(unix)]
fn packs_under(dir: &Path) -> usize {
    pack_sizes(dir).len()
}

/// Twelve 4 MiB files of pseudo-random bytes in `dir/big`.
#[cfg(unix)]
fn big_source(dir: &Path, seed: u64) -> PathBuf {
    let source = dir.join("big");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..12 {
        std::fs::write(
            source.join(format!("f{i:02}.bin")),
            cloudkeep_tests::pseudo_random(4 << 20, i + seed),
        )
        .unwrap();
    }
    source
}

/// Creates job "big" over `source` (no encryption) and starts `job run big`; returns once the
/// first pack is stored under `storage`, the run still going.
#[cfg(unix)]
fn big_run_until_a_pack_lands(laptop: &Cli, source: &Path, storage: &Path) -> std::process::Child {
    crate::support::job_create(laptop, "big", source);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
        .args(["job", "run", "big"])
        .env("CLOUDKEEP_HOME", &laptop.home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while packs_under(storage) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no pack reached the gateway in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

/// A job run killed (kill -9) once its first pack reached the gateway: no partial restore
/// point, and the rerun completes without sending that pack's data again.
#[cfg(unix)]
#[test]
fn a_killed_job_run_resumes_without_resending() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = big_source(tmp.path(), 50);
    let storage = tmp.path().join("storage");
    let mut child = big_run_until_a_pack_lands(&laptop, &source, &storage);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        laptop.json(&["points", "list", "--job", "big"]),
        serde_json::json!([]),
        "no partial point"
    );
    let before: u64 = pack_sizes(&storage).iter().sum();
    assert!(before >= 8 << 20, "a pack landed: {before}");

    let rerun = laptop.ok(&["job", "run", "big", "--json"], None);
    let done: serde_json::Value = serde_json::from_str(rerun.lines().last().unwrap()).unwrap();
    assert_eq!(done["result"], "success", "{rerun}");
    // 48 MiB of incompressible data, unencrypted: what was stored is not sent again.
    let stored = done["stats"]["new_stored_bytes"].as_u64().unwrap();
    assert!(
        stored + before <= (48 << 20) + (1 << 20),
        "the packs stored before the kill are not sent again: {stored} bytes sent, {before} were there"
    );
    assert_eq!(
        laptop
            .json(&["points", "list", "--job", "big"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    drop(gw);
}

/// A run that does not fit the quota ends with exit 5 and the provider's message; no partial
/// point appears and the earlier one still restores.
#[test]
fn a_full_quota_stops_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, sp, fp) = gateway_with_tenant(tmp.path());
    let source = tmp.path().join("docs");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("small.txt"), "first version\n").unwrap();
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    laptop.ok(
        &[
            "job",
            "create",
            "docs",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &source.display().to_string(),
            "--encryption-password-stdin",
        ],
        Some("job-secret"),
    );
    laptop.ok(&["job", "run", "docs"], None);
    sp.ok(
        &["sp", "tenant", "set", "acme", "--quota", "main=2M:Cloud"],
        None,
    );
    std::fs::write(
        source.join("big.bin"),
        cloudkeep_tests::pseudo_random(8 << 20, 3),
    )
    .unwrap();
    let err = laptop.fails(&["job", "run", "docs"], None, 5);
    assert!(err.contains("is full") && err.contains("Cloud"), "{err}");
    assert_eq!(
        laptop
            .json(&["points", "list", "--job", "docs"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let shown = laptop.json(&["job", "show", "docs"]);
    assert_eq!(shown["sessions"][0]["result"], "failed");
    assert!(
        shown["sessions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is full")
    );
    let out = tmp.path().join("out");
    laptop.ok(
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "docs",
            "--to",
            &out.display().to_string(),
            "--path",
            &source.display().to_string(),
        ],
        None,
    );
    assert_eq!(
        std::fs::read_to_string(out.join("docs/small.txt")).unwrap(),
        "first version\n"
    );
    drop(gw);
}

/// `cloudkeep lab --add-provider lab`: a working provider on this computer in one command; a
/// job backs up to it; the lab keeps its accounts across restarts.
#[test]
fn the_lab_is_a_provider_in_one_command() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(["lab", "--add-provider", "lab"])
            .env("CLOUDKEEP_HOME", &cli.home)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line.starts_with("ready");
            seen.push(line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        (child, seen.join("\n"))
    };
    let (mut lab, out) = start();
    assert!(
        out.contains("provider \"lab\" added, certificate pinned"),
        "{out}"
    );
    assert!(
        out.contains("cloudkeep provider add lab --host 127.0.0.1:"),
        "{out}"
    );
    let source = tmp.path().join("try-me");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("hello.txt"), "hello lab\n").unwrap();
    cli.ok(
        &[
            "job",
            "create",
            "try",
            "--provider",
            "lab",
            "--repo",
            "Lab storage",
            "--source",
            &source.display().to_string(),
            "--no-encryption",
        ],
        None,
    );
    assert!(cli.ok(&["job", "run", "try"], None).starts_with("success"));
    assert!(stopped_cleanly(stop(&mut lab)));

    // A lab folder left readable by others (as an older Cloudkeep made it) is this user's
    // own: made owner-only at the next start rather than refused.
    #[cfg(unix)]
    let lab_dir = {
        use std::os::unix::fs::PermissionsExt;
        let dir = cli.home.join("lab");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    };

    // Started again: same accounts, same certificate; the pinned provider still works.
    let (mut again, out) = start();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&lab_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(
        cli.json(&["points", "list", "--job", "try"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(stopped_cleanly(stop(&mut again)));
}

/// Two gateways of one SP (one database, one storage): the provider is added through the first
/// and learns both. The first is killed (SIGKILL) in the middle of a backup; the same run
/// goes on through the second and completes (what it sent there is measured by
/// `faults::a_backup_goes_on_through_another_gateway_when_its_gateway_is_killed`), and a
/// rerun finds nothing new to send.
#[cfg(unix)]
#[test]
fn a_killed_gateway_fails_over_within_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut first, _sp, fp) = gateway_with_tenant(tmp.path());
    let second = Gateway::start_with(&tmp.path().join("gw"), &["--id", "gw-2"]);
    let laptop = tenant_with_provider(tmp.path(), &first, &fp);
    let shown = laptop.json(&["provider", "show", "acme-sp"]);
    let addresses: Vec<&str> = shown["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(addresses.first(), Some(&first.addr.as_str()), "{shown}");
    assert!(
        addresses.contains(&second.addr.as_str()),
        "both gateways: {shown}"
    );

    let source = big_source(tmp.path(), 70);
    let storage = tmp.path().join("storage");
    let mut child = big_run_until_a_pack_lands(&laptop, &source, &storage);
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the run goes on through the second gateway"
    );
    let rerun = laptop.ok(&["job", "run", "big", "--json"], None);
    let done: serde_json::Value = serde_json::from_str(rerun.lines().last().unwrap()).unwrap();
    assert_eq!(done["result"], "success", "{rerun}");
    // Every file of the first point was recorded and stored: nothing is read or sent again.
    // (One small folder listing may be new: the point records the source's ancestors, and
    // other tests running at the same time change the mtime of the shared temporary folder.)
    assert_eq!(done["stats"]["bytes_read"], 0, "{rerun}");
    assert!(
        done["stats"]["new_stored_bytes"].as_u64().unwrap() < 4096,
        "{rerun}"
    );
    let points = laptop.json(&["points", "list", "--job", "big"]);
    assert_eq!(points.as_array().unwrap().len(), 2, "{points}");
    let out = tmp.path().join("restored");
    laptop.restore_latest("big", &out, None);
    let restored = cloudkeep_tests::restored_at(&out, &source);
    for i in 0..12 {
        let name = format!("f{i:02}.bin");
        assert_eq!(
            std::fs::read(restored.join(&name)).unwrap(),
            std::fs::read(source.join(&name)).unwrap(),
            "{name}"
        );
    }
    drop(second);
}

/// One entry of a tree as `lstat` sees it, for comparing a restore with its source.
#[cfg(unix)]
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    /// Modification time (files and folders; symlink times are not compared).
    mtime: Option<(i64, i64)>,
    link_target: Option<PathBuf>,
    links: u64,
}

/// Every entry under `root` by its path relative to `root` (raw bytes: names need not be UTF-8).
#[cfg(unix)]
fn seen_tree(root: &Path) -> std::collections::BTreeMap<PathBuf, Seen> {
    use std::os::unix::fs::MetadataExt;
    let mut all = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let kind = if meta.is_dir() {
            "folder"
        } else if meta.file_type().is_symlink() {
            "symlink"
        } else {
            "file"
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
        all.insert(
            path.strip_prefix(root).unwrap().to_path_buf(),
            Seen {
                kind,
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                size: if kind == "folder" { 0 } else { meta.size() },
                mtime: (kind != "symlink").then(|| (meta.mtime(), meta.mtime_nsec())),
                link_target: (kind == "symlink").then(|| std::fs::read_link(&path).unwrap()),
                links: if kind == "file" { meta.nlink() } else { 0 },
            },
        );
    }
    all
}

/// Asserts that `restored` holds exactly the entries of `source` (but those in `missing`),
/// with the same metadata and the same bytes.
#[cfg(unix)]
fn assert_same_tree(source: &Path, restored: &Path, missing: &[&str]) {
    use std::io::Read;
    let mut expected = seen_tree(source);
    for m in missing {
        expected.remove(Path::new(m));
    }
    let got = seen_tree(restored);
    let names = |t: &std::collections::BTreeMap<PathBuf, Seen>| {
        t.keys().cloned().collect::<std::collections::BTreeSet<_>>()
    };
    let (want, have) = (names(&expected), names(&got));
    assert!(
        want == have,
        "not restored: {:?}\nunexpected: {:?}",
        want.difference(&have).take(10).collect::<Vec<_>>(),
        have.difference(&want).take(10).collect::<Vec<_>>()
    );
    eprintln!("{} entries compared", expected.len());
    for (path, seen) in &expected {
        assert_eq!(&got[path], seen, "{path:?}");
        if seen.kind != "file" {
            continue;
        }
        let (mut a, mut b) = (
            std::fs::File::open(source.join(path)).unwrap(),
            std::fs::File::open(restored.join(path)).unwrap(),
        );
        let (mut x, mut y) = (vec![0; 1 << 20], vec![0; 1 << 20]);
        loop {
            let n = a.read(&mut x).unwrap();
            b.read_exact(&mut y[..n]).unwrap();
            assert!(x[..n] == y[..n], "content of {path:?} differs");
            if n == 0 {
                break;
            }
        }
    }
}

/// Writes the tree of the tenant end-to-end test: 10,000 small files in 100 folders, names with
/// spaces, Unicode (composed and decomposed), emoji, newlines, glob characters, 250 bytes, and
/// bytes that are not UTF-8; an empty file and folder; hard links; symlinks (relative,
/// absolute, dangling, to a folder, to itself); a 1 GiB sparse file with three data islands;
/// odd permissions and times to the nanosecond; and a file only root can read.
#[cfg(unix)]
fn odd_tree(root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};
    let when = |secs: u64, nanos: u32| {
        std::fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
    };
    let set_time = |path: &Path, secs: u64, nanos: u32| {
        std::fs::File::open(path)
            .unwrap()
            .set_times(when(secs, nanos))
            .unwrap();
    };
    for d in 0..100 {
        let dir = root.join(format!("bulk {d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("file {f:03}.txt")),
                format!("folder {d}, file {f}\n").repeat(f % 9 + 1),
            )
            .unwrap();
        }
    }
    let odd = root.join("odd names");
    std::fs::create_dir_all(odd.join("📁 emoji folder")).unwrap();
    std::fs::create_dir_all(odd.join("empty folder")).unwrap();
    let names = [
        "with  two  spaces",
        " leading space",
        "trailing space ",
        "überblick-Ü.txt",
        "e\u{301}cole décomposée.txt",
        "日本語のファイル.txt",
        "📁 emoji folder/🎉.txt",
        "-rf",
        "new\nline",
        "back\\slash",
        "glob*?[x].txt",
        "quote'\"`$HOME",
        "%20percent%",
        ".hidden",
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(odd.join(name), format!("odd name {i}: {name}\n")).unwrap();
    }
    std::fs::write(odd.join("a".repeat(250)), b"a long name").unwrap();
    std::fs::write(
        odd.join(std::ffi::OsStr::from_bytes(b"not utf-8 \xff\xfe.bin")),
        b"raw bytes in the name",
    )
    .unwrap();
    std::fs::write(odd.join("empty"), b"").unwrap();
    std::fs::write(odd.join("hard a"), b"one file, two names").unwrap();
    std::fs::hard_link(odd.join("hard a"), odd.join("hard b")).unwrap();
    symlink("überblick-Ü.txt", odd.join("link to file")).unwrap();
    symlink("/etc/hostname", odd.join("absolute link")).unwrap();
    symlink("does/not/exist", odd.join("dangling")).unwrap();
    symlink("../bulk 000", odd.join("link to folder")).unwrap();
    symlink("loop", odd.join("loop")).unwrap();
    let script = odd.join("run me.sh");
    std::fs::write(&script, b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(odd.join("hard a"), std::fs::Permissions::from_mode(0o640)).unwrap();
    set_time(&odd.join("日本語のファイル.txt"), 981_173_106, 123_456_789);
    set_time(&odd.join("-rf"), 4_102_444_800, 1);

    let disk = root.join("disk.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&disk).unwrap();
        f.set_len(1 << 30).unwrap();
        f.write_all(&cloudkeep_tests::pseudo_random(4096, 11))
            .unwrap();
        f.seek(SeekFrom::Start(300 << 20)).unwrap();
        f.write_all(&cloudkeep_tests::pseudo_random(1 << 20, 12))
            .unwrap();
        f.seek(SeekFrom::Start((1 << 30) - 10)).unwrap();
        f.write_all(b"0123456789").unwrap();
    }
    let locked = root.join("locked.bin");
    std::fs::write(&locked, b"only root reads this").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();

    // Folder times last: writing inside a folder changes its time.
    set_time(&odd.join("📁 emoji folder"), 1_234_567_890, 5);
    set_time(&odd, 1_500_000_000, 999_999_999);
    std::fs::set_permissions(
        odd.join("empty folder"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
}

/// The tenant's whole path on a generated tree: back up through the gateway (real TLS, real
/// processes), restore to another folder identical in content and metadata, a warning for
/// what cannot be read; a second run sends only what changed (as the run and as the gateway
/// count it), and its point restores identical too.
#[cfg(unix)]
#[test]
fn a_generated_tree_with_odd_names_round_trips_through_the_gateway() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _sp, fp) = gateway_with_tenant(tmp.path());
    let laptop = tenant_with_provider(tmp.path(), &gw, &fp);
    let source = tmp.path().join("tree");
    odd_tree(&source);
    // Root reads a file whose mode forbids it; for everyone else it is the unreadable file.
    let privileged = std::fs::File::open(source.join("locked.bin")).is_ok();
    let src = source.display().to_string();
    laptop.ok(
        &[
            "job",
            "create",
            "tree",
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            &src,
            "--source",
            "/proc/self/mem",
            "--encryption-password-stdin",
        ],
        Some("tree-secret"),
    );
    let used = || -> u64 {
        laptop.json(&["provider", "rescan", "acme-sp"])["repos"][0]["used_bytes"]
            .as_u64()
            .unwrap()
    };
    let run = || -> serde_json::Value {
        let out = laptop.run(&["job", "run", "tree", "--json"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        serde_json::from_str(text.lines().last().unwrap_or("null"))
            .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
    };

    let first = run();
    assert_eq!(first["result"], "warning", "{first}");
    let warned: Vec<&str> = first["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["path"].as_str().unwrap())
        .collect();
    let locked = source.join("locked.bin").display().to_string();
    let mut expected_warnings = vec!["/proc/self/mem"];
    if !privileged {
        expected_warnings.push(&locked);
    }
    expected_warnings.sort_unstable();
    let mut sorted = warned.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected_warnings, "{first}");
    assert!(
        first["stats"]["files"].as_u64().unwrap() >= 10_000,
        "{first}"
    );
    let shown = laptop.json(&["job", "show", "tree"]);
    assert_eq!(shown["sessions"][0]["result"], "warning", "{shown}");

    let missing: &[&str] = if privileged { &[] } else { &["locked.bin"] };
    let out = tmp.path().join("restored");
    laptop.restore_latest("tree", &out, Some(&src));
    // A selected folder lands under --to by its name.
    let restored = out.join("tree");
    assert_same_tree(&source, &restored, missing);
    let disk = std::fs::metadata(restored.join("disk.img")).unwrap();
    assert!(
        disk.blocks() * 512 < 64 << 20,
        "the sparse file restores sparse: {} bytes allocated",
        disk.blocks() * 512
    );

    // Change a little: one file rewritten, one grown, 64 KiB written into the sparse file's
    // hole, one file added, one removed.
    let changed = cloudkeep_tests::pseudo_random(64 << 10, 13);
    let added = cloudkeep_tests::pseudo_random(100 << 10, 14);
    std::fs::write(source.join("bulk 007/file 003.txt"), b"rewritten\n").unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(source.join("odd names/日本語のファイル.txt"))
        .unwrap()
        .write_all(b"one more line\n")
        .unwrap();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(source.join("disk.img"))
            .unwrap();
        f.seek(SeekFrom::Start(700 << 20)).unwrap();
        f.write_all(&changed).unwrap();
    }
    std::fs::write(source.join("bulk 050/new.bin"), &added).unwrap();
    std::fs::remove_file(source.join("bulk 099/file 099.txt")).unwrap();

    let used_before = used();
    let second = run();
    let used_after = used();
    let changed_bytes = (changed.len() + added.len()) as u64;
    let sent = second["stats"]["new_stored_bytes"].as_u64().unwrap();
    assert_eq!(second["stats"]["files_read"], 4, "{second}");
    assert!(
        sent >= changed_bytes && sent < changed_bytes + (512 << 10),
        "only the changed data is sent: {sent} bytes for {changed_bytes} changed"
    );
    let grown = used_after - used_before;
    eprintln!(
        "second run: {sent} bytes stored, the gateway grew by {grown}, {changed_bytes} changed"
    );
    assert!(
        grown >= changed_bytes && grown < changed_bytes + (512 << 10),
        "the gateway received only the changed data: {grown} bytes for {changed_bytes} changed"
    );

    let out2 = tmp.path().join("restored-2");
    laptop.restore_latest("tree", &out2, Some(&src));
    assert_same_tree(&source, &out2.join("tree"), missing);
}
