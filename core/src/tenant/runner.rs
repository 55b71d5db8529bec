//! Running a backup job, the same for `cloudkeep job run`, the scheduler daemon and (later) the
//! console: open the job's repository (creating it on the first run), back up incrementally
//! from the job's latest point on this computer, apply retention after a successful run, and
//! record the session — also when the run fails.
//!
//! Blocking: call it outside any async runtime (it runs the engine and, for a provider, a
//! remote store with its own runtime).

use std::path::PathBuf;

use serde_json::json;

use super::TenantError;
use super::jobs::{self, Job, SessionRecord, Target};
use super::secrets::Secrets;
use super::state::TenantState;
use crate::engine::Progress;
use crate::engine::backup::{BackupOptions, BackupReport, backup};
use crate::engine::forget::{ForgetFilter, forget};
use crate::paths::DataHome;
use crate::repo::Repository;

fn runtime() -> Result<tokio::runtime::Runtime, TenantError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TenantError::Io(e.to_string()))
}

/// Opens the repository of `job` (blocking).
pub fn open_job_repository(home: &DataHome, job: &Job) -> Result<Repository, TenantError> {
    let rt = runtime()?;
    let state = rt.block_on(TenantState::open(home))?;
    let secrets = Secrets::open(home);
    let provider = match &job.spec.target {
        Target::Provider { provider, .. } => Some(rt.block_on(state.provider(provider))?),
        Target::Folder { .. } => None,
    };
    drop(rt);
    let backend = jobs::open_backend(job, provider.as_ref(), &secrets)?;
    let repo = jobs::open_repository(job, backend, &secrets)?;
    Ok(match &job.spec.target {
        // Folder listings of a remote repository are kept locally: an incremental backup or a
        // browse then reads them without a request each.
        Target::Provider { .. } => {
            let dir = home.root().join("cache").join(&repo.keyring().repo_id);
            repo.with_blob_cache(crate::blobcache::BlobCache::new(dir))
        }
        Target::Folder { .. } => repo,
    })
}

/// Runs job `name` once and records its session. Returns the session, and the backup's
/// report when it succeeded (with or without warnings).
pub fn run_job(
    home: &DataHome,
    name: &str,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    run_job_tries(home, name, progress, false)
}

/// Runs job `name` as its schedule does: a failure that waiting can fix (not a certificate,
/// credential or quota problem) is tried again after the job's retry wait, up to its number
/// of retries; one session is recorded, naming the failed tries.
pub fn run_job_scheduled(
    home: &DataHome,
    name: &str,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    run_job_tries(home, name, progress, true)
}

fn run_job_tries(
    home: &DataHome,
    name: &str,
    progress: &(dyn Fn(&Progress) + Sync),
    retry: bool,
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    let rt = runtime()?;
    let state = rt.block_on(TenantState::open(home))?;
    let job = rt.block_on(state.job(name))?;
    let started_ms = crate::store::now_ms();
    let tries = if retry { job.spec.retries + 1 } else { 1 };
    let mut failed_tries = Vec::new();
    let mut outcome = backup_job(home, &job, progress);
    while let Err(e) = &outcome {
        if failed_tries.len() as u32 + 1 >= tries || super::failure::kind_in_chain(e).is_some() {
            break;
        }
        tracing::warn!(job = %job.name, "try {} failed: {e}; trying again in {} s", failed_tries.len() + 1, job.spec.retry_wait_s);
        failed_tries.push(e.to_string());
        std::thread::sleep(std::time::Duration::from_secs(job.spec.retry_wait_s));
        outcome = backup_job(home, &job, progress);
    }
    let finished_ms = crate::store::now_ms();
    let session = match &outcome {
        Ok(report) => SessionRecord {
            job: job.name.clone(),
            kind: "backup".into(),
            started_ms,
            finished_ms,
            result: if report.warnings.is_empty() {
                "success"
            } else {
                "warning"
            }
            .into(),
            point: Some(report.point.id.clone()),
            stats: json!(report.point.manifest.stats),
            warnings: json!(report.warnings),
            message: String::new(),
        },
        Err(e) => SessionRecord {
            job: job.name.clone(),
            kind: "backup".into(),
            started_ms,
            finished_ms,
            result: "failed".into(),
            point: None,
            stats: json!({}),
            warnings: json!([]),
            message: tries_message(&failed_tries, &e.to_string()),
        },
    };
    let session = match (&outcome, failed_tries.is_empty()) {
        (Ok(_), false) => SessionRecord {
            message: format!(
                "succeeded on try {}; {}",
                failed_tries.len() + 1,
                tries_message(&failed_tries, "")
            ),
            ..session
        },
        _ => session,
    };
    rt.block_on(state.record_session(&session))?;
    Ok((session, outcome))
}

fn tries_message(failed: &[String], last: &str) -> String {
    let mut parts: Vec<String> = failed
        .iter()
        .enumerate()
        .map(|(n, e)| format!("try {} failed: {e}", n + 1))
        .collect();
    if !last.is_empty() {
        parts.push(if failed.is_empty() {
            last.to_owned()
        } else {
            format!("try {} failed: {last}", failed.len() + 1)
        });
    }
    parts.join("; ")
}

/// One backup of `job`: open its repository, back up from its latest point, apply retention.
fn backup_job(
    home: &DataHome,
    job: &Job,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<BackupReport, TenantError> {
    let repo = open_job_repository(home, job)?;
    let host = crate::lock::hostname();
    let parent = repo.latest_point(&job.name, &host)?;
    let options = BackupOptions {
        sources: job.spec.sources.iter().map(PathBuf::from).collect(),
        disks: vec![],
        excludes: job.spec.excludes.clone(),
        one_file_system: false,
        compression: job.spec.compression.parse().map_err(TenantError::Io)?,
        host: host.clone(),
        job: job.name.clone(),
        parent,
    };
    let report = backup(&repo, &options, progress)?;
    if !job.spec.retention.is_empty() {
        forget(
            &repo,
            &job.spec.retention,
            &ForgetFilter {
                job: Some(job.name.clone()),
                host: Some(host),
            },
            chrono::Utc::now(),
            false,
        )?;
    }
    Ok(report)
}

/// Runs the health check of job `name` (verify of a sample of its repository's packs) and
/// records it as a `health-check` session.
pub fn check_job(home: &DataHome, name: &str) -> Result<SessionRecord, TenantError> {
    let rt = runtime()?;
    let state = rt.block_on(TenantState::open(home))?;
    let job = rt.block_on(state.job(name))?;
    let started_ms = crate::store::now_ms();
    let outcome = open_job_repository(home, &job).and_then(|repo| {
        Ok(crate::engine::verify::verify(
            &repo,
            jobs::HEALTH_CHECK_SAMPLE,
        )?)
    });
    let (result, stats, message) = match &outcome {
        Ok(report) if report.is_healthy() => ("success", json!(report), String::new()),
        Ok(report) => (
            "failed",
            json!(report),
            format!(
                "damage found: {} packs, {} restore points; run \"cloudkeep verify --job {name}\" for details",
                report.damaged.len(),
                report.damaged_points.len() + report.affected.len()
            ),
        ),
        Err(e) => ("failed", json!({}), e.to_string()),
    };
    let session = SessionRecord {
        job: job.name.clone(),
        kind: "health-check".into(),
        started_ms,
        finished_ms: crate::store::now_ms(),
        result: result.into(),
        point: None,
        stats,
        warnings: json!([]),
        message,
    };
    rt.block_on(state.record_session(&session))?;
    Ok(session)
}
