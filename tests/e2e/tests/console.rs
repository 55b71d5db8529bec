//! The Cloudkeep Console end to end: the real binary, driven through WebDriver.

use anyhow::Result;
use cloudkeep_e2e::Console;
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::json;

/// The window opens, the About panel shows the version `cloudkeep-model` reports through
/// the `app_info` command, and the console switches between tenant and SP mode by mouse
/// and by keyboard. Leaves a screenshot of each mode.
#[tokio::test(flavor = "multi_thread")]
async fn about_shows_core_version_and_modes_switch() -> Result<()> {
    let console = Console::launch().await?;
    let c = &console.client;

    assert_eq!(c.title().await?, "Cloudkeep Console");

    // A fresh console opens on its welcome screen; About is one click away.
    console.wait_for("#welcome-add").await?;
    console.click("#nav-about").await?;
    let shown = console.text_of("#about-version").await?;
    let reported = console.invoke("app_info", json!({})).await?;
    let reported = reported.map_err(|e| anyhow::anyhow!("app_info failed: {e}"))?;
    assert_eq!(shown, reported["version"].as_str().unwrap_or_default());
    assert_eq!(shown, cloudkeep_model::VERSION);
    assert_eq!(
        console.text_of("#about-data-folder").await?,
        console.home.path().display().to_string(),
        "the console uses the CLOUDKEEP_HOME it was started with"
    );

    // Tenant mode first.
    console.wait_for("body[data-mode='tenant']").await?;
    assert_eq!(console.text_of("#view-mode").await?, "Tenant mode");
    assert_eq!(console.text_of("#nav-title").await?, "Tenant");
    let tenant_radio = c.find(Locator::Id("mode-tenant")).await?;
    assert_eq!(
        tenant_radio.attr("aria-checked").await?.as_deref(),
        Some("true")
    );
    let tenant_png = console.screenshot("console-tenant-mode").await?;

    // SP mode by mouse.
    c.find(Locator::Id("mode-sp")).await?.click().await?;
    console.wait_for("body[data-mode='sp']").await?;
    assert_eq!(
        console.text_of("#view-mode").await?,
        "Service provider mode"
    );
    assert_eq!(
        console.text_of("#about-mode").await?,
        "Service provider mode"
    );
    assert_eq!(console.text_of("#nav-title").await?, "Service provider");
    let sp_radio = c.find(Locator::Id("mode-sp")).await?;
    assert_eq!(
        sp_radio.attr("aria-checked").await?.as_deref(),
        Some("true")
    );
    assert_eq!(
        tenant_radio.attr("aria-checked").await?.as_deref(),
        Some("false")
    );
    assert_eq!(
        console.text_of("#about-version").await?,
        cloudkeep_model::VERSION
    );
    let sp_png = console.screenshot("console-sp-mode").await?;
    assert_ne!(
        std::fs::read(&tenant_png)?,
        std::fs::read(&sp_png)?,
        "the two modes look different"
    );

    // Back to tenant mode by keyboard: arrow keys move within the mode radio group.
    sp_radio.send_keys(&Key::Left.to_string()).await?;
    console.wait_for("body[data-mode='tenant']").await?;
    let focused = c.active_element().await?;
    assert_eq!(focused.attr("id").await?.as_deref(), Some("mode-tenant"));

    console.shutdown().await
}

/// The app's commands are permission-checked (the page cannot call what its capability
/// does not grant), errors arrive as `{kind, message}`, and the Logs section shows the
/// console's own rotating log file, reached by keyboard.
#[tokio::test(flavor = "multi_thread")]
async fn commands_are_checked_and_logs_are_shown() -> Result<()> {
    let console = Console::launch().await?;
    let c = &console.client;

    let err = console
        .invoke("log_tail", json!({ "lines": 0 }))
        .await?
        .expect_err("zero lines is refused");
    assert_eq!(err["kind"], "bad_request", "{err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains("1 to 5000"), "says what to do: {message}");

    let denied = console
        .invoke(
            "plugin:window|set_title",
            json!({ "label": "main", "value": "pwned" }),
        )
        .await?
        .expect_err("the window plugin is not granted to the page");
    assert!(
        denied.to_string().contains("not allowed"),
        "refused by the permission check: {denied}"
    );
    assert_eq!(c.title().await?, "Cloudkeep Console");

    // The Content-Security-Policy is enforced: an injected inline script does not run.
    let ran = c
        .execute(
            r#"
            const s = document.createElement('script');
            s.textContent = 'window.__cspBreached = true;';
            document.body.append(s);
            return window.__cspBreached === true;
            "#,
            vec![],
        )
        .await?;
    assert_eq!(
        ran,
        json!(false),
        "an inline script ran: the CSP is not enforced"
    );

    // Keyboard: focus the About entry, arrow down to Logs, Enter opens it and focus moves
    // to the section's heading.
    let about = c.find(Locator::Id("nav-about")).await?;
    about.send_keys(&Key::Down.to_string()).await?;
    let focused = c.active_element().await?;
    assert_eq!(focused.attr("id").await?.as_deref(), Some("nav-logs"));
    focused.send_keys(&Key::Enter.to_string()).await?;
    console.wait_for("#nav-logs[aria-current='page']").await?;
    assert_eq!(
        c.active_element().await?.attr("id").await?.as_deref(),
        Some("view-heading")
    );

    let deadline = std::time::Instant::now() + cloudkeep_e2e::UI_TIMEOUT;
    loop {
        let lines = console.text_of("#log-lines").await?;
        if lines.contains("console starting") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the console's start line never showed in Logs: {lines:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        c.find(Locator::Id("log-refresh")).await?.click().await?;
    }
    let source = console.text_of("#log-file").await?;
    assert!(
        source.contains(&console.home.path().join("logs").display().to_string()),
        "{source}"
    );
    console.screenshot("console-logs").await?;
    console.shutdown().await
}
