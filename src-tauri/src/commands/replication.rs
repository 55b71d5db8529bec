//! Cloud replication in SP mode: cloud hosts (added with their connection details shown
//! once and saved owner-only, listed with what each reported, removed) and hardware plans
//! (made, listed with their tenants, given to tenants and taken back, removed); in tenant
//! mode: the plans at each provider and the replicas this computer sends (made, cycles and
//! their schedule, failover and its end, failback, console, the key, removal), and failover
//! plans (made, run as a test or for real, undone, removed).

use cloudkeep_api::handoff::Handoff;
use cloudkeep_api::replication::{HostView, PlanSpec, PlanView};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::state::ConsoleState;

/// A host just added: the host and its connection details (with the password, this once).
#[derive(Debug, Serialize)]
pub struct AddedHostView {
    /// The host.
    pub host: HostView,
    /// Its connection details.
    pub details: Handoff,
    /// The details as one text, as saved.
    pub text: String,
}

/// The cloud hosts.
#[tauri::command]
pub async fn sp_hosts(state: State<'_, ConsoleState>) -> Result<Vec<HostView>, CommandError> {
    Ok(state.sp_client().await?.hosts().await?)
}

/// Adds a cloud host; its connection details come back this once.
#[tauri::command]
pub async fn sp_host_add(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<AddedHostView, CommandError> {
    let (host, details) = state.sp_client().await?.add_host(&name).await?;
    Ok(AddedHostView {
        host,
        text: details.host_text(),
        details,
    })
}

/// Saves a host's connection details to `path`, readable by its owner only.
#[tauri::command]
pub async fn sp_host_details_save(details: Handoff, path: String) -> Result<(), CommandError> {
    cloudkeep_model::paths::write_private_file(
        std::path::Path::new(&path),
        details.host_text().as_bytes(),
    )
    .map_err(|e| CommandError::invalid(format!("cannot write {path}: {e}; choose another folder")))
}

/// Removes a cloud host no plan is on.
#[tauri::command]
pub async fn sp_host_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<HostView>, CommandError> {
    Ok(state.sp_client().await?.remove_host(&name).await?)
}

/// Every tenant's replicas (SP mode).
#[tauri::command]
pub async fn sp_replicas(
    state: State<'_, ConsoleState>,
) -> Result<Vec<cloudkeep_api::replication::ReplicaView>, CommandError> {
    Ok(state.sp_client().await?.replicas().await?)
}

/// Starts a tenant's replica on its behalf with the key it lets the SP hold: a test failover
/// or a failover, from its newest point, on the provider's NAT.
#[tauri::command]
pub async fn sp_replica_failover(
    state: State<'_, ConsoleState>,
    tenant: String,
    name: String,
    test: bool,
) -> Result<cloudkeep_api::replication::ReplicaView, CommandError> {
    let req = cloudkeep_api::replication::FailoverRequest {
        point: None,
        test,
        ports: Vec::new(),
        probes: Vec::new(),
        network: None,
    };
    Ok(state
        .sp_client()
        .await?
        .replica_failover(&tenant, &name, &req)
        .await?)
}

/// The hardware plans with their tenants.
#[tauri::command]
pub async fn sp_plans(state: State<'_, ConsoleState>) -> Result<Vec<PlanView>, CommandError> {
    Ok(state.sp_client().await?.plans().await?)
}

/// Makes a hardware plan.
#[tauri::command]
pub async fn sp_plan_add(
    state: State<'_, ConsoleState>,
    plan: PlanSpec,
) -> Result<PlanView, CommandError> {
    Ok(state.sp_client().await?.add_plan(&plan).await?)
}

/// Removes a hardware plan no tenant has.
#[tauri::command]
pub async fn sp_plan_remove(
    state: State<'_, ConsoleState>,
    name: String,
) -> Result<Vec<PlanView>, CommandError> {
    Ok(state.sp_client().await?.remove_plan(&name).await?)
}

/// Gives a tenant a hardware plan, or takes it away.
#[tauri::command]
pub async fn sp_plan_subscription(
    state: State<'_, ConsoleState>,
    plan: String,
    tenant: String,
    subscribe: bool,
) -> Result<PlanView, CommandError> {
    Ok(state
        .sp_client()
        .await?
        .set_subscription(&plan, &tenant, subscribe)
        .await?)
}

/// A hardware plan at one of the tenant's providers.
#[derive(Debug, Serialize)]
pub struct ProviderPlan {
    /// The provider.
    pub provider: String,
    /// The plan with its use.
    pub plan: cloudkeep_api::replication::TenantPlan,
}

/// Tenant mode's Replication section: the plans at every provider (a provider out of reach
/// is named, not fatal) and the replicas this computer sends.
#[derive(Debug, Serialize)]
pub struct ReplicationOverview {
    /// Plans, by provider.
    pub plans: Vec<ProviderPlan>,
    /// Providers that could not be asked, with why.
    pub unreachable: Vec<(String, String)>,
    /// The replicas.
    pub replicas: Vec<cloudkeep_tenant::replicas::ReplicaJob>,
    /// The failover plans.
    pub failover_plans: Vec<cloudkeep_tenant::failover_plans::FailoverPlan>,
    /// This computer's image-level backup jobs (a replica may be made of their disks).
    pub image_jobs: Vec<String>,
}

/// The Replication section's figures.
#[tauri::command]
pub async fn replication_overview(
    state: State<'_, ConsoleState>,
) -> Result<ReplicationOverview, CommandError> {
    let tenant = state.ctx.state();
    let mut overview = ReplicationOverview {
        plans: Vec::new(),
        unreachable: Vec::new(),
        replicas: cloudkeep_tenant::replicas::list(tenant).await?,
        failover_plans: cloudkeep_tenant::failover_plans::list(tenant).await?,
        image_jobs: tenant
            .jobs()
            .await?
            .into_iter()
            .filter(|j| j.spec.mode != cloudkeep_model::mode::BackupMode::Files)
            .map(|j| j.name)
            .collect(),
    };
    for p in tenant.providers().await? {
        let asked = async {
            let (client, _) =
                cloudkeep_tenant::providers::connect(tenant, state.ctx.secrets(), &p.name).await?;
            Ok::<_, cloudkeep_tenant::TenantError>(client.replication_plans().await?)
        }
        .await;
        match asked {
            Ok(plans) => overview
                .plans
                .extend(plans.into_iter().map(|plan| ProviderPlan {
                    provider: p.name.clone(),
                    plan,
                })),
            Err(e) => overview.unreachable.push((p.name.clone(), e.to_string())),
        }
    }
    Ok(overview)
}

/// A replica to make, as the wizard gives it.
#[derive(Debug, serde::Deserialize)]
pub struct ReplicaInput {
    provider: String,
    name: String,
    plan: String,
    pool: Option<String>,
    disks: Vec<(String, String)>,
    cpu: u32,
    memory: u64,
    keep: u32,
    escrow: bool,
    #[serde(default)]
    every_minutes: Option<u32>,
    /// A libvirt domain (its name or XML file) or an image-level job the machine is instead
    /// of `disks`.
    #[serde(default)]
    source: Option<cloudkeep_tenant::machines::MachineSource>,
}

/// Makes a replica at its provider.
#[tauri::command]
pub async fn replica_create(
    state: State<'_, ConsoleState>,
    replica: ReplicaInput,
) -> Result<cloudkeep_api::replication::ReplicaView, CommandError> {
    let ctx = state.ctx.clone();
    super::blocking(move || {
        use cloudkeep_tenant::machines::{self, MachineSource};
        let source = replica.source.unwrap_or(MachineSource::Disks {
            disks: replica
                .disks
                .into_iter()
                .map(|(name, path)| (name, std::path::PathBuf::from(path)))
                .collect(),
        });
        let machine = ctx.block_on(machines::resolve(ctx.state(), &source))?;
        Ok(cloudkeep_tenant::replicas::create(
            &ctx,
            cloudkeep_tenant::replicas::NewReplicaJob {
                provider: replica.provider,
                name: replica.name,
                plan: replica.plan,
                pool: replica.pool,
                disks: machine.disks,
                cpu: replica.cpu,
                memory: replica.memory,
                keep: replica.keep,
                escrow: replica.escrow,
                every_minutes: replica.every_minutes,
                mac: machine.mac,
            },
        )?)
    })
    .await
}

/// What the Replication section does to one replica.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ReplicaAction {
    /// One cycle now.
    Run,
    /// Its points and state at the provider.
    Status,
    /// A test failover or a failover.
    Failover {
        /// A test failover.
        test: bool,
        /// The point.
        point: Option<u64>,
        /// Public address rules.
        ports: Vec<cloudkeep_api::replication::PortRule>,
        /// The tenant network it joins instead (extended to the site by an appliance).
        #[serde(default)]
        network: Option<u8>,
    },
    /// End a test failover, undo a failover, or make it permanent.
    End {
        /// Make it permanent.
        permanent: bool,
    },
    /// Its serial console.
    Console,
    /// Fail it back onto its own disks (`onto` empty) or new ones.
    Failback {
        /// Where each disk goes.
        onto: Vec<String>,
    },
    /// Give the provider the key (`true`) or revoke it.
    Escrow {
        /// Give or revoke.
        escrow: bool,
    },
    /// Remove it.
    Delete,
    /// Cycles every N minutes (`None`: only when asked).
    Schedule {
        /// Minutes between cycles.
        every_minutes: Option<u32>,
    },
}

