//! Backup files on the command line: `points export` (a job's point into one portable file
//! under a password of its own, read from stdin), `points file` (what a file holds, no
//! password), `points import` (a file's point into a job's repository), `verify --file`, and
//! the file side of `restore files|volume|disk --from-file` — on any machine, without any
//! provider. The work is `cloudkeep_tenant::portable` and the engine.

use std::path::Path;
use std::process::ExitCode;

use cloudkeep_model::units::human_bytes;
use cloudkeep_repo::engine::portable::FileInfo;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions};
use cloudkeep_repo::repo::{Repository, RestorePoint};
use cloudkeep_tenant::{TenantContext, portable, runner};
use serde_json::json;

use crate::progress::ProgressLine;
use crate::{secrets, show};

/// The file's password from stdin when the file is encrypted (`None` for an unencrypted file).
fn file_password(info: &FileInfo) -> anyhow::Result<Option<String>> {
    Ok(if info.encrypted {
        Some(secrets::stdin_line("password of the backup file")?)
    } else {
        None
    })
}

/// The backup file at `path` opened (its password read from stdin), with its point; `point`
/// must name it (`latest` or a prefix of its id) when given.
pub fn open(path: &Path, point: Option<&str>) -> anyhow::Result<(Repository, RestorePoint)> {
    let info = portable::file_info(path)?;
    let password = file_password(&info)?;
    let (repo, found) = portable::open_file(path, password.as_deref())?;
    if let Some(wanted) = point
        && wanted != "latest"
        && !found.id.starts_with(wanted)
    {
        anyhow::bail!(
            "the backup file holds restore point {} only, not \"{wanted}\"; give \"latest\" or its id",
            found.short_id()
        );
    }
    Ok((repo, found))
}

/// `points export POINT --job J --to FILE`.
pub fn export(
    ctx: &TenantContext,
    job: &str,
    point: &str,
    to: &Path,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let to = std::path::absolute(to)?;
    let record = ctx.block_on(ctx.state().job(job))?;
    let password = if record.spec.encrypted {
        let p = secrets::stdin_line("password for the backup file")?;
        cloudkeep_model::names::check_password(&p).map_err(|e| anyhow::anyhow!(e))?;
        Some(p)
    } else {
        None
    };
    let progress = ProgressLine::new(json_out);
    let (session, report) = portable::export_job(
        ctx,
        job,
        point,
        &to,
        password.as_deref(),
        &Default::default(),
        runner::Watch::progress(&|p| progress.update(p)),
    )?;
    progress.finish();
    let report = report?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"session": session.id, "report": report}))?
        );
    } else {
        println!(
            "restore point {} of job \"{job}\" exported to {} ({}, {} blobs{}){}",
            &report.info.source_point[..12.min(report.info.source_point.len())],
            report.path.display(),
            human_bytes(report.bytes),
            report.blobs,
            if report.resumed_blobs > 0 {
                format!(
                    ", {} of them kept from the interrupted export",
                    report.resumed_blobs
                )
            } else {
                String::new()
            },
            if password.is_some() {
                "; it opens with the password you gave, not the job's"
            } else {
                "; it is not encrypted (the job is not)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `points file FILE`: what a backup file holds.
pub fn describe(path: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let info = portable::file_info(path)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "backup file {}: restore point {} of job \"{}\" from {}, {} ({} level), {} blobs, {}, {}",
        path.display(),
        &info.source_point[..12.min(info.source_point.len())],
        info.job,
        info.host,
        show::time_text(info.point_time_ns),
        if info.image { "image" } else { "file" },
        info.blobs,
        human_bytes(info.stored_bytes),
        if info.encrypted {
            "encrypted (its password opens it)"
        } else {
            "not encrypted"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `points import FILE --job J`.
pub fn import(
    ctx: &TenantContext,
    file: &Path,
    job: &str,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let info = portable::file_info(file)?;
    let password = file_password(&info)?;
    let report =
        portable::import_into_job(ctx, job, file, password.as_deref(), &Default::default())?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "imported as restore point {} of job \"{job}\": {} blobs sent ({}), {} already there{}",
            &report.point[..12.min(report.point.len())],
            report.blobs_sent,
            human_bytes(report.bytes_sent),
            report.blobs_present,
            if report.rekeyed {
                " (re-encrypted with the job's key)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `verify --file FILE`: every part and every blob of a backup file checked.
pub fn verify(path: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let (repo, _) = open(path, None)?;
    show::verify(&repo, 100, json_out)
}

/// `restore files --from-file FILE …`.
pub fn restore_files(
    path: &Path,
    point: &str,
    (to, paths, conflict): (Option<std::path::PathBuf>, Vec<String>, Conflict),
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let (repo, found) = open(path, Some(point))?;
    let progress = ProgressLine::new(json_out);
    let options = RestoreOptions {
        destination: to.map_or(Destination::Original, Destination::Folder),
        paths,
        conflict,
        cancel: Default::default(),
    };
    let report =
        cloudkeep_repo::engine::restore::restore(&repo, &found, &options, &|p| progress.update(p));
    progress.finish();
    show::restore_report(&report?, json_out)
}
