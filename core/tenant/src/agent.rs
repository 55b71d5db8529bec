//! The agent of a computer under a backup policy (`cloudkeep agent`, DESIGN §7). Enrolling
//! opens the enrollment file with its one-time code and keeps what is in it in the agent's
//! own data home: the provider (exactly the pinned certificate, never trust on first use),
//! the managed subtenant's password and the agent's repository key in the secrets, and a job
//! built from the policy. Each cycle pulls the current policy from the provider (a change
//! applies at once), backs up when the policy's schedule says so (with its retries and
//! retention), reports the session to the provider (reports that could not be sent wait in
//! the agent's state for the next cycle), and says which revision it applies and when it
//! runs next. It needs nothing from the tenant's console.
//!
//! Blocking: call it outside any async runtime.

use super::TenantContext;
use cloudkeep_client::failover::first_answering;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TenantError;
use crate::jobs::{self, JobSpec, SessionRecord, Target};
use crate::policies::{Enrollment, open_enrollment};
use crate::providers::{self, Provider};
use crate::secrets::provider_key;
use crate::{runner, scheduler};
use cloudkeep_api::policy::{
    AgentHeartbeat, AgentReport, Membership, PolicyDoc, RestoreOrder, RestoreOrderUpdate,
};
use cloudkeep_model::paths::DataHome;
use cloudkeep_repo::engine::Cancel;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions};

/// Most unsent reports kept.
const MAX_PENDING: usize = 100;

/// What the agent knows about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    /// The policy's id.
    pub policy_id: String,
    /// The policy's name.
    pub policy: String,
    /// This computer's name in the policy.
    pub computer: String,
    /// The provider's name in the agent's state (the policy's name).
    pub provider: String,
    /// The job its points carry.
    pub job: String,
    /// The policy revision applied.
    pub revision: i64,
    /// Enrolled, ms since the epoch.
    pub enrolled_ms: i64,
    /// The last cycle that reached the provider.
    pub last_cycle_ms: Option<i64>,
    /// Reports not yet delivered.
    #[serde(default)]
    pub pending: Vec<AgentReport>,
    /// The home folder of the user who enrolled the computer: what `~` in the policy's
    /// sources stands for, also when the agent runs as a service under another account
    /// (Windows' LocalSystem has a profile of its own). Absent in older state files: the
    /// running user's home then.
    #[serde(default)]
    pub user_home: Option<PathBuf>,
}

/// What one cycle did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// The revision applied now.
    pub revision: i64,
    /// Whether the policy changed since the last cycle.
    pub changed: bool,
    /// The session of the backup it ran, if one was due.
    pub ran: Option<SessionRecord>,
    /// The next scheduled backup, ms since the epoch.
    pub next_run_ms: Option<i64>,
    /// Reports delivered in this cycle (older ones included).
    pub reported: usize,
    /// Restores the tenant ordered that this cycle carried out (done or failed).
    #[serde(default)]
    pub restores: Vec<RestoreOrder>,
}

fn state_path(home: &DataHome) -> PathBuf {
    home.agent_state()
}

/// The agent's state, or `None` when this data home is not an enrolled agent's.
pub fn load(home: &DataHome) -> Result<Option<AgentState>, TenantError> {
    match std::fs::read_to_string(state_path(home)) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TenantError::Damaged {
                what: format!("the agent's state {}", state_path(home).display()),
                reason: e.to_string(),
                fix: "enroll again",
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TenantError::File {
            action: "read",
            path: state_path(home),
            source,
        }),
    }
}

/// Whether this data home is an enrolled agent's.
pub fn is_enrolled(home: &DataHome) -> bool {
    home.is_agent()
}

fn save(home: &DataHome, agent: &AgentState) -> Result<(), TenantError> {
    let text = serde_json::to_vec_pretty(agent)
        .map_err(|e| TenantError::damaged("the agent's state", e))?;
    let path = state_path(home);
    cloudkeep_model::paths::write_private_file(&path, &text).map_err(|source| TenantError::File {
        action: "write",
        path: path.clone(),
        source,
    })
}

