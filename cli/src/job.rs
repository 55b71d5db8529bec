//! `cloudkeep job …`, `cloudkeep points list` and `cloudkeep restore files`: backup jobs to a
//! provider's cloud repository (or a local folder), their runs with progress and sessions, the
//! restore points they made, and restoring from them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::mode::BackupMode;
use cloudkeep_model::retention::RetentionPolicy;
use cloudkeep_model::units;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::engine::disk::ImageRestore;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions};
use cloudkeep_repo::repo::Repository;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::jobs::{self, JobSpec, Schedule, Target};
use cloudkeep_tenant::{anomaly, keys, restoretest, runner};
use serde_json::json;

use crate::progress::ProgressLine;
use crate::{secrets, show};
use cloudkeep_model::units::human_bytes;

/// Arguments of `cloudkeep job`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// JSON output (JSON lines while a job runs).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Create a backup job.
    Create {
        /// Its name.
        name: String,
        /// Target: a service provider (with --repo).
        #[arg(long, requires = "repo", conflicts_with = "folder")]
        provider: Option<String>,
        /// Target: the provider's cloud repository.
        #[arg(long)]
        repo: Option<String>,
        /// Target: a local folder instead of a provider.
        #[arg(long, value_name = "DIR")]
        folder: Option<PathBuf>,
        /// What to protect: entire (every disk of this computer, imaged), volumes (the disks
        /// and volumes named by --volume, imaged) or files (the --source files and folders).
        #[arg(long, default_value = "files")]
        mode: BackupMode,
        /// A file or folder to back up (repeatable; file level).
        #[arg(long = "source", value_name = "PATH", required_if_eq("mode", "files"))]
        sources: Vec<PathBuf>,
        /// A disk, partition or LVM logical volume (/dev/sdb, /dev/sdb1, /dev/vg/root) or a
        /// disk image file to image (repeatable; volume level).
        #[arg(long = "volume", value_name = "DEV", required_if_eq("mode", "volumes"))]
        volumes: Vec<PathBuf>,
        /// Leave out paths matching this glob (repeatable).
        #[arg(long = "exclude", value_name = "GLOB")]
        excludes: Vec<String>,
        /// manual, daily@HH:MM[:mon,tue,…] or every:Nh.
        #[arg(long, default_value = "manual", value_parser = Schedule::parse)]
        schedule: Schedule,
        /// Keep the newest N restore points.
        #[arg(long, value_name = "N")]
        keep_points: Option<u32>,
        /// Keep every restore point younger than N days.
        #[arg(long, value_name = "N")]
        keep_days: Option<u32>,
        /// Also keep weekly, monthly, yearly points: weekly=4,monthly=12,yearly=3.
        #[arg(long, value_name = "RULES")]
        gfs: Option<String>,
        /// Compression: off, fast, default or max.
        #[arg(long, default_value = "default")]
        compression: Compression,
        /// Read the encryption password from stdin (it cannot be recovered without it).
        #[arg(long, required_unless_present = "no_encryption")]
        encryption_password_stdin: bool,
        /// Store the data unencrypted (only the provider's TLS protects it in transit).
        #[arg(long, conflicts_with = "encryption_password_stdin")]
        no_encryption: bool,
        #[command(flatten)]
        tries: Tries,
    },
    /// This computer's disks and volumes (what --volume takes): name, size, file system, mount
    /// point and space in use.
    Volumes,
    /// Change a job's sources, excludes, schedule, retention, compression, retries or health
    /// check (its target and encryption stay: create a new job for another target).
    Edit {
        /// Its name.
        name: String,
        /// Back up these files and folders instead (repeatable).
        #[arg(long = "source", value_name = "PATH")]
        sources: Vec<PathBuf>,
        /// Leave out paths matching these globs instead (repeatable).
        #[arg(
            long = "exclude",
            value_name = "GLOB",
            conflicts_with = "clear_excludes"
        )]
        excludes: Vec<String>,
        /// Leave nothing out.
        #[arg(long)]
        clear_excludes: bool,
        /// manual, daily@HH:MM[:mon,tue,…] or every:Nh.
        #[arg(long, value_parser = Schedule::parse)]
        schedule: Option<Schedule>,
        /// Keep the newest N restore points (0: no count limit).
        #[arg(long, value_name = "N")]
        keep_points: Option<u32>,
        /// Keep every restore point younger than N days (0: no age rule).
        #[arg(long, value_name = "N")]
        keep_days: Option<u32>,
        /// Weekly, monthly, yearly points: weekly=4,monthly=12,yearly=3.
        #[arg(long, value_name = "RULES")]
        gfs: Option<String>,
        /// Compression: off, fast, default or max.
        #[arg(long)]
        compression: Option<Compression>,
        /// Tries again after a failed scheduled run this many times.
        #[arg(long, value_name = "N")]
        retries: Option<u32>,
        /// Wait between tries: 30s, 10m, 1h.
        #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
        retry_wait: Option<u64>,
        /// When the repository health check runs: manual, daily@HH:MM[:days] or every:Nh.
        #[arg(long, value_name = "SCHEDULE", value_parser = Schedule::parse)]
        health_check: Option<Schedule>,
        /// When the restore test runs: manual, daily@HH:MM[:days] or every:Nh.
        #[arg(long, value_name = "SCHEDULE", value_parser = Schedule::parse)]
        restore_test: Option<Schedule>,
        /// Share of the files a restore test restores, in percent.
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
        restore_test_sample: Option<u8>,
    },
    /// Prove the newest restore point restores: restore a sample of its files into a
    /// scratch folder and read them back against what was backed up (image-level points:
    /// every volume's file system opened too). Exit code 6 when something does not restore.
    RestoreTest {
        /// Its name.
        name: String,
        /// Share of the files to restore, in percent (default: the job's, 1 unless set).
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
        sample: Option<u8>,
    },
    /// List jobs with their last result.
    List,
    /// Show a job and its recent sessions.
    Show {
        /// Its name.
        name: String,
    },
    /// Print the log of a session of a job (its latest when no number is given).
    Log {
        /// The job.
        name: String,
        /// The session's number (as `job show` lists them).
        session: Option<i64>,
    },
    /// Delete a job (its restore points stay).
    Delete {
        /// Its name.
        name: String,
    },
    /// Run a job now.
    Run {
        /// Its name.
        name: String,
    },
    /// Give back the space of data no restore point needs any more: packs nothing uses are
    /// removed, the emptiest partly used ones rewritten (every job sharing the repository
    /// gains). A job does this by itself after retention when more than 15 % is unused;
    /// at a provider with insider protection, what goes is kept by the provider until the
    /// protection window ends.
    Compact {
        /// The job.
        name: String,
    },
    /// The key slots of a job's repository (a folder or a cloud repository): list them, add
    /// a recovery key, change the encryption password the job runs with.
    Key {
        /// The job.
        name: String,
        #[command(subcommand)]
        action: JobKeyAction,
    },
}

