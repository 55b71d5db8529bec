//! The SP's object storage in the console: the New cloud repository wizard on a real Garage
//! node — wrong credentials fail the connection test (Next stays off, the failed step says
//! why), the fixed ones pass every step and the repository is added; the table shows its kind
//! and location, and the CLI sees the same repository (its secret never shown). Garage has
//! no object lock and is shown as not immutable; a bucket with object lock (Moto) as
//! Immutable.

use std::time::Duration;

use anyhow::{Result, ensure};
use cloudkeep_e2e::{Console, Gateway, run_cli};
use cloudkeep_tests::garage::{ACCESS_KEY, BUCKET, Garage, REGION, SECRET_KEY};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_adds_object_storage_after_the_connection_test() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let garage = tokio::task::spawn_blocking(|| Garage::start(1)).await?;
    let gateway = Gateway::start()?;
    let console = Console::launch().await?;
    console.connect_sp(&gateway).await?;
    console.nav("sp-repos").await?;
    console.click("#repo-new").await?;
    console.type_into("#repo-name", "objects").await?;
    console.click("input[name='repo-kind'][value='s3']").await?;
    console
        .type_into("#repo-endpoint", &garage.endpoint(0))
        .await?;
    console.type_into("#repo-bucket", BUCKET).await?;
    console.type_into("#repo-prefix", "console").await?;
    console.type_into("#repo-region", REGION).await?;
    console.type_into("#repo-access-key", ACCESS_KEY).await?;
    console
        .type_into("#repo-secret-key", &"0".repeat(64))
        .await?;
    console.next("repo-wizard").await?;

    // Wrong secret: the test fails at the first step and says why; Next stays off.
    console
        .wait_text("#repo-test-verdict", "cannot use", WAIT)
        .await?;
    let steps = console.text_of("#repo-test-steps").await?;
    ensure!(steps.contains("Failed"), "{steps}");
    ensure!(steps.contains("credentials"), "{steps}");
    let next = console.find("#repo-wizard-next").await?;
    ensure!(
        next.attr("disabled").await?.is_some(),
        "Next is enabled after a failed test"
    );
    console.check_accessibility("repo-test-failed").await?;
    console.screen("26-repo-test-failed").await?;

    // Back, the right secret, and the test passes every step.
    console.click("#repo-wizard-back").await?;
    console.type_into("#repo-secret-key", SECRET_KEY).await?;
    console.next("repo-wizard").await?;
    console
        .wait_text("#repo-test-verdict", "can use this object store", WAIT)
        .await?;
    let steps = console.text_of("#repo-test-steps").await?;
    for step in [
        "list the bucket",
        "write an object",
        "read it back",
        "read a range",
        "remove it",
    ] {
        ensure!(steps.contains(step), "{step} missing from {steps}");
    }
    ensure!(!steps.contains("Failed"), "{steps}");
    let lock = console.text_of("#repo-test-lock").await?;
    ensure!(
        lock.contains("Not immutable: this object store has no object lock"),
        "{lock}"
    );
    console.screen("26-repo-test-passed").await?;
    console.next("repo-wizard").await?;
    let table = console
        .wait_text("#sp-repos-table", "objects", WAIT)
        .await?;
    ensure!(table.contains("Object storage (S3)"), "{table}");
    ensure!(table.contains("s3://cloudkeep/console"), "{table}");
    let immutable = console.text_of("#repo-immutable-objects").await?;
    ensure!(immutable == "Not immutable", "{immutable}");
    console.screen("26-repo-added").await?;

    // The CLI, signed in to the same gateway, lists the same repository; no secret anywhere.
    let home = console.home.path().to_owned();
    let listed = run_cli(&home, &["sp", "repo", "list", "--json"], None)?;
    ensure!(
        listed.contains("\"kind\": \"s3\"") || listed.contains("\"kind\":\"s3\""),
        "{listed}"
    );
    ensure!(
        !listed.contains(SECRET_KEY),
        "the secret key is listed: {listed}"
    );
    console.shutdown().await?;
    drop(garage);
    Ok(())
}

/// A bucket with S3 Object Lock (Moto's server): the connection test says the repository
/// will be immutable, and the table marks it Immutable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_sees_an_object_locked_bucket_as_immutable() -> Result<()> {
    use cloudkeep_tests::moto::{self, Moto};
    cloudkeep_e2e::require_display()?;
    let store = tokio::task::spawn_blocking(Moto::start).await?;
    let gateway = Gateway::start()?;
    let console = Console::launch().await?;
    console.connect_sp(&gateway).await?;
    console.nav("sp-repos").await?;
    console.click("#repo-new").await?;
    console.type_into("#repo-name", "vault").await?;
    console.click("input[name='repo-kind'][value='s3']").await?;
    console
        .type_into("#repo-endpoint", &store.endpoint())
        .await?;
    console.type_into("#repo-bucket", moto::BUCKET).await?;
    console.type_into("#repo-prefix", "console").await?;
    console.type_into("#repo-region", moto::REGION).await?;
    console
        .type_into("#repo-access-key", moto::ACCESS_KEY)
        .await?;
    console
        .type_into("#repo-secret-key", moto::SECRET_KEY)
        .await?;
    console.next("repo-wizard").await?;
    console
        .wait_text("#repo-test-verdict", "can use this object store", WAIT)
        .await?;
    let lock = console.text_of("#repo-test-lock").await?;
    ensure!(
        lock.contains("Immutable: object lock (compliance mode)"),
        "{lock}"
    );
    console.check_accessibility("repo-test-immutable").await?;
    console.screen("26-repo-test-immutable").await?;
    console.next("repo-wizard").await?;
    console.wait_text("#sp-repos-table", "vault", WAIT).await?;
    let immutable = console.text_of("#repo-immutable-vault").await?;
    ensure!(immutable == "Immutable", "{immutable}");
    console.screen("26-repo-immutable").await?;
    console.shutdown().await?;
    drop(store);
    Ok(())
}