fn not_enrolled() -> TenantError {
    TenantError::Invalid(
        "this computer is not enrolled; run \"cloudkeep agent enroll FILE\" with the file and one-time code your administrator gave you".into(),
    )
}

fn job_spec(doc: &PolicyDoc, agent: &AgentState, repo: &str) -> JobSpec {
    let home = agent
        .user_home
        .clone()
        .or_else(cloudkeep_model::paths::user_home);
    JobSpec {
        mode: doc.spec.mode,
        volumes: doc.spec.volumes.clone(),
        sources: doc
            .spec
            .sources
            .iter()
            .map(|s| cloudkeep_model::paths::expand_home(s, home.as_deref()))
            .collect(),
        excludes: doc.spec.excludes.clone(),
        target: Target::Provider {
            provider: agent.provider.clone(),
            repo: repo.to_owned(),
            account: None,
        },
        schedule: doc.spec.schedule.clone(),
        retention: doc.spec.retention,
        encrypted: true,
        compression: doc.spec.compression.clone(),
        retries: doc.spec.retries,
        retry_wait_s: doc.spec.retry_wait_s,
        health_check: jobs::Schedule::Manual,
        restore_test: doc.spec.restore_test.clone(),
        restore_test_sample: doc.spec.restore_test_sample,
        agent: Some(Membership {
            policy_id: agent.policy_id.clone(),
            computer: agent.computer.clone(),
        }),
    }
}

/// Enrolls this data home as the agent of the computer the file names: checks the pin and
/// the credentials against the provider, pulls the policy, and keeps all of it. Enrolling
/// again (a new file for the same or another computer) replaces what was there. `user_home`
/// is what `~` in the policy's sources stands for (default: the running user's home).
pub fn enroll(
    ctx: &TenantContext,
    file_text: &str,
    code: &str,
    user_home: Option<PathBuf>,
) -> Result<AgentState, TenantError> {
    let e: Enrollment = open_enrollment(file_text, code)?;
    let doc = ctx.block_on(first_contact(&e))?;
    let state = ctx.state();
    let secrets = ctx.secrets();
    let agent = AgentState {
        policy_id: e.policy_id.clone(),
        policy: e.policy.clone(),
        computer: e.computer.clone(),
        provider: e.policy.clone(),
        job: e.job.clone(),
        revision: doc.revision,
        enrolled_ms: cloudkeep_model::clock::now_ms(),
        last_cycle_ms: None,
        pending: Vec::new(),
        user_home: user_home.or_else(cloudkeep_model::paths::user_home),
    };
    ctx.block_on(state.save_provider(&Provider {
        name: agent.provider.clone(),
        addresses: e.addresses.clone(),
        fingerprint: e.fingerprint.clone(),
        user: e.login.clone(),
        added_ms: agent.enrolled_ms,
        repos: Vec::new(),
        scanned_ms: None,
        cert: Default::default(),
    }))?;
    // Enrolling again (another file) pins what the new file says.
    ctx.block_on(state.set_pin(&agent.provider, &e.fingerprint, &Default::default()))?;
    secrets.set(&provider_key(&agent.provider), &e.password)?;
    secrets.set(&jobs::agent_key(&agent.job), &e.agent_key)?;
    let spec = job_spec(&doc, &agent, &e.repo);
    if ctx.block_on(state.job(&agent.job)).is_ok() {
        ctx.block_on(state.update_job(&agent.job, &spec))?;
    } else {
        ctx.block_on(state.create_job(&agent.job, &spec))?;
    }
    save(ctx.home(), &agent)?;
    Ok(agent)
}

/// Makes the agent's credentials readable by a service of this computer: a copy goes to the
/// data folder's owner-only secrets file, since a service runs under another account
/// (LocalSystem on Windows), whose keyring holds none of what the enrolling user stored.
pub fn keep_secrets_for_service(ctx: &TenantContext) -> Result<(), TenantError> {
    let agent = load(ctx.home())?.ok_or_else(not_enrolled)?;
    for key in [provider_key(&agent.provider), jobs::agent_key(&agent.job)] {
        ctx.secrets().keep_in_file(&key)?;
    }
    Ok(())
}

