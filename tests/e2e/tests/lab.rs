//! The lab from the console, as someone trying Cloudkeep would use it: started from the
//! welcome screen, then opened as its service provider without a password to look up or a
//! second trust step; and a certificate this console already pins for an address is not
//! asked about again, in the SP connect wizard and in Add service provider.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::Console;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn the_lab_opens_as_service_provider_without_a_second_trust() -> Result<()> {
    let console = Console::launch().await?;
    console.click("#welcome-lab").await?;
    console
        .wait_text("#lab-result", "is running at", WAIT)
        .await?;
    console.screen("lab-01-started").await?;
    let lab = console
        .invoke("lab_start", json!({}))
        .await?
        .map_err(|e| anyhow::anyhow!("lab_start: {e}"))?;
    let address = lab["lab"]["address"]
        .as_str()
        .context("the lab's address")?
        .to_owned();

    // One click: SP mode, signed in as the lab's SP admin, its demo tenant listed.
    console.click("#lab-open-sp").await?;
    console.wait_for("body[data-mode='sp']").await?;
    console
        .wait_text("#sp-tenants-table", "demo", Duration::from_secs(15))
        .await
        .context("the lab's tenants, as its SP")?;
    console.screen("lab-02-sp-tenants").await?;

    // Signed out, the SP connect screen offers the lab again, and connecting to the lab's
    // address by hand finds its certificate already trusted (pinned for provider "Lab").
    console.nav("sp-connection").await?;
    console.click("#sp-disconnect").await?;
    console.wait_for("#sp-connect").await?;
    console.wait_for("#lab-open-sp").await?;
    console.type_into("#sp-host", &address).await?;
    console.next("sp-connect").await?;
    let known = console.text_of("#cert-known").await?;
    ensure!(
        known.contains("service provider “Lab”"),
        "the pin the console holds is reused: {known}"
    );
    console.wait_for("#cert-trust:checked").await?;
    console
        .screen("lab-03-sp-connect-known-certificate")
        .await?;
    console.click("#sp-connect-cancel").await?;
    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console.click("#lab-open-sp").await?;
    console
        .wait_text("#sp-tenants-table", "demo", Duration::from_secs(15))
        .await?;

    // The other way round: a tenant adding the same gateway again is told it is trusted.
    console.click("#mode-tenant").await?;
    console.nav("providers").await?;
    console.click("#provider-add").await?;
    console.type_into("#provider-host", &address).await?;
    console.next("add-provider").await?;
    let known = console.text_of("#cert-known").await?;
    ensure!(known.contains("pinned"), "{known}");
    console.wait_for("#cert-trust:checked").await?;
    console.shutdown().await
}
