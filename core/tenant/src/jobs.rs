//! Backup jobs: what to back up (sources, excludes), where (a provider's cloud repository or a
//! local folder), when (schedule), how long to keep it (retention + GFS), and how (encryption,
//! compression). Running a job opens its repository — creating it on the first run — backs up
//! incrementally from the job's latest point, applies retention after a successful run, and
//! records the session. The encryption password lives in the secrets, never in the job.

use cloudkeep_model::mode::BackupMode;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::TenantError;
use super::providers::Provider;
use super::secrets::Secrets;
use super::state::TenantState;
use cloudkeep_client::remote::{RemoteStore, RemoteTarget};
use cloudkeep_model::retention::RetentionPolicy;
pub use cloudkeep_model::schedule::Schedule;
use cloudkeep_repo::backend::RepoBackend;
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::crypto::{CryptoError, KdfParams};
use cloudkeep_repo::repo::{NewRepo, RepoError, Repository, Unlock};

/// Where a job stores its restore points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A cloud repository of a service provider.
    Provider {
        /// The provider's name.
        provider: String,
        /// The repository's name (as the provider shows it).
        repo: String,
        /// Another account than the provider's (a managed subtenant of a backup policy, whose
        /// password is in the secrets under [`account_key`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// A local folder.
    Folder {
        /// The folder.
        path: String,
    },
}

/// A job's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// What it protects: files (the sources), chosen volumes, or the entire computer.
    #[serde(default)]
    pub mode: BackupMode,
    /// Volume level: the disks and volumes imaged (device paths or image files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Files and folders.
    pub sources: Vec<String>,
    /// Globs to leave out.
    pub excludes: Vec<String>,
    /// Where.
    pub target: Target,
    /// When.
    pub schedule: Schedule,
    /// How long.
    pub retention: RetentionPolicy,
    /// Encrypted (the password is in the secrets).
    pub encrypted: bool,
    /// zstd level: off, fast, default, max.
    pub compression: String,
    /// Scheduled runs that fail for a reason waiting can fix (network, gateway restart) are
    /// tried again this many times.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds between those tries.
    #[serde(default = "default_retry_wait")]
    pub retry_wait_s: u64,
    /// When the repository's health check (verify of a sample of the packs) runs.
    #[serde(default)]
    pub health_check: Schedule,
    /// When a restore test of the newest point runs (a sample restored into a scratch
    /// folder and checked against what was backed up).
    #[serde(default)]
    pub restore_test: Schedule,
    /// Share of the files a restore test restores, in percent (1–100).
    #[serde(default = "default_restore_test_sample")]
    pub restore_test_sample: u8,
    /// Set when the job is a computer of a backup policy: that computer's agent runs it; the
    /// tenant browses and restores its points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<cloudkeep_api::policy::Membership>,
}

pub use cloudkeep_model::schedule::{DEFAULT_RETRIES, DEFAULT_RETRY_WAIT_S};

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

fn default_retry_wait() -> u64 {
    DEFAULT_RETRY_WAIT_S
}

fn default_restore_test_sample() -> u8 {
    RESTORE_TEST_SAMPLE
}

/// Share of the files a restore test restores unless the job says otherwise, in percent.
pub const RESTORE_TEST_SAMPLE: u8 = 1;

/// Percentage of packs a scheduled health check reads.
pub const HEALTH_CHECK_SAMPLE: u8 = 10;

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub spec: JobSpec,
    /// When it was created, ms since the epoch.
    pub created_ms: i64,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Its number in the local state (0 until recorded).
    #[serde(default)]
    pub id: i64,
    /// The job.
    pub job: String,
    /// `backup`, `restore`, …
    pub kind: String,
    /// Start and end, ms since the epoch.
    pub started_ms: i64,
    /// End.
    pub finished_ms: i64,
    /// `success`, `warning`, `failed`.
    pub result: String,
    /// The restore point made.
    pub point: Option<String>,
    /// Statistics (JSON).
    pub stats: serde_json::Value,
    /// Per-file warnings (JSON).
    pub warnings: serde_json::Value,
    /// The error, for a failed run.
    pub message: String,
    /// What the run did, line by line (`HH:MM:SS text`).
    #[serde(default)]
    pub log: Vec<String>,
}

