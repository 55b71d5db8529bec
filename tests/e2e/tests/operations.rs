//! The console's day-to-day operations against a real gateway, beyond the main story: the
//! SP's recycle bin (a point the tenant deletes is restored, then purged), usage export,
//! maintenance mode, a generated and an imported certificate (the tenant sees the change
//! and trusts it again), disabling and deleting a tenant; the tenant's subtenants (create,
//! quota, disable), a job edited, a point deleted, a job deleted. The `cloudkeep` CLI works
//! on the console's own data home along the way, and each shows what the other did.

use std::ops::Not;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, cli_tenant_job, noise, run_cli, same_fingerprint};
use cloudkeep_gateway::tls;
use fantoccini::Locator;
use serde_json::{Value, json};

const TENANT: &str = "globex";
const TENANT_PASSWORD: &str = "globex-password-1";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(10);

fn cli(home: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    run_cli(home, args, stdin)
}

fn cli_json(home: &Path, args: &[&str]) -> Result<Value> {
    let out = cli(home, args, None)?;
    serde_json::from_str(&out).with_context(|| format!("JSON from cloudkeep {args:?}: {out}"))
}

/// Waits until table `table` has `n` rows in its body.
async fn wait_rows(console: &Console, table: &str, n: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        console.settle().await?;
        let found = console
            .client
            .find_all(Locator::Css(&format!("{table} tbody tr")))
            .await?
            .len();
        if found == n {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "{table} has {found} rows, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens "More actions" of the oldest point in the list; returns its Delete button, which
/// was hidden until then.
async fn open_point_delete(console: &Console) -> Result<fantoccini::elements::Element> {
    let delete = console
        .client
        .find_all(Locator::Css("#points-table button[id^='point-delete-']"))
        .await?
        .pop()
        .context("a delete button per point")?;
    ensure!(
        !console.shown(&delete).await?,
        "Delete is not beside Browse and restore"
    );
    console
        .client
        .find_all(Locator::Css("#points-table details.more-actions > summary"))
        .await?
        .pop()
        .context("More actions per point")?
        .click()
        .await?;
    ensure!(console.shown(&delete).await?, "More actions shows Delete");
    Ok(delete)
}

/// Runs job `docs` from its page and waits for the end; returns the state line.
async fn run_docs(console: &Console, expect: &str) -> Result<String> {
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    console.click("#job-run:not([disabled])").await?;
    console
        .wait_text("#job-progress-state", expect, RUN_TIMEOUT)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sp_and_tenant_operations_stay_in_step_with_the_cli() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    let source = files.path().join("docs");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("a.txt"), b"first\n")?;
    std::fs::write(source.join("b.bin"), noise(200_000, 3))?;
    let storage = gateway.dir.path().join("storage-ops");

    let console = Console::launch_with(&[("CLOUDKEEP_SECRETS", "file")]).await?;
    let home = console.home.path().to_owned();
    console.connect_sp(&gateway).await?;
    console.add_folder_repo("main", &storage).await?;

    // The CLI shares the console's SP session: a tenant it creates is in the console's list.
    cli(
        &home,
        &[
            "sp",
            "tenant",
            "add",
            TENANT,
            "--password-stdin",
            "--quota",
            "main=1GiB",
            "--keep-deleted-days",
            "7",
            "--description",
            "made by the CLI",
        ],
        Some(TENANT_PASSWORD),
    )?;
    console.nav("sp-tenants").await?;
    console
        .wait_text("#sp-tenants-table", TENANT, WAIT)
        .await
        .context("a tenant the CLI created shows in the console")?;

    // The tenant side through the CLI, in the console's home: provider, job, a first run.
    cli_tenant_job(&home, &gateway, (TENANT, TENANT_PASSWORD), &source)?;

    console.click("#mode-tenant").await?;
    console.wait_for("body[data-mode='tenant']").await?;
    console.nav("jobs").await?;
    console
        .wait_text("#jobs-table", "Success", WAIT)
        .await
        .context("the CLI's run shows as the job's last result")?;

    // ---- Edit the job: an exclude added in the wizard is what the CLI then shows.
    console.click("#job-open-docs").await?;
    console.click("#job-edit").await?;
    console.wait_for("#job-wizard").await?;
    console.screen("69-job-edit").await?;
    for _ in 0..8 {
        if console
            .client
            .find(Locator::Css("#job-excludes"))
            .await
            .is_ok()
        {
            break;
        }
        console.next("job-wizard").await?;
        console.settle().await?;
    }
    console.type_into("#job-excludes", "*.tmp").await?;
    // Next through the remaining steps (on Options: fast compression, a weekly health check);
    // the last one saves and opens the job again.
    for _ in 0..8 {
        if let Ok(select) = console.client.find(Locator::Css("#job-compression")).await {
            select.select_by_value("fast").await?;
            console
                .find("#job-health-check")
                .await?
                .select_by_value("weekly")
                .await?;
            console.type_into("#job-retries", "5").await?;
        }
        let last = console.text_of("#job-wizard-next").await? != "Next";
        console.next("job-wizard").await?;
        if last {
            break;
        }
        console.settle().await?;
    }
    console.wait_for("#job-run").await?;
    let shown = cli_json(&home, &["job", "show", "docs", "--json"])?;
    ensure!(
        shown.to_string().contains("*.tmp"),
        "the edited exclude is the job's, as the CLI shows it: {shown}"
    );
    let spec = &shown["job"]["spec"];
    ensure!(
        spec["compression"] == "fast"
            && spec["retries"] == 5
            && spec["health_check"]["weekdays"] == json!(["sun"]),
        "the options set in the wizard are the job's: {spec}"
    );

    // ---- Stop: a run stopped half-way makes no restore point.
    std::fs::write(source.join("large.bin"), noise(150_000_000, 5))?;
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    console.click("#job-run:not([disabled])").await?;
    console.wait_for("#job-progress-figures").await?;
    console.click("#job-stop:not([disabled])").await?;
    let stopped = console
        .wait_text("#job-progress-state", "Stopped", RUN_TIMEOUT)
        .await?;
    console.screen("70-job-stopped").await?;
    std::fs::remove_file(source.join("large.bin"))?;
    let listed = cli_json(&home, &["points", "list", "--job", "docs", "--json"])?;
    ensure!(
        listed.as_array().map(Vec::len) == Some(1),
        "a stopped run ({stopped}) makes no point: {listed}"
    );

    // ---- A second point from the console, then the older one deleted (b.bin is only in
    // the older one: its space comes back once the point is purged).
    std::fs::write(source.join("c.txt"), b"second\n")?;
    std::fs::remove_file(source.join("b.bin"))?;
    run_docs(&console, "Success").await?;
    console.nav("points").await?;
    console.wait_for("#points-table").await?;
    wait_rows(&console, "#points-table", 2).await?;
    // Deleting is out of the row's primary actions: under "More actions", which says what
    // the provider's insider protection (7 days for this tenant) will do with the point.
    let older = open_point_delete(&console).await?;
    let note = console
        .text_of("#points-table details[open] .more-actions-body")
        .await?;
    ensure!(
        note.contains("keeps a deleted point 7 days"),
        "the delete area says the provider keeps the point: {note}"
    );
    console.screen("70b-point-more-actions").await?;
    older.click().await?;
    console.wait_for("dialog[open]").await?;
    console.screen("71-point-delete-confirm").await?;
    console.confirm().await?;
    console.wait_for("#point-deleted").await?;
    wait_rows(&console, "#points-table", 1).await?;
    let listed = cli_json(&home, &["points", "list", "--job", "docs", "--json"])?;
    ensure!(
        listed.as_array().map(Vec::len) == Some(1),
        "the CLI sees the deletion: {listed}"
    );

    // ---- SP: the deleted point is in the recycle bin; restore it, the tenant has it again.
    console.click("#mode-sp").await?;
    console.nav("sp-recycle").await?;
    console.wait_text("#sp-recycle-table", TENANT, WAIT).await?;
    console.screen("72-sp-recycle-bin-point").await?;
    console
        .click("#sp-recycle-table button[aria-label^='Restore point']")
        .await?;
    console
        .wait_text("#sp-recycle-table", "empty", WAIT)
        .await?;
    let listed = cli_json(&home, &["points", "list", "--job", "docs", "--json"])?;
    ensure!(
        listed.as_array().map(Vec::len) == Some(2),
        "the SP gave the point back: {listed}"
    );
    console.click("#mode-tenant").await?;
    console.nav("points").await?;
    console.click("#points-refresh").await?;
    wait_rows(&console, "#points-table", 2)
        .await
        .context("the console shows the point given back")?;
    // Deleted again, and this time purged for good.
    let older = open_point_delete(&console).await?;
    older.click().await?;
    console.confirm().await?;
    console.wait_for("#point-deleted").await?;
    console.click("#mode-sp").await?;
    console.nav("sp-recycle").await?;
    console
        .click("#sp-recycle-table details.more-actions > summary")
        .await?;
    console
        .click("#sp-recycle-table button[aria-label^='Purge point']")
        .await?;
    console.wait_for("dialog[open]").await?;
    console.confirm().await?;
    console
        .wait_text("#sp-recycle-table", "empty", WAIT)
        .await?;
    let bin = cli_json(&home, &["sp", "recycle-bin", "list", "--json"])?;
    ensure!(
        bin.as_array().is_some_and(Vec::is_empty),
        "purged for good: {bin}"
    );

    // ---- The job's health check and keys from its page, as the CLI sees them.
    console.click("#mode-tenant").await?;
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    console.click("#job-check").await?;
    console
        .wait_text("#job-check-progress-state", "Success", RUN_TIMEOUT)
        .await?;
    console
        .wait_text("#job-keys-table", "password", WAIT)
        .await?;
    let key_file = files.path().join("docs.recovery");
    console
        .invoke(
            "job_key_recovery",
            json!({ "name": "docs", "path": key_file.display().to_string(), "label": "e2e" }),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("recovery key: {e}"))?;
    ensure!(
        std::fs::read_to_string(&key_file)?.starts_with("CKRK"),
        "the recovery key is in its file"
    );
    let slots = cli(&home, &["job", "key", "docs", "list"], None)?;
    ensure!(slots.contains("e2e"), "the CLI lists the new slot: {slots}");
    console.screen("72a-job-check-and-keys").await?;

    // ---- SP admins: added and removed in the console, as the CLI lists them.
    console.click("#mode-sp").await?;
    console.nav("sp-admins").await?;
    console.type_into("#admin-name", "ops").await?;
    console
        .type_into("#admin-password", "ops-password-123")
        .await?;
    console.click("#admin-add").await?;
    console.wait_text("#sp-admins-table", "ops", WAIT).await?;
    let admins = cli(&home, &["sp", "admin", "list"], None)?;
    ensure!(admins.contains("ops"), "{admins}");
    console.screen("72d-sp-admins").await?;
    console.click("#admin-more-ops > summary").await?;
    console.click("#admin-remove-ops").await?;
    console.confirm().await?;
    let deadline = std::time::Instant::now() + WAIT;
    while cli(&home, &["sp", "admin", "list"], None)?.contains("ops") {
        ensure!(std::time::Instant::now() < deadline, "ops is removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // ---- Usage: the table and the CSV export (the save dialog's answer given directly).
    // The purged point's b.bin is reclaimable, as the SP's pass measures it.
    console.nav("sp-usage").await?;
    console.wait_text("#sp-usage-table", TENANT, WAIT).await?;
    // Bars with the share of each quota, and totals per cloud repository.
    let totals = console.text_of("#sp-usage-totals").await?;
    ensure!(
        totals.contains("main") && totals.contains(" %)"),
        "Usage totals the repository with its share used: {totals}"
    );
    ensure!(
        console
            .client
            .find_all(Locator::Css("#sp-usage-table [role='meter']"))
            .await?
            .is_empty()
            .not(),
        "a bar per quota"
    );
    console.click("#usage-reclaim").await?;
    console
        .wait_text("#usage-saved", "would free", WAIT)
        .await?;
    let usage = cli_json(&home, &["sp", "usage", "--json"])?;
    let reclaimable = usage[0]["reclaimable_bytes"].as_i64().unwrap_or(0);
    ensure!(
        reclaimable >= 190_000,
        "the purged point's data is reclaimable: {usage}"
    );
    let shown = console.text_of("#sp-usage-table").await?;
    ensure!(
        shown.contains("Reclaimable") && shown.contains(&fmt_kib(reclaimable)),
        "the console shows it: {shown}"
    );
    console.screen("72b-sp-usage-reclaimable").await?;
    // The tenant sees it on the job and compacts; the SP's figure drops with it.
    console.click("#mode-tenant").await?;
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    console.wait_text("#space-reclaimable", "KiB", WAIT).await?;
    console.click("#job-compact").await?;
    console
        .wait_text("#job-space-result", "Compacted", RUN_TIMEOUT)
        .await?;
    let usage = cli_json(&home, &["sp", "usage", "--json"])?;
    ensure!(
        usage[0]["reclaimable_bytes"].as_i64().unwrap_or(i64::MAX) < reclaimable / 10,
        "compacted: {usage}"
    );
    console.screen("72c-job-compacted").await?;
    console.click("#mode-sp").await?;
    console.nav("sp-usage").await?;
    console.wait_text("#sp-usage-table", TENANT, WAIT).await?;
    let csv = files.path().join("usage.csv");
    let exported = console
        .invoke(
            "sp_usage_export",
            json!({ "path": csv.display().to_string() }),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("usage export failed: {e}"))?;
    let text = std::fs::read_to_string(&csv)?;
    ensure!(
        exported == json!(1) && text.lines().count() == 2 && text.contains(TENANT),
        "one row of usage exported: {exported} {text}"
    );

    // ---- Maintenance mode: the tenant's run is refused with the SP's message.
    console.nav("sp-maintenance").await?;
    console
        .type_into("#maintenance-message", "Disk upgrade until noon")
        .await?;
    console.click("#maintenance-toggle").await?;
    console.confirm().await?;
    console
        .wait_text("#maintenance-state", "Disk upgrade until noon", WAIT)
        .await?;
    console.screen("73-sp-maintenance-on").await?;
    console.click("#mode-tenant").await?;
    let refused = run_docs(&console, "Failed").await?;
    ensure!(
        refused.contains("maintenance") && refused.contains("Disk upgrade until noon"),
        "the tenant sees why: {refused}"
    );
    console.click("#mode-sp").await?;
    console.nav("sp-maintenance").await?;
    console.click("#maintenance-toggle").await?;
    console
        .wait_text("#maintenance-state", "normally", WAIT)
        .await?;

    // ---- Storage check: a pack the disk lost is found and forgotten; the tenant's next run
    // sends its data again, and a second check finds nothing.
    let lost = files_with_extension(&storage, "pack");
    ensure!(
        !lost.is_empty(),
        "packs are stored under {}",
        storage.display()
    );
    std::fs::remove_file(&lost[0])?;
    console.click("#check-run").await?;
    console
        .wait_text("#check-state", "1 problem found and marked", WAIT)
        .await?;
    let issues = console.text_of("#check-issues").await?;
    ensure!(issues.contains("Lost"), "the lost pack is listed: {issues}");
    console.screen("74-sp-storage-check").await?;
    console.click("#mode-tenant").await?;
    let healed = run_docs(&console, "Success").await?;
    ensure!(healed.contains("Success"), "{healed}");
    console.click("#mode-sp").await?;
    console.nav("sp-maintenance").await?;
    console.click("#check-deep").await?;
    console.click("#check-run").await?;
    console
        .wait_text("#check-state", "holds what the database records", WAIT)
        .await?;
    // The lease grace period, set here, is what the CLI reads.
    console.type_into("#lease-grace-days", "10").await?;
    console.click("#lease-grace-save").await?;
    console
        .wait_text("#lease-grace-saved", "for 10 days", WAIT)
        .await?;
    let settings = cli_json(&home, &["sp", "settings", "--json"])?;
    ensure!(settings["lease_grace_days"] == 10, "{settings}");

    // ---- Certificate: generated, then imported; the tenant sees the change and trusts again.
    console.nav("sp-certificate").await?;
    console.click("#cert-generate").await?;
    console.confirm().await?;
    let generated = loop {
        console.settle().await?;
        let now = console.text_of("#cert-fingerprint").await?;
        if !same_fingerprint(&now, &gateway.fingerprint) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pair = tls::generate_self_signed(&["127.0.0.1".to_owned()])?;
    let imported_fp = tls::fingerprint(&tls::load(&pair)?.cert[0]);
    let (chain_path, key_path) = (files.path().join("chain.pem"), files.path().join("key.pem"));
    std::fs::write(&chain_path, &pair.chain)?;
    std::fs::write(&key_path, &pair.key)?;
    console
        .type_into("#cert-chain", &chain_path.display().to_string())
        .await?;
    console
        .type_into("#cert-key", &key_path.display().to_string())
        .await?;
    console.click("#cert-import").await?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        console.settle().await?;
        let now = console.text_of("#cert-fingerprint").await?;
        if same_fingerprint(&now, &imported_fp) {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the imported certificate is served: {now} (generated {generated})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    console.screen("74-sp-certificate-imported").await?;

    console.click("#mode-tenant").await?;
    console.nav("providers").await?;
    console.click("#provider-rescan-sp").await?;
    console.wait_for("#provider-trust-sp").await?;
    let problem = console.text_of("#provider-sp").await?;
    ensure!(
        problem.contains("changed") && problem.contains(&gateway.fingerprint[..8]),
        "both fingerprints are shown: {problem}"
    );
    console.screen("75-provider-certificate-changed").await?;
    console.click("#provider-trust-sp").await?;
    console.confirm().await?;
    // Trusted once the card shows no problem; the CLI then uses the same pin.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let pinned = cli_json(&home, &["provider", "show", "sp", "--json"])?;
        let pin = pinned["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if same_fingerprint(&pin, &imported_fp) {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the CLI uses the newly trusted pin {imported_fp} (was {}): {pinned}",
            gateway.fingerprint
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    console
        .wait_for("#provider-sp:not(:has(.error-box))")
        .await?;
    run_docs(&console, "Success").await?;

    // ---- A rollover announced in the console: the tenant learns the next certificate when
    // it connects, and after the switch its next run follows it with no one asked.
    console.click("#mode-sp").await?;
    console.nav("sp-certificate").await?;
    console.click("#cert-next").await?;
    let next = console
        .wait_text("#cert-next-fingerprint", ":", WAIT)
        .await?;
    console.screen("75b-sp-certificate-next").await?;
    cli(&home, &["provider", "rescan", "sp"], None)?;
    let learnt = cli_json(&home, &["provider", "show", "sp", "--json"])?;
    ensure!(
        same_fingerprint(
            learnt["cert"]["next"].as_str().unwrap_or_default(),
            next.trim()
        ),
        "the tenant learnt the announced certificate {next}: {learnt}"
    );
    console.click("#cert-rollover").await?;
    console.wait_for("#cert-rolled-over").await?;
    console.click("#mode-tenant").await?;
    run_docs(&console, "Success").await?;
    let log = cli(&home, &["job", "log", "docs"], None)?;
    ensure!(
        log.contains("announced in advance") && log.contains(next.trim()),
        "the run followed the rollover and says so: {log}"
    );

    // ---- The SP changes the tenant's password: refused until the tenant gives the new one
    // under Change password, which logs in with it before storing it.
    cli(
        &home,
        &["sp", "tenant", "set", TENANT, "--password-stdin"],
        Some("globex-password-2\n"),
    )?;
    console.nav("providers").await?;
    console.click("#provider-rescan-sp").await?;
    console
        .wait_text("#provider-sp", "changed your password", WAIT)
        .await?;
    console.click("#provider-credentials-sp").await?;
    console
        .type_into("#provider-password-sp", "not-the-new-one")
        .await?;
    console.click("#provider-credentials-save-sp").await?;
    console
        .wait_text("#provider-sp", "Sign-in refused", WAIT)
        .await
        .context("a wrong password is refused and nothing is stored")?;
    console.screen("76-provider-change-password").await?;
    console
        .type_into("#provider-password-sp", "globex-password-2")
        .await?;
    console.click("#provider-credentials-save-sp").await?;
    console
        .wait_for("#provider-sp:not(:has(.error-box))")
        .await?;
    run_docs(&console, "Success").await?;

    // ---- Subtenants: create one with a quota carved from the tenant's, change it, disable it.
    console.nav("subtenants").await?;
    console.type_into("#sub-name", "laptop").await?;
    console.click("#sub-generate").await?;
    console.type_into("#sub-quota", "0.5").await?;
    console.click("#sub-create").await?;
    console
        .wait_text("#subtenants-table", "512.0 MiB", WAIT)
        .await?;
    console.click("#sub-quota-laptop").await?;
    console.type_into("#dialog-quota", "0.25").await?;
    console.confirm().await?;
    console
        .wait_text("#subtenants-table", "256.0 MiB", WAIT)
        .await?;
    console.click("#sub-toggle-laptop").await?;
    console
        .wait_text("#subtenants-table", "Disabled", WAIT)
        .await?;
    console.screen("76-subtenants-managed").await?;
    let subs = cli(&home, &["subtenant", "list", "--provider", "sp"], None)?;
    ensure!(
        subs.contains("laptop") && subs.contains("disabled"),
        "the CLI lists the console's subtenant: {subs}"
    );
    console.click("#mode-sp").await?;
    console.nav("sp-subtenants").await?;
    console
        .wait_text("#sp-subtenants-table", &format!("{TENANT}/laptop"), WAIT)
        .await
        .context("the SP sees the tenant's subtenant")?;

    // ---- The SP disables the tenant: its runs are refused until enabled again.
    console.nav("sp-tenants").await?;
    console.click(&format!("#tenant-open-{TENANT}")).await?;
    console.click("#tenant-toggle").await?;
    console.confirm().await?;
    console.wait_text("#tenant-state", "disabled", WAIT).await?;
    console.click("#mode-tenant").await?;
    let refused = run_docs(&console, "Failed").await?;
    ensure!(
        refused.contains("disabled"),
        "a disabled tenant is told so: {refused}"
    );
    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console.click(&format!("#tenant-open-{TENANT}")).await?;
    console.click("#tenant-toggle").await?;
    console.wait_text("#tenant-state", "enabled", WAIT).await?;

    // ---- The job's folder is gone (moved away, a drive unplugged): the run fails, says
    // which folder and what to do, and makes no restore point.
    console.click("#mode-tenant").await?;
    let before = cli_json(&home, &["points", "list", "--job", "docs", "--json"])?;
    let moved = files.path().join("docs-moved");
    std::fs::rename(&source, &moved)?;
    let gone = run_docs(&console, "Failed").await?;
    std::fs::rename(&moved, &source)?;
    ensure!(
        gone.contains(&source.display().to_string())
            && gone.contains("edit the job's sources or reconnect the drive"),
        "a run with its source gone says which and what to do: {gone}"
    );
    console.screen("79-job-source-gone").await?;
    let after = cli_json(&home, &["points", "list", "--job", "docs", "--json"])?;
    ensure!(
        after.as_array().map(Vec::len) == before.as_array().map(Vec::len),
        "a run with nothing to back up makes no point: {before} then {after}"
    );
    console.nav("points").await?;
    console.click("#points-refresh").await?;
    console.wait_for("#points-table").await?;
    ensure!(
        !console.text_of("#points-table").await?.contains("0 B"),
        "no empty point is listed"
    );
    console.click("#mode-sp").await?;

    // ---- The tenant deletes its job (points stay); the SP deletes the tenant with its data.
    console.click("#mode-tenant").await?;
    console.nav("jobs").await?;
    console.click("#job-open-docs").await?;
    ensure!(
        !console.shown(&console.find("#job-delete").await?).await?,
        "Delete is not in the job's primary toolbar"
    );
    console.click("#job-more > summary").await?;
    console.click("#job-delete").await?;
    console.confirm().await?;
    console.wait_for("#job-new").await?;
    ensure!(
        console
            .client
            .find(Locator::Css("#job-open-docs"))
            .await
            .is_err(),
        "the job is gone from the list"
    );
    let jobs = cli(&home, &["job", "list"], None)?;
    ensure!(!jobs.contains("docs"), "and from the CLI's: {jobs}");

    console.click("#mode-sp").await?;
    console.nav("sp-tenants").await?;
    console.click(&format!("#tenant-open-{TENANT}")).await?;
    console.click("#tenant-more > summary").await?;
    console.click("#tenant-delete").await?;
    console.wait_for("dialog[open] #dialog-with-data").await?;
    console.screen("77-sp-tenant-delete-confirm").await?;
    console.confirm().await?;
    console.wait_for("#tenant-new").await?;
    let tenants = cli_json(&home, &["sp", "tenant", "list", "--json"])?;
    ensure!(
        !tenants.to_string().contains(TENANT),
        "the tenant is gone: {tenants}"
    );
    console.shutdown().await
}

/// Files under `dir` (recursively) ending in `.ext`.
/// Bytes as the console shows KiB figures ("195.3 KiB"), to find them in a table.
fn fmt_kib(bytes: i64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn files_with_extension(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out
}
