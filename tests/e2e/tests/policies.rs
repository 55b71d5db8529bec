//! Backup policies in the console against a real gateway: the New policy wizard, a computer
//! added, its enrollment file written (the save dialog's answer given to the command the
//! dialog feeds), the real `cloudkeep agent` enrolled with it and run on its own data home,
//! and the computer's success shown after syncing from the provider; its restore points open
//! from the policy like a job's.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home, run_cli_env};
use fantoccini::Locator;
use serde_json::json;

const TENANT: &str = "umbrella";
const TENANT_PASSWORD: &str = "umbrella-password-1";
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_made_in_the_console_shows_its_agents_result() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    std::fs::write(files.path().join("seed.txt"), b"seed\n")?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), files.path())?;
    let console = Console::launch_in(home, &[]).await?;

    // ---- New policy wizard.
    console.nav("policies").await?;
    console.screen("80-policies-empty").await?;
    console.click("#policy-new").await?;
    console.type_into("#policy-name", "laptops").await?;
    console.screen("81-new-policy-name").await?;
    console.next("policy-wizard").await?;
    console.type_into("#policy-sources", "~/data").await?;
    console.screen("82-new-policy-sources").await?;
    console.next("policy-wizard").await?;
    console.type_into("#policy-quota", "0.5").await?;
    console.screen("83-new-policy-target").await?;
    console.next("policy-wizard").await?;
    console.wait_for("#job-at").await?;
    console.next("policy-wizard").await?;
    console.wait_for("#job-keep-last").await?;
    console.next("policy-wizard").await?;
    // Proven every Sunday by default, as a new job is.
    let when = console
        .find("#restore-test-schedule")
        .await?
        .prop("value")
        .await?;
    ensure!(when.as_deref() == Some("weekly"), "{when:?}");
    console.next("policy-wizard").await?;
    console
        .type_into("#job-password", "policy passphrase 1")
        .await?;
    console
        .type_into("#job-password2", "policy passphrase 1")
        .await?;
    console.click("#job-password-ack").await?;
    console.screen("84-new-policy-encryption").await?;
    console.next("policy-wizard").await?;
    console
        .wait_text("#summary-policy-name", "laptops", WAIT)
        .await?;
    console.screen("85-new-policy-summary").await?;
    console.next("policy-wizard").await?;
    console.wait_for("#policy-laptops").await?;
    console
        .wait_text("#policy-synced-laptops", "after synchronization", WAIT)
        .await?;

    // ---- A computer, and its enrollment file.
    console
        .type_into("#policy-computer-name-laptops", "pc1")
        .await?;
    console.click("#policy-computer-add-laptops").await?;
    console
        .wait_text("#policy-computers-laptops", "pc1", Duration::from_secs(30))
        .await?;
    console.screen("86-policy-computer-added").await?;
    let enroll = files.path().join("pc1.enroll");
    let code = console
        .invoke(
            "policy_enroll_file",
            json!({ "policy": "laptops", "computer": "pc1", "path": enroll.display().to_string() }),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("enrollment file: {e}"))?;
    let code = code.as_str().context("a one-time code")?.to_owned();
    ensure!(code.len() == 23, "a readable one-time code: {code}");

    // ---- The agent on "pc1": its own data home and user home.
    let agent_home = tempfile::tempdir()?;
    let user = tempfile::tempdir()?;
    std::fs::create_dir_all(user.path().join("data"))?;
    std::fs::write(user.path().join("data/thesis.txt"), b"chapter one\n")?;
    let env = [("HOME", user.path())];
    let enrolled = run_cli_env(
        agent_home.path(),
        &["agent", "enroll", &enroll.display().to_string()],
        Some(&code),
        &env,
    )?;
    ensure!(
        enrolled.contains("enrolled as computer \"pc1\""),
        "{enrolled}"
    );
    let ran = run_cli_env(
        agent_home.path(),
        &["agent", "run", "--once", "--now"],
        None,
        &env,
    )?;
    ensure!(ran.contains("backup success"), "{ran}");

    // ---- After syncing, the console shows the computer's result.
    console.click("#policy-sync-laptops").await?;
    console
        .wait_text("#policy-computers-laptops", "Success", WAIT)
        .await
        .context("the agent's success after sync")?;
    console
        .wait_text("#policy-synced-laptops", "Synchronized", WAIT)
        .await?;
    console.screen("87-policy-synced").await?;

    // ---- The policy edited in the console: the agent applies the new schedule next cycle.
    console.click("#policy-edit-laptops").await?;
    console.wait_for("#policy-sources").await?;
    console.next("policy-wizard").await?;
    console.wait_for("#policy-quota").await?;
    console.next("policy-wizard").await?;
    console
        .click("input[name='job-schedule'][value='every_hours']")
        .await?;
    console.type_into("#job-hours", "4").await?;
    console.screen("88-edit-policy-schedule").await?;
    for _ in 0..4 {
        let last = console.text_of("#policy-wizard-next").await? != "Next";
        console.next("policy-wizard").await?;
        if last {
            break;
        }
        console.settle().await?;
    }
    console
        .wait_text("#policy-schedule-laptops", "every 4 hours", WAIT)
        .await?;
    let cycle = run_cli_env(agent_home.path(), &["agent", "run", "--once"], None, &env)?;
    ensure!(cycle.contains("revision 2 (changed)"), "{cycle}");

    // ---- Its sessions, as its agent reported them.
    console
        .click("button[aria-label='Sessions of pc1']")
        .await?;
    console
        .wait_text("#computer-sessions", "Success", WAIT)
        .await?;
    console.screen("89-policy-computer-sessions").await?;
    console.nav("policies").await?;

    // ---- Its restore points open like a job's.
    console
        .click("button[aria-label='Restore points of pc1']")
        .await?;
    console.wait_for("#points-table").await?;
    let job = console.find("#points-job").await?.prop("value").await?;
    ensure!(
        job.as_deref() == Some("laptops-pc1"),
        "the computer's job is chosen: {job:?}"
    );
    console
        .wait_text("#points-table", "1", WAIT)
        .await
        .context("the agent's restore point")?;
    console.screen("90-policy-computer-points").await?;

    // ---- A restore on pc1 itself, ordered here: queued until pc1's agent runs its cycle,
    // then done there (the wizard offers no "original location" on this computer).
    std::fs::write(
        user.path().join("data/thesis.txt"),
        b"overwritten by mistake\n",
    )?;
    console.click("button[id^='point-restore-']").await?;
    console.next("restore").await?;
    console.click("#restore-whole").await?;
    console.next("restore").await?;
    console
        .wait_for("input[name='restore-dest'][value='computer']:checked")
        .await
        .context("the computer itself is the default destination")?;
    ensure!(
        console
            .client
            .find(Locator::Css("input[name='restore-dest'][value='original']"))
            .await
            .is_err(),
        "no original location on this computer for another computer's files"
    );
    console.screen("90b-policy-restore-destination").await?;
    console.next("restore").await?;
    console
        .click("input[name='restore-conflict'][value='overwrite']")
        .await?;
    console.next("restore").await?;
    console
        .wait_text("#restore-order-state", "Queued", WAIT)
        .await?;
    console.screen("90c-policy-restore-queued").await?;
    let cycle = run_cli_env(agent_home.path(), &["agent", "run", "--once"], None, &env)?;
    ensure!(cycle.contains("ordered restore"), "{cycle}");
    console
        .wait_text("#restore-order-state", "Done on pc1", WAIT)
        .await?;
    ensure!(
        std::fs::read(user.path().join("data/thesis.txt"))? == b"chapter one\n",
        "the agent restored pc1's file on pc1"
    );
    console.screen("90d-policy-restore-done").await?;
    console.next("restore").await?;
    console.wait_text("#restore-result", "1 file", WAIT).await?;
    console.next("restore").await?;

    // ---- Its job is the agent's to run: the console browses it, never runs it.
    console.nav("jobs").await?;
    console
        .wait_text("#jobs-table", "by the agent of pc1", WAIT)
        .await?;
    console.click("#job-open-laptops-pc1").await?;
    console.wait_for("#job-agent-note").await?;
    console.wait_for("#job-run[disabled]").await?;
    console.screen("91-policy-computer-job").await?;
    console.shutdown().await
}
