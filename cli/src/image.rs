//! The image-level commands: `job volumes` (this computer's disks and volumes), `points show`
//! (a point's disks and volumes), `restore volume` and `restore disk` (onto a device or an
//! image file, after the person has seen what the target holds now and confirmed by typing
//! its path, or given `--yes`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cloudkeep_repo::engine::disk::ImageRestore;
use cloudkeep_repo::image::target::{self, Target};
use cloudkeep_repo::image::{DiskImage, DiskLayout};
use cloudkeep_repo::repo::RestorePoint;
use cloudkeep_tenant::{TenantContext, runner};
use serde_json::json;

use crate::progress::ProgressLine;
use cloudkeep_model::units::human_bytes;

/// One line per volume of a layout: number, size, file system, label, UUID.
fn volume_lines(layout: &DiskLayout, used: &dyn Fn(u32) -> Option<String>) -> Vec<String> {
    layout
        .partitions
        .iter()
        .map(|p| {
            let fs = p.filesystem.as_ref();
            format!(
                "  {:>3}  {:>10}  {:<6}  {:<12}  {:<38}  {}",
                p.number,
                human_bytes(p.size),
                fs.map_or("-", |f| f.kind.name()),
                fs.and_then(|f| f.label.clone()).unwrap_or_default(),
                fs.and_then(|f| f.uuid.clone()).unwrap_or_default(),
                used(p.number).unwrap_or_default()
            )
        })
        .collect()
}

fn table_text(layout: &DiskLayout) -> &'static str {
    match layout.table {
        cloudkeep_repo::image::PartitionTable::Gpt { .. } => "GPT",
        cloudkeep_repo::image::PartitionTable::Mbr { .. } => "MBR",
        cloudkeep_repo::image::PartitionTable::None => "no partition table",
    }
}

