//! Ransomware signals in the console: a tenant whose job's last run encrypted 30 % of a tree
//! and renamed as many files to `.locked` sees, first thing on Home, the warning that the run
//! looks like ransomware at work, with why (prepared through the CLI on the same data home,
//! against a real gateway), and the point that run made is marked in the list of points.

use std::time::Duration;

use anyhow::{Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home, run_cli};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_warns_of_a_run_that_looks_like_ransomware() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    for i in 0..100 {
        let text = format!("ledger line {i}: paid, filed and agreed by the board\n").repeat(60);
        std::fs::write(files.path().join(format!("ledger{i}.txt")), text)?;
    }
    let home = prepared_home(&gateway, ("hooli", "hooli-password-1"), files.path())?;
    run_cli(home.path(), &["job", "run", "docs"], None)?; // a quiet run for the history
    for i in 0..30u64 {
        std::fs::write(
            files.path().join(format!("ledger{i}.txt")),
            cloudkeep_tests::pseudo_random(4000, 900 + i),
        )?;
    }
    for i in 30..60u64 {
        std::fs::remove_file(files.path().join(format!("ledger{i}.txt")))?;
        std::fs::write(
            files.path().join(format!("ledger{i}.txt.locked")),
            cloudkeep_tests::pseudo_random(4000, 1900 + i),
        )?;
    }
    run_cli(home.path(), &["job", "run", "docs"], None)?;

    let console = Console::launch_in(home, &[]).await?;
    let warning = console
        .wait_text("#home-notices", "looks like ransomware", WAIT)
        .await?;
    ensure!(warning.contains("\"docs\""), "{warning}");
    ensure!(warning.contains("random-looking"), "{warning}");
    ensure!(warning.contains("renamed"), "{warning}");
    ensure!(
        warning.contains("the last clean one before it is kept"),
        "{warning}"
    );
    console.check_accessibility("home-suspicious").await?;
    console.screen("28-home-suspicious-run").await?;
    // The run's point is marked in the list of points.
    console.nav("points").await?;
    console
        .wait_for("#points-table [id^='point-suspicious-']")
        .await?;
    console.screen("28b-point-suspicious").await?;
    console.shutdown().await?;
    Ok(())
}