/// Logs in with the enrollment's pin and credentials only and reads the policy.
async fn first_contact(e: &Enrollment) -> Result<PolicyDoc, TenantError> {
    let answer = first_answering(&e.addresses, |address| async move {
        let mut client = cloudkeep_client::tenant::TenantClient::new(&address, &e.fingerprint)?;
        client.login(&e.login, &e.password).await?;
        client.agent_policy().await
    })
    .await;
    match answer {
        Some(doc) => Ok(doc?),
        None => Err(TenantError::Invalid(
            "the enrollment file names no gateway; ask your administrator for a new one".into(),
        )),
    }
}

fn report_of(session: &SessionRecord, revision: i64) -> AgentReport {
    let stat = |k: &str| {
        session
            .stats
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    AgentReport {
        started_ms: session.started_ms,
        finished_ms: session.finished_ms,
        result: session.result.clone(),
        point: session.point.clone(),
        files: stat("files"),
        bytes: stat("bytes"),
        warnings: session.warnings.as_array().map_or(0, |w| w.len() as u64),
        message: session.message.clone(),
        revision,
        host: cloudkeep_repo::lock::hostname(),
    }
}

/// One cycle: pull the policy, back up if due (or `force`), report, say when the next run is.
pub fn cycle(ctx: &TenantContext, force: bool) -> Result<Cycle, TenantError> {
    let mut agent = load(ctx.home())?.ok_or_else(not_enrolled)?;
    let state = ctx.state();
    let secrets = ctx.secrets();
    let (client, _) = ctx.block_on(providers::connect(state, secrets, &agent.provider))?;
    let doc = ctx.block_on(client.agent_policy())?;
    let mut job = ctx.block_on(state.job(&agent.job))?;
    let repo = match &job.spec.target {
        Target::Provider { repo, .. } => repo.clone(),
        Target::Folder { .. } => doc.spec.repo.clone(),
    };
    let spec = job_spec(&doc, &agent, &repo);
    let changed = doc.revision != agent.revision || spec != job.spec;
    if changed {
        tracing::info!(
            revision = doc.revision,
            "policy \"{}\" changed: applying it",
            doc.name
        );
        job = ctx.block_on(state.update_job(&agent.job, &spec))?;
        agent.revision = doc.revision;
    }
    let sessions = ctx.block_on(state.sessions(Some(&agent.job)))?;
    let due = force
        || scheduler::due_at(std::slice::from_ref(&job), &sessions, chrono::Local::now())
            .iter()
            .any(|d| d.kind == "backup");
    drop(client);
    let ran = if due {
        let (session, _) = runner::run_job_scheduled(
            ctx,
            &agent.job,
            runner::Watch::progress(&|_| {}),
            &Cancel::default(),
        )?;
        agent.pending.push(report_of(&session, agent.revision));
        let excess = agent.pending.len().saturating_sub(MAX_PENDING);
        agent.pending.drain(..excess);
        Some(session)
    } else {
        None
    };
    // The policy's restore test, when due: its result reaches the gateway like any run's.
    let sessions = ctx.block_on(state.sessions(Some(&agent.job)))?;
    if scheduler::due_at(std::slice::from_ref(&job), &sessions, chrono::Local::now())
        .iter()
        .any(|d| d.kind == "restore-test")
    {
        let (session, _) = super::restoretest::restore_test_job(
            ctx,
            &agent.job,
            None,
            runner::Watch::progress(&|_| {}),
            &Cancel::default(),
        )?;
        tracing::info!(result = %session.result, "restore test: {}", session.message);
    }
    let sessions = ctx.block_on(state.sessions(Some(&agent.job)))?;
    let next_run_ms = scheduler::next_run(&job, &sessions).map(|t| t.timestamp_millis());
    // A backup may outlast the session token: log in again to report.
    let (client, _) = ctx.block_on(providers::connect(state, secrets, &agent.provider))?;
    let mut reported = 0;
    while let Some(report) = agent.pending.first() {
        match ctx.block_on(client.agent_report(report)) {
            Ok(()) => {
                agent.pending.remove(0);
                reported += 1;
            }
            Err(e) => {
                tracing::warn!("session report not delivered, kept for the next cycle: {e}");
                break;
            }
        }
    }
    // Orders asked with this login; only a cycle that ran restores logs in again (they may
    // outlast the session token): a login costs the gateway an Argon2 hash.
    let orders = ctx.block_on(client.agent_orders())?;
    let restores = carry_out_orders(ctx, &agent, orders)?;
    let client = if restores.is_empty() {
        client
    } else {
        ctx.block_on(providers::connect(state, secrets, &agent.provider))?
            .0
    };
    ctx.block_on(client.agent_heartbeat(&AgentHeartbeat {
        revision: agent.revision,
        next_run_ms,
    }))?;
    agent.last_cycle_ms = Some(cloudkeep_model::clock::now_ms());
    save(ctx.home(), &agent)?;
    Ok(Cycle {
        revision: agent.revision,
        changed,
        ran,
        next_run_ms,
        reported,
        restores,
    })
}

/// Carries out the restores the tenant ordered for this computer: each is marked running,
/// then restored from this computer's own points (its subtenant's repository: no other
/// computer's), recorded as a session here, and marked done or failed with its summary.
fn carry_out_orders(
    ctx: &TenantContext,
    agent: &AgentState,
    orders: Vec<RestoreOrder>,
) -> Result<Vec<RestoreOrder>, TenantError> {
    let (state, secrets) = (ctx.state(), ctx.secrets());
    let mut done = Vec::new();
    for mut order in orders {
        let update = |state_: &str, message: String| -> Result<(), TenantError> {
            // A restore may outlast the session token: a fresh login per update.
            let (client, _) = ctx.block_on(providers::connect(state, secrets, &agent.provider))?;
            ctx.block_on(client.agent_order_update(
                order.id,
                &RestoreOrderUpdate {
                    state: state_.into(),
                    message,
                },
            ))?;
            Ok(())
        };
        update("running", String::new())?;
        let conflict = match order.conflict.as_str() {
            "overwrite" => Conflict::Overwrite,
            "keep-both" => Conflict::KeepBoth,
            _ => Conflict::Skip,
        };
        let options = RestoreOptions {
            destination: order
                .to
                .as_ref()
                .map_or(Destination::Original, |to| Destination::Folder(to.into())),
            paths: order.paths.clone(),
            conflict,
            cancel: Cancel::default(),
        };
        let outcome = runner::restore_job(
            ctx,
            &agent.job,
            &order.point,
            &options,
            runner::Watch::progress(&|_| {}),
        );
        let (result, message) = match outcome {
            Ok((_, Ok(report))) => ("done", report.summary()),
            Ok((session, Err(e))) => (
                "failed",
                if session.message.is_empty() {
                    e.to_string()
                } else {
                    session.message
                },
            ),
            Err(e) => ("failed", e.to_string()),
        };
        tracing::info!(order = order.id, result, "ordered restore: {message}");
        update(result, message.clone())?;
        order.state = result.into();
        order.message = message;
        done.push(order);
    }
    Ok(done)
}

/// Runs cycles every `interval` until `stop` is set; a failed cycle (the provider away, say)
/// is logged and tried again at the next one. `each` sees every cycle's outcome.
pub fn run(
    ctx: &TenantContext,
    interval: Duration,
    stop: &Cancel,
    each: &dyn Fn(&Result<Cycle, TenantError>),
) -> Result<(), TenantError> {
    load(ctx.home())?.ok_or_else(not_enrolled)?;
    while !stop.is_cancelled() {
        let outcome = cycle(ctx, false);
        if let Err(e) = &outcome {
            tracing::warn!(
                "agent cycle failed, trying again in {} s: {e}",
                interval.as_secs()
            );
        }
        each(&outcome);
        let until = std::time::Instant::now() + interval;
        while std::time::Instant::now() < until && !stop.is_cancelled() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
