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

/// Runs job `name` and records its session. Returns the session, and the backup's report when
/// it succeeded (with or without warnings).
pub fn run_job(
    home: &DataHome,
    name: &str,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    let rt = runtime()?;
    let state = rt.block_on(TenantState::open(home))?;
    let job = rt.block_on(state.job(name))?;
    let started_ms = crate::store::now_ms();
    let outcome = (|| -> Result<BackupReport, TenantError> {
        let repo = open_job_repository(home, &job)?;
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
    })();
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
            message: e.to_string(),
        },
    };
    rt.block_on(state.record_session(&session))?;
    Ok((session, outcome))
}
