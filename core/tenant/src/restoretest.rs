//! Restore tests of jobs: `cloudkeep job restore-test`, the console's "Test restore", and
//! their schedules (the job's own, or a policy's for its computers' agents). The newest point
//! of the job is tested ([`cloudkeep_repo::engine::prove`]) in a scratch folder of the data
//! home and the outcome recorded as a `restore-test` session: `success` (proven restorable),
//! `warning` (files left untested: the scratch disk full) or `failed` (a file that does not
//! come back as it was backed up, named first in the message).
//!
//! A job's "last proven restorable" is the time of the point its newest successful restore test
//! proved — what Home, `job show`, the console's jobs list and the SP's view show.

use serde_json::json;

use super::TenantContext;
use super::TenantError;
use super::jobs::SessionRecord;
use super::runner::{self, Recorded, Watch};
use cloudkeep_repo::engine::Cancel;
use cloudkeep_repo::engine::prove::{DEFAULT_MIN_FILES, ProveOptions, ProveReport, prove};

/// Most failed files a session's log names one by one.
const LOGGED_FAILURES: usize = 50;

/// Runs a restore test of the newest point of job `name`, restoring `sample_percent` of its
/// files (the job's share when `None`), and records it as a `restore-test` session. Blocking.
pub fn restore_test_job(
    ctx: &TenantContext,
    name: &str,
    sample_percent: Option<u8>,
    watch: Watch<'_>,
    cancel: &Cancel,
) -> Result<(SessionRecord, Result<ProveReport, TenantError>), TenantError> {
    let job = ctx.block_on(ctx.state().job(name))?;
    let percent = sample_percent
        .unwrap_or(job.spec.restore_test_sample)
        .clamp(1, 100);
    let root = ctx.home().restore_tests();
    cloudkeep_model::paths::create_private_dir(&root).map_err(|e| {
        TenantError::Invalid(format!(
            "cannot create the restore tests' scratch folder {}: {e}",
            root.display()
        ))
    })?;
    let now = cloudkeep_model::clock::now_ms();
    clear_leftovers(&root, now);
    let scratch = root.join(format!("run-{now}-{}", std::process::id()));
    let options = ProveOptions {
        sample_percent: percent,
        min_files: DEFAULT_MIN_FILES,
        scratch,
        cancel: cancel.clone(),
    };
    let heading = format!(
        "restore test of job \"{name}\": {percent} % of the files of its newest point (at least {DEFAULT_MIN_FILES}) restored into a scratch folder and read back against what was backed up"
    );
    let ran = runner::restore_session(
        ctx,
        name,
        "latest",
        ("restore-test", heading),
        watch.line,
        |repo, point| Ok(prove(repo, point, &options, watch.progress)?),
        |report, log| {
            for v in &report.volumes {
                log.line(match (&v.filesystem, v.opened) {
                    (Some(fs), true) => format!(
                        "volume {} ({fs}): opened, {} entries listed, {} files restored ({})",
                        v.volume,
                        v.entries,
                        v.files,
                        cloudkeep_model::units::human_bytes(v.bytes)
                    ),
                    (Some(fs), false) => format!("volume {} ({fs}): does not open", v.volume),
                    (None, _) => format!(
                        "volume {}: no file system this version opens; its blocks are in the sample",
                        v.volume
                    ),
                });
            }
            for f in report.failures.iter().take(LOGGED_FAILURES) {
                log.line(format!("NOT restorable: {}: {}", f.path, f.reason));
            }
            if report.failures.len() > LOGGED_FAILURES {
                log.line(format!(
                    "… and {} more not restorable",
                    report.failures.len() - LOGGED_FAILURES
                ));
            }
            for u in report.untested.iter().take(LOGGED_FAILURES) {
                log.line(format!("untested: {}: {}", u.path, u.reason));
            }
            log.line(report.summary());
            let result = if !report.passed() {
                "failed"
            } else if !report.proven() {
                "warning"
            } else {
                "success"
            };
            Recorded {
                result,
                message: if result == "success" {
                    String::new()
                } else {
                    report.summary()
                },
                stats: json!({
                    "sample_percent": percent,
                    "point_time_ms": report.point_time_ms,
                    "files_in_point": report.files_in_point,
                    "files_sampled": report.files_sampled,
                    "files_proven": report.files_proven,
                    "folders_read": report.folders_read,
                    "chunks_checked": report.chunks_checked,
                    "bytes_restored": report.bytes_restored,
                    "bytes_checked": report.bytes_checked,
                    "stored_bytes_read": report.stored_bytes_read,
                    "volumes": report.volumes,
                    "elapsed_ms": report.elapsed_ms,
                }),
                warnings: json!(
                    report
                        .failures
                        .iter()
                        .chain(&report.untested)
                        .map(|p| json!({"path": p.path, "message": p.reason}))
                        .collect::<Vec<_>>()
                ),
            }
        },
    )?;
    super::notify::session_ended(ctx, &job, &ran.0);
    Ok(ran)
}