#[derive(Debug, Subcommand)]
enum JobKeyAction {
    /// List the key slots.
    List,
    /// Create a recovery key and write it to a new file readable by its owner only.
    RecoveryKey {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A name for the slot.
        #[arg(long, default_value = "recovery key")]
        label: String,
    },
    /// Change the encryption password the job runs with (read from stdin); the data is not
    /// re-encrypted, and a cloud repository keeps the old slot, retired, while insider
    /// protection lasts.
    ChangePassword {
        /// Read the new password from stdin.
        #[arg(long, required = true)]
        new_password_stdin: bool,
    },
}

/// Retries, health check and restore test of a new job.
#[derive(Debug, ClapArgs)]
struct Tries {
    /// Tries again after a failed scheduled run (network, gateway restart) this many times.
    #[arg(long, value_name = "N", default_value_t = jobs::DEFAULT_RETRIES)]
    retries: u32,
    /// Wait between tries: 30s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = units::parse_duration)]
    retry_wait: u64,
    /// When the repository health check (verify of 10 % of the packs) runs: manual,
    /// daily@HH:MM[:days] or every:Nh.
    #[arg(long, value_name = "SCHEDULE", default_value = "manual", value_parser = Schedule::parse)]
    health_check: Schedule,
    /// When a restore test of the newest point runs (a sample restored and checked against
    /// what was backed up): manual, daily@HH:MM[:days] or every:Nh.
    #[arg(long, value_name = "SCHEDULE", default_value = "daily@04:00:sun", value_parser = Schedule::parse)]
    restore_test: Schedule,
    /// Share of the files a restore test restores, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = jobs::RESTORE_TEST_SAMPLE, value_parser = clap::value_parser!(u8).range(1..=100))]
    restore_test_sample: u8,
}

