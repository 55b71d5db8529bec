//! Backup policies on the wire (DESIGN §7): the document a tenant publishes at its provider
//! for the agents of its computers, the session report an agent sends back, and the status
//! the tenant reads after syncing. Shared by the gateway, the tenant side and the agent so all
//! three agree. No secret ever travels in these: the policy's encryption password stays with
//! the tenant, each agent holds its own wrapped key.

use cloudkeep_model::units::Limit;
use serde::{Deserialize, Serialize};

use cloudkeep_model::retention::RetentionPolicy;
use cloudkeep_model::schedule::Schedule;

/// What every computer of a policy backs up, when, and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// What each computer protects: files (the sources), chosen volumes, or the whole
    /// computer.
    #[serde(default)]
    pub mode: cloudkeep_model::mode::BackupMode,
    /// Volume level: the disks and volumes each computer images (device paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Files and folders; `~` stands for the home folder of the user the agent runs as
    /// (`$HOME`, `%USERPROFILE%`), so one list fits Linux and Windows computers.
    pub sources: Vec<String>,
    /// Globs to leave out.
    pub excludes: Vec<String>,
    /// When the agents back up.
    pub schedule: Schedule,
    /// How long restore points are kept.
    pub retention: RetentionPolicy,
    /// zstd level: off, fast, default, max.
    pub compression: String,
    /// Tries after a failed scheduled run.
    pub retries: u32,
    /// Seconds between those tries.
    pub retry_wait_s: u64,
    /// When each computer's agent runs a restore test of its newest point.
    #[serde(default)]
    pub restore_test: Schedule,
    /// Share of the files a restore test restores, in percent (1–100).
    #[serde(default = "default_restore_test_sample")]
    pub restore_test_sample: u8,
    /// The tenant's cloud repository the computers' quotas are carved from.
    pub repo: String,
    /// Each computer's quota; unlimited: shares the tenant's.
    pub computer_quota_bytes: Limit,
}

impl PolicySpec {
    /// What a new policy starts from, for the CLI and the console's wizard alike: each user's
    /// home without caches, trash and temporary files, daily at 12:30 (when office computers
    /// are on), the last 14 points plus 4 weekly, 6 monthly and 1 yearly, 50 GiB per computer.
    pub fn template(repo: String) -> Self {
        Self {
            mode: cloudkeep_model::mode::BackupMode::Files,
            volumes: Vec::new(),
            sources: vec!["~".to_owned()],
            excludes: default_excludes(),
            schedule: Schedule::Daily {
                at: "12:30".into(),
                weekdays: vec![],
            },
            retention: RetentionPolicy {
                keep_last: Some(14),
                keep_days: None,
                weekly: 4,
                monthly: 6,
                yearly: 1,
            },
            compression: "default".into(),
            retries: cloudkeep_model::schedule::DEFAULT_RETRIES,
            retry_wait_s: cloudkeep_model::schedule::DEFAULT_RETRY_WAIT_S,
            // Proven every Sunday morning, as a new job is.
            restore_test: Schedule::Daily {
                at: "04:00".into(),
                weekdays: vec!["sun".into()],
            },
            restore_test_sample: default_restore_test_sample(),
            repo,
            computer_quota_bytes: Limit::Bytes(50 << 30),
        }
    }
}

fn default_restore_test_sample() -> u8 {
    1
}

/// Excludes a policy gets when none are named: caches and trash of common desktops.
fn default_excludes() -> Vec<String> {
    [
        "**/.cache",
        "**/.local/share/Trash",
        "**/AppData/Local/Temp",
        "**/node_modules",
        "*.tmp",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A published policy (`PUT`/`GET /v1/policies/{id}`, `GET /v1/agent/policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDoc {
    /// Stable id (the tenant's; survives renames).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Raised by the gateway on every change, so agents and the console see which one applies.
    pub revision: i64,
    /// Its settings.
    pub spec: PolicySpec,
}

/// Which policy and computer a managed subtenant is (`POST /v1/subtenants` with `policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The policy's id.
    pub policy_id: String,
    /// The computer's name.
    pub computer: String,
}

/// A session an agent ran (`POST /v1/agent/sessions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End.
    pub finished_ms: i64,
    /// `success`, `warning`, `failed`, `stopped`.
    pub result: String,
    /// The restore point made.
    pub point: Option<String>,
    /// Files in the point.
    pub files: u64,
    /// Bytes in the point.
    pub bytes: u64,
    /// Files that could not be read.
    pub warnings: u64,
    /// The error, for a failed run.
    pub message: String,
    /// The policy revision it ran under.
    pub revision: i64,
    /// The computer's host name.
    pub host: String,
}

/// An agent's word between runs (`POST /v1/agent/heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    /// The policy revision it applies now.
    pub revision: i64,
    /// Its next scheduled run, ms since the epoch.
    pub next_run_ms: Option<i64>,
}

/// One computer of a policy as the gateway knows it (`GET /v1/policies/{id}/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputerStatus {
    /// The computer.
    pub computer: String,
    /// Its managed subtenant's login (`tenant/policy-computer`).
    pub login: String,
    /// Whether the subtenant is enabled.
    pub enabled: bool,
    /// Its quota.
    pub quota_bytes: Limit,
    /// What it stores.
    pub used_bytes: i64,
    /// The policy revision its agent last applied (0: never connected).
    pub applied_revision: i64,
    /// When its agent last connected.
    pub seen_ms: Option<i64>,
    /// Its next scheduled run, as its agent said.
    pub next_run_ms: Option<i64>,
    /// Its latest session.
    pub last: Option<AgentReport>,
    /// Its latest successful session.
    pub last_success: Option<AgentReport>,
    /// How its job stands: its restore tests and any run that looked like ransomware.
    #[serde(default)]
    pub health: Option<crate::health::JobHealth>,
}

/// `POST /v1/policies/{id}/restores`: a restore the tenant orders for one of the policy's
/// computers; that computer's agent carries it out on its next cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOrderRequest {
    /// The computer.
    pub computer: String,
    /// The restore point (an id or a unique prefix of one, or `latest`).
    pub point: String,
    /// Paths inside the point (as backed up); empty for everything.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A folder on that computer; `None`: where the items were backed up from.
    #[serde(default)]
    pub to: Option<String>,
    /// Existing files: `overwrite`, `skip` or `keep-both`.
    pub conflict: String,
}

/// A restore order and how far its agent got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOrder {
    /// Its number.
    pub id: i64,
    /// The computer.
    pub computer: String,
    /// What was asked.
    pub point: String,
    /// Paths inside the point; empty for everything.
    pub paths: Vec<String>,
    /// A folder on the computer; `None`: where the items came from.
    pub to: Option<String>,
    /// Existing files.
    pub conflict: String,
    /// `queued`, `running`, `done`, `failed`.
    pub state: String,
    /// What the agent said (its restore's summary, or why it failed).
    pub message: String,
    /// When ordered, ms since the epoch.
    pub created_ms: i64,
    /// When its state last changed.
    pub updated_ms: i64,
}

/// `PUT /v1/agent/restores/{id}`: an agent's progress on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOrderUpdate {
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Its summary, or why it failed.
    pub message: String,
}
