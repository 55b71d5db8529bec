//! Failover plans: the order a site's replicas start in when it is lost (the database before
//! the application server before the web front), each step waiting until its replica answers
//! — a TCP port of it (watched through its cloud host) or a line on its console (the guest's
//! marker) — before the next starts. Run as a test (every replica isolated, replication going
//! on, undone after) or for real; undone in reverse order.
//!
//! **Invariants:** a step that does not answer in time stops the plan there — the replicas
//! already started keep running (to be looked at, then undone), later ones are not started; a
//! plan names only replicas this computer sends.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::TenantError;
use crate::context::TenantContext;
use crate::replicas::{self, ReplicaJob};
use cloudkeep_api::replication::{FailoverRequest, PortRule};

/// The most steps a plan has.
pub const MAX_STEPS: usize = 32;

/// What a step waits for before the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    /// Nothing: the next starts at once.
    Nothing,
    /// A TCP port of the replica taking connections.
    Port {
        /// The replica's port.
        port: u16,
    },
    /// A line of the replica's console holding this text.
    Marker {
        /// The text.
        text: String,
    },
}

impl Wait {
    /// In words.
    pub fn describe(&self) -> String {
        match self {
            Self::Nothing => "nothing".into(),
            Self::Port { port } => format!("port {port} to answer"),
            Self::Marker { text } => format!("\"{text}\" on its console"),
        }
    }
}

/// One step: a replica, its public address rules, what is waited for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The provider the replica is at.
    pub provider: String,
    /// The replica.
    pub replica: String,
    /// What the step waits for.
    pub wait: Wait,
    /// Public address rules it starts with.
    #[serde(default)]
    pub ports: Vec<PortRule>,
    /// The tenant network it joins instead of the provider's NAT.
    #[serde(default)]
    pub network: Option<u8>,
}

/// A failover plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverPlan {
    /// Its name.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How long a step may take to answer, in seconds.
    pub timeout_secs: u64,
    /// When it last ran.
    #[serde(default)]
    pub last_ms: Option<i64>,
    /// How it went, in words.
    #[serde(default)]
    pub last_message: String,
}

/// What happened at a step of a running plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StepEvent {
    /// The replica was asked to start.
    Starting {
        /// Step number, from 1.
        step: usize,
        /// The replica.
        replica: String,
    },
    /// It answered as the step waits for (or the step waits for nothing).
    Answered {
        /// Step number.
        step: usize,
        /// The replica.
        replica: String,
        /// Seconds from its start.
        secs: f64,
    },
}

/// How a plan run went: each step's replica and the seconds until it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRun {
    /// The plan.
    pub plan: String,
    /// A test run.
    pub test: bool,
    /// `(replica, seconds to answer)` of each step, in order.
    pub steps: Vec<(String, f64)>,
}

fn json<T: Serialize>(value: &T) -> Result<String, TenantError> {
    serde_json::to_string(value).map_err(|e| TenantError::Invalid(e.to_string()))
}

