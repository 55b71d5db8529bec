//! Running a backup job, the same for `cloudkeep job run`, the scheduler daemon and the
//! console: open the job's repository (creating it on the first run), back up incrementally
//! from the job's latest point on this computer, apply retention after a successful run, and
//! record the session with its log — also when the run fails or is stopped — and refresh the
//! provider's quota figures. Restores from a job's point are recorded as sessions too.
//!
//! Blocking: call it outside any async runtime (it runs the engine and, for a provider, a
//! remote store with its own runtime).

use cloudkeep_model::failure::Failure;
use std::path::PathBuf;

use chrono::DateTime;
use serde_json::json;

use super::TenantContext;
use super::TenantError;
use super::anomaly;
use super::jobs::{self, Job, SessionLog, SessionRecord, Target};
use cloudkeep_model::units::human_bytes;
use cloudkeep_repo::engine::backup::{BackupOptions, BackupReport, backup};
use cloudkeep_repo::engine::disk::{ImageRestore, ImageRestoreReport, export_disk, restore_image};
use cloudkeep_repo::engine::forget::{ForgetFilter, forget};
use cloudkeep_repo::engine::gc::{AUTO_COMPACT_ABOVE, GcOptions, GcReport, gc_with};
use cloudkeep_repo::engine::restore::{Destination, RestoreOptions, RestoreReport, restore};
use cloudkeep_repo::engine::{Cancel, Progress};
use cloudkeep_repo::image::export::Format;
use cloudkeep_repo::repo::Repository;

pub use super::jobs::target_text;

/// Opens the repository of `job` (blocking).
pub fn open_job_repository(ctx: &TenantContext, job: &Job) -> Result<Repository, TenantError> {
    let state = ctx.state();
    let secrets = ctx.secrets();
    let provider = match &job.spec.target {
        Target::Provider { provider, .. } => Some(ctx.block_on(state.provider(provider))?),
        Target::Folder { .. } => None,
    };
    let backend = match jobs::open_backend(job, provider.as_ref(), secrets) {
        // A renewed certificate the provider announced, or a CA-signed one: followed.
        Err(e @ TenantError::CertificateChanged { .. }) => {
            let name = provider
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default();
            match ctx.block_on(super::providers::follow_change(state, &name))? {
                Some(renewed) => jobs::open_backend(job, Some(&renewed), secrets)?,
                None => return Err(e),
            }
        }
        other => other?,
    };
    let siblings = ctx.block_on(state.jobs())?;
    let repo = jobs::open_repository(job, backend, secrets, &siblings)?;
    Ok(match &job.spec.target {
        // Folder listings of a remote repository are kept locally: an incremental backup or a
        // browse then reads them without a request each.
        Target::Provider { .. } => {
            let dir = ctx.home().listing_cache(&repo.keyring().repo_id);
            repo.with_blob_cache(cloudkeep_repo::blobcache::BlobCache::new(dir))
        }
        Target::Folder { .. } => repo,
    })
}

/// Who follows a run as it goes: its progress and the lines of its session log.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    /// Progress, every 200 ms or so.
    pub progress: &'a (dyn Fn(&Progress) + Sync),
    /// Each log line as it is written.
    pub line: &'a (dyn Fn(&str) + Sync),
}

impl<'a> Watch<'a> {
    /// Progress only.
    pub fn progress(progress: &'a (dyn Fn(&Progress) + Sync)) -> Self {
        Self {
            progress,
            line: &|_| {},
        }
    }
}

/// Runs job `name` once and records its session. Returns the session, and the backup's
/// report when it succeeded (with or without warnings).
pub fn run_job(
    ctx: &TenantContext,
    name: &str,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    run_job_tries(
        ctx,
        name,
        Watch::progress(progress),
        &Cancel::default(),
        false,
    )
}

/// [`run_job`] followed by `watch` and stopped by `cancel` (the console's Stop button): a
/// stopped run is recorded as `stopped`, makes no restore point, and the next run reuses what
/// it stored.
pub fn run_job_watched(
    ctx: &TenantContext,
    name: &str,
    watch: Watch<'_>,
    cancel: &Cancel,
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    run_job_tries(ctx, name, watch, cancel, false)
}

