//! Cloud replication's resources in the console's SP mode: "Add cloud host" shows the host's
//! connection details once; with them `cloudkeep host run` reports what the host has, and the
//! Hardware plans section shows it up with its CPUs and pool; the "New hardware plan" wizard
//! refuses a plan the host could never run, then makes one; the tenant's page gives it the
//! plan (its Replication resources), and the tenant's command line sees it. Then, in tenant
//! mode, a replica of a small bootable machine is made with the New replica wizard, its first
//! cycle run, and a test failover started from its page: the machine boots at the host, its
//! console shows its marker, a public port reaches its web server, and the test is ended; its
//! cycles are scheduled; a failover plan is made by its wizard, run as a test (waiting for the
//! machine's marker) and undone; and a real failover, in which the machine changes its disk,
//! is failed back onto the machine's own disk from the replica's page; in SP mode the tenant's
//! page lists the replica and starts it on the tenant's behalf.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home, run_cli};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_adds_a_cloud_host_makes_a_hardware_plan_and_gives_it_to_a_tenant() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    std::fs::write(files.path().join("memo.txt"), "approved\n")?;
    let home = prepared_home(&gateway, ("initech", "initech-password-1"), files.path())?;
    let tenant_home = home.path().to_path_buf();
    let console = Console::launch_in(home, &[]).await?;

    // ---- Add cloud host: the details, once.
    console.click("#mode-sp").await?;
    console.nav("sp-plans").await?;
    console
        .wait_text("#sp-hosts-table", "No cloud host yet", WAIT)
        .await?;
    console.screen("34-hardware-plans-empty").await?;
    console.click("#host-new").await?;
    console.type_into("#host-name", "kvm1").await?;
    console.next("host-wizard").await?;
    console.wait_for("#host-details-once").await?;
    console.screen("35-cloud-host-details").await?;
    let details = console.text_of("#host-details-text").await?;
    ensure!(
        details.contains("cloud host kvm1") && details.contains(&gateway.fingerprint),
        "{details}"
    );

    // ---- The host runs with them and reports.
    let host = tempfile::tempdir()?;
    let file = host.path().join("kvm1.txt");
    std::fs::write(&file, &details)?;
    let pool = format!("main={}", host.path().join("pool").display());
    run_cli(
        &host.path().join("home"),
        &[
            "host",
            "run",
            "--connect",
            &file.display().to_string(),
            "--pool",
            &pool,
            "--once",
        ],
        None,
    )
    .context("the host reports with the details the console showed")?;
    console.nav("sp-plans").await?;
    let row = console.wait_text("#sp-hosts-table", "Up", WAIT).await?;
    let cpus = std::thread::available_parallelism()?.get();
    ensure!(row.contains(&cpus.to_string()), "{row}");
    ensure!(row.contains("main:"), "the pool is listed: {row}");

    // ---- New hardware plan: more CPUs than the host has is refused in the wizard.
    console.click("#plan-new").await?;
    console.type_into("#plan-name", "small").await?;
    console
        .type_into("#plan-cpu", &(cpus + 1).to_string())
        .await?;
    console.click("#plan-wizard-next").await?;
    console
        .wait_text("#plan-wizard", "could never run there", WAIT)
        .await?;
    console.type_into("#plan-cpu", "1").await?;
    console.type_into("#plan-memory", "0.5").await?;
    console.next("plan-wizard").await?;
    console.type_into("#plan-storage-main", "1").await?;
    console.next("plan-wizard").await?;
    console
        .wait_text("#plan-summary-storage", "1.00 GiB on main", WAIT)
        .await?;
    console.screen("36-hardware-plan-summary").await?;
    console.next("plan-wizard").await?;
    console.wait_for("#plan-added").await?;
    console.wait_text("#sp-plans-table", "small", WAIT).await?;
    console.screen("37-hardware-plans").await?;

    // ---- The tenant's page: Replication resources, give the plan.
    console.nav("sp-tenants").await?;
    console.click("#tenant-open-initech").await?;
    console
        .wait_text("#tenant-plans", "No hardware plan yet", WAIT)
        .await?;
    console.click("#plan-subscribe").await?;
    console
        .wait_text("#tenant-plans", "1 CPU, 512.0 MiB", WAIT)
        .await?;
    console.scroll_to("#tenant-plans").await?;
    console.screen("38-tenant-replication-resources").await?;
    let seen = run_cli(&tenant_home, &["replica", "plans", "--json"], None)?;
    ensure!(
        seen.contains("\"small\""),
        "the tenant sees its plan: {seen}"
    );
    let list = run_cli(&tenant_home, &["sp", "plan", "list"], None)?;
    ensure!(
        list.contains("initech"),
        "the command line shows the same: {list}"
    );
    console.shutdown().await?;
    Ok(())
}

