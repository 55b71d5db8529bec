//! The computer with the console is lost (issue 22, finding 11): on a new one, the console
//! with only the provider added shows the backups already in its cloud repository, opens
//! them with the encryption password (a wrong one said so, nothing kept), and restores the
//! lost computer's file through the usual wizard — byte for byte.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, noise, prepared_home, run_cli};

const TENANT: &str = "initech";
const TENANT_PASSWORD: &str = "initech-password-1";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_new_computer_restores_the_lost_ones_backups() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    let source = files.path().join("lost-docs");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("contract.pdf"), noise(150_000, 11))?;
    // The old computer: a day's use (provider, job "docs", one restore point), then lost.
    let _old = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), &source)?;
    let original = std::fs::read(source.join("contract.pdf"))?;

    let console = Console::launch_with(&[("CLOUDKEEP_SECRETS", "file")]).await?;
    run_cli(
        console.home.path(),
        &[
            "provider",
            "add",
            "sp",
            "--host",
            &gateway.addr,
            "--user",
            TENANT,
            "--password-stdin",
            "--trust",
            &gateway.fingerprint,
        ],
        Some(TENANT_PASSWORD),
    )?;
    console.nav("providers").await?;
    console.click("#provider-look-sp").await?;
    console
        .wait_text("#found-sp", "main holds 1 restore point, encrypted", WAIT)
        .await
        .context("the provider's card shows the backups no job here uses")?;
    console.screen("fresh-01-backups-found").await?;

    // A wrong password is refused with what to do; the right one lists the lost job.
    console
        .type_into("#found-password-sp-main", "not the password")
        .await?;
    console.click("#found-open-sp-main").await?;
    console
        .wait_text("#found-sp .error-box", "encryption password is wrong", WAIT)
        .await?;
    console
        .type_into("#found-password-sp-main", "a long job passphrase")
        .await?;
    console.click("#found-open-sp-main").await?;
    let listed = console.wait_text("#found-sp table", "docs", WAIT).await?;
    ensure!(
        listed.contains(&source.display().to_string()),
        "the job says what it backed up: {listed}"
    );
    console.screen("fresh-02-jobs-found").await?;

    // Restore…: the usual wizard, on the lost computer's restore point.
    console.click("#found-restore-docs").await?;
    console.wait_for("#restore").await?;
    console.next("restore").await?;
    console.click("#restore-whole").await?;
    console.next("restore").await?;
    let target = files.path().join("recovered");
    console
        .click("input[name='restore-dest'][value='folder']")
        .await?;
    console
        .type_into("#restore-folder", &target.display().to_string())
        .await?;
    console.next("restore").await?;
    console.next("restore").await?;
    console
        .wait_text(
            "#restore-result",
            "Restored 1 file",
            Duration::from_secs(120),
        )
        .await?;
    console.screen("fresh-03-restored").await?;
    let copy = std::fs::read(target.join(source.strip_prefix("/")?).join("contract.pdf"))
        .context("restored with its full path below the folder")?;
    ensure!(copy == original, "byte-identical");
    console.next("restore").await?;

    // Now a job of this computer: the provider's card no longer offers it.
    console.nav("providers").await?;
    console.click("#provider-look-sp").await?;
    console
        .wait_for("#provider-nothing-found-sp")
        .await
        .context("adopted backups are not offered again")?;
    console.shutdown().await
}