/// Most lines a session's log keeps; the rest are counted in one last line.
pub const MAX_LOG_LINES: usize = 2_000;

/// A session's log as a run writes it: time-stamped lines, at most [`MAX_LOG_LINES`], each
/// also handed to an optional watcher as it is written (the console's live log).
#[derive(Default)]
pub struct SessionLog<'a> {
    lines: Vec<String>,
    dropped: usize,
    watcher: Option<&'a (dyn Fn(&str) + Sync)>,
}

impl<'a> SessionLog<'a> {
    /// A log whose lines also go to `watcher` as they are written.
    pub fn watched(watcher: &'a (dyn Fn(&str) + Sync)) -> Self {
        Self {
            watcher: Some(watcher),
            ..Self::default()
        }
    }

    /// Adds a line, stamped with the local time (and mirrored to the tracing log).
    pub fn line(&mut self, text: impl std::fmt::Display) {
        let text = text.to_string();
        tracing::info!("{text}");
        let stamped = format!("{} {text}", chrono::Local::now().format("%H:%M:%S"));
        if let Some(watcher) = self.watcher {
            watcher(&stamped);
        }
        if self.lines.len() < MAX_LOG_LINES {
            self.lines.push(stamped);
        } else {
            self.dropped += 1;
        }
    }

    /// The lines, with a count of those left out.
    pub fn into_lines(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.lines
                .push(format!("… and {} more lines", self.dropped));
        }
        self.lines
    }
}

/// The secret key of a job's encryption password.
pub fn job_key(name: &str) -> String {
    format!("job:{name}")
}

/// The secret key of the key an agent opens its job's repository with (a recovery-key slot:
/// the agent never holds the policy's password).
pub fn agent_key(name: &str) -> String {
    format!("agent-key:{name}")
}

/// The secret key of the password of `account` at `provider` (a managed subtenant).
pub fn account_key(provider: &str, account: &str) -> String {
    format!("account:{provider}:{account}")
}

impl TenantState {
    /// Stores a new job.
    pub async fn create_job(&self, name: &str, spec: &JobSpec) -> Result<Job, TenantError> {
        cloudkeep_model::names::check("job", name)
            .map_err(|e| TenantError::Invalid(e.to_string()))?;
        let json = serde_json::to_string(spec).map_err(|e| TenantError::damaged("the job", e))?;
        let now = cloudkeep_model::clock::now_ms();
        sqlx::query("INSERT INTO jobs (name, spec, created_ms) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(json)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    TenantError::JobExists(name.to_owned())
                }
                _ => TenantError::State(e),
            })?;
        Ok(Job {
            name: name.to_owned(),
            spec: spec.clone(),
            created_ms: now,
        })
    }

    /// Replaces a job's settings (its target and encryption stay: they name its
    /// repository).
    pub async fn update_job(&self, name: &str, spec: &JobSpec) -> Result<Job, TenantError> {
        let old = self.job(name).await?;
        if old.spec.target != spec.target || old.spec.encrypted != spec.encrypted {
            return Err(TenantError::Invalid(
                "a job's target and encryption cannot change (its restore points are there); create a new job instead".into(),
            ));
        }
        let json = serde_json::to_string(spec).map_err(|e| TenantError::damaged("the job", e))?;
        sqlx::query("UPDATE jobs SET spec = $1 WHERE name = $2")
            .bind(json)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(Job {
            spec: spec.clone(),
            ..old
        })
    }

    /// A job by name.
    pub async fn job(&self, name: &str) -> Result<Job, TenantError> {
        let row = sqlx::query("SELECT name, spec, created_ms FROM jobs WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| TenantError::NoJob(name.to_owned()))?;
        job_of(&row)
    }

    /// Every job, by name.
    pub async fn jobs(&self) -> Result<Vec<Job>, TenantError> {
        let rows = sqlx::query("SELECT name, spec, created_ms FROM jobs ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(job_of).collect()
    }

    /// Deletes a job (its restore points stay).
    pub async fn delete_job(&self, name: &str) -> Result<(), TenantError> {
        self.job(name).await?;
        sqlx::query("DELETE FROM jobs WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a finished run; returns its number.
    pub async fn record_session(&self, s: &SessionRecord) -> Result<i64, TenantError> {
        let log = serde_json::to_string(&s.log)
            .map_err(|e| TenantError::damaged("the session log", e))?;
        let row = sqlx::query(
            "INSERT INTO sessions (job, kind, started_ms, finished_ms, result, point, stats, warnings, message, log) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&s.job)
        .bind(&s.kind)
        .bind(s.started_ms)
        .bind(s.finished_ms)
        .bind(&s.result)
        .bind(&s.point)
        .bind(s.stats.to_string())
        .bind(s.warnings.to_string())
        .bind(&s.message)
        .bind(log)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The runs of a job (all jobs when `None`), newest first.
    pub async fn sessions(&self, job: Option<&str>) -> Result<Vec<SessionRecord>, TenantError> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE ($1 IS NULL OR job = $1) ORDER BY started_ms DESC, id DESC"
        ))
        .bind(job)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session_of).collect()
    }

    /// One recorded run by its number.
    pub async fn session(&self, id: i64) -> Result<SessionRecord, TenantError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| TenantError::Invalid(format!("there is no session {id}")))?;
        session_of(&row)
    }
}

