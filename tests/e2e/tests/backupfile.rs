//! Backup files in the console: Export to a file on a point of an encrypted job (the file's
//! own password, typed twice), checked by the CLI's `verify --file`; then, on a new computer
//! with no provider and no job, Open a backup file shows what the file holds, opens it with
//! its password (the job's is refused) and restores through the usual wizard, byte for byte.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, noise, prepared_home, run_cli};

const TENANT: &str = "initech";
const TENANT_PASSWORD: &str = "initech-password-1";
const FILE_PASSWORD: &str = "the file's own password";
const WAIT: Duration = Duration::from_secs(20);
const RUN: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_point_exported_in_the_console_restores_on_a_computer_without_provider() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    let source = files.path().join("docs");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("report.bin"), noise(400_000, 21))?;
    let original = std::fs::read(source.join("report.bin"))?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), &source)?;
    let console = Console::launch_in(home, &[]).await?;

    // ---- Export to a file: where, the file's password twice, progress, result.
    console.nav("points").await?;
    console.click("button[id^='point-export-']").await?;
    console.wait_for("#export").await?;
    let file = files.path().join("docs.ckb");
    console
        .type_into("#export-to", &file.display().to_string())
        .await?;
    console.screen("file-01-export-where").await?;
    console.next("export").await?;
    console.type_into("#export-password", FILE_PASSWORD).await?;
    console
        .type_into("#export-password2", "something else")
        .await?;
    console.next("export").await?;
    console
        .wait_text("#export-password2-error", "differ", WAIT)
        .await?;
    console
        .type_into("#export-password2", FILE_PASSWORD)
        .await?;
    console.check_accessibility("export-password").await?;
    console.next("export").await?;
    let result = console
        .wait_text("#export-result", "Exported to", RUN)
        .await?;
    ensure!(
        result.contains(&file.display().to_string()),
        "the result names the file: {result}"
    );
    console.screen("file-02-exported").await?;
    let checked = run_cli(
        console.home.path(),
        &["verify", "--file", &file.display().to_string()],
        Some(FILE_PASSWORD),
    )?;
    ensure!(checked.contains("no damage found"), "{checked}");
    console.shutdown().await?;

    // ---- A new computer: no provider, no job. Open a backup file, restore from it.
    let console = Console::launch().await?;
    console.nav("points").await?;
    console.click("#points-open-file").await?;
    console
        .type_into("#file-path", &file.display().to_string())
        .await?;
    console.click("#file-read").await?;
    let facts = console.wait_text("#file-job", "docs", WAIT).await?;
    ensure!(facts.contains("docs"), "{facts}");
    console
        .type_into("#file-password", "a long job passphrase")
        .await?;
    console.click("#file-open").await?;
    console
        .wait_text(".error-slot", "not the job's", WAIT)
        .await
        .context("the job's password does not open the file, and it says so")?;
    console.type_into("#file-password", FILE_PASSWORD).await?;
    console.check_accessibility("open-file").await?;
    console.screen("file-03-open").await?;
    console.click("#file-open").await?;
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
        .wait_text("#restore-result", "Restored 1 file", RUN)
        .await?;
    console.screen("file-04-restored").await?;
    let copy = std::fs::read(target.join(source.strip_prefix("/")?).join("report.bin"))
        .context("restored with its full path below the folder")?;
    ensure!(copy == original, "byte-identical from the file");
    console.next("restore").await?;
    console.wait_for("#points-open-file").await?;
    console.shutdown().await
}