/// A running `cloudkeep host run`, stopped when dropped.
struct HostProcess(std::process::Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_replicates_a_machine_and_test_fails_it_over_from_the_console() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    std::fs::write(files.path().join("memo.txt"), "approved\n")?;
    let home = prepared_home(&gateway, ("initech", "initech-password-1"), files.path())?;
    let sp = home.path().to_path_buf();

    // The SP's cloud host (plain emulation: KVM guests hang on some test machines) and a plan.
    let host = tempfile::tempdir()?;
    let details = host.path().join("kvm1.txt");
    run_cli(
        &sp,
        &[
            "sp",
            "host",
            "add",
            "kvm1",
            "--to",
            &details.display().to_string(),
        ],
        None,
    )?;
    let _host = HostProcess(
        std::process::Command::new(cloudkeep_e2e::cli_binary()?)
            .args(["host", "run", "--connect"])
            .arg(&details)
            .arg("--pool")
            .arg(format!("main={}", host.path().join("pool").display()))
            .args(["--listen", "127.0.0.1:0", "--accel", "tcg"])
            .env("CLOUDKEEP_HOME", host.path().join("home"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !run_cli(&sp, &["sp", "host", "list", "--json"], None)?.contains("\"seen_ms\": 1") {
        ensure!(
            std::time::Instant::now() < deadline,
            "the host never reported"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    run_cli(
        &sp,
        &[
            "sp",
            "plan",
            "add",
            "standard",
            "--cpu",
            "2",
            "--memory",
            "2G",
            "--storage",
            "kvm1:1G",
        ],
        None,
    )?;
    run_cli(
        &sp,
        &["sp", "plan", "subscribe", "standard", "initech"],
        None,
    )?;
    let image = host.path().join("web.img");
    cloudkeep_tests::bootdisk::build(&image, "marker-from-the-console");

    let console = Console::launch_in(home, &[]).await?;
    console.nav("replication").await?;
    console
        .wait_text("#replication-plans", "standard", WAIT)
        .await?;
    console.click("#replica-new").await?;
    console.type_into("#replica-name-field", "web").await?;
    console
        .type_into("#replica-disk", &image.display().to_string())
        .await?;
    console.next("replica-wizard").await?;
    console.type_into("#replica-memory", "0.25").await?;
    console.next("replica-wizard").await?;
    console
        .wait_text("#replica-summary-name", "web", WAIT)
        .await?;
    console.screen("39-new-replica").await?;
    console.next("replica-wizard").await?;
    console.wait_for("#replica-created").await?;
    console.click("#replica-run-web").await?;
    console
        .wait_text(
            "#replicas-table",
            "replica point 1",
            Duration::from_secs(120),
        )
        .await?;
    console.screen("40-replicas").await?;

    // Test failover from the replica's page: it boots at the host, its console shows the
    // marker, and the public port reaches its web server.
    console.click("#replica-open-web").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        .to_string();
    console.type_into("#replica-public-port", &port).await?;
    console.click("#replica-test-failover").await?;
    console
        .wait_text("#replica-state", "Test failover", WAIT)
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        console.click("#replica-console-refresh").await?;
        console.settle().await?;
        let text = console.text_of("#replica-console").await?;
        if text.contains("CLOUDKEEP-TEST-MACHINE marker-from-the-console") {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the replica never printed its marker: {text}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    console.screen("41-test-failover").await?;
    let page = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}"))?;
        write!(s, "GET / HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        text
    };
    ensure!(page.contains("marker-from-the-console"), "{page}");
    console.click("#replica-undo").await?;
    console.confirm().await?;
    console
        .wait_text("#replica-state", "Not running", WAIT)
        .await
        .context("the test failover ended")?;
    let seen = run_cli(&sp, &["replica", "list"], None)?;
    ensure!(
        seen.contains("web"),
        "the command line sees the console's replica: {seen}"
    );

    // A schedule: a cycle every 15 minutes, seen by the command line too.
    console.type_into("#replica-every", "15").await?;
    console.click("#replica-every-save").await?;
    console
        .wait_text("#replica-schedule", "Every 15 minutes", WAIT)
        .await?;
    let seen = run_cli(&sp, &["replica", "list"], None)?;
    ensure!(seen.contains("every 15 min"), "{seen}");

    // A failover plan made by its wizard, run as a test (the step waits for the machine's
    // marker on its console), then undone.
    console.nav("replication").await?;
    console.click("#failover-plan-new").await?;
    console.type_into("#failover-plan-name", "office").await?;
    console.type_into("#failover-plan-timeout", "5").await?;
    console.next("failover-plan-wizard").await?;
    console
        .find("#failover-step-wait-0")
        .await?
        .select_by_value("marker")
        .await?;
    console
        .type_into(
            "#failover-step-value-0",
            "CLOUDKEEP-TEST-MACHINE marker-from-the-console",
        )
        .await?;
    console.next("failover-plan-wizard").await?;
    console
        .wait_text("#failover-plan-summary-order", "1. web", WAIT)
        .await?;
    console.screen("42-new-failover-plan").await?;
    console.next("failover-plan-wizard").await?;
    console.wait_text("#failover-plans", "office", WAIT).await?;
    console.click("#failover-plan-run-test-office").await?;
    console
        .wait_text(
            "#failover-plan-result",
            "web answered after",
            Duration::from_secs(240),
        )
        .await
        .context("the failover plan's test run")?;
    console.screen("43-failover-plan-ran").await?;
    let seen = run_cli(&sp, &["failover-plan", "show", "office"], None)?;
    ensure!(seen.contains("every replica answered"), "{seen}");
    console.click("#failover-plan-undo-office").await?;
    console.confirm().await?;
    console
        .wait_text("#failover-plan-result", "Stopped: web", WAIT)
        .await?;

    // Failover for real, the machine changes its disk there, and Fail back brings the change
    // home onto the machine's own disk.
    console.click("#replica-open-web").await?;
    console.type_into("#replica-public-port", &port).await?;
    console.click("#replica-failover").await?;
    console.confirm().await?;
    console
        .wait_text("#replica-state", "Failed over", WAIT)
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let written = loop {
        let answer = (|| -> std::io::Result<String> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}"))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(s, "GET /cgi-bin/write?home-again HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        match answer {
            Ok(text) if text.contains("written home-again") => break text,
            _ => {}
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the failed-over machine never took the write: {answer:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    ensure!(written.contains("home-again"), "{written}");
    console.wait_for("#replica-failback").await?;
    console.screen("44-fail-back").await?;
    console.click("#replica-failback").await?;
    console.confirm().await?;
    console
        .wait_text(
            "#replica-failed-back",
            "written onto",
            Duration::from_secs(120),
        )
        .await?;
    console
        .wait_text("#replica-state", "Not running", WAIT)
        .await?;
    let disk = std::fs::read(&image)?;
    let at = cloudkeep_tests::bootdisk::DATA_OFFSET as usize;
    ensure!(
        disk[at..].starts_with(b"home-again\n"),
        "the machine's change came home"
    );

    // A second machine, a libvirt domain, made by the wizard: its definition gives the
    // replica its disk and MAC address.
    let domain = host.path().join("db.xml");
    std::fs::write(
        &domain,
        format!(
            "<domain type='kvm'><name>db</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>\
             <devices><disk type='file' device='disk'><source file='{}'/>\
             <target dev='vda' bus='virtio'/></disk><interface type='network'>\
             <mac address='52:54:00:00:00:db'/></interface></devices></domain>",
            image.display()
        ),
    )?;
    console.nav("replication").await?;
    console.click("#replica-new").await?;
    console.type_into("#replica-name-field", "db").await?;
    console
        .click("input[name='replica-kind'][value='libvirt']")
        .await?;
    console
        .type_into("#replica-libvirt", &domain.display().to_string())
        .await?;
    console.next("replica-wizard").await?;
    console.type_into("#replica-memory", "0.25").await?;
    console.next("replica-wizard").await?;
    console
        .wait_text("#replica-summary-disk", "libvirt domain", WAIT)
        .await?;
    console.next("replica-wizard").await?;
    console.wait_for("#replica-created").await?;
    let shown = run_cli(&sp, &["replica", "show", "db", "--json"], None)?;
    ensure!(
        shown.contains("52:54:00:00:00:db") && shown.contains("\"vda\""),
        "the domain made the replica: {shown}"
    );

    // SP mode: the tenant's page lists its replica and starts it on the tenant's behalf with
    // the key it holds; the audit log has it, and the tenant ends it.
    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console.click("#tenant-open-initech").await?;
    console.wait_text("#tenant-replicas", "web", WAIT).await?;
    console.click("#sp-replica-test-web").await?;
    console
        .wait_text("#tenant-replicas", "Test failover, from point", WAIT)
        .await?;
    console.screen("45-sp-tenant-replicas").await?;
    let audit = run_cli(&sp, &["sp", "audit"], None)?;
    ensure!(audit.contains("replica.test_failover"), "{audit}");
    run_cli(&sp, &["replica", "undo", "web"], None)?;
    console.shutdown().await?;
    Ok(())
}