const SESSION_COLUMNS: &str =
    "id, job, kind, started_ms, finished_ms, result, point, stats, warnings, message, log";

fn session_of(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord, TenantError> {
    let json = |n: usize| -> Result<serde_json::Value, TenantError> {
        Ok(serde_json::from_str(&r.try_get::<String, _>(n)?).unwrap_or_default())
    };
    Ok(SessionRecord {
        id: r.try_get(0)?,
        job: r.try_get(1)?,
        kind: r.try_get(2)?,
        started_ms: r.try_get(3)?,
        finished_ms: r.try_get(4)?,
        result: r.try_get(5)?,
        point: r.try_get(6)?,
        stats: json(7)?,
        warnings: json(8)?,
        message: r.try_get(9)?,
        log: serde_json::from_value(json(10)?).unwrap_or_default(),
    })
}

fn job_of(r: &sqlx::sqlite::SqliteRow) -> Result<Job, TenantError> {
    Ok(Job {
        name: r.try_get(0)?,
        spec: serde_json::from_str(&r.try_get::<String, _>(1)?)
            .map_err(|e| TenantError::damaged("the stored job", e))?,
        created_ms: r.try_get(2)?,
    })
}

/// Creates a job as a person asks for it (the CLI's `job create`, the console's New job
/// wizard): the target must exist (a provider's repository as last scanned), there must be a
/// source, and an encrypted job needs its password, which goes to the secrets — if it cannot
/// be stored, no job is left behind.
pub async fn create(
    state: &TenantState,
    secrets: &Secrets,
    name: &str,
    spec: &JobSpec,
    password: Option<&str>,
) -> Result<Job, TenantError> {
    cloudkeep_model::mode::check(spec.mode, &spec.sources, &spec.volumes)
        .map_err(|e| TenantError::Invalid(format!("{e}; choose what to back up")))?;
    if let Some(bad) = spec
        .sources
        .iter()
        .chain(&spec.volumes)
        .find(|s| !std::path::Path::new(s).is_absolute())
    {
        return Err(TenantError::Invalid(format!(
            "\"{bad}\" is not an absolute path; give the full path of what to back up"
        )));
    }
    if spec.encrypted != password.is_some_and(|p| !p.is_empty()) {
        return Err(TenantError::Invalid(if spec.encrypted {
            "an encrypted job needs its encryption password".into()
        } else {
            "a job without encryption takes no encryption password".into()
        }));
    }
    if let Target::Provider { provider, repo, .. } = &spec.target {
        let p = state.provider(provider).await?;
        if !p.repos.iter().any(|r| r.name == *repo) {
            return Err(TenantError::Invalid(format!(
                "\"{provider}\" has no cloud repository \"{repo}\" (it has: {}); rescan the provider if it was just added",
                p.repos
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let job = state.create_job(name, spec).await?;
    if let Some(pw) = password
        && let Err(e) = secrets.set(&job_key(name), pw)
    {
        state.delete_job(name).await?;
        return Err(e);
    }
    Ok(job)
}

/// Deletes a job and its stored encryption password (its restore points stay).
pub async fn delete(state: &TenantState, secrets: &Secrets, name: &str) -> Result<(), TenantError> {
    state.delete_job(name).await?;
    secrets.remove(&job_key(name))
}

/// The storage of a job's target. For a provider, its gateways are tried in order. Blocking:
/// call it outside any async runtime.
pub fn open_backend(
    job: &Job,
    provider: Option<&Provider>,
    secrets: &Secrets,
) -> Result<Arc<dyn RepoBackend>, TenantError> {
    open_target_backend(&job.spec.target, provider, secrets)
}

/// The storage behind `target` (a provider's cloud repository with the account's stored
/// password, or a folder), with no job needed. Blocking.
pub fn open_target_backend(
    target: &Target,
    provider: Option<&Provider>,
    secrets: &Secrets,
) -> Result<Arc<dyn RepoBackend>, TenantError> {
    match target {
        Target::Folder { path } => Ok(Arc::new(
            FolderStore::open(path).map_err(cloudkeep_repo::repo::RepoError::from)?,
        )),
        Target::Provider {
            provider: name,
            repo,
            account,
        } => {
            let provider = provider.ok_or_else(|| TenantError::NoProvider(name.clone()))?;
            let (mut user, key) = match account {
                Some(login) => (login.clone(), account_key(name, login)),
                None => (provider.user.clone(), super::secrets::provider_key(name)),
            };
            let mut act_as = None;
            let mut password = secrets.get(&key)?;
            // A subtenant of the provider's own account whose password this computer does not
            // have (a policy's computer, seen from a new computer): reached with the tenant's
            // login, acting for it.
            if password.is_none()
                && let Some(sub) = account
                    .as_deref()
                    .and_then(|l| l.strip_prefix(&format!("{}/", provider.user)))
            {
                password = secrets.get(&super::secrets::provider_key(name))?;
                act_as = Some(sub.to_owned());
                user.clone_from(&provider.user);
            }
            let password = password.ok_or_else(|| TenantError::SecretMissing {
                what: format!("password of \"{user}\" at \"{name}\""),
                fix: "add the provider (or the policy's computer) again",
            })?;
            if provider.addresses.is_empty() {
                return Err(TenantError::NoProvider(name.clone()));
            }
            let target = RemoteTarget {
                addresses: provider.addresses.clone(),
                fingerprint: provider.fingerprint.clone(),
                user,
                password,
                repo: repo.clone(),
                act_as,
            };
            RemoteStore::connect(&target)
                .map(|store| Arc::new(store) as Arc<dyn RepoBackend>)
                .map_err(|e| TenantError::from_client(name, e))
        }
    }
}

/// Opens the job's repository, creating it on the first run. A password the repository does
/// not know gets a slot of its own when a sibling job (same target, `siblings`) opens it:
/// jobs on one repository share its key. Blocking.
pub fn open_repository(
    job: &Job,
    backend: Arc<dyn RepoBackend>,
    secrets: &Secrets,
    siblings: &[Job],
) -> Result<Repository, TenantError> {
    if let Some(text) = secrets.get(&agent_key(&job.name))? {
        // An agent: its own recovery-key slot opens the repository its tenant created.
        let key = cloudkeep_repo::crypto::RecoveryKey::parse(&text).map_err(|e| {
            TenantError::Damaged {
                what: "the agent's stored key".into(),
                reason: e.to_string(),
                fix: "enroll again",
            }
        })?;
        return match Repository::open(backend, Unlock::RecoveryKey(&key)) {
            Err(RepoError::NotARepository) => Err(TenantError::Invalid(
                "this computer's repository at the provider is gone; ask your administrator to add the computer to the policy again".into(),
            )),
            other => Ok(other?),
        };
    }
    let password = if job.spec.encrypted {
        Some(
            secrets
                .get(&job_key(&job.name))?
                .ok_or_else(|| TenantError::SecretMissing {
                    what: format!("encryption password of job \"{}\"", job.name),
                    fix: "recreate the job",
                })?,
        )
    } else {
        None
    };
    let unlock = match &password {
        Some(p) => Unlock::Password(p),
        None => Unlock::Unencrypted,
    };
    match Repository::open(backend.clone(), unlock) {
        Ok(repo) => Ok(repo),
        Err(RepoError::NotARepository) => {
            let new = match &password {
                Some(p) => NewRepo::Encrypted {
                    password: p,
                    kdf: KdfParams::default(),
                },
                None => NewRepo::Unencrypted,
            };
            Repository::init(backend, new).map_err(TenantError::Repo)
        }
        Err(RepoError::Crypto(CryptoError::WrongPassword)) => {
            let new = password.as_deref().unwrap_or_default();
            if !join_with_sibling(job, &backend, secrets, siblings, new)? {
                return Err(RepoError::Crypto(CryptoError::WrongPassword).into());
            }
            Ok(Repository::open(backend, Unlock::Password(new))?)
        }
        Err(RepoError::PasswordRequired) => Err(TenantError::Invalid(format!(
            "the repository at {} is encrypted: this job must be encrypted too, with the password of the jobs already there",
            target_text(&job.spec.target)
        ))),
        Err(e) => Err(TenantError::Repo(e)),
    }
}

/// Gives `password` a slot of the repository's keyring, opened with the password of a sibling
/// job on the same target; `false` when none opens it.
fn join_with_sibling(
    job: &Job,
    backend: &Arc<dyn RepoBackend>,
    secrets: &Secrets,
    siblings: &[Job],
    password: &str,
) -> Result<bool, TenantError> {
    for sibling in siblings_of(job, siblings) {
        let Some(theirs) = secrets.get(&job_key(&sibling.name))? else {
            continue;
        };
        let mut repo = match Repository::open(backend.clone(), Unlock::Password(&theirs)) {
            Err(RepoError::Crypto(CryptoError::WrongPassword)) => continue,
            other => other?,
        };
        let mut keyring = repo.keyring().clone();
        let master = keyring.unlock(&theirs)?;
        keyring.add_password(
            &master,
            password,
            KdfParams::default(),
            &format!("job {}", job.name),
        )?;
        repo.save_keyring(keyring)?;
        tracing::info!(job = %job.name, sibling = %sibling.name, "the job's password got a slot of the repository it shares");
        return Ok(true);
    }
    Ok(false)
}

/// The other encrypted jobs on `job`'s target.
pub fn siblings_of<'a>(job: &'a Job, jobs: &'a [Job]) -> impl Iterator<Item = &'a Job> + 'a {
    jobs.iter()
        .filter(|j| j.name != job.name && j.spec.target == job.spec.target && j.spec.encrypted)
}

/// Why a new job's password was refused: the repository holds points under another one.
pub fn password_not_known(job: &Job, jobs: &[Job]) -> TenantError {
    let names: Vec<String> = siblings_of(job, jobs)
        .map(|j| format!("\"{}\"", j.name))
        .collect();
    TenantError::Invalid(format!(
        "the repository at {} already holds restore points under another encryption password{}: jobs on one repository share its key, so give this job that password",
        target_text(&job.spec.target),
        if names.is_empty() {
            String::new()
        } else {
            format!(" (that of job {})", names.join(", "))
        }
    ))
}

/// Where a job's restore points go, for people.
pub fn target_text(target: &Target) -> String {
    match target {
        Target::Provider {
            provider,
            repo,
            account: None,
        } => format!("cloud repository \"{repo}\" of \"{provider}\""),
        Target::Provider {
            provider,
            repo,
            account: Some(account),
        } => format!("cloud repository \"{repo}\" of \"{provider}\" as {account}"),
        Target::Folder { path } => format!("folder {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_as_typed() {
        assert_eq!(Schedule::parse("manual"), Ok(Schedule::Manual));
        assert_eq!(
            Schedule::parse("every:6h"),
            Ok(Schedule::EveryHours { hours: 6 })
        );
        assert_eq!(
            Schedule::parse("daily@02:30:mon,Thu"),
            Ok(Schedule::Daily {
                at: "02:30".into(),
                weekdays: vec!["mon".into(), "thu".into()]
            })
        );
        assert_eq!(
            Schedule::parse("daily@23:05"),
            Ok(Schedule::Daily {
                at: "23:05".into(),
                weekdays: vec![]
            })
        );
        for bad in ["daily@25:00", "every:0h", "weekly", "daily@02:30:xyz"] {
            assert!(
                Schedule::parse(bad).unwrap_err().contains("not a schedule"),
                "{bad}"
            );
        }
    }
}