/// Checks `plan` against the replicas this computer sends.
fn check(plan: &FailoverPlan, replicas: &[ReplicaJob]) -> Result<(), TenantError> {
    cloudkeep_model::names::check("failover plan", &plan.name)
        .map_err(|e| TenantError::Invalid(e.to_string()))?;
    if plan.steps.is_empty() || plan.steps.len() > MAX_STEPS {
        return Err(TenantError::Invalid(format!(
            "a failover plan has 1 to {MAX_STEPS} steps"
        )));
    }
    if !(10..=24 * 3600).contains(&plan.timeout_secs) {
        return Err(TenantError::Invalid(
            "give each step 10 s to 24 h to answer".into(),
        ));
    }
    for (i, step) in plan.steps.iter().enumerate() {
        if !replicas
            .iter()
            .any(|r| r.provider == step.provider && r.spec.name == step.replica)
        {
            return Err(TenantError::Invalid(format!(
                "step {}: there is no replica \"{}\" at {} on this computer (cloudkeep replica list)",
                i + 1,
                step.replica,
                step.provider
            )));
        }
        if plan.steps[..i]
            .iter()
            .any(|s| s.provider == step.provider && s.replica == step.replica)
        {
            return Err(TenantError::Invalid(format!(
                "replica {} is in the plan twice",
                step.replica
            )));
        }
        match &step.wait {
            Wait::Port { port: 0 } => {
                return Err(TenantError::Invalid(format!(
                    "step {}: wait for a port from 1 to 65535",
                    i + 1
                )));
            }
            Wait::Marker { text } if text.trim().is_empty() || text.len() > 200 => {
                return Err(TenantError::Invalid(format!(
                    "step {}: the console text waited for is 1 to 200 characters",
                    i + 1
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Saves `plan` (made or replaced).
pub fn save(ctx: &TenantContext, plan: &FailoverPlan) -> Result<(), TenantError> {
    ctx.block_on(async {
        let replicas = replicas::list(ctx.state()).await?;
        check(plan, &replicas)?;
        sqlx::query(
            "INSERT INTO failover_plans (name, spec) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
        )
        .bind(&plan.name)
        .bind(json(&(&plan.steps, plan.timeout_secs))?)
        .execute(ctx.state().pool())
        .await?;
        Ok(())
    })
}

/// Every failover plan.
pub async fn list(state: &crate::state::TenantState) -> Result<Vec<FailoverPlan>, TenantError> {
    let rows =
        sqlx::query("SELECT name, spec, last_ms, last_message FROM failover_plans ORDER BY name")
            .fetch_all(state.pool())
            .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0)?;
            let spec: String = r.try_get(1)?;
            let (steps, timeout_secs): (Vec<Step>, u64) =
                serde_json::from_str(&spec).map_err(|e| TenantError::Damaged {
                    what: format!("failover plan {name}"),
                    reason: e.to_string(),
                    fix: "remove it (cloudkeep failover-plan delete) and make it again",
                })?;
            Ok(FailoverPlan {
                name,
                steps,
                timeout_secs,
                last_ms: r.try_get(2)?,
                last_message: r.try_get(3)?,
            })
        })
        .collect()
}

/// The plan `name`.
pub async fn find(
    state: &crate::state::TenantState,
    name: &str,
) -> Result<FailoverPlan, TenantError> {
    list(state)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            TenantError::Invalid(format!(
                "there is no failover plan \"{name}\" (cloudkeep failover-plan list)"
            ))
        })
}

/// Removes the plan `name` (its replicas are not touched).
pub async fn delete(state: &crate::state::TenantState, name: &str) -> Result<(), TenantError> {
    find(state, name).await?;
    sqlx::query("DELETE FROM failover_plans WHERE name = ?1")
        .bind(name)
        .execute(state.pool())
        .await?;
    Ok(())
}

async fn record(ctx: &TenantContext, name: &str, message: &str) -> Result<(), TenantError> {
    sqlx::query("UPDATE failover_plans SET last_ms = ?1, last_message = ?2 WHERE name = ?3")
        .bind(cloudkeep_model::clock::now_ms())
        .bind(message)
        .bind(name)
        .execute(ctx.state().pool())
        .await?;
    Ok(())
}

/// Runs `plan`: each step's replica started (a test failover when `test`), then waited for
/// until it answers or the plan's time for a step runs out, which stops the plan there.
pub fn run(
    ctx: &TenantContext,
    plan: &FailoverPlan,
    test: bool,
    events: &dyn Fn(StepEvent),
) -> Result<PlanRun, TenantError> {
    let replicas = ctx.block_on(replicas::list(ctx.state()))?;
    check(plan, &replicas)?;
    let mut done = Vec::with_capacity(plan.steps.len());
    let outcome = (|| -> Result<(), TenantError> {
        for (i, step) in plan.steps.iter().enumerate() {
            let n = i + 1;
            let job = replicas
                .iter()
                .find(|r| r.provider == step.provider && r.spec.name == step.replica)
                .ok_or_else(|| TenantError::Invalid(format!("step {n}: replica gone")))?;
            events(StepEvent::Starting {
                step: n,
                replica: step.replica.clone(),
            });
            let started = std::time::Instant::now();
            let probes = match step.wait {
                Wait::Port { port } => vec![port],
                _ => Vec::new(),
            };
            replicas::failover(
                ctx,
                job,
                &FailoverRequest {
                    point: None,
                    test,
                    ports: step.ports.clone(),
                    probes,
                    network: step.network,
                },
            )
            .map_err(|e| {
                TenantError::Invalid(format!(
                    "step {n}: replica {} did not start: {e}",
                    step.replica
                ))
            })?;
            wait_for(ctx, job, &step.wait, plan.timeout_secs).map_err(|e| {
                TenantError::Invalid(format!(
                    "step {n}: replica {} started but {e}; the plan stopped there (the replicas started run on: undo them with cloudkeep failover-plan undo {})",
                    step.replica, plan.name
                ))
            })?;
            let secs = started.elapsed().as_secs_f64();
            events(StepEvent::Answered {
                step: n,
                replica: step.replica.clone(),
                secs,
            });
            done.push((step.replica.clone(), secs));
        }
        Ok(())
    })();
    let message = match &outcome {
        Ok(()) => format!(
            "{}: every replica answered ({} steps)",
            if test { "test run" } else { "failover" },
            done.len()
        ),
        Err(e) => e.to_string(),
    };
    ctx.block_on(record(ctx, &plan.name, &message))?;
    outcome?;
    Ok(PlanRun {
        plan: plan.name.clone(),
        test,
        steps: done,
    })
}

/// Waits until `job`'s replica answers as `wait` says, up to `timeout_secs`.
fn wait_for(
    ctx: &TenantContext,
    job: &ReplicaJob,
    wait: &Wait,
    timeout_secs: u64,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    let mut last = String::new();
    loop {
        let answered = match wait {
            Wait::Nothing => return Ok(()),
            Wait::Port { port } => match replicas::probe(ctx, job, *port) {
                Ok(a) => {
                    last = a.detail;
                    a.answers
                }
                Err(e) => {
                    last = e.to_string();
                    false
                }
            },
            Wait::Marker { text } => match replicas::console(ctx, job) {
                Ok(console) => console.contains(text.as_str()),
                Err(e) => {
                    last = e.to_string();
                    false
                }
            },
        };
        if answered {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "did not answer in {timeout_secs} s (waiting for {}{})",
                wait.describe(),
                if last.is_empty() {
                    String::new()
                } else {
                    format!("; last: {last}")
                }
            ));
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Undoes `plan`: each of its replicas that runs stopped, the last step's first; what they
/// wrote is thrown away. The replicas stopped.
pub fn undo(ctx: &TenantContext, plan: &FailoverPlan) -> Result<Vec<String>, TenantError> {
    let replicas = ctx.block_on(replicas::list(ctx.state()))?;
    let mut stopped = Vec::new();
    for step in plan.steps.iter().rev() {
        let Some(job) = replicas
            .iter()
            .find(|r| r.provider == step.provider && r.spec.name == step.replica)
        else {
            continue;
        };
        let view = replicas::status(ctx, job)?;
        if view
            .state
            .as_ref()
            .is_some_and(|s| s.mode == "test" || s.mode == "failover")
        {
            replicas::end_failover(ctx, job, false)?;
            stopped.push(step.replica.clone());
        }
    }
    Ok(stopped)
}
