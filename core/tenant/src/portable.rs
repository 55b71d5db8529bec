//! Backup files as the tenant uses them, shared by the CLI and the console: what a file holds
//! (readable without its password), a file opened as a repository with its password, a job's
//! point exported into a file (recorded as an `export` session of the job) and a file's point
//! imported into a job's repository (sending only what it lacks).

use std::path::Path;
use std::sync::Arc;

use cloudkeep_repo::backupfile::store::FileStore;
use cloudkeep_repo::backupfile::{BackupFile, FileError, Tag};
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::Cancel;
use cloudkeep_repo::engine::portable::{
    self, ExportOptions, ExportReport, FileInfo, ImportReport, export_point, import_point,
};
use cloudkeep_repo::repo::{Repository, RestorePoint, Unlock};
use serde_json::json;

use crate::TenantError;
use crate::context::TenantContext;
use crate::jobs::SessionRecord;
use crate::runner::{Recorded, Watch, open_job_repository, restore_session};

/// What the file at `path` holds, from its clear description (no password needed); its
/// parts are checked on the way, so a cut or damaged file is refused here already.
pub fn file_info(path: &Path) -> Result<FileInfo, TenantError> {
    let file = BackupFile::open(path)?;
    let (_, bytes) = file
        .small(Tag::Info)
        .ok_or_else(|| FileError::NotABackupFile {
            path: path.to_path_buf(),
            reason: "it holds no description".into(),
        })?;
    serde_json::from_slice::<FileInfo>(bytes)
        .ok()
        .filter(|i| i.format == portable::FORMAT)
        .ok_or_else(|| {
            FileError::NotABackupFile {
                path: path.to_path_buf(),
                reason: "its description is not one this Cloudkeep reads".into(),
            }
            .into()
        })
}

/// The file at `path` opened with `password` (none for an unencrypted file), with its point.
pub fn open_file(
    path: &Path,
    password: Option<&str>,
) -> Result<(Repository, RestorePoint), TenantError> {
    let store = Arc::new(FileStore::open(path)?);
    let unlock = match password {
        Some(p) => Unlock::Password(p),
        None => Unlock::Unencrypted,
    };
    let repo = Repository::open(store, unlock).map_err(|e| match e {
        cloudkeep_repo::repo::RepoError::Crypto(
            cloudkeep_repo::crypto::CryptoError::WrongPassword,
        ) => TenantError::Invalid(
            "The password does not open this backup file: it is the password chosen when the file was exported, not the job's".into(),
        ),
        other => other.into(),
    })?;
    let point = portable::file_point(&repo)?;
    Ok((repo, point))
}

/// Exports point `point` of job `name` into a new backup file at `to` under `password`,
/// recorded as an `export` session of the job. Blocking.
pub fn export_job(
    ctx: &TenantContext,
    name: &str,
    point: &str,
    to: &Path,
    password: Option<&str>,
    cancel: &Cancel,
    watch: Watch<'_>,
) -> Result<(SessionRecord, Result<ExportReport, TenantError>), TenantError> {
    let heading = format!(
        "export of a restore point of job \"{name}\" into the backup file {}",
        to.display()
    );
    let options = ExportOptions {
        password,
        kdf: KdfParams::default(),
        cancel: cancel.clone(),
    };
    restore_session(
        ctx,
        name,
        point,
        ("export", heading),
        watch.line,
        |repo, found| Ok(export_point(repo, found, to, &options, watch.progress)?),
        |report, log| {
            log.line(format!(
                "{} written: {} blobs in {} packs{}",
                cloudkeep_model::units::human_bytes(report.bytes),
                report.blobs,
                report.packs,
                if report.resumed_blobs > 0 {
                    format!(
                        " ({} of them kept from the interrupted export)",
                        report.resumed_blobs
                    )
                } else {
                    String::new()
                }
            ));
            Recorded {
                result: "success",
                message: String::new(),
                stats: json!({"bytes": report.bytes, "blobs": report.blobs, "file": report.path}),
                warnings: json!([]),
            }
        },
    )
}

/// Imports the point of the backup file at `file` (opened with `password`) into job `name`'s
/// repository, as a point of that job. Blocking.
pub fn import_into_job(
    ctx: &TenantContext,
    name: &str,
    file: &Path,
    password: Option<&str>,
    cancel: &Cancel,
) -> Result<ImportReport, TenantError> {
    let job = ctx.block_on(ctx.state().job(name))?;
    let (source, point) = open_file(file, password)?;
    let target = open_job_repository(ctx, &job)?;
    Ok(import_point(&source, &point, &target, &job.name, cancel)?)
}
