//! The console's image-level protection against a real gateway, on a real block device (a
//! loop device over a GPT disk image with ext4 and FAT volumes): New job with Backup mode
//! "Volume level" listing this computer's volumes, its first run, the Restore points screen
//! showing the point's disks and volumes, a file restored from inside a volume through the
//! usual file restore wizard, the Restore or export a disk wizard writing a VHDX that
//! `qemu-img check` accepts, and Publish (its volume mounted by the kernel, listed by the
//! CLI too) and Unpublish. Runs as root (loop devices), as the test command does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use cloudkeep_e2e::{Console, Gateway, noise, prepared_home};

const TENANT: &str = "initech";
const TENANT_PASSWORD: &str = "initech-password-1";
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(15);

fn tool(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("{program} (scripts/test installs it)"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A loop device over an image file, detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A 96 MiB GPT disk image: ext4 (48 MiB, made from `tree`) and FAT (the rest, `tree`'s
/// files copied in), attached as a loop device.
fn make_disk(dir: &Path, tree: &Path) -> Result<(PathBuf, Loop)> {
    let image = dir.join("disk.img");
    std::fs::File::create(&image)?.set_len(96 << 20)?;
    let s = image.display().to_string();
    tool(
        "sfdisk",
        &["-q", &s],
        Some("label: gpt\nsize=48MiB, type=L\ntype=U\n"),
    )?;
    let table: serde_json::Value = serde_json::from_str(&tool("sfdisk", &["--json", &s], None)?)?;
    let parts = table["partitiontable"]["partitions"]
        .as_array()
        .context("partitions")?
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap_or(0) * 512,
                p["size"].as_u64().unwrap_or(0) * 512,
            )
        })
        .collect::<Vec<_>>();
    for (i, (start, size)) in parts.iter().enumerate() {
        let vol = dir.join(format!("vol{i}.img"));
        std::fs::File::create(&vol)?.set_len(*size)?;
        let v = vol.display().to_string();
        if i == 0 {
            tool(
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-L",
                    "root",
                    "-d",
                    &tree.display().to_string(),
                    &v,
                ],
                None,
            )?;
        } else {
            tool("mkfs.vfat", &["-n", "EFI", &v], None)?;
            tool(
                "mcopy",
                &[
                    "-i",
                    &v,
                    "-s",
                    &tree.join("docs").display().to_string(),
                    "::/",
                ],
                None,
            )?;
        }
        let bytes = std::fs::read(&vol)?;
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&image)?
            .write_all_at(&bytes, *start)?;
    }
    let dev = tool("losetup", &["-f", "--show", &s], None)?
        .trim()
        .to_owned();
    Ok((image, Loop(dev)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_level_job_images_a_disk_restores_a_file_from_inside_and_exports_a_vhdx()
-> Result<()> {
    ensure!(
        tool("id", &["-u"], None)?.trim() == "0",
        "image-level tests need root (loop devices): run scripts/test"
    );
    let files = tempfile::tempdir()?;
    let tree = files.path().join("tree");
    std::fs::create_dir_all(tree.join("docs/deep"))?;
    let report = noise(300_000, 5);
    std::fs::write(tree.join("docs/deep/report.bin"), &report)?;
    std::fs::write(tree.join("docs/notes.txt"), "image-level\n")?;
    let (_image, disk) = make_disk(files.path(), &tree)?;
    let dev_name = Path::new(&disk.0)
        .file_name()
        .context("device name")?
        .to_string_lossy()
        .into_owned();

    let gateway = Gateway::start()?;
    let source = files.path().join("src");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("a.txt"), "a")?;
    let home = prepared_home(&gateway, (TENANT, TENANT_PASSWORD), &source)?;
    let console = Console::launch_in(home, &[]).await?;

    // ---- New job: Backup mode "Volume level", this computer's volumes listed.
    console.nav("jobs").await?;
    console.click("#job-new").await?;
    console.type_into("#job-name", "machine").await?;
    console.next("job-wizard").await?;
    console
        .click("input[name='job-mode'][value='volumes']")
        .await?;
    let listed = console.wait_text("#job-volumes", &disk.0, WAIT).await?;
    ensure!(
        listed.contains("disk image"),
        "the loop device is listed as a disk image: {listed}"
    );
    console.screen("image-01-backup-mode").await?;
    console.click(&format!("#job-volume-{dev_name}")).await?;
    console.next("job-wizard").await?;
    console.wait_for("#job-target").await?;
    console.next("job-wizard").await?;
    console.wait_for("#job-at").await?;
    console.next("job-wizard").await?;
    console.wait_for("#job-keep-last").await?;
    console.next("job-wizard").await?;
    console.wait_for("#job-compression").await?;
    console.next("job-wizard").await?;
    console
        .type_into("#job-password", "an image job passphrase")
        .await?;
    console
        .type_into("#job-password2", "an image job passphrase")
        .await?;
    console.click("#job-password-ack").await?;
    console.next("job-wizard").await?;
    console
        .wait_text("#spec-mode", "Volume level", WAIT)
        .await?;
    console.wait_text("#spec-volumes", &disk.0, WAIT).await?;
    console.next("job-wizard").await?;
    console
        .wait_text("#job-progress-state", "Success", RUN_TIMEOUT)
        .await?;
    console.screen("image-02-first-run").await?;

    // ---- Restore points: the point's disk and its volumes.
    console.nav("points").await?;
    let select = console.find("#points-job").await?;
    select.select_by_value("machine").await?;
    let disks = console
        .wait_text("ul.disks", &format!("{dev_name}p1"), RUN_TIMEOUT)
        .await?;
    ensure!(
        disks.contains("ext4")
            && disks.contains(&format!("{dev_name}p2"))
            && disks.contains("vfat"),
        "the point lists its volumes with their file systems: {disks}"
    );
    console.screen("image-03-points-volumes").await?;

    // ---- A file from inside the ext4 volume, through the usual wizard (found by search).
    console.click("button[id^='point-restore-']").await?;
    console.wait_for("#restore").await?;
    console.next("restore").await?;
    console.type_into("#restore-find", "report.bin").await?;
    console.click("#restore-find-go").await?;
    let inside = format!("/{dev_name}/{dev_name}p1/docs/deep/report.bin");
    console.wait_text("#restore-hits", &inside, WAIT).await?;
    console
        .click(&format!("#restore-hits input[data-path=\"{inside}\"]"))
        .await?;
    console.screen("image-04-restore-items").await?;
    console.next("restore").await?;
    let restored = files.path().join("restored");
    console
        .type_into("#restore-folder", &restored.display().to_string())
        .await?;
    console.next("restore").await?;
    console.next("restore").await?;
    console
        .wait_text("#restore-result", "Restored 1 file", RUN_TIMEOUT)
        .await?;
    ensure!(
        std::fs::read(restored.join("report.bin"))? == report,
        "the file from inside the volume is byte-identical"
    );
    console.next("restore").await?;

    // ---- Export the disk as a VHDX through the wizard.
    console.wait_for("#points-table").await?;
    console.click("button[id^='point-image-']").await?;
    console.wait_for("#image-restore").await?;
    console.next("image-restore").await?;
    console
        .click("input[name='image-format'][value='vhdx']")
        .await?;
    let vhdx = files.path().join("machine.vhdx");
    console
        .type_into("#image-to", &vhdx.display().to_string())
        .await?;
    console.screen("image-05-export-where").await?;
    console.next("image-restore").await?;
    console.wait_text("#image-summary", "VHDX", WAIT).await?;
    console.next("image-restore").await?;
    console
        .wait_text("#image-result", "written to", RUN_TIMEOUT)
        .await?;
    console.screen("image-06-exported").await?;
    let checked = tool(
        "qemu-img",
        &["check", "-f", "vhdx", &vhdx.display().to_string()],
        None,
    )?;
    ensure!(checked.contains("No errors"), "qemu-img check: {checked}");
    // Its size is the disk's (qemu-img compare against the raw disk is in the CLI suite).
    let info = tool(
        "qemu-img",
        &["info", "--output=json", &vhdx.display().to_string()],
        None,
    )?;
    ensure!(
        info.contains(&format!("{}", 96u64 << 20)),
        "virtual size: {info}"
    );

    // ---- Onto a device: its contents shown, and its path typed to confirm. The wizard's
    // Finish returns to the job's restore points.
    console.next("image-restore").await?;
    console.wait_for("button[id^='point-image-']").await?;
    console.click("button[id^='point-image-']").await?;
    console.wait_for("#image-restore").await?;
    console.next("image-restore").await?;
    console.type_into("#image-to", &disk.0).await?;
    console.next("image-restore").await?;
    // The device holds the GPT disk now: its contents are shown, and typing is required.
    console
        .wait_text("#image-target-contents", "GPT", WAIT)
        .await?;
    console.next("image-restore").await?;
    console
        .wait_text("#image-confirm-error", "exactly to confirm", WAIT)
        .await?;
    console.screen("image-07-typed-confirmation").await?;

    // ---- Publish: the point opens read-only at a folder, its ext4 volume mounted by the
    // kernel's own driver; the CLI lists the console's publication; Unpublish ends it.
    console.click("#image-restore-cancel").await?;
    console.wait_for("button[id^='point-publish-']").await?;
    console.click("button[id^='point-publish-']").await?;
    let published = files.path().join("published");
    let published_text = published.display().to_string();
    console
        .type_into("#publish-folder", &published_text)
        .await?;
    console.click("#publish-attach").await?;
    console.check_accessibility("publish").await?;
    console.screen("image-08-publish").await?;
    console.click("#publish-go").await?;
    console
        .wait_text("#points-notice", "published read-only", RUN_TIMEOUT)
        .await?;
    let row = console
        .wait_text("#publications-table", &published_text, WAIT)
        .await?;
    ensure!(
        row.contains("by this console") && row.contains(&format!("{dev_name}p1")),
        "where, by whom, which volume mounted: {row}"
    );
    let volume = published.join(&dev_name).join(format!("{dev_name}p1"));
    let kernel = std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .any(|l| {
            l.split(' ').nth(4) == Some(&volume.display().to_string())
                && l.contains(" - ext4 /dev/loop")
        });
    ensure!(kernel, "the volume is mounted by the kernel's ext4");
    ensure!(
        std::fs::read(volume.join("docs/deep/report.bin"))? == report,
        "a file of the published volume is byte-identical"
    );
    let listed = cloudkeep_e2e::run_cli(
        console.home.path(),
        &["points", "published", "--json"],
        None,
    )?;
    ensure!(
        listed.contains(&published_text),
        "the CLI lists it: {listed}"
    );
    console.screen("image-09-published").await?;
    console.click("button[id^='unpublish-']").await?;
    console
        .wait_text("#point-unpublished", "unpublished", WAIT)
        .await?;
    let left = std::fs::read_to_string("/proc/self/mountinfo")?;
    ensure!(
        !left.contains(&published_text),
        "nothing is mounted there any more"
    );
    console.shutdown().await?;
    Ok(())
}