/// Arguments of `cloudkeep points`.
#[derive(Debug, ClapArgs)]
pub struct PointsArgs {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PointsCommand,
}

#[derive(Debug, Subcommand)]
enum PointsCommand {
    /// The restore points in a job's repository.
    List {
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// A restore point's disks and volumes (image-level points): layout, file systems,
    /// space in use and how each volume was read.
    Show {
        /// Restore point id (a unique prefix, or "latest").
        point: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// List a folder of a restore point without restoring anything.
    Browse {
        /// Restore point id (a unique prefix of at least 4 characters, or "latest").
        point: String,
        /// Folder inside the point (default: the top).
        #[arg(default_value = "/")]
        path: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// Find entries whose name matches a glob.
    Find {
        /// Restore point id or "latest".
        point: String,
        /// Glob on names, e.g. "*.docx".
        pattern: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// What changed between two restore points.
    Diff {
        /// The older point.
        from: String,
        /// The newer point.
        to: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// Publish a restore point read-only at an empty folder (FUSE, Linux), for the
    /// computer's own tools, until Ctrl-C or `points unmount`.
    Mount {
        /// Restore point id (a unique prefix, or "latest").
        point: String,
        /// The empty folder to publish it at.
        mountpoint: std::path::PathBuf,
        /// The job.
        #[arg(long)]
        job: String,
        /// Also attach each volume read-only as a loop device and mount it over its folder,
        /// for the OS's own file-system driver (root).
        #[arg(long)]
        attach: bool,
    },
    /// Unpublish a restore point (also one whose `points mount` was killed).
    Unmount {
        /// The folder it is published at.
        mountpoint: std::path::PathBuf,
    },
    /// The restore points published on this computer: where, which, since when.
    Published,
    /// Export a restore point into one portable backup file: everything it needs, under a
    /// password of your choosing (read from stdin); an interrupted export resumes.
    Export {
        /// Restore point id (a unique prefix, or "latest").
        point: String,
        /// The job.
        #[arg(long)]
        job: String,
        /// The file to write (it must not exist).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// What a backup file holds (no password needed).
    File {
        /// The backup file.
        file: PathBuf,
    },
    /// Import the restore point of a backup file into a job's repository, sending only what
    /// it does not hold (the file's password from stdin).
    Import {
        /// The backup file.
        file: PathBuf,
        /// The job whose repository takes it.
        #[arg(long)]
        job: String,
    },
    /// Delete a restore point (with insider protection it goes to the provider's recycle bin).
    Delete {
        /// Restore point id.
        point: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
}

/// Arguments of `cloudkeep verify`.
#[derive(Debug, ClapArgs)]
pub struct VerifyArgs {
    /// The job whose repository to check.
    #[arg(long, required_unless_present = "file")]
    job: Option<String>,
    /// A backup file to check instead (every part and blob; its password from stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "job")]
    file: Option<PathBuf>,
    /// Check this percentage of the packs (1–100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    sample: u8,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Arguments of `cloudkeep restore`.
#[derive(Debug, ClapArgs)]
pub struct RestoreArgs {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: RestoreCommand,
}

#[derive(Debug, Subcommand)]
enum RestoreCommand {
    /// Restore files and folders of a restore point.
    Files {
        /// Restore point id (a unique prefix of at least 4 characters, or "latest").
        point: String,
        /// The job whose repository holds it.
        #[arg(long, required_unless_present = "from_file")]
        job: Option<String>,
        /// Restore from a backup file instead (`points export`; its password from stdin):
        /// on any computer, without any provider.
        #[arg(long, value_name = "FILE", conflicts_with = "job")]
        from_file: Option<PathBuf>,
        /// Restore into this folder (default: where they came from).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Only this path of the point (repeatable).
        #[arg(long)]
        path: Vec<String>,
        /// When a file exists: overwrite, skip or keep-both.
        #[arg(long, default_value = "keep-both")]
        conflict: Conflict,
    },
    /// Restore one volume of an image-level point onto a device or an image file.
    Volume {
        /// Restore point id (a unique prefix, or "latest").
        point: String,
        /// The job whose repository holds it.
        #[arg(long, required_unless_present = "from_file")]
        job: Option<String>,
        /// Restore from a backup file instead (`points export`; its password from stdin):
        /// on any computer, without any provider.
        #[arg(long, value_name = "FILE", conflicts_with = "job")]
        from_file: Option<PathBuf>,
        /// The point's disk (as `points show` lists it, e.g. sda); optional when it holds one.
        #[arg(long, default_value = "")]
        disk: String,
        /// The volume's number (as `points show` lists it: 1 for sda1).
        #[arg(long)]
        volume: u32,
        /// The device (/dev/sdc1) or image file to write; a device must not be mounted.
        #[arg(long, value_name = "DEV|FILE")]
        to: PathBuf,
        /// Overwrite without asking (the target's current contents are still printed).
        #[arg(long)]
        yes: bool,
    },
    /// Restore a whole disk of an image-level point onto a device or an image file: its
    /// partition table and every volume; onto a larger disk the last partition is grown.
    Disk {
        /// Restore point id (a unique prefix, or "latest").
        point: String,
        /// The job whose repository holds it.
        #[arg(long, required_unless_present = "from_file")]
        job: Option<String>,
        /// Restore from a backup file instead (`points export`; its password from stdin):
        /// on any computer, without any provider.
        #[arg(long, value_name = "FILE", conflicts_with = "job")]
        from_file: Option<PathBuf>,
        /// The point's disk (as `points show` lists it); optional when it holds one.
        #[arg(long, default_value = "")]
        disk: String,
        /// The device (/dev/sdc) or image file to write; nothing on it may be mounted.
        #[arg(long, value_name = "DEV|FILE")]
        to: PathBuf,
        /// The file's format: raw (also onto a device), vhd (dynamic), vhd-fixed, vhdx or vmdk.
        #[arg(long, default_value = "raw")]
        format: cloudkeep_repo::image::export::Format,
        /// Overwrite without asking (the target's current contents are still printed).
        #[arg(long)]
        yes: bool,
    },
}

/// What a job protects, as one line: its sources, its volumes, or the entire computer.
fn what_text(spec: &JobSpec) -> String {
    match spec.mode {
        BackupMode::Files => spec.sources.join(", "),
        BackupMode::Volumes => format!("volumes {}", spec.volumes.join(", ")),
        BackupMode::Entire => "the entire computer (every disk)".into(),
    }
}

fn target_text(t: &Target) -> String {
    match t {
        Target::Provider {
            provider,
            repo,
            account: None,
        } => format!("{repo} at {provider}"),
        Target::Provider {
            provider,
            repo,
            account: Some(account),
        } => format!("{repo} at {provider} as {account}"),
        Target::Folder { path } => path.clone(),
    }
}

/// Absolute forms of the paths given; `~` is the user's home (Windows' shells do not expand
/// it, and a quoted `~` reaches us on Unix too).
fn absolute_all(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let home = cloudkeep_model::paths::user_home();
    Ok(paths
        .iter()
        .map(|s| {
            let typed = cloudkeep_model::paths::expand_home(&s.to_string_lossy(), home.as_deref());
            std::path::absolute(typed).map(|p| p.display().to_string())
        })
        .collect::<Result<Vec<_>, _>>()?)
}

/// A job's settings, a line each.
fn print_job(job: &jobs::Job) {
    let spec = &job.spec;
    println!(
        "{}: {} → {}",
        job.name,
        what_text(spec),
        target_text(&spec.target)
    );
    println!("  backup mode:  {}", spec.mode.label());
    if !spec.excludes.is_empty() {
        println!("  excludes:     {}", spec.excludes.join(", "));
    }
    println!(
        "  schedule:     {} ({})",
        spec.schedule.describe(),
        spec.schedule
    );
    let r = &spec.retention;
    let mut keep = Vec::new();
    if let Some(n) = r.keep_last {
        keep.push(format!("{n} points"));
    }
    if let Some(n) = r.keep_days {
        keep.push(format!("{n} days"));
    }
    for (n, what) in [
        (r.weekly, "weekly"),
        (r.monthly, "monthly"),
        (r.yearly, "yearly"),
    ] {
        if n > 0 {
            keep.push(format!("{n} {what}"));
        }
    }
    println!(
        "  retention:    {}",
        if keep.is_empty() {
            "keep everything".to_owned()
        } else {
            keep.join(", ")
        }
    );
    println!(
        "  encryption:   {}; compression: {}",
        if spec.encrypted { "on" } else { "off" },
        spec.compression
    );
    println!(
        "  retries:      {} (every {} s); health check: {}",
        spec.retries, spec.retry_wait_s, spec.health_check
    );
    println!(
        "  restore test: {} ({} % of the files)",
        spec.restore_test, spec.restore_test_sample
    );
}

/// What the job's restore tests and ransomware signals say, a line each.
fn print_standing(name: &str, sessions: &[jobs::SessionRecord]) {
    println!("  proven:       {}", proven_text(name, sessions));
    if let Some(s) = sessions
        .iter()
        .filter(|s| s.job == name)
        .find(|s| anomaly::reasons_of(s).is_some())
    {
        println!(
            "  SUSPICIOUS:   the run of {} looked like ransomware ({}); its point {} is marked",
            units::date_time_text(s.started_ms),
            anomaly::reasons_of(s).unwrap_or_default().join("; "),
            s.point.as_deref().map_or("-", |p| &p[..12.min(p.len())])
        );
    }
}

/// When job `name` was last proven restorable, or that its newest restore test failed.
fn proven_text(name: &str, sessions: &[jobs::SessionRecord]) -> String {
    match restoretest::proof_of(name, sessions) {
        None => "never tested (cloudkeep job restore-test NAME)".into(),
        Some(p) if p.result == "failed" => format!(
            "RESTORE TEST FAILED {}: {}",
            units::date_time_text(p.tested_ms),
            p.message
        ),
        Some(p) => match p.proven_point_ms {
            Some(point) => format!(
                "point of {} proven restorable {}{}",
                units::date_time_text(point),
                units::date_time_text(p.proven_ms.unwrap_or(p.tested_ms)),
                if p.result == "warning" {
                    format!("; the newest test left files untested: {}", p.message)
                } else {
                    String::new()
                }
            ),
            None => format!("not proven: {}", p.message),
        },
    }
}

/// Runs `cloudkeep job …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let (state, secrets) = (ctx.state(), ctx.secrets());
    match args.command {
        JobCommand::Create {
            name,
            provider,
            repo,
            folder,
            mode,
            sources,
            volumes,
            excludes,
            schedule,
            keep_points,
            keep_days,
            gfs,
            compression,
            encryption_password_stdin,
            no_encryption: _,
            tries,
        } => {
            let target = match (provider, repo, folder) {
                (Some(provider), Some(repo), None) => Target::Provider {
                    provider,
                    repo,
                    account: None,
                },
                (None, None, Some(dir)) => Target::Folder {
                    path: std::path::absolute(&dir)?.display().to_string(),
                },
                _ => anyhow::bail!("give a target: --provider P --repo R, or --folder DIR"),
            };
            let mut retention = RetentionPolicy {
                keep_last: keep_points,
                keep_days,
                ..RetentionPolicy::default()
            };
            if let Some(gfs) = gfs {
                retention.set_gfs(&gfs).map_err(anyhow::Error::msg)?;
            }
            let password = if encryption_password_stdin {
                Some(secrets::stdin_line("encryption password")?)
            } else {
                None
            };
            let sources = absolute_all(&sources)?;
            let volumes = absolute_all(&volumes)?;
            let spec = JobSpec {
                mode,
                volumes,
                sources,
                excludes,
                target,
                schedule,
                retention,
                encrypted: password.is_some(),
                compression: compression.to_string(),
                retries: tries.retries,
                retry_wait_s: tries.retry_wait,
                health_check: tries.health_check,
                restore_test: tries.restore_test,
                restore_test_sample: tries.restore_test_sample,
                agent: None,
            };
            let job = keys::create_job(ctx, &name, &spec, password.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                println!(
                    "job \"{name}\" created: {} → {}",
                    what_text(&job.spec),
                    target_text(&job.spec.target)
                );
                if job.spec.encrypted {
                    println!(
                        "keep the encryption password safe: without it the restore points cannot be restored"
                    );
                }
            }
        }
        JobCommand::Volumes => {
            crate::image::print_volumes(args.json)?;
        }
        JobCommand::List => {
            let all = ctx.block_on(state.jobs())?;
            let sessions = ctx.block_on(state.sessions(None))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for j in &all {
                    let last = sessions
                        .iter()
                        .find(|s| s.job == j.name && s.kind == "backup")
                        .map_or("never run".to_owned(), |s| s.result.clone());
                    let proven = match restoretest::proof_of(&j.name, &sessions) {
                        None => "not tested".to_owned(),
                        Some(p) if p.result == "failed" => "RESTORE TEST FAILED".to_owned(),
                        Some(p) => p.proven_ms.map_or("not proven".to_owned(), |ms| {
                            format!("proven {}", units::date_time_text(ms))
                        }),
                    };
                    println!(
                        "{:<20} {:<30} {last:<8} {proven}",
                        j.name,
                        target_text(&j.spec.target)
                    );
                }
            }
        }
        JobCommand::Edit {
            name,
            sources,
            excludes,
            clear_excludes,
            schedule,
            keep_points,
            keep_days,
            gfs,
            compression,
            retries,
            retry_wait,
            health_check,
            restore_test,
            restore_test_sample,
        } => {
            let mut spec = ctx.block_on(state.job(&name))?.spec;
            if !sources.is_empty() {
                spec.sources = absolute_all(&sources)?;
            }
            if clear_excludes {
                spec.excludes.clear();
            } else if !excludes.is_empty() {
                spec.excludes = excludes;
            }
            spec.schedule = schedule.unwrap_or(spec.schedule);
            if let Some(n) = keep_points {
                spec.retention.keep_last = (n > 0).then_some(n);
            }
            if let Some(n) = keep_days {
                spec.retention.keep_days = (n > 0).then_some(n);
            }
            if let Some(gfs) = gfs {
                spec.retention.set_gfs(&gfs).map_err(anyhow::Error::msg)?;
            }
            if let Some(c) = compression {
                spec.compression = c.to_string();
            }
            spec.retries = retries.unwrap_or(spec.retries);
            spec.retry_wait_s = retry_wait.unwrap_or(spec.retry_wait_s);
            spec.health_check = health_check.unwrap_or(spec.health_check);
            spec.restore_test = restore_test.unwrap_or(spec.restore_test);
            spec.restore_test_sample = restore_test_sample.unwrap_or(spec.restore_test_sample);
            let job = ctx.block_on(state.update_job(&name, &spec))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                println!("job \"{name}\" changed");
                print_job(&job);
            }
        }
        JobCommand::Show { name } => {
            let job = ctx.block_on(state.job(&name))?;
            let sessions = ctx.block_on(state.sessions(Some(&name)))?;
            if args.json {
                println!(
                    "{}",
                    json!({"job": job, "sessions": sessions, "proof": restoretest::proof_of(&name, &sessions)})
                );
            } else {
                print_job(&job);
                print_standing(&name, &sessions);
                for s in sessions.iter().take(10) {
                    println!(
                        "  #{:<5} {}  {:<12} {:<8} {}",
                        s.id,
                        units::date_time_text(s.started_ms),
                        s.kind,
                        s.result,
                        s.message
                    );
                }
            }
        }
        JobCommand::Log { name, session } => {
            let sessions = ctx.block_on(state.sessions(Some(&name)))?;
            let found = match session {
                Some(id) => sessions.into_iter().find(|s| s.id == id),
                None => sessions.into_iter().next(),
            };
            let Some(found) = found else {
                anyhow::bail!(
                    "job \"{name}\" has no such session; \"cloudkeep job show {name}\" lists them"
                );
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for line in &found.log {
                    println!("{line}");
                }
            }
        }
        JobCommand::Delete { name } => {
            ctx.block_on(jobs::delete(state, secrets, &name))?;
            println!("job \"{name}\" deleted; its restore points stay in the repository");
        }
        JobCommand::Run { name } => {
            return run_job(&name, ctx, args.json);
        }
        JobCommand::RestoreTest { name, sample } => {
            return restore_test(&name, sample, ctx, args.json);
        }
        JobCommand::Compact { name } => {
            let (session, outcome) = runner::compact_job(ctx, &name)?;
            let report = outcome?;
            if args.json {
                println!("{}", json!({"result": session.result, "report": report}));
            } else {
                println!("{}", runner::compact_summary(&report));
            }
        }
        JobCommand::Key { name, action } => key_command(ctx, &name, action, args.json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn restore_test(
    name: &str,
    sample: Option<u8>,
    ctx: &TenantContext,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let show = ProgressLine::new(json_out);
    let line = |l: &str| {
        if !json_out {
            show.println(l);
        }
    };
    let (session, outcome) = restoretest::restore_test_job(
        ctx,
        name,
        sample,
        runner::Watch {
            progress: &|p| show.update(p),
            line: &line,
        },
        &cloudkeep_repo::engine::Cancel::default(),
    )?;
    show.finish();
    let report = outcome?;
    if json_out {
        println!(
            "{}",
            json!({"event": "done", "result": session.result, "report": report})
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::RESTORE_TEST)
    })
}

fn run_job(name: &str, ctx: &TenantContext, json_out: bool) -> anyhow::Result<ExitCode> {
    let show = ProgressLine::new(json_out);
    let (session, outcome) = runner::run_job(ctx, name, &|p| show.update(p))?;
    show.finish();
    let report = outcome?;
    let stats = report.point.manifest.stats;
    if json_out {
        println!(
            "{}",
            json!({"event": "done", "result": session.result, "point": report.point.id, "stats": stats, "warnings": report.warnings})
        );
    } else {
        for w in &report.warnings {
            eprintln!("warning: {}: {}", w.path.display(), w.message);
        }
        let what = match report.point.manifest.disks.len() {
            0 => format!("{} files", stats.files),
            1 => "1 disk".to_owned(),
            n => format!("{n} disks"),
        };
        println!(
            "{}: restore point {} — {what}, {}; {} stored",
            session.result,
            report.point.short_id(),
            human_bytes(stats.bytes),
            human_bytes(stats.new_stored_bytes)
        );
        for note in &report.notes {
            println!("  {note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the repository of job `name` (blocking; outside any runtime).
fn open_job(ctx: &TenantContext, name: &str) -> anyhow::Result<Repository> {
    let job = ctx.block_on(ctx.state().job(name))?;
    Ok(runner::open_job_repository(ctx, &job)?)
}

/// Runs `cloudkeep points …`.
pub fn run_points(args: PointsArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    match args.command {
        PointsCommand::List { job } => {
            let sessions = ctx.block_on(ctx.state().sessions(Some(&job)))?;
            show::points(
                &open_job(ctx, &job)?,
                Some(&job),
                &cloudkeep_tenant::catalog::point_marks(&sessions),
                args.json,
            )
        }
        PointsCommand::Show { point, job } => {
            let repo = open_job(ctx, &job)?;
            crate::image::print_disks(&repo.find_job_point(&job, &point)?, args.json)
        }
        PointsCommand::Browse { point, path, job } => {
            show::browse(&open_job(ctx, &job)?, Some(&job), &point, &path, args.json)
        }
        PointsCommand::Find {
            point,
            pattern,
            job,
        } => show::find(
            &open_job(ctx, &job)?,
            Some(&job),
            &point,
            &pattern,
            args.json,
        ),
        PointsCommand::Diff { from, to, job } => {
            show::diff(&open_job(ctx, &job)?, Some(&job), &from, &to, args.json)
        }
        PointsCommand::Mount {
            point,
            mountpoint,
            job,
            attach,
        } => crate::publish::mount(
            ctx.home(),
            open_job(ctx, &job)?,
            &job,
            &point,
            &mountpoint,
            attach,
        ),
        PointsCommand::Unmount { mountpoint } => crate::publish::unmount(ctx.home(), &mountpoint),
        PointsCommand::Published => crate::publish::published(ctx.home(), args.json),
        PointsCommand::Export { point, job, to } => {
            crate::backupfile::export(ctx, &job, &point, &to, args.json)
        }
        PointsCommand::File { file } => crate::backupfile::describe(&file, args.json),
        PointsCommand::Import { file, job } => {
            crate::backupfile::import(ctx, &file, &job, args.json)
        }
        PointsCommand::Delete { point, job } => {
            let repo = open_job(ctx, &job)?;
            let found = repo.find_job_point(&job, &point)?;
            repo.delete_point(&found.id)?;
            println!("restore point {} deleted", found.short_id());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `cloudkeep verify`.
pub fn run_verify(args: VerifyArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    match (&args.file, &args.job) {
        (Some(file), _) => crate::backupfile::verify(file, args.json),
        (None, Some(job)) => show::verify(&open_job(ctx, job)?, args.sample, args.json),
        (None, None) => anyhow::bail!("give --job JOB or --file FILE"),
    }
}

/// Runs `cloudkeep restore …`: recorded as a session of the job.
pub fn run_restore(args: RestoreArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    match args.command {
        RestoreCommand::Files {
            point,
            job,
            from_file,
            to,
            path,
            conflict,
        } => match (from_file, job) {
            (Some(file), _) => {
                crate::backupfile::restore_files(&file, &point, (to, path, conflict), args.json)
            }
            (None, Some(job)) => restore_files(ctx, &job, &point, (to, path, conflict), args.json),
            (None, None) => anyhow::bail!("give --job JOB or --from-file FILE"),
        },
        RestoreCommand::Volume {
            point,
            job,
            from_file,
            disk,
            volume,
            to,
            yes,
        } => crate::image::restore(
            &image_source(ctx, job, from_file, &point)?,
            ImageRestore {
                disk,
                volume: Some(volume),
                format: cloudkeep_repo::image::export::Format::Raw,
            },
            &to,
            yes,
            args.json,
        ),
        RestoreCommand::Disk {
            point,
            job,
            from_file,
            disk,
            to,
            format,
            yes,
        } => crate::image::restore(
            &image_source(ctx, job, from_file, &point)?,
            ImageRestore {
                disk,
                volume: None,
                format,
            },
            &to,
            yes,
            args.json,
        ),
    }
}

/// Where an image restore reads from: a job's point, or a backup file's.
fn image_source<'a>(
    ctx: &'a TenantContext,
    job: Option<String>,
    from_file: Option<PathBuf>,
    point: &str,
) -> anyhow::Result<crate::image::Source<'a>> {
    Ok(match (from_file, job) {
        (Some(file), _) => {
            let (repo, found) = crate::backupfile::open(&file, Some(point))?;
            crate::image::Source::File(Box::new(repo), Box::new(found))
        }
        (None, Some(job)) => crate::image::Source::Job {
            ctx,
            job,
            point: point.to_owned(),
        },
        (None, None) => anyhow::bail!("give --job JOB or --from-file FILE"),
    })
}

/// Restores from a point of `job` (`to`: a folder, or where the items came from), with
/// progress, and prints the report: `restore files` and `agent restore`.
pub fn restore_files(
    ctx: &TenantContext,
    job: &str,
    point: &str,
    (to, paths, conflict): (Option<PathBuf>, Vec<String>, Conflict),
    json: bool,
) -> anyhow::Result<ExitCode> {
    let progress = ProgressLine::new(json);
    let options = RestoreOptions {
        destination: to.map_or(Destination::Original, Destination::Folder),
        paths,
        conflict,
        cancel: Default::default(),
    };
    let (_, report) = runner::restore_job(
        ctx,
        job,
        point,
        &options,
        runner::Watch::progress(&|p| progress.update(p)),
    )?;
    progress.finish();
    show::restore_report(&report?, json)
}

/// `cloudkeep job key …`.
fn key_command(
    ctx: &TenantContext,
    name: &str,
    action: JobKeyAction,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        JobKeyAction::List => {
            let slots = keys::slots(ctx, name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&slots)?);
            } else {
                for s in &slots {
                    println!("{:<8}  {:<9} {}  {}", s.id, s.kind, s.created, s.label);
                }
            }
        }
        JobKeyAction::RecoveryKey { out, label } => {
            let (id, key) = keys::add_recovery_key(ctx, name, &label)?;
            cloudkeep_model::paths::write_new_private_file(
                &out,
                format!("{}\n", key.to_text().as_str()).as_bytes(),
            )?;
            println!(
                "recovery key slot {id} written to {}; store it offline: it opens the job's restore points without the password",
                out.display()
            );
        }
        JobKeyAction::ChangePassword {
            new_password_stdin: _,
        } => {
            let new = secrets::stdin_line("new encryption password")?;
            keys::change_password(ctx, name, &new)?;
            println!(
                "the encryption password of \"{name}\" changed; the data was not re-encrypted"
            );
        }
    }
    Ok(())
}
