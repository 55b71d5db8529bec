//! Restore tests in the console: a tenant runs "Test restore" on a job and sees it proven
//! restorable — on the job, in the jobs list's column, on Home and on the point itself; the SP
//! sees its tenant's standing. Then a stored blob is damaged at the SP: the next test fails,
//! Home warns first thing, and the SP's tenant list says so. Notifications are set in the
//! console and a test reaches a webhook on loopback.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home};

const WAIT: Duration = Duration::from_secs(30);

/// The largest file under `dir` (the pack holding most of the job's data).
fn largest_pack(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pack") {
                let len = e.metadata().ok()?.len();
                if best.as_ref().is_none_or(|(l, _)| len > *l) {
                    best = Some((len, p));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_proven_restorable_and_a_failed_test_warns_tenant_and_sp() -> Result<()> {
    cloudkeep_e2e::require_display()?;
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    // Twenty files in all: a test restores at least twenty, so every one, the scan among them.
    for i in 0..19 {
        std::fs::write(
            files.path().join(format!("memo{i}.txt")),
            format!("memo {i}: approved\n").repeat(40),
        )?;
    }
    // Most of the stored bytes: a scan, so damage at the SP lands in it.
    std::fs::write(
        files.path().join("scan.pdf"),
        cloudkeep_tests::pseudo_random(3 << 20, 5),
    )?;
    let home = prepared_home(&gateway, ("initech", "initech-password-1"), files.path())?;
    let console = Console::launch_in(home, &[]).await?;

    // ---- Not tested yet, then Test restore on the job.
    console.nav("jobs").await?;
    console
        .wait_text("#job-proof-docs", "Not tested yet", WAIT)
        .await?;
    console.click("#job-open-docs").await?;
    console.click("#job-restore-test").await?;
    console
        .wait_text("#job-view-proof-docs", "Proven", WAIT)
        .await
        .context("the job proven restorable after its test")?;
    console
        .wait_text("#job-sessions", "restore-test", WAIT)
        .await?;
    console.check_accessibility("job-proven").await?;
    console.screen("29-job-proven-restorable").await?;
    console.nav("jobs").await?;
    console.wait_text("#job-proof-docs", "Proven", WAIT).await?;
    console.nav("home").await?;
    console
        .wait_text("#home-proof-docs", "Proven", WAIT)
        .await?;
    console.nav("points").await?;
    console
        .wait_for("#points-table [id^='point-proven-']")
        .await?;
    console.screen("30-point-proven").await?;

    // ---- The SP sees the tenant's standing, never its content.
    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console
        .wait_text("#standing-initech", "Proven restorable since", WAIT)
        .await?;

    // ---- A stored blob damaged at the SP: the next test fails; Home warns first thing.
    let storage = gateway.dir.path().join("storage-initech");
    let pack = largest_pack(&storage).context("a pack in the SP's storage")?;
    let mut bytes = std::fs::read(&pack)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&pack, bytes)?;
    console.click("#mode-tenant").await?;
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    console.click("#job-restore-test").await?;
    console
        .wait_text("#job-view-proof-docs", "Restore test failed", WAIT)
        .await?;
    console.nav("home").await?;
    let warning = console
        .wait_text("#home-notices", "the restore test of \"docs\" failed", WAIT)
        .await?;
    ensure!(warning.contains("NOT restorable"), "{warning}");
    console
        .check_accessibility("home-restore-test-failed")
        .await?;
    console.screen("31-home-restore-test-failed").await?;
    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console
        .wait_text("#standing-initech", "Restore test failed (1 job)", WAIT)
        .await?;
    console.screen("32-sp-tenant-restore-test-failed").await?;

    // ---- Notifications set in the console; a test reaches the webhook.
    let hook = cloudkeep_tests::notify::Webhook::start();
    console.click("#mode-tenant").await?;
    console.nav("notifications").await?;
    console.click("#notify-use-webhook").await?;
    console.type_into("#notify-webhook", &hook.url).await?;
    console.click("#notify-save").await?;
    console.wait_for("#notify-saved").await?;
    console.click("#notify-test").await?;
    console
        .wait_text("#notify-tried", "webhook: sent", WAIT)
        .await?;
    hook.wait_for(&["\"event\":\"test\""]);
    console.check_accessibility("notifications").await?;
    console.screen("33-notifications").await?;
    console.shutdown().await?;
    Ok(())
}
