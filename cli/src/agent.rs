//! `cloudkeep agent …`: a computer under a backup policy — enroll it with the file and
//! one-time code its administrator gave, then run it as a service (or one cycle at a time).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_repo::engine::Cancel;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::agent::{self, Cycle};

use crate::secrets;

/// Arguments of `cloudkeep agent`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Enroll this computer with its enrollment file; the one-time code is read from stdin.
    Enroll {
        /// The file `cloudkeep policy enroll-file` wrote.
        file: PathBuf,
        /// The home folder of the user whose files the policy protects: what `~` in the
        /// policy's sources stands for (default: yours). For enrolling from an administrator's
        /// account on a user's behalf.
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
    },
    /// Run as a service: pull the policy, back up on its schedule, report to the provider.
    Run {
        /// One cycle, then exit.
        #[arg(long)]
        once: bool,
        /// Back up in this cycle even if the schedule does not say so yet.
        #[arg(long)]
        now: bool,
        /// Seconds between cycles.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        interval: u64,
    },
    /// What this agent is enrolled as and what it applies.
    Status,
    /// Restore this computer's files from its own restore points (its subtenant's: never
    /// another computer's), by default to where they came from.
    Restore {
        /// Restore point id (a unique prefix of at least 4 characters, or "latest").
        #[arg(default_value = "latest")]
        point: String,
        /// Restore into this folder instead.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Only this path of the point (repeatable).
        #[arg(long)]
        path: Vec<String>,
        /// When a file exists: overwrite, skip or keep-both.
        #[arg(long, default_value = "keep-both")]
        conflict: cloudkeep_repo::engine::restore::Conflict,
    },
    /// Trust the certificate the provider presents now, when it has this fingerprint (after
    /// an SP replaced it without announcing it; an announced or CA-signed renewal is followed
    /// by itself).
    Trust {
        /// The new certificate's SHA-256 fingerprint, as the SP gave it.
        fingerprint: String,
    },
    /// The agent as a Windows service: install, uninstall, start, stop, status.
    Service {
        #[command(subcommand)]
        command: crate::service::ServiceCommand,
    },
}

impl Args {
    /// The service command, when this is one: it runs on the data home alone (the SCM's
    /// `run` names its own), not on a tenant context.
    pub fn into_service(self) -> Result<(crate::service::ServiceCommand, bool), Self> {
        match self.command {
            AgentCommand::Service { command } => Ok((command, self.json)),
            _ => Err(self),
        }
    }

    /// The data folder of `agent service run` (what the SCM starts): its log goes there.
    pub fn service_run_home(&self) -> Option<&std::path::Path> {
        match &self.command {
            AgentCommand::Service { command } => command.run_home(),
            _ => None,
        }
    }
}

fn print_cycle(cycle: &Cycle, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(cycle)?);
        return Ok(());
    }
    let next = cycle
        .next_run_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("none (manual)".to_owned(), |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        });
    match &cycle.ran {
        Some(s) => println!(
            "policy revision {}{}; backup {}{}; next run {next}",
            cycle.revision,
            if cycle.changed { " (changed)" } else { "" },
            s.result,
            if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.message)
            }
        ),
        None => println!(
            "policy revision {}{}; nothing due; next run {next}",
            cycle.revision,
            if cycle.changed { " (changed)" } else { "" }
        ),
    }
    for order in &cycle.restores {
        println!(
            "ordered restore {}: {} ({})",
            order.id, order.state, order.message
        );
    }
    Ok(())
}

/// Runs `cloudkeep agent …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let home = ctx.home();
    match args.command {
        AgentCommand::Enroll { file, home } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            if let Some(home) = &home
                && !(home.is_absolute() && home.is_dir())
            {
                anyhow::bail!(
                    "{} is not a folder; give --home the full path of the home folder of the user whose files the policy protects",
                    home.display()
                );
            }
            let code = secrets::stdin_line("one-time code")?;
            let state = agent::enroll(ctx, &text, &code, home)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                println!(
                    "enrolled as computer \"{}\" of policy \"{}\" (revision {}); start the agent with: cloudkeep agent run",
                    state.computer, state.policy, state.revision
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Run {
            once,
            now,
            interval,
        } => {
            if once {
                let cycle = agent::cycle(ctx, now)?;
                print_cycle(&cycle, args.json)?;
                let failed = cycle.ran.as_ref().is_some_and(|s| s.result == "failed");
                return Ok(if failed {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            }
            let stop = Cancel::default();
            if now {
                print_cycle(&agent::cycle(ctx, true)?, args.json)?;
            }
            agent::run(
                ctx,
                Duration::from_secs(interval.max(1)),
                &stop,
                &|outcome| match outcome {
                    Ok(cycle) => {
                        let _ = print_cycle(cycle, args.json);
                    }
                    Err(e) => eprintln!("cycle failed, trying again at the next: {e}"),
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Restore {
            point,
            to,
            path,
            conflict,
        } => {
            let state = agent::load(home)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "this computer is not enrolled; run \"cloudkeep agent enroll FILE\""
                )
            })?;
            crate::job::restore_files(ctx, &state.job, &point, (to, path, conflict), args.json)
        }
        AgentCommand::Trust { fingerprint } => {
            let state = agent::load(home)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "this computer is not enrolled; run \"cloudkeep agent enroll FILE\""
                )
            })?;
            let provider = ctx.block_on(cloudkeep_tenant::providers::trust(
                ctx.state(),
                &state.provider,
                &fingerprint,
            ))?;
            println!(
                "the provider's certificate {} is trusted; the agent's next cycle uses it",
                provider.fingerprint
            );
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Service { command } => crate::service::run(command, home, args.json),
        AgentCommand::Status => {
            let state = agent::load(home)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "this computer is not enrolled; run \"cloudkeep agent enroll FILE\""
                )
            })?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                println!(
                    "computer \"{}\" of policy \"{}\", revision {} applied; {} report(s) waiting to be sent",
                    state.computer,
                    state.policy,
                    state.revision,
                    state.pending.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
