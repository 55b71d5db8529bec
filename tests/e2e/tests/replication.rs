//! Cloud replication's resources in the console's SP mode: "Add cloud host" shows the host's
//! connection details once; with them `cloudkeep host run` reports what the host has, and the
//! Hardware plans section shows it up with its CPUs and pool; the "New hardware plan" wizard
//! refuses a plan the host could never run, then makes one; the tenant's page gives it the
//! plan (its Replication resources), and the tenant's command line sees it.

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
