//! How the console looks beyond the default: the dark theme when the system asks for one
//! (GTK's `Adwaita:dark`, which WebKitGTK reports as `prefers-color-scheme: dark`) and
//! 150 % text scaling (`GDK_DPI_SCALE=1.5`, which WebKitGTK applies as page zoom: the
//! 1100 × 720 window is then a 733 × 480 CSS-pixel page). Every section of both modes is
//! visited on a data home with a provider, a job and a restore point: each screen is saved,
//! checked with axe-core (colour contrast included) and must not scroll sideways.

use anyhow::{Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home};
use fantoccini::key::Key;
use serde_json::Value;

const TENANT: &str = "initech";
const TENANT_PASSWORD: &str = "initech-password-1";

const TENANT_SECTIONS: &[&str] = &[
    "home",
    "providers",
    "jobs",
    "points",
    "sessions",
    "subtenants",
    "notifications",
    "about",
    "logs",
];
const SP_SECTIONS: &[&str] = &[
    "sp-tenants",
    "sp-subtenants",
    "sp-repos",
    "sp-gateways",
    "sp-certificate",
    "sp-usage",
    "sp-recycle",
    "sp-maintenance",
    "sp-notifications",
];

async fn page_figures(console: &Console) -> Result<Value> {
    Ok(console
        .client
        .execute(
            "const painted = [document.querySelector('.app'), document.body, document.documentElement]
                 .map((el) => el && getComputedStyle(el).backgroundColor)
                 .find((c) => c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') || 'rgb(255, 255, 255)';
             const rgb = painted.match(/[0-9.]+/g).map(Number);
             const content = document.querySelector('.content');
             return { dark: matchMedia('(prefers-color-scheme: dark)').matches, background: painted,
                      width: innerWidth,
                      sideways: Math.max(document.documentElement.scrollWidth - innerWidth,
                                         content ? content.scrollWidth - content.clientWidth : 0),
                      luminance: (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255 };",
            vec![],
        )
        .await?)
}

/// Visits every section of both modes by keyboard alone (WebKitWebDriver's pointer clicks
/// miss under page zoom; a user's keyboard does not): screenshot, axe-core, no sideways
/// scrolling.
async fn every_screen(console: &Console, prefix: &str) -> Result<()> {
    for section in TENANT_SECTIONS {
        visit(console, prefix, section).await?;
    }
    // The mode switch is a radio group: an arrow key moves to the other mode.
    console
        .find("#mode-tenant")
        .await?
        .send_keys(&Key::Right.to_string())
        .await?;
    console.wait_for("body[data-mode='sp']").await?;
    for section in SP_SECTIONS {
        visit(console, prefix, section).await?;
    }
    Ok(())
}

async fn visit(console: &Console, prefix: &str, section: &str) -> Result<()> {
    console
        .find(&format!("#nav-{section}"))
        .await?
        .send_keys(&Key::Enter.to_string())
        .await?;
    console
        .wait_for(&format!("#nav-{section}[aria-current='page']"))
        .await?;
    console.screen(&format!("{prefix}-{section}")).await?;
    let figures = page_figures(console).await?;
    ensure!(
        figures["sideways"].as_f64().is_some_and(|s| s <= 1.0),
        "{prefix}: section {section} scrolls sideways: {figures}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dark_theme_follows_the_system_and_stays_readable() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    std::fs::write(files.path().join("notes.txt"), b"dark\n")?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), files.path())?;
    let console = Console::launch_in(home, &[("GTK_THEME", "Adwaita:dark")]).await?;
    let figures = page_figures(&console).await?;
    ensure!(
        figures["dark"] == Value::Bool(true)
            && figures["luminance"].as_f64().is_some_and(|l| l < 0.25),
        "a dark system theme gives a dark console: {figures}"
    );
    every_screen(&console, "dark").await?;
    console.shutdown().await?;

    // And the light theme by default, on the same data.
    let console = Console::launch_in(tempfile::tempdir()?, &[]).await?;
    let figures = page_figures(&console).await?;
    ensure!(
        figures["dark"] == Value::Bool(false)
            && figures["luminance"].as_f64().is_some_and(|l| l > 0.75),
        "a light system theme gives a light console: {figures}"
    );
    console.shutdown().await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_screen_fits_at_150_percent_scaling() -> Result<()> {
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    std::fs::write(files.path().join("notes.txt"), b"large\n")?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), files.path())?;
    let console = Console::launch_in(home, &[("GDK_DPI_SCALE", "1.5")]).await?;
    let figures = page_figures(&console).await?;
    ensure!(
        figures["width"].as_f64().is_some_and(|w| w < 800.0),
        "150 % scaling makes the page 1.5 times larger (fewer CSS pixels): {figures}"
    );
    every_screen(&console, "scale150").await?;
    console.shutdown().await
}