/// A test's scratch folder older than this was left by a test that was killed: removed.
const LEFTOVER_MS: i64 = 24 * 3_600_000;

/// Removes the scratch folders of tests killed before they could empty them (their name
/// says when they started), so a killed test's plaintext and disk use do not stay for good.
/// Folders of tests still running are younger and stay.
fn clear_leftovers(root: &std::path::Path, now_ms: i64) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let started = name
            .strip_prefix("run-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|ms| ms.parse::<i64>().ok());
        if started.is_some_and(|ms| now_ms - ms > LEFTOVER_MS) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(folder = %name, "removed what a killed restore test left"),
                Err(e) => {
                    tracing::warn!(folder = %name, "a killed restore test's scratch folder stays: {e}")
                }
            }
        }
    }
}

/// What the newest restore test of a job says: when its point was proven restorable, or
/// that the test failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proof {
    /// `success`, `warning` or `failed` (the newest finished restore test's result).
    pub result: String,
    /// When that test ran (ms since the epoch).
    pub tested_ms: i64,
    /// The time of the newest point a successful test proved restorable (ms), if any.
    pub proven_point_ms: Option<i64>,
    /// When that successful test ran.
    pub proven_ms: Option<i64>,
    /// The newest test's message (which file failed).
    pub message: String,
}

/// The restore-test standing a provider reported for a job run elsewhere (a policy's
/// computer, tested by its agent); `None` before its first test.
pub fn proof_from(health: &cloudkeep_api::health::JobHealth) -> Option<Proof> {
    Some(Proof {
        result: health.test_result.clone()?,
        tested_ms: health.tested_ms?,
        proven_point_ms: health.proven_point_ms,
        proven_ms: health.proven_ms,
        message: health.test_message.clone(),
    })
}

/// The restore-test standing of `job` from its sessions (newest first or in any order).
pub fn proof_of(job: &str, sessions: &[SessionRecord]) -> Option<Proof> {
    let tests = || {
        sessions
            .iter()
            .filter(|s| s.job == job && s.kind == "restore-test" && s.result != "stopped")
    };
    let newest = tests().max_by_key(|s| s.started_ms)?;
    let proven = tests()
        .filter(|s| s.result == "success")
        .max_by_key(|s| s.started_ms);
    Some(Proof {
        result: newest.result.clone(),
        tested_ms: newest.finished_ms,
        proven_point_ms: proven.and_then(point_time_ms),
        proven_ms: proven.map(|s| s.finished_ms),
        message: newest.message.clone(),
    })
}

/// The time of the point a restore-test session tested (its stats keep it).
fn point_time_ms(session: &SessionRecord) -> Option<i64> {
    session
        .stats
        .get("point_time_ms")
        .and_then(serde_json::Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A killed test's scratch folder (a day old) goes at the next test; a running test's,
    /// and anything not a test's, stays.
    #[test]
    fn a_killed_tests_scratch_folder_is_removed_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let now = 10 * LEFTOVER_MS;
        let killed = root
            .path()
            .join(format!("run-{}-42", now - LEFTOVER_MS - 1));
        let running = root.path().join(format!("run-{}-43", now - 60_000));
        let other = root.path().join("notes");
        for dir in [&killed, &running, &other] {
            std::fs::create_dir_all(dir.join("deep")).unwrap();
            std::fs::write(dir.join("deep/000001.restored"), b"plaintext").unwrap();
        }
        clear_leftovers(root.path(), now);
        assert!(!killed.exists());
        assert!(running.exists() && other.exists());
    }
}
