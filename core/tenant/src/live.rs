//! Runs in progress in this process — the console's backups, restores and health checks,
//! manual or scheduled: each on a thread of its own, at most one of a kind per job at a time,
//! followed by any number of watchers (the console's views, through a Tauri channel), each of
//! which first receives what happened so far; stoppable. `cloudkeep job run` runs in the
//! foreground and does not need this.
//!
//! Invariant: a run's entry leaves the registry only after its session is recorded and its
//! watchers have been told, so "running" never hides a finished run's result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::TenantContext;
use super::TenantError;
use super::jobs::SessionRecord;
use super::runner::{self, Watch};
use cloudkeep_repo::engine::restore::{RestoreOptions, RestoreReport};
use cloudkeep_repo::engine::{Cancel, Progress};

/// What a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// A backup started by hand.
    Backup,
    /// A backup started by the schedule (failures waiting can fix are tried again).
    ScheduledBackup,
    /// A repository health check.
    HealthCheck,
    /// A restore test of the job's newest point.
    RestoreTest,
    /// A restore from one of the job's points (or from an opened backup file).
    Restore,
    /// A point exported into a backup file.
    Export,
}

impl RunKind {
    /// Backups of one job exclude each other whatever started them.
    fn slot(self) -> &'static str {
        match self {
            Self::Backup | Self::ScheduledBackup => "backup",
            Self::HealthCheck => "health-check",
            Self::RestoreTest => "restore-test",
            Self::Restore => "restore",
            Self::Export => "export",
        }
    }
}

/// What a watcher hears.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run's counters, with its rate (bytes per second) and the seconds left when known.
    Progress {
        /// Counters.
        progress: Progress,
        /// Bytes per second so far.
        rate: f64,
        /// Seconds left, when an expectation exists.
        eta_secs: Option<u64>,
    },
    /// A line of the session's log.
    Line {
        /// `HH:MM:SS text`.
        line: String,
    },
    /// The run ended; its session is recorded.
    Done {
        /// The recorded session (`result`: success, warning, failed, stopped).
        session: Box<SessionRecord>,
        /// A restore's report: restored, skipped and failed items with reasons.
        restore: Option<RestoreReport>,
        /// Why it failed, when it did.
        error: Option<String>,
    },
}

/// A run in progress, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    /// The job.
    pub job: String,
    /// What kind.
    pub kind: RunKind,
    /// The latest counters.
    pub progress: Option<Progress>,
    /// Whether a stop was asked for.
    pub stopping: bool,
}

type Watcher = Box<dyn Fn(&RunEvent) + Send + Sync>;

struct Live {
    kind: RunKind,
    cancel: Cancel,
    progress: Option<Progress>,
    lines: Vec<String>,
    watchers: Vec<Watcher>,
}

type DoneHook = Arc<dyn Fn(&str, RunKind) + Send + Sync>;

/// The runs of this process. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Runs {
    inner: Arc<Mutex<HashMap<(String, &'static str), Live>>>,
    on_done: Arc<Mutex<Option<DoneHook>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("running", &self.running().len())
            .finish()
    }
}