/// Does `action` to replica `name` at `provider`; what it answers.
#[tauri::command]
pub async fn replica_act(
    state: State<'_, ConsoleState>,
    provider: String,
    name: String,
    action: ReplicaAction,
) -> Result<serde_json::Value, CommandError> {
    use cloudkeep_tenant::replicas as r;
    let ctx = state.ctx.clone();
    super::blocking(move || {
        let job = ctx.block_on(r::find(ctx.state(), Some(&provider), &name))?;
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| CommandError::failed(e.to_string()))
        };
        match action {
            ReplicaAction::Run => json(serde_json::to_value(r::run_cycle(&ctx, &job, &|_, _| {})?)),
            ReplicaAction::Status => {
                // The provider's view, with where this computer reads the disks and when.
                let mut view = json(serde_json::to_value(r::status(&ctx, &job)?))?;
                view["sources"] = json(serde_json::to_value(&job.sources))?;
                view["every_minutes"] = json(serde_json::to_value(job.every_minutes))?;
                Ok(view)
            }
            ReplicaAction::Failback { onto } => {
                let onto: Vec<std::path::PathBuf> =
                    onto.iter().map(std::path::PathBuf::from).collect();
                json(serde_json::to_value(r::failback(
                    &ctx,
                    &job,
                    &onto,
                    &|_, _| {},
                )?))
            }
            ReplicaAction::Failover {
                test,
                point,
                ports,
                network,
            } => json(serde_json::to_value(r::failover(
                &ctx,
                &job,
                &cloudkeep_api::replication::FailoverRequest {
                    point,
                    test,
                    ports,
                    probes: Vec::new(),
                    network,
                },
            )?)),
            ReplicaAction::End { permanent } => json(serde_json::to_value(r::end_failover(
                &ctx, &job, permanent,
            )?)),
            ReplicaAction::Console => Ok(serde_json::Value::String(r::console(&ctx, &job)?)),
            ReplicaAction::Escrow { escrow } => {
                json(serde_json::to_value(r::set_escrow(&ctx, &job, escrow)?))
            }
            ReplicaAction::Schedule { every_minutes } => {
                ctx.block_on(r::set_schedule(ctx.state(), &job, every_minutes))?;
                Ok(serde_json::Value::Null)
            }
            ReplicaAction::Delete => {
                r::delete(&ctx, &job)?;
                Ok(serde_json::Value::Null)
            }
        }
    })
    .await
}