/// Prints the disks and volumes of an image-level point.
pub fn print_disks(point: &RestorePoint, json_out: bool) -> anyhow::Result<ExitCode> {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "id": point.id,
                "level": if point.manifest.is_image() { "image" } else { "files" },
                "disks": point.manifest.disks,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !point.manifest.is_image() {
        println!(
            "restore point {} is file level: it holds files and folders (browse it with `points browse`)",
            point.short_id()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for disk in &point.manifest.disks {
        print_disk(disk);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_disk(disk: &DiskImage) {
    println!(
        "disk {} ({}): {}, {}",
        disk.name(),
        disk.path,
        human_bytes(disk.layout.size),
        table_text(&disk.layout)
    );
    println!(
        "  {:>3}  {:>10}  {:<6}  {:<12}  {:<38}  IN USE / READ AS",
        "VOL", "SIZE", "FS", "LABEL", "UUID"
    );
    let used = |n: u32| {
        disk.volumes.iter().find(|v| v.number == n).map(|v| {
            format!(
                "{} / {}",
                v.used.map_or("all read".into(), human_bytes),
                v.how
            )
        })
    };
    for line in volume_lines(&disk.layout, &used) {
        println!("{line}");
    }
}

/// Shows what `target` holds now and asks the person to type its path; `yes` skips the
/// question. Without a terminal and without `yes`, refuses (nothing is written).
fn confirm(found: &Target, what: &str, yes: bool) -> anyhow::Result<()> {
    let shown = found.path.display();
    if found.exists {
        eprintln!(
            "{what} will overwrite {shown} ({}, {})",
            if found.is_device {
                "a device"
            } else {
                "an image file"
            },
            human_bytes(found.size)
        );
        match &found.contents {
            Some(layout) => {
                eprintln!("it holds now: {}", table_text(layout));
                for line in volume_lines(layout, &|_| None) {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("it holds no partition table or file system this tool knows"),
        }
    } else {
        eprintln!("{what} will create the image file {shown}");
    }
    if yes || !found.exists {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{shown} would be overwritten: confirm with --yes (nothing was written)");
    }
    eprint!("type {shown} to overwrite it: ");
    std::io::stderr().flush()?;
    let mut typed = String::new();
    std::io::stdin().lock().read_line(&mut typed)?;
    if typed.trim() != found.path.to_string_lossy() {
        anyhow::bail!("not confirmed: nothing was written");
    }
    Ok(())
}

/// Where an image restore reads from.
pub enum Source<'a> {
    /// A point of a job (recorded as a session of it).
    Job {
        /// The tenant's side.
        ctx: &'a TenantContext,
        /// The job.
        job: String,
        /// The point (a prefix, or "latest").
        point: String,
    },
    /// A backup file, opened, and its point.
    File(Box<cloudkeep_repo::repo::Repository>, Box<RestorePoint>),
}

/// `restore volume` / `restore disk` (from a job or a backup file): checks the target,
/// confirms, restores.
pub fn restore(
    source: &Source<'_>,
    what: ImageRestore,
    to: &Path,
    yes: bool,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let to: PathBuf = std::path::absolute(to)?;
    let found = target::inspect(&to)?;
    let label = match what.volume {
        Some(n) => format!("restoring volume {n}"),
        None => "restoring the disk".to_owned(),
    };
    // Every refusal comes before the question: a file-level point, a volume the point does
    // not hold, a mounted or too small target.
    cloudkeep_repo::engine::disk::check_format_target(what.format, &found)?;
    let need = match source {
        Source::Job { ctx, job, point } => runner::image_restore_size(ctx, job, point, &what)?,
        Source::File(_, point) => runner::image_size(point, &what)?,
    };
    found.check(need)?;
    confirm(&found, &label, yes)?;
    let progress = ProgressLine::new(json_out);
    let watch = |p: &cloudkeep_repo::engine::Progress| progress.update(p);
    let (session, report) = match source {
        Source::Job { ctx, job, point } => {
            let (session, report) = runner::restore_image_job(
                ctx,
                job,
                point,
                &what,
                &to,
                &Default::default(),
                runner::Watch::progress(&watch),
            )?;
            (Some(session.id), report)
        }
        Source::File(repo, point) => (
            None,
            runner::write_image(repo, point, &what, &to, &Default::default(), &watch),
        ),
    };
    progress.finish();
    let report = report?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "session": session,
                "bytes": report.size,
                "written": report.written,
                "zeroed": report.zeroed,
                "notes": report.notes,
            }))?
        );
    } else {
        println!(
            "restored {} onto {} ({} of data written)",
            human_bytes(report.size),
            to.display(),
            human_bytes(report.written)
        );
        for note in &report.notes {
            println!("{note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `job volumes`: this computer's disks and volumes, as the console's Backup mode step lists
/// them.
pub fn print_volumes(json_out: bool) -> anyhow::Result<()> {
    let all = cloudkeep_repo::image::devices::inventory();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("no disk could be listed on this computer");
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:>10}  {:<14} {:>10}  MOUNTED AT",
        "DEVICE", "KIND", "SIZE", "FILE SYSTEM", "USED"
    );
    for v in &all {
        let fs = match (&v.filesystem, &v.layout, &v.device.mount_type) {
            (Some(f), _, _) => match &f.label {
                Some(label) => format!("{} {label}", f.kind.name()),
                None => f.kind.name().to_owned(),
            },
            (None, Some(layout), _) => format!(
                "{}, {} volumes",
                table_text(layout),
                layout.partitions.len()
            ),
            (None, None, Some(kind)) => kind.clone(),
            (None, None, None) => "-".to_owned(),
        };
        println!(
            "{:<24} {:<10} {:>10}  {:<14} {:>10}  {}",
            v.device.path.display(),
            format!("{:?}", v.device.kind).to_lowercase(),
            human_bytes(v.device.size),
            fs,
            v.used.map_or_else(|| "-".into(), human_bytes),
            v.device
                .mountpoint
                .as_ref()
                .map_or_else(|| "-".into(), |m| m.display().to_string())
        );
    }
    Ok(())
}
