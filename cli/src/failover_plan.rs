//! `cloudkeep failover-plan …`: the order a site's replicas start in at the provider, each
//! step waiting until its replica answers (a TCP port, or a line on its console) before the
//! next; run as a test or for real, undone in reverse order.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::units::{date_time_text, human_duration, parse_duration};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::failover_plans::{self, FailoverPlan, Step, StepEvent, Wait};
use cloudkeep_tenant::replicas;

/// Arguments of `cloudkeep failover-plan`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The provider of the replicas (needed when you use several).
    #[arg(long, global = true)]
    provider: Option<String>,
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Make (or replace) a failover plan: its replicas in the order they start.
    Create {
        /// Its name.
        name: String,
        /// A step: REPLICA, REPLICA@port:N (wait until its port N answers) or
        /// REPLICA@marker:TEXT (wait until its console shows TEXT); repeat, in order.
        #[arg(long = "step", value_name = "REPLICA[@WAIT]", required = true)]
        steps: Vec<String>,
        /// A public address rule of a step's replica, REPLICA=PUBLIC:PORT; repeat for more.
        #[arg(long = "port", value_name = "REPLICA=PUBLIC:PORT")]
        ports: Vec<String>,
        /// How long each step may take to answer (90s, 10m).
        #[arg(long, default_value = "10m")]
        timeout: String,
        /// Every replica joins your network N (extended to your site by `cloudkeep nea run`)
        /// instead of the provider's NAT.
        #[arg(long, value_name = "N")]
        network: Option<u8>,
    },
    /// Your failover plans.
    List,
    /// A plan's steps and how it last ran.
    Show {
        /// The plan.
        name: String,
    },
    /// Start the plan's replicas in order, each waiting for the last to answer: a test
    /// (--test: isolated, replication goes on) or a failover.
    Run {
        /// The plan.
        name: String,
        /// A test: every replica isolated and thrown away with `undo`.
        #[arg(long)]
        test: bool,
    },
    /// Stop every replica of the plan that runs, the last step's first (what they wrote is
    /// thrown away; replication goes on).
    Undo {
        /// The plan.
        name: String,
    },
    /// Remove a plan (its replicas are not touched).
    Delete {
        /// The plan.
        name: String,
    },
}

/// `REPLICA[@port:N|@marker:TEXT]`.
fn step(text: &str) -> anyhow::Result<(String, Wait)> {
    let Some((replica, wait)) = text.split_once('@') else {
        return Ok((text.to_owned(), Wait::Nothing));
    };
    let wait = if let Some(port) = wait.strip_prefix("port:") {
        Wait::Port {
            port: port
                .parse()
                .map_err(|_| anyhow::anyhow!("\"{port}\" in step {text} is not a port"))?,
        }
    } else if let Some(marker) = wait.strip_prefix("marker:") {
        Wait::Marker {
            text: marker.to_owned(),
        }
    } else {
        anyhow::bail!("step {text}: wait for port:N or marker:TEXT");
    };
    Ok((replica.to_owned(), wait))
}

fn print_plan(plan: &FailoverPlan) {
    println!(
        "failover plan {} ({} steps, each given {} to answer)",
        plan.name,
        plan.steps.len(),
        human_duration(plan.timeout_secs)
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| format!("public port {} → {}", p.port, p.to))
            .collect();
        println!(
            "  {}. {} at {}: waits for {}{}",
            i + 1,
            s.replica,
            s.provider,
            s.wait.describe(),
            if ports.is_empty() {
                String::new()
            } else {
                format!("; {}", ports.join(", "))
            }
        );
    }
    if let Some(ms) = plan.last_ms {
        println!("  last run {}: {}", date_time_text(ms), plan.last_message);
    }
}

/// Runs `cloudkeep failover-plan …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let state = ctx.state();
    match args.command {
        PlanCommand::Create {
            name,
            steps,
            ports,
            timeout,
            network,
        } => {
            let mut plan = FailoverPlan {
                name,
                steps: Vec::with_capacity(steps.len()),
                timeout_secs: parse_duration(&timeout).map_err(anyhow::Error::msg)?,
                last_ms: None,
                last_message: String::new(),
            };
            for text in &steps {
                let (replica, wait) = step(text)?;
                let job =
                    ctx.block_on(replicas::find(state, args.provider.as_deref(), &replica))?;
                plan.steps.push(Step {
                    provider: job.provider,
                    replica,
                    wait,
                    ports: Vec::new(),
                    network,
                });
            }
            for text in &ports {
                let Some((replica, rule)) = text.split_once('=') else {
                    anyhow::bail!("--port {text}: give REPLICA=PUBLIC:PORT");
                };
                let Some(step) = plan.steps.iter_mut().find(|s| s.replica == replica) else {
                    anyhow::bail!("--port {text}: replica {replica} is not a step of the plan");
                };
                step.ports.push(crate::plans::port_rule(rule)?);
            }
            failover_plans::save(ctx, &plan)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan);
                println!(
                    "try it without touching replication: cloudkeep failover-plan run {} --test",
                    plan.name
                );
            }
        }
        PlanCommand::List => {
            let plans = ctx.block_on(failover_plans::list(state))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else if plans.is_empty() {
                println!(
                    "no failover plan yet: cloudkeep failover-plan create NAME --step REPLICA@port:N …"
                );
            } else {
                for p in &plans {
                    let order: Vec<&str> = p.steps.iter().map(|s| s.replica.as_str()).collect();
                    println!("{:<20} {}", p.name, order.join(" → "));
                }
            }
        }
        PlanCommand::Show { name } => {
            let plan = ctx.block_on(failover_plans::find(state, &name))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan);
            }
        }
        PlanCommand::Run { name, test } => {
            let plan = ctx.block_on(failover_plans::find(state, &name))?;
            let json = args.json;
            let show = |e: StepEvent| {
                if json {
                    return;
                }
                match e {
                    StepEvent::Starting { step, replica } => {
                        println!("step {step}: starting replica {replica}…");
                    }
                    StepEvent::Answered {
                        step,
                        replica,
                        secs,
                    } => println!("step {step}: replica {replica} answered after {secs:.1} s"),
                }
            };
            let run = failover_plans::run(ctx, &plan, test, &show)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else if test {
                println!(
                    "test run of {name}: every replica answered; end it with cloudkeep failover-plan undo {name}"
                );
            } else {
                println!("{name} failed over: every replica answered");
            }
        }
        PlanCommand::Undo { name } => {
            let plan = ctx.block_on(failover_plans::find(state, &name))?;
            let stopped = failover_plans::undo(ctx, &plan)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&stopped)?);
            } else if stopped.is_empty() {
                println!("no replica of {name} runs");
            } else {
                println!("stopped, in this order: {}", stopped.join(", "));
            }
        }
        PlanCommand::Delete { name } => {
            ctx.block_on(failover_plans::delete(state, &name))?;
            println!("failover plan {name} removed; its replicas are not touched");
        }
    }
    Ok(ExitCode::SUCCESS)
}