/// Makes or replaces a failover plan.
#[tauri::command]
pub async fn failover_plan_save(
    state: State<'_, ConsoleState>,
    plan: cloudkeep_tenant::failover_plans::FailoverPlan,
) -> Result<(), CommandError> {
    let ctx = state.ctx.clone();
    super::blocking(move || Ok(cloudkeep_tenant::failover_plans::save(&ctx, &plan)?)).await
}

/// What is done to a failover plan.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FailoverPlanAction {
    /// Run it: a test or a failover.
    Run {
        /// A test.
        test: bool,
    },
    /// Stop its replicas that run, in reverse order.
    Undo,
    /// Remove it.
    Delete,
}

/// Does `action` to failover plan `name`; what it answers (a run: each step's seconds).
#[tauri::command]
pub async fn failover_plan_act(
    state: State<'_, ConsoleState>,
    name: String,
    action: FailoverPlanAction,
) -> Result<serde_json::Value, CommandError> {
    use cloudkeep_tenant::failover_plans as fp;
    let ctx = state.ctx.clone();
    super::blocking(move || {
        let plan = ctx.block_on(fp::find(ctx.state(), &name))?;
        let answer = match action {
            FailoverPlanAction::Run { test } => {
                serde_json::to_value(fp::run(&ctx, &plan, test, &|_| {})?)
            }
            FailoverPlanAction::Undo => serde_json::to_value(fp::undo(&ctx, &plan)?),
            FailoverPlanAction::Delete => {
                ctx.block_on(fp::delete(ctx.state(), &name))?;
                Ok(serde_json::Value::Null)
            }
        };
        answer.map_err(|e| CommandError::failed(e.to_string()))
    })
    .await
}