impl Runs {
    /// Calls `hook` with the job and kind of every run that ends, after its watchers heard
    /// (the console drops its cached view of the job's repository).
    pub fn on_done(&self, hook: impl Fn(&str, RunKind) + Send + Sync + 'static) {
        if let Ok(mut slot) = self.on_done.lock() {
            *slot = Some(Arc::new(hook));
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, &'static str), Live>> {
        // A watcher that panicked must not stop every later run: the map stays usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a backup or health check of `job` on its own thread. Refused while one of the
    /// same kind runs.
    pub fn start(&self, ctx: &TenantContext, job: &str, kind: RunKind) -> Result<(), TenantError> {
        let ctx = ctx.clone();
        let name = job.to_owned();
        self.spawn(job, kind, move |watch, cancel| {
            let error = |r: Result<_, TenantError>| r.err().map(|e| e.to_string());
            let outcome = match kind {
                RunKind::Backup => {
                    runner::run_job_watched(&ctx, &name, watch, cancel).map(|(s, r)| (s, error(r)))
                }
                RunKind::ScheduledBackup => runner::run_job_scheduled(&ctx, &name, watch, cancel)
                    .map(|(s, r)| (s, error(r))),
                RunKind::HealthCheck => runner::check_job(&ctx, &name).map(|s| {
                    let failed = (s.result == "failed").then(|| s.message.clone());
                    (s, failed)
                }),
                RunKind::RestoreTest => {
                    super::restoretest::restore_test_job(&ctx, &name, None, watch, cancel).map(
                        |(s, r)| {
                            let failed = r.err().map(|e| e.to_string()).or_else(|| {
                                (s.result == "failed").then(|| s.message.clone())
                            });
                            (s, failed)
                        },
                    )
                }
                RunKind::Restore | RunKind::Export => Err(TenantError::Invalid(
                    "a restore or an export needs a point and a destination; use start_restore or start_export".into(),
                )),
            };
            outcome.map(|(session, error)| (session, None, error))
        })
    }

    /// Starts a restore from `point` of `job` on its own thread (one per job at a time).
    pub fn start_restore(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
        options: RestoreOptions,
    ) -> Result<(), TenantError> {
        let (ctx, name, point) = (ctx.clone(), job.to_owned(), point.to_owned());
        self.spawn(job, RunKind::Restore, move |watch, cancel| {
            let options = RestoreOptions {
                cancel: cancel.clone(),
                ..options
            };
            runner::restore_job(&ctx, &name, &point, &options, watch).map(|(session, result)| {
                match result {
                    Ok(report) => (session, Some(report), None),
                    Err(e) => (session, None, Some(e.to_string())),
                }
            })
        })
    }

    /// Starts a restore from the backup file opened in `catalogs` under `key` (not a job's:
    /// no session is recorded; the report says what was restored).
    pub fn start_file_restore(
        &self,
        ctx: &TenantContext,
        catalogs: &crate::catalog::Catalogs,
        key: &str,
        point: &str,
        options: RestoreOptions,
    ) -> Result<(), TenantError> {
        let (ctx, catalogs, name, point) = (
            ctx.clone(),
            catalogs.clone(),
            key.to_owned(),
            point.to_owned(),
        );
        self.spawn(key, RunKind::Restore, move |watch, cancel| {
            let options = RestoreOptions {
                cancel: cancel.clone(),
                ..options
            };
            let started_ms = cloudkeep_model::clock::now_ms();
            let outcome = catalogs.restore(&ctx, &name, &point, &options, watch.progress);
            let result = match &outcome {
                Ok(r) if r.failed.is_empty() => "success",
                Ok(r) if r.files + r.dirs > 0 => "warning",
                Err(TenantError::Engine(cloudkeep_repo::engine::EngineError::Cancelled)) => {
                    "stopped"
                }
                _ => "failed",
            };
            let session = SessionRecord {
                id: 0,
                job: name.clone(),
                kind: "restore".into(),
                started_ms,
                finished_ms: cloudkeep_model::clock::now_ms(),
                result: result.into(),
                point: Some(point.clone()),
                stats: serde_json::json!({}),
                warnings: serde_json::json!([]),
                message: outcome
                    .as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                log: Vec::new(),
            };
            Ok(match outcome {
                Ok(report) => (session, Some(report), None),
                Err(e) => (session, None, Some(e.to_string())),
            })
        })
    }

    /// Starts an export of point `point` of job `job` into a new backup file at `to`
    /// (recorded as an `export` session; the session's stats name the file and its size).
    pub fn start_export(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
        to: std::path::PathBuf,
        password: Option<String>,
    ) -> Result<(), TenantError> {
        let (ctx, name, point) = (ctx.clone(), job.to_owned(), point.to_owned());
        self.spawn(job, RunKind::Export, move |watch, cancel| {
            crate::portable::export_job(
                &ctx,
                &name,
                &point,
                &to,
                password.as_deref(),
                cancel,
                watch,
            )
            .map(|(session, result)| match result {
                Ok(_) => (session, None, None),
                Err(e) => (session, None, Some(e.to_string())),
            })
        })
    }

    /// Starts an image-level restore (a disk or volume onto a device or file, or a disk
    /// exported to a file); its report names the target.
    pub fn start_image_restore(
        &self,
        ctx: &TenantContext,
        job: &str,
        point: &str,
        what: cloudkeep_repo::engine::disk::ImageRestore,
        target: std::path::PathBuf,
    ) -> Result<(), TenantError> {
        let (ctx, name, point) = (ctx.clone(), job.to_owned(), point.to_owned());
        self.spawn(job, RunKind::Restore, move |watch, cancel| {
            runner::restore_image_job(&ctx, &name, &point, &what, &target, cancel, watch).map(
                |(session, result)| match result {
                    Ok(report) => {
                        let placed = cloudkeep_repo::engine::restore::Placed {
                            from: match what.volume {
                                Some(n) => format!("{} volume {n}", what.disk),
                                None => format!("{} as {}", what.disk, what.format),
                            },
                            to: target.clone(),
                            folder: false,
                        };
                        let restore = RestoreReport {
                            placed: vec![placed],
                            files: 1,
                            bytes: report.size,
                            ..RestoreReport::default()
                        };
                        (session, Some(restore), None)
                    }
                    Err(e) => (session, None, Some(e.to_string())),
                },
            )
        })
    }

    fn spawn(
        &self,
        job: &str,
        kind: RunKind,
        work: impl FnOnce(
            Watch<'_>,
            &Cancel,
        )
            -> Result<(SessionRecord, Option<RestoreReport>, Option<String>), TenantError>
        + Send
        + 'static,
    ) -> Result<(), TenantError> {
        let key = (job.to_owned(), kind.slot());
        let cancel = Cancel::default();
        {
            let mut runs = self.lock();
            if runs.contains_key(&key) {
                return Err(TenantError::Invalid(format!(
                    "a {} of \"{job}\" is already running; wait for it or stop it",
                    kind.slot()
                )));
            }
            runs.insert(
                key.clone(),
                Live {
                    kind,
                    cancel: cancel.clone(),
                    progress: None,
                    lines: Vec::new(),
                    watchers: Vec::new(),
                },
            );
        }
        let runs = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("run {job}"))
            .spawn(move || {
                let on_progress = |p: &Progress| runs.progress(&key, p);
                let on_line = |line: &str| runs.line(&key, line);
                let watch = Watch {
                    progress: &on_progress,
                    line: &on_line,
                };
                let ended = work(watch, &cancel);
                runs.finish(&key, ended);
            });
        if let Err(e) = spawned {
            self.lock().remove(&(job.to_owned(), kind.slot()));
            return Err(TenantError::Start {
                what: "the run's thread",
                source: e,
            });
        }
        Ok(())
    }

    fn progress(&self, key: &(String, &'static str), p: &Progress) {
        let event = RunEvent::Progress {
            progress: *p,
            rate: p.rate(),
            eta_secs: p.eta_secs(),
        };
        let mut runs = self.lock();
        if let Some(live) = runs.get_mut(key) {
            live.progress = Some(*p);
            for w in &live.watchers {
                w(&event);
            }
        }
    }

    fn line(&self, key: &(String, &'static str), line: &str) {
        let event = RunEvent::Line {
            line: line.to_owned(),
        };
        let mut runs = self.lock();
        if let Some(live) = runs.get_mut(key) {
            live.lines.push(line.to_owned());
            for w in &live.watchers {
                w(&event);
            }
        }
    }

    fn finish(
        &self,
        key: &(String, &'static str),
        ended: Result<(SessionRecord, Option<RestoreReport>, Option<String>), TenantError>,
    ) {
        let Some(live) = self.lock().remove(key) else {
            return;
        };
        let event = match ended {
            Ok((session, restore, error)) => RunEvent::Done {
                session: Box::new(session),
                restore,
                error,
            },
            // The session could not even be recorded (the local state failed): say so.
            Err(e) => RunEvent::Done {
                session: Box::new(SessionRecord {
                    id: 0,
                    job: key.0.clone(),
                    kind: key.1.into(),
                    started_ms: 0,
                    finished_ms: cloudkeep_model::clock::now_ms(),
                    result: "failed".into(),
                    point: None,
                    stats: serde_json::json!({}),
                    warnings: serde_json::json!([]),
                    message: e.to_string(),
                    log: live.lines.clone(),
                }),
                restore: None,
                error: Some(e.to_string()),
            },
        };
        for w in &live.watchers {
            w(&event);
        }
        let hook = self.on_done.lock().ok().and_then(|h| h.clone());
        if let Some(hook) = hook {
            hook(&key.0, live.kind);
        }
    }

    /// Follows the `kind` run of `job`: `watcher` first gets the lines and the progress so
    /// far, then every event until `Done`. False when no such run is going on.
    pub fn watch(&self, job: &str, kind: RunKind, watcher: Watcher) -> bool {
        let mut runs = self.lock();
        let Some(live) = runs.get_mut(&(job.to_owned(), kind.slot())) else {
            return false;
        };
        for line in &live.lines {
            watcher(&RunEvent::Line { line: line.clone() });
        }
        if let Some(p) = live.progress {
            watcher(&RunEvent::Progress {
                progress: p,
                rate: p.rate(),
                eta_secs: p.eta_secs(),
            });
        }
        live.watchers.push(watcher);
        true
    }

    /// Asks the `kind` run of `job` to stop; false when none runs.
    pub fn stop(&self, job: &str, kind: RunKind) -> bool {
        let runs = self.lock();
        match runs.get(&(job.to_owned(), kind.slot())) {
            Some(live) => {
                live.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The runs going on now.
    pub fn running(&self) -> Vec<Running> {
        let runs = self.lock();
        let mut out: Vec<Running> = runs
            .iter()
            .map(|((job, _), live)| Running {
                job: job.clone(),
                kind: live.kind,
                progress: live.progress,
                stopping: live.cancel.is_cancelled(),
            })
            .collect();
        out.sort_by(|a, b| a.job.cmp(&b.job));
        out
    }

    /// Starts what the schedule says is due at `now` and is not running already; returns
    /// what it started. The console calls this every half minute while it is open.
    pub fn start_due(
        &self,
        ctx: &TenantContext,
        jobs: &[super::jobs::Job],
        sessions: &[SessionRecord],
        now: chrono::DateTime<chrono::Local>,
    ) -> Vec<super::scheduler::Due> {
        let mut started = Vec::new();
        for due in super::scheduler::due_at(jobs, sessions, now) {
            let kind = match due.kind.as_str() {
                "backup" => RunKind::ScheduledBackup,
                "restore-test" => RunKind::RestoreTest,
                _ => RunKind::HealthCheck,
            };
            if self.start(ctx, &due.job, kind).is_ok() {
                started.push(due);
            }
        }
        started
    }
}
