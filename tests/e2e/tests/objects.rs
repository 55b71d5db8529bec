//! The SP's object storage in the console: the New cloud repository wizard on a real Garage
//! node — wrong credentials fail the connection test (Next stays off, the failed step says
//! why), the fixed ones pass every step and the repository is added; the table shows its kind
//! and location, and the CLI sees the same repository (its secret never shown).

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
    console.screen("26-repo-test-passed").await?;
    console.next("repo-wizard").await?;
    let table = console
        .wait_text("#sp-repos-table", "objects", WAIT)
        .await?;
    ensure!(table.contains("Object storage (S3)"), "{table}");
    ensure!(table.contains("s3://cloudkeep/console"), "{table}");
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