/// Runs job `name` as its schedule does: a failure that waiting can fix (not a certificate,
/// credential or quota problem) is tried again after the job's retry wait, up to its number
/// of retries; one session is recorded, naming the failed tries.
pub fn run_job_scheduled(
    ctx: &TenantContext,
    name: &str,
    watch: Watch<'_>,
    cancel: &Cancel,
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    run_job_tries(ctx, name, watch, cancel, true)
}

fn run_job_tries(
    ctx: &TenantContext,
    name: &str,
    watch: Watch<'_>,
    cancel: &Cancel,
    retry: bool,
) -> Result<(SessionRecord, Result<BackupReport, TenantError>), TenantError> {
    let progress = watch.progress;
    let state = ctx.state();
    let job = ctx.block_on(state.job(name))?;
    if let Some(member) = &job.spec.agent
        && !ctx.home().is_agent()
    {
        return Err(TenantError::Invalid(format!(
            "\"{name}\" is computer \"{}\" of a backup policy: its agent backs it up on its own schedule; here you browse and restore its restore points",
            member.computer
        )));
    }
    let started_ms = cloudkeep_model::clock::now_ms();
    let mut log = SessionLog::watched(watch.line);
    log.line(format!(
        "backup of \"{}\" started on {}: {} → {}",
        job.name,
        cloudkeep_repo::lock::hostname(),
        job.spec.sources.join(", "),
        target_text(&job.spec.target)
    ));
    let tries = if retry { job.spec.retries + 1 } else { 1 };
    let mut failed_tries = Vec::new();
    let mut outcome = backup_job(ctx, &job, progress, cancel, &mut log);
    while let Err(e) = &outcome {
        if failed_tries.len() as u32 + 1 >= tries || e.kind().is_some() || cancel.is_cancelled() {
            break;
        }
        log.line(format!(
            "try {} failed: {e}; trying again in {} s",
            failed_tries.len() + 1,
            job.spec.retry_wait_s
        ));
        failed_tries.push(e.to_string());
        wait_unless_cancelled(job.spec.retry_wait_s, cancel);
        outcome = backup_job(ctx, &job, progress, cancel, &mut log);
    }
    let finished_ms = cloudkeep_model::clock::now_ms();
    let stopped = matches!(
        &outcome,
        Err(TenantError::Engine(
            cloudkeep_repo::engine::EngineError::Cancelled
        ))
    );
    // The same judgement the run made before its retention (the same earlier sessions).
    let verdict = match &outcome {
        Ok(report) => anomaly::judge(
            &ctx.block_on(state.sessions(Some(&job.name)))?,
            report.signals.as_ref(),
        ),
        Err(_) => Default::default(),
    };
    let mut session = match &outcome {
        Ok(report) => SessionRecord {
            id: 0,
            job: job.name.clone(),
            kind: "backup".into(),
            started_ms,
            finished_ms,
            result: if report.warnings.is_empty() && !verdict.suspicious {
                "success"
            } else {
                "warning"
            }
            .into(),
            point: Some(report.point.id.clone()),
            stats: anomaly::session_stats(report, &verdict),
            warnings: json!(report.warnings),
            message: if verdict.suspicious {
                format!(
                    "looks like ransomware at work: {}",
                    verdict.reasons.join("; ")
                )
            } else {
                String::new()
            },
            log: Vec::new(),
        },
        Err(e) => SessionRecord {
            id: 0,
            job: job.name.clone(),
            kind: "backup".into(),
            started_ms,
            finished_ms,
            result: if stopped { "stopped" } else { "failed" }.into(),
            point: None,
            stats: json!({}),
            warnings: json!([]),
            message: tries_message(&failed_tries, &e.to_string()),
            log: Vec::new(),
        },
    };
    if outcome.is_ok() && !failed_tries.is_empty() && !verdict.suspicious {
        session.message = format!(
            "succeeded on try {}; {}",
            failed_tries.len() + 1,
            tries_message(&failed_tries, "")
        );
    }
    match &outcome {
        Err(e) if stopped => log.line(format!("stopped on request: {e}")),
        Err(e) => log.line(format!("failed: {e}")),
        Ok(_) => {}
    }
    log.line(format!(
        "finished: {} in {:.1} s",
        session.result,
        (finished_ms - started_ms) as f64 / 1000.0
    ));
    session.log = log.into_lines();
    session.id = ctx.block_on(state.record_session(&session))?;
    super::notify::session_ended(ctx, &job, &session);
    if let Target::Provider { provider, .. } = &job.spec.target {
        // The run changed what is used of the quota: keep the figures Home and
        // `provider list` show current. Best effort: the session is recorded already.
        let secrets = ctx.secrets();
        if let Err(e) = ctx.block_on(super::providers::rescan(state, secrets, provider)) {
            tracing::warn!(provider = %provider, "quota figures not refreshed after the run: {e}");
        }
    }
    Ok((session, outcome))
}