/// The Gateways screen of two gateways on one database: both online with their load; one
/// drained (after a confirmation) shows as draining, for the CLI too, and new tenant logins
/// through it are turned away; resumed, it is online again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_drains_a_gateway_and_resumes_it() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let other = gateway.another("gw-maint")?;
    let console = Console::launch().await?;
    console.connect_sp(&gateway).await?;
    console.nav("sp-gateways").await?;
    let table = console
        .wait_text("#sp-gateways-table", "gw-maint", WAIT)
        .await?;
    ensure!(table.contains("Online"), "{table}");
    ensure!(table.contains("Requests / min"), "{table}");
    console.click("#gateway-drain-gw-maint").await?;
    console.confirm().await?;
    console
        .wait_text("#sp-gateways-table", "Draining", WAIT)
        .await?;
    console.wait_for("#gateway-resume-gw-maint").await?;
    console.check_accessibility("gateways-draining").await?;
    console.screen("27-gateway-draining").await?;
    let home = console.home.path().to_owned();
    let listed: serde_json::Value =
        serde_json::from_str(&run_cli(&home, &["sp", "gateways", "--json"], None)?)?;
    let drained = listed
        .as_array()
        .and_then(|all| all.iter().find(|g| g["id"] == "gw-maint"))
        .cloned()
        .unwrap_or_default();
    ensure!(drained["draining"] == true, "{listed}");
    ensure!(drained["address"] == other.addr.as_str(), "{listed}");
    console.click("#gateway-resume-gw-maint").await?;
    console.wait_for("#gateway-drain-gw-maint").await?;
    let table = console.text_of("#sp-gateways-table").await?;
    ensure!(!table.contains("Draining"), "{table}");
    console.shutdown().await?;
    Ok(())
}

/// Managing repositories in the console: a tenant's quota moved, with its data, from one
/// repository to another (progress to Done), the emptied one taken out of service, its
/// title set, and removed; the CLI's tenant restores from where the data went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_moves_a_tenant_and_retires_the_old_repository() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    let source = files.path().join("docs");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("a.bin"), cloudkeep_e2e::noise(3 << 20, 5))?;
    let home = cloudkeep_e2e::prepared_home(&gateway, ("mover", "mover-password-1"), &source)?;
    run_cli(
        home.path(),
        &[
            "sp",
            "repo",
            "add",
            "archive",
            "--path",
            &gateway.dir.path().join("archive").display().to_string(),
        ],
        None,
    )?;
    let console = Console::launch().await?;
    console.connect_sp(&gateway).await?;
    console.nav("sp-repos").await?;
    console.wait_for("#move-quota").await?;
    console
        .client
        .execute(
            "const s = document.querySelector('#move-to'); s.value = 'archive'; s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    console.click("#move-start").await?;
    console.wait_for("#sp-moves-table").await?;
    console.screen("28-repo-move-running").await?;
    console
        .wait_text("#sp-moves-table", "Done", Duration::from_secs(60))
        .await?;
    console.check_accessibility("repo-moves").await?;

    // The emptied repository: out of service, then removed; the other gets a title.
    console.click("#repo-retire-main").await?;
    console
        .wait_text("#sp-repos-table", "Out of service", WAIT)
        .await?;
    console.click("#repo-edit-archive").await?;
    console.type_into("#repo-title", "Cold archive").await?;
    console.click("#repo-save").await?;
    console
        .wait_text("#sp-repos-table", "Cold archive", WAIT)
        .await?;
    console.screen("28-repos-managed").await?;
    console.click("#repo-remove-main").await?;
    console.confirm().await?;
    console.wait_for("#repo-edit-archive").await?;
    let table = console.text_of("#sp-repos-table").await?;
    ensure!(!table.contains("Out of service"), "{table}");

    // The tenant's data is on the new repository: the CLI restores it.
    let usage = run_cli(console.home.path(), &["sp", "usage", "--json"], None)?;
    ensure!(usage.contains("\"archive\""), "{usage}");
    let out = files.path().join("out");
    run_cli(
        home.path(),
        &[
            "restore",
            "files",
            "latest",
            "--job",
            "docs",
            "--to",
            &out.display().to_string(),
        ],
        Some("a long job passphrase"),
    )?;
    let restored = std::fs::read(cloudkeep_tests::restored_at(&out, &source).join("a.bin"))?;
    ensure!(
        restored == std::fs::read(source.join("a.bin"))?,
        "restored bytes differ"
    );
    console.shutdown().await?;
    Ok(())
}
