//! `cloudkeep replica …`: cloud replication as a tenant sees it — the hardware plans its
//! provider gave it, with what its replicas use of each.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::units::human_bytes;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::providers;

/// Arguments of `cloudkeep replica`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The provider (needed when you use several).
    #[arg(long, global = true)]
    provider: Option<String>,
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ReplicaCommand,
}

#[derive(Debug, Subcommand)]
enum ReplicaCommand {
    /// The hardware plans your provider gave you, with what your replicas use of each.
    Plans,
}

/// Runs `cloudkeep replica …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let (state, secrets_store) = (ctx.state(), ctx.secrets());
    ctx.block_on(async {
        let provider = crate::provider::named_or_only(state, args.provider).await?;
        let (client, _) = providers::connect(state, secrets_store, &provider).await?;
        match args.command {
            ReplicaCommand::Plans => {
                let plans = client.replication_plans().await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&plans)?);
                    return Ok(ExitCode::SUCCESS);
                }
                if plans.is_empty() {
                    println!(
                        "{provider} has given you no hardware plan: ask them for one to replicate your computers there"
                    );
                }
                for p in &plans {
                    let (plan, used) = (&p.plan, &p.used);
                    println!("hardware plan {} at {provider}", plan.name);
                    println!("  CPUs:     {} of {} in use", used.cpu, plan.cpu);
                    println!(
                        "  memory:   {} of {} in use",
                        human_bytes(used.memory),
                        human_bytes(plan.memory)
                    );
                    for s in &plan.storage {
                        let taken: u64 = used
                            .storage
                            .iter()
                            .filter(|u| u.pool == s.pool)
                            .map(|u| u.bytes)
                            .sum();
                        println!(
                            "  storage:  {} of {} in use ({})",
                            human_bytes(taken),
                            human_bytes(s.bytes),
                            s.pool
                        );
                    }
                    println!("  networks: {} of {}", used.networks, plan.networks);
                    println!(
                        "  internet: {}",
                        if plan.internet { "allowed" } else { "none" }
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