/// Sleeps `seconds`, waking early when `cancel` is set.
fn wait_unless_cancelled(seconds: u64, cancel: &Cancel) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < until && !cancel.is_cancelled() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
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
    ctx: &TenantContext,
    job: &Job,
    progress: &(dyn Fn(&Progress) + Sync),
    cancel: &Cancel,
    log: &mut SessionLog<'_>,
) -> Result<BackupReport, TenantError> {
    // A certificate change accepted since the job's previous session (here, or by a rescan
    // of the provider) is told in this session's log.
    let earlier = ctx.block_on(ctx.state().sessions(Some(&job.name)))?;
    let previous = earlier.first().map_or(0, |s| s.started_ms);
    let repo = open_job_repository(ctx, job)?;
    if let Target::Provider { provider, .. } = &job.spec.target
        && let Ok(p) = ctx.block_on(ctx.state().provider(provider))
        && let Some(change) = p.cert.changed.filter(|c| c.ms >= previous)
    {
        log.line(change.text(provider));
    }
    if let Some(retired) = repo.opened_by_retired_slot() {
        log.line(format!(
            "warning: the cloud repository's keyring was changed on {}: this job's encryption password opens only a key slot that was removed then and that the provider keeps until {}; if you did not change it, someone with your account's password did: change that password with your provider now",
            retired.retired.format("%Y-%m-%d"),
            retired.kept_until.format("%Y-%m-%d")
        ));
    }
    let host = cloudkeep_repo::lock::hostname();
    let parent = repo.latest_point(&job.name, &host)?;
    match &parent {
        Some(p) if job.spec.mode.is_image() => log.line(format!(
            "incremental from restore point {} ({}): only changed blocks are stored; on ext4 volumes held still, unchanged files are not read again",
            p.short_id(),
            human_bytes(p.manifest.stats.bytes)
        )),
        Some(p) => log.line(format!(
            "incremental from restore point {} ({} files, {}): unchanged files are not read again",
            p.short_id(),
            p.manifest.stats.files,
            human_bytes(p.manifest.stats.bytes)
        )),
        None => log.line("no earlier restore point of this job on this computer: a full backup"),
    }
    let disks = disks_of(&job.spec);
    if job.spec.mode.is_image() {
        log.line(format!(
            "{} backup of {}",
            job.spec.mode.label(),
            if disks.is_empty() {
                "no disk (none was found)".to_owned()
            } else {
                disks
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    let options = BackupOptions {
        sources: job.spec.sources.iter().map(PathBuf::from).collect(),
        disks,
        excludes: job.spec.excludes.clone(),
        one_file_system: false,
        compression: job.spec.compression.parse().map_err(TenantError::Invalid)?,
        host: host.clone(),
        job: job.name.clone(),
        parent,
        cancel: cancel.clone(),
    };
    let report = backup(&repo, &options, progress)?;
    let stats = &report.point.manifest.stats;
    if report.point.manifest.is_image() {
        log.line(format!(
            "restore point {} stored: {} disk(s), {}; {} in use read, {} new stored (unchanged blocks are not sent again)",
            report.point.short_id(),
            report.point.manifest.disks.len(),
            human_bytes(stats.bytes),
            human_bytes(stats.bytes_read),
            human_bytes(stats.new_stored_bytes)
        ));
    } else {
        log.line(format!(
        "restore point {} stored: {} files in {} folders, {}; {} files read ({}), {} new stored",
        report.point.short_id(),
        stats.files,
        stats.dirs,
        human_bytes(stats.bytes),
        stats.files_read,
        human_bytes(stats.bytes_read),
        human_bytes(stats.new_stored_bytes)
    ));
    }
    for note in &report.notes {
        log.line(note.clone());
    }
    for w in &report.warnings {
        log.line(format!("warning: {}: {}", w.path.display(), w.message));
    }
    let verdict = anomaly::judge(&earlier, report.signals.as_ref());
    let mut suspicious = anomaly::suspicious_points(&earlier);
    if verdict.suspicious {
        log.line(anomaly::log_line(&verdict));
        let started = DateTime::from_timestamp(
            report.point.time_ns.div_euclid(1_000_000_000),
            report.point.time_ns.rem_euclid(1_000_000_000) as u32,
        )
        .unwrap_or_else(chrono::Utc::now);
        suspicious.push((report.point.id.clone(), started));
    }
    if !job.spec.retention.is_empty() {
        let groups = forget(
            &repo,
            &job.spec.retention,
            &ForgetFilter {
                job: Some(job.name.clone()),
                host: Some(host),
                suspicious,
            },
            chrono::Utc::now(),
            false,
        )?;
        let decisions = groups.iter().flat_map(|g| &g.decisions);
        let removed = decisions.clone().filter(|d| d.remove()).count();
        log.line(format!(
            "retention: {} restore points kept, {removed} removed",
            decisions.count() - removed
        ));
        if removed > 0 {
            auto_compact(&repo, log);
        }
    }
    Ok(report)
}

/// The disks a job images: its volumes, every disk of the computer, or none (file level).
/// A replica of the computer is made of the same disks (`replica create --from-job`).
pub fn disks_of(spec: &jobs::JobSpec) -> Vec<PathBuf> {
    use cloudkeep_model::mode::BackupMode;
    use cloudkeep_repo::image::devices::{self, DeviceKind};
    match spec.mode {
        BackupMode::Files => Vec::new(),
        BackupMode::Volumes => spec.volumes.iter().map(PathBuf::from).collect(),
        BackupMode::Entire => devices::list()
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Disk)
            .map(|d| d.path)
            .collect(),
    }
}

/// After retention removed points: compacts the repository when more than
/// [`AUTO_COMPACT_ABOVE`] of what it stores is no longer needed, and says what it found. A
/// failure here fails nothing: the point is stored, and the next run tries again.
fn auto_compact(repo: &Repository, log: &mut SessionLog<'_>) {
    let options = GcOptions {
        only_above: Some(AUTO_COMPACT_ABOVE),
        ..GcOptions::default()
    };
    match gc_with(repo, options) {
        Ok(r) if r.skipped => {
            repo.backend().points_changed();
            log.line(format!(
                "space: {} in use, {} no longer needed ({:.0} %; compacts by itself above {:.0} %)",
                human_bytes(r.live_bytes),
                human_bytes(r.unused_bytes),
                percent(r.unused_bytes, r.live_bytes + r.unused_bytes),
                AUTO_COMPACT_ABOVE * 100.0
            ));
        }
        Ok(r) => log.line(compact_summary(&r)),
        Err(e) => log.line(format!(
            "warning: the repository was not compacted ({e}); the next run tries again"
        )),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One line on what a compaction did.
pub fn compact_summary(r: &GcReport) -> String {
    let mut line = format!(
        "compacted: {} no longer needed of {}; {} packs removed, {} rewritten ({} moved); storage {} → {}",
        human_bytes(r.unused_bytes),
        human_bytes(r.live_bytes + r.unused_bytes),
        r.packs_deleted + r.orphan_packs,
        r.packs_repacked,
        human_bytes(r.bytes_moved),
        human_bytes(r.bytes_before),
        human_bytes(r.bytes_after)
    );
    if !r.packs_kept.is_empty() {
        line.push_str(&format!(
            "; the provider kept {} packs ({})",
            r.packs_kept.len(),
            r.packs_kept[0].1
        ));
    }
    line
}

/// Compacts job `name`'s repository now (every job sharing it gains), recorded as a
/// `compact` session whose stats are the [`GcReport`]. Blocking.
pub fn compact_job(
    ctx: &TenantContext,
    name: &str,
) -> Result<(SessionRecord, Result<GcReport, TenantError>), TenantError> {
    let state = ctx.state();
    let job = ctx.block_on(state.job(name))?;
    let started_ms = cloudkeep_model::clock::now_ms();
    let mut log = SessionLog::default();
    log.line(format!(
        "compacting the repository of \"{name}\" at {}",
        target_text(&job.spec.target)
    ));
    let outcome =
        open_job_repository(ctx, &job).and_then(|repo| Ok(gc_with(&repo, GcOptions::default())?));
    let finished_ms = cloudkeep_model::clock::now_ms();
    let (result, stats, message) = match &outcome {
        Ok(r) => {
            log.line(compact_summary(r));
            ("success", json!(r), String::new())
        }
        Err(e) => {
            log.line(format!("failed: {e}"));
            ("failed", json!({}), e.to_string())
        }
    };
    let mut session = SessionRecord {
        id: 0,
        job: job.name.clone(),
        kind: "compact".into(),
        started_ms,
        finished_ms,
        result: result.into(),
        point: None,
        stats,
        warnings: json!([]),
        message,
        log: log.into_lines(),
    };
    session.id = ctx.block_on(state.record_session(&session))?;
    if let Target::Provider { provider, .. } = &job.spec.target
        && let Err(e) = ctx.block_on(super::providers::rescan(state, ctx.secrets(), provider))
    {
        tracing::warn!(provider = %provider, "quota figures not refreshed after compaction: {e}");
    }
    Ok((session, outcome))
}

/// Restores from a point of job `name` (`point`: an id prefix or `latest`) as `options` say,
/// and records it as a `restore` session: `success`, `warning` (some items failed), `failed`
/// or `stopped`. Blocking.
pub fn restore_job(
    ctx: &TenantContext,
    name: &str,
    point: &str,
    options: &RestoreOptions,
    watch: Watch<'_>,
) -> Result<(SessionRecord, Result<RestoreReport, TenantError>), TenantError> {
    let what = if options.paths.is_empty() {
        "everything".to_owned()
    } else {
        options.paths.join(", ")
    };
    let to = match &options.destination {
        Destination::Original => "where it came from".to_owned(),
        Destination::Folder(f) => f.display().to_string(),
    };
    let heading = format!(
        "restore of {what} from job \"{name}\" into {to} (existing files: {})",
        options.conflict
    );
    restore_session(
        ctx,
        name,
        point,
        ("restore", heading),
        watch.line,
        |repo, found| Ok(restore(repo, found, options, watch.progress)?),
        |report, log| {
            log.line(report.summary());
            for f in &report.failed {
                log.line(format!("failed: {}: {}", f.path.display(), f.message));
            }
            let result = match (report.failed.is_empty(), report.files + report.dirs) {
                (true, _) => "success",
                (false, 0) => "failed",
                (false, _) => "warning",
            };
            let warnings: Vec<_> = report.failed.iter().chain(&report.skipped).collect();
            Recorded {
                result,
                message: String::new(),
                stats: json!({"files": report.files, "dirs": report.dirs, "bytes": report.bytes}),
                warnings: json!(warnings),
            }
        },
    )
}

/// Writes a disk or a volume of `point` of `repo` onto `target`: a volume as it is, a disk in
/// `what.format`. Shared by job restores and restores from a backup file. Blocking.
pub fn write_image(
    repo: &Repository,
    point: &cloudkeep_repo::repo::RestorePoint,
    what: &ImageRestore,
    target: &std::path::Path,
    cancel: &Cancel,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ImageRestoreReport, TenantError> {
    match what.volume {
        Some(_) if what.format != Format::Raw => Err(TenantError::Invalid(
            "a volume is restored as it is (raw); export a whole disk as VHD, VHDX or VMDK".into(),
        )),
        Some(_) => Ok(restore_image(repo, point, what, target, cancel, progress)?),
        None => Ok(export_disk(
            repo,
            point,
            &what.disk,
            what.format,
            target,
            cancel,
            progress,
        )?),
    }
}

/// Restores a disk or a volume of a point of job `name` onto `target` (a device or an image
/// file), recorded as a `restore` session of the job. The face has already shown the target
/// and had the person confirm; the engine still refuses a mounted or too small target.
pub fn restore_image_job(
    ctx: &TenantContext,
    name: &str,
    point: &str,
    what: &ImageRestore,
    target: &std::path::Path,
    cancel: &Cancel,
    watch: Watch<'_>,
) -> Result<(SessionRecord, Result<ImageRestoreReport, TenantError>), TenantError> {
    let item = match what.volume {
        Some(n) => format!("volume {n} of disk {}", shown_disk(&what.disk)),
        None => format!("disk {} as {}", shown_disk(&what.disk), what.format),
    };
    let heading = format!(
        "restore of {item} from job \"{name}\" onto {}",
        target.display()
    );
    restore_session(
        ctx,
        name,
        point,
        ("restore", heading),
        watch.line,
        |repo, found| write_image(repo, found, what, target, cancel, watch.progress),
        |report, log| {
            log.line(format!(
                "{} written onto {} ({} of data, {} of zeros)",
                human_bytes(report.size),
                target.display(),
                human_bytes(report.written),
                human_bytes(report.zeroed)
            ));
            for note in &report.notes {
                log.line(note.clone());
            }
            Recorded {
                result: "success",
                message: String::new(),
                stats: json!({"bytes": report.size, "written": report.written}),
                warnings: json!([]),
            }
        },
    )
}

/// What a restore session records of a restore that ran.
pub(crate) struct Recorded {
    pub(crate) result: &'static str,
    /// What a person reads first about a run that did not succeed (empty: nothing).
    pub(crate) message: String,
    pub(crate) stats: serde_json::Value,
    pub(crate) warnings: serde_json::Value,
}

/// Runs one restore from point `point` of job `name` (`run`: the restore itself) and records
/// it as a session of `kind` (`restore`, `export`): its log opens with `heading` and the point, `record` tells what
/// the outcome was; a failure is `failed`, a cancel `stopped`. Blocking.
pub(crate) fn restore_session<R>(
    ctx: &TenantContext,
    name: &str,
    point: &str,
    (kind, heading): (&str, String),
    line: &(dyn Fn(&str) + Sync),
    run: impl FnOnce(&Repository, &cloudkeep_repo::repo::RestorePoint) -> Result<R, TenantError>,
    record: impl FnOnce(&R, &mut SessionLog<'_>) -> Recorded,
) -> Result<(SessionRecord, Result<R, TenantError>), TenantError> {
    let state = ctx.state();
    let job = ctx.block_on(state.job(name))?;
    let started_ms = cloudkeep_model::clock::now_ms();
    let mut log = SessionLog::watched(line);
    log.line(heading);
    let outcome = open_job_repository(ctx, &job).and_then(|repo| {
        let found = repo.find_job_point(&job.name, point)?;
        log.line(format!(
            "restore point {} of {}",
            found.short_id(),
            cloudkeep_model::units::date_time_text(found.time_ns / 1_000_000)
        ));
        Ok((found.id.clone(), run(&repo, &found)?))
    });
    let finished_ms = cloudkeep_model::clock::now_ms();
    let (result, point_id, recorded, message, report) = match outcome {
        Ok((id, report)) => {
            let recorded = record(&report, &mut log);
            let message = recorded.message.clone();
            (recorded.result, Some(id), recorded, message, Ok(report))
        }
        Err(e) => {
            let stopped = matches!(
                e,
                TenantError::Engine(cloudkeep_repo::engine::EngineError::Cancelled)
            );
            let result = if stopped { "stopped" } else { "failed" };
            log.line(format!("{result}: {e}"));
            let recorded = Recorded {
                result,
                message: String::new(),
                stats: json!({}),
                warnings: json!([]),
            };
            (result, None, recorded, e.to_string(), Err(e))
        }
    };
    log.line(format!(
        "finished: {result} in {:.1} s",
        (finished_ms - started_ms) as f64 / 1000.0
    ));
    let mut session = SessionRecord {
        id: 0,
        job: job.name.clone(),
        kind: kind.into(),
        started_ms,
        finished_ms,
        result: result.into(),
        point: point_id,
        stats: recorded.stats,
        warnings: recorded.warnings,
        message,
        log: log.into_lines(),
    };
    session.id = ctx.block_on(state.record_session(&session))?;
    Ok((session, report))
}

/// The bytes an image-level restore of `what` from a point of job `name` writes (to check a
/// target before asking the person to confirm); refuses a file-level point, a disk or volume
/// the point does not hold.
pub fn image_restore_size(
    ctx: &TenantContext,
    name: &str,
    point: &str,
    what: &ImageRestore,
) -> Result<u64, TenantError> {
    let job = ctx.block_on(ctx.state().job(name))?;
    let repo = open_job_repository(ctx, &job)?;
    let found = repo.find_job_point(&job.name, point)?;
    image_size(&found, what)
}

/// Bytes `what` of `point` writes: a volume's size, or its disk's.
pub fn image_size(
    found: &cloudkeep_repo::repo::RestorePoint,
    what: &ImageRestore,
) -> Result<u64, TenantError> {
    let disk = cloudkeep_repo::engine::disk::find_disk(found, &what.disk)?;
    Ok(match what.volume {
        Some(n) => {
            let (range, _) = cloudkeep_repo::engine::disk::volume_range(disk, n)?;
            range.end - range.start
        }
        None => disk.layout.size,
    })
}

fn shown_disk(disk: &str) -> &str {
    if disk.is_empty() {
        "(the only one)"
    } else {
        disk
    }
}

const HEALTH_SAMPLE_TEXT: &str =
    "a sample of the packs re-read and every blob in them authenticated";

/// Runs the health check of job `name` (verify of a sample of its repository's packs) and
/// records it as a `health-check` session.
pub fn check_job(ctx: &TenantContext, name: &str) -> Result<SessionRecord, TenantError> {
    let state = ctx.state();
    let job = ctx.block_on(state.job(name))?;
    let started_ms = cloudkeep_model::clock::now_ms();
    let outcome = open_job_repository(ctx, &job).and_then(|repo| {
        Ok(cloudkeep_repo::engine::verify::verify(
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
                "damage found: {} packs ({} set aside, so the next backup sends their lost data again), {} restore points affected; run \"cloudkeep verify --job {name}\" for details",
                report.damaged.len(),
                report
                    .repaired
                    .iter()
                    .filter(|r| r.health != cloudkeep_repo::backend::PackHealth::Intact)
                    .count(),
                report.damaged_points.len() + report.affected.len()
            ),
        ),
        Err(e) => ("failed", json!({}), e.to_string()),
    };
    let mut session = SessionRecord {
        id: 0,
        job: job.name.clone(),
        kind: "health-check".into(),
        started_ms,
        finished_ms: cloudkeep_model::clock::now_ms(),
        result: result.into(),
        point: None,
        stats,
        warnings: json!([]),
        log: vec![format!(
            "{} health check: {HEALTH_SAMPLE_TEXT}",
            chrono::Local::now().format("%H:%M:%S")
        )],
        message,
    };
    session.id = ctx.block_on(state.record_session(&session))?;
    Ok(session)
}
