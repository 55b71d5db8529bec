//! `cloudkeep replica …`: cloud replication as a tenant drives it — the hardware plans its
//! provider gave it, replicas made on them from this computer's disks (QEMU/KVM disk images or
//! devices), cycles that send the blocks changed since the last, each replica's points, and
//! the key the provider may hold (revoked or given back).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::units::{Limit, date_time_text, human_bytes, parse_limit};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::providers;
use cloudkeep_tenant::replicas::{self, NewReplicaJob};

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
    /// Make a replica of a machine on one of your hardware plans: its disks (QEMU/KVM disk
    /// images or devices) are sent in cycles; only changed blocks travel after the first.
    Create {
        /// Its name (the machine's, usually).
        name: String,
        /// The hardware plan.
        #[arg(long)]
        plan: String,
        /// The plan's storage pool (needed when it has several).
        #[arg(long)]
        pool: Option<String>,
        /// A disk, NAME=PATH or PATH (named disk0, disk1, …): a raw or qcow2 image, or a
        /// device; repeat for more.
        #[arg(
            long = "disk",
            value_name = "[NAME=]PATH",
            required_unless_present_any = ["libvirt", "from_job"],
            conflicts_with_all = ["libvirt", "from_job"]
        )]
        disks: Vec<String>,
        /// This computer under an image-level backup job (its own, or its policy's): the
        /// disks the job images — its volumes, or every disk of the computer — are the
        /// replica's.
        #[arg(long, value_name = "JOB", conflicts_with = "libvirt")]
        from_job: Option<String>,
        /// A libvirt domain (its name, or its XML definition's file): its disks, CPUs, memory
        /// and network card's MAC address make the replica.
        #[arg(long, value_name = "DOMAIN")]
        libvirt: Option<String>,
        /// Virtual CPUs it starts with (1, or the domain's).
        #[arg(long)]
        cpu: Option<u32>,
        /// Memory it starts with (2G, 512M; 1G, or the domain's).
        #[arg(long)]
        memory: Option<String>,
        /// Replica points kept.
        #[arg(long, default_value_t = 7)]
        keep: u32,
        /// Keep its key on this computer only: the provider cannot start it on your behalf.
        #[arg(long)]
        no_escrow: bool,
        /// Run a cycle this often while `cloudkeep daemon` or the console runs (15m, 1h);
        /// only when asked otherwise.
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
    },
    /// When cycles run on their own: every DURATION (--every 15m), or only when asked
    /// (--manual).
    Schedule {
        /// The replica.
        name: String,
        /// How often (15m, 1h).
        #[arg(
            long,
            value_name = "DURATION",
            conflicts_with = "manual",
            required_unless_present = "manual"
        )]
        every: Option<String>,
        /// Only when asked.
        #[arg(long)]
        manual: bool,
    },
    /// Run one cycle now: the blocks changed since the last cycle become a new replica point.
    Run {
        /// The replica.
        name: String,
    },
    /// Your replicas here, with their last cycle.
    List,
    /// A replica's points and size at the provider.
    Show {
        /// The replica.
        name: String,
    },
    /// Remove a replica: its disks and points at the provider are removed.
    Delete {
        /// The replica.
        name: String,
    },
    /// Start the replica at your provider from a replica point: a test failover (--test:
    /// isolated network, replication goes on, thrown away with `undo`) or a failover
    /// (replication waits until `undo`, or `permanent`).
    Failover {
        /// The replica.
        name: String,
        /// A test failover.
        #[arg(long)]
        test: bool,
        /// The replica point (the newest unless given).
        #[arg(long, value_name = "ID")]
        point: Option<u64>,
        /// A public address rule: a port of your provider's address forwarded to a port of the
        /// replica, PUBLIC:REPLICA (8080:80); repeat for more.
        #[arg(long = "port", value_name = "PUBLIC:REPLICA")]
        ports: Vec<String>,
        /// Join your network N at the provider instead of its NAT: the one your network
        /// extension appliance (`cloudkeep nea run`) extends to your site, so the replica keeps
        /// its address there.
        #[arg(long, value_name = "N")]
        network: Option<u8>,
    },
    /// End a test failover, or undo a failover: the replica stops, what it wrote is thrown
    /// away, replication goes on.
    Undo {
        /// The replica.
        name: String,
    },
    /// Fail a replica back: its machine at the provider stops, what it wrote there becomes
    /// the newest replica point, and the blocks that differ are written onto the replica's
    /// own disks here (or new ones, --onto), which replication then goes on from. Keep the
    /// disks unused while it runs; run it again if it is cut off.
    Failback {
        /// The replica.
        name: String,
        /// Write onto this disk image or device instead, one per disk in order (a new file is
        /// made at the disk's size): a new machine.
        #[arg(long = "onto", value_name = "PATH")]
        onto: Vec<PathBuf>,
    },
    /// Write the replica's key to a file (owner-only) to keep somewhere safe: a bare machine
    /// booted from recovery media adopts the replica with it to fail it back.
    ExportKey {
        /// The replica.
        name: String,
        /// The file.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Take a replica onto this computer (a bare machine booted from recovery media, a new
    /// computer) with its key, then fail it back onto this computer's disks (--onto).
    Adopt {
        /// The replica.
        name: String,
        /// The key's file, as export-key wrote it.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Make a failover permanent: the replica is the machine now; replication of it ends.
    Permanent {
        /// The replica.
        name: String,
    },
    /// The end of a running replica's console (what it printed on its serial port).
    Console {
        /// The replica.
        name: String,
    },
    /// Take the replica's key back from your provider: it can no longer start the replica
    /// for you (you still can, and replication goes on).
    RevokeKey {
        /// The replica.
        name: String,
    },
    /// Give your provider the replica's key again.
    EscrowKey {
        /// The replica.
        name: String,
    },
}

/// Shows `done` of `total` bytes of the disks read (nothing with `--json`: the result has the
/// figures).
fn disk_progress(
    bar: &crate::progress::ProgressLine,
    json: bool,
    started: std::time::Instant,
    done: u64,
    total: u64,
) {
    if !json {
        bar.update(&cloudkeep_repo::engine::Progress {
            bytes: done,
            bytes_read: done,
            elapsed_ms: started.elapsed().as_millis() as u64,
            expected_bytes: Some(total),
            ..Default::default()
        });
    }
}

/// `15m`, `1h` as whole minutes (rounded up).
fn every_minutes(text: &str) -> anyhow::Result<u32> {
    let secs = cloudkeep_model::units::parse_duration(text).map_err(anyhow::Error::msg)?;
    u32::try_from(secs.div_ceil(60)).map_err(|_| anyhow::anyhow!("{text} is too long"))
}

/// When a replica's cycles run, in words.
fn schedule_text(every: Option<u32>) -> String {
    match every {
        None => "when asked".into(),
        Some(m) => format!(
            "every {}",
            cloudkeep_model::units::human_duration(u64::from(m) * 60)
        ),
    }
}

/// `NAME=PATH`, or `PATH` named `disk<i>`.
fn disk(text: &str, i: usize) -> (String, PathBuf) {
    match text.split_once('=') {
        Some((name, path)) if !name.contains('/') => (name.to_owned(), PathBuf::from(path)),
        _ => (format!("disk{i}"), PathBuf::from(text)),
    }
}

/// Runs `cloudkeep replica …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let (state, secrets_store) = (ctx.state(), ctx.secrets());
    let provider = args.provider.clone();
    let find = |name: &str| ctx.block_on(replicas::find(state, provider.as_deref(), name));
    let escrow = matches!(args.command, ReplicaCommand::EscrowKey { .. });
    let make_permanent = matches!(args.command, ReplicaCommand::Permanent { .. });
    match args.command {
        ReplicaCommand::Plans => {
            let plans = ctx.block_on(async {
                let provider = crate::provider::named_or_only(state, args.provider).await?;
                let (client, _) = providers::connect(state, secrets_store, &provider).await?;
                anyhow::Ok((provider, client.replication_plans().await?))
            })?;
            let (provider, plans) = plans;
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
                print_plan(&provider, p);
            }
        }
        ReplicaCommand::Create {
            name,
            plan,
            pool,
            disks,
            from_job,
            libvirt,
            cpu,
            memory,
            keep,
            no_escrow,
            every,
        } => {
            let provider = ctx.block_on(crate::provider::named_or_only(state, args.provider))?;
            use cloudkeep_tenant::machines::{self, MachineSource};
            let source = match (libvirt, from_job) {
                (Some(domain), _) => MachineSource::Libvirt { domain },
                (None, Some(job)) => MachineSource::Job { job },
                (None, None) => MachineSource::Disks {
                    disks: disks.iter().enumerate().map(|(i, d)| disk(d, i)).collect(),
                },
            };
            let machine = ctx.block_on(machines::resolve(state, &source))?;
            let memory = match memory {
                Some(text) => match parse_limit(&text).map_err(anyhow::Error::msg)? {
                    Limit::Bytes(n) => n,
                    Limit::Unlimited => {
                        anyhow::bail!("give the replica's memory as a size, e.g. 2G")
                    }
                },
                None => machine.memory.unwrap_or(1 << 30),
            };
            let cpu = cpu.or(machine.cpu).unwrap_or(1);
            let view = replicas::create(
                ctx,
                NewReplicaJob {
                    provider: provider.clone(),
                    name,
                    plan,
                    pool,
                    disks: machine.disks,
                    cpu,
                    memory,
                    keep,
                    escrow: !no_escrow,
                    every_minutes: every.as_deref().map(every_minutes).transpose()?,
                    mac: machine.mac,
                },
            )?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!(
                    "replica {} made on hardware plan {} at {provider} (host {}, {} of disks); run its first cycle with: cloudkeep replica run {}",
                    view.spec.name,
                    view.spec.plan,
                    view.host,
                    human_bytes(view.spec.size()),
                    view.spec.name
                );
                if !view.key_escrowed {
                    println!(
                        "its key stays on this computer only: keep a copy of this computer's secrets, or the replica cannot be started"
                    );
                }
            }
        }
        ReplicaCommand::Run { name } => {
            let job = find(&name)?;
            // With --json only the result is printed: the cycle's figures are in it.
            let bar = crate::progress::ProgressLine::new(false);
            let started = std::time::Instant::now();
            let show = |done: u64, total: u64| disk_progress(&bar, args.json, started, done, total);
            let report = replicas::run_cycle(ctx, &job, &show).with_context(|| {
                format!("replica {name}: the cycle failed; earlier replica points are intact")
            })?;
            bar.finish();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "replica point {} of {name}: {} changed blocks, {} sent; {} at the provider",
                    report.point.id,
                    report.blocks,
                    human_bytes(report.point.bytes),
                    human_bytes(report.stored)
                );
            }
        }
        ReplicaCommand::List => {
            let all = ctx.block_on(replicas::list(state))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<16} {:<12} {:<12} {:>10}  {:<16} last cycle",
                "replica", "provider", "plan", "disks", "cycles"
            );
            for r in &all {
                let last = match (&r.last_result, r.last_ms) {
                    (Some(result), Some(at)) => {
                        format!("{result} {} ({})", date_time_text(at), r.last_message)
                    }
                    _ => "never".to_owned(),
                };
                println!(
                    "{:<16} {:<12} {:<12} {:>10}  {:<16} {last}",
                    r.spec.name,
                    r.provider,
                    r.spec.plan,
                    human_bytes(r.spec.size()),
                    schedule_text(r.every_minutes)
                );
            }
        }
        ReplicaCommand::Show { name } => {
            let job = find(&name)?;
            let view = replicas::status(ctx, &job)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "replica {} at {} on hardware plan {} (host {}, pool {})",
                view.spec.name, job.provider, view.spec.plan, view.host, view.spec.pool
            );
            for (d, path) in view.spec.disks.iter().zip(&job.sources) {
                println!(
                    "  disk {}: {} from {}",
                    d.name,
                    human_bytes(d.size),
                    path.display()
                );
            }
            println!(
                "  {} CPUs, {} memory; keeps {} replica points; {} at the provider",
                view.spec.cpu,
                human_bytes(view.spec.memory),
                view.spec.keep,
                human_bytes(view.stored)
            );
            println!(
                "  key: {}",
                if view.key_escrowed {
                    "held by the provider too (it may start the replica for you)"
                } else {
                    "on this computer only"
                }
            );
            if view.state.is_some() {
                crate::plans::print_state(&view);
            }
            if view.points.is_empty() {
                println!(
                    "  no replica point yet: cloudkeep replica run {}",
                    view.spec.name
                );
            }
            for p in view.points.iter().rev() {
                println!(
                    "  point {:>4}  {}  {} sent",
                    p.id,
                    date_time_text(p.time_ms),
                    human_bytes(p.bytes)
                );
            }
        }
        ReplicaCommand::Failover {
            name,
            test,
            point,
            ports,
            network,
        } => {
            let job = find(&name)?;
            let req = cloudkeep_api::replication::FailoverRequest {
                point,
                test,
                ports: ports
                    .iter()
                    .map(|p| crate::plans::port_rule(p))
                    .collect::<anyhow::Result<_>>()?,
                probes: Vec::new(),
                network,
            };
            let view = replicas::failover(ctx, &job, &req)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                crate::plans::print_state(&view);
                println!(
                    "its console: cloudkeep replica console {name}; end it: cloudkeep replica undo {name}"
                );
            }
        }
        ReplicaCommand::Undo { name } | ReplicaCommand::Permanent { name } => {
            let job = find(&name)?;
            let view = replicas::end_failover(ctx, &job, make_permanent)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else if make_permanent {
                println!("replica {name} is the machine now; its replication has ended");
            } else {
                println!(
                    "replica {name} stopped; what it wrote is thrown away and replication goes on"
                );
            }
        }
        ReplicaCommand::Failback { name, onto } => {
            let job = find(&name)?;
            let bar = crate::progress::ProgressLine::new(false);
            let started = std::time::Instant::now();
            let show = |done: u64, total: u64| disk_progress(&bar, args.json, started, done, total);
            let report = replicas::failback(ctx, &job, &onto, &show).with_context(|| {
                format!(
                    "replica {name}: the failback did not finish; run it again (only what is missing comes)"
                )
            })?;
            bar.finish();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let onto: Vec<String> = report
                    .disks
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                println!(
                    "replica {name} failed back onto {}: {} blocks written, {} received; replication goes on from replica point {}",
                    onto.join(", "),
                    report.blocks,
                    human_bytes(report.bytes),
                    report.point
                );
            }
        }
        ReplicaCommand::Schedule {
            name,
            every,
            manual,
        } => {
            let job = find(&name)?;
            let every = if manual {
                None
            } else {
                every.as_deref().map(every_minutes).transpose()?
            };
            ctx.block_on(replicas::set_schedule(state, &job, every))?;
            println!(
                "cycles of replica {name} run {} (while cloudkeep daemon or the console runs)",
                schedule_text(every)
            );
        }
        ReplicaCommand::ExportKey { name, to } => {
            let job = find(&name)?;
            let key = replicas::export_key(ctx, &job)?;
            cloudkeep_model::paths::write_private_file(
                &to,
                format!("{}\n", key.as_str()).as_bytes(),
            )
            .with_context(|| format!("cannot write {}", to.display()))?;
            println!(
                "the key of replica {name} is in {} (owner-only): keep it where a lost site does not take it",
                to.display()
            );
        }
        ReplicaCommand::Adopt { name, key_file } => {
            let provider =
                ctx.block_on(crate::provider::named_or_only(state, args.provider.clone()))?;
            let key = std::fs::read_to_string(&key_file)
                .with_context(|| format!("cannot read {}", key_file.display()))?;
            let view = replicas::adopt(ctx, &provider, &name, &key)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!(
                    "replica {name} is on this computer now; fail it back onto its disks: cloudkeep replica failback {name} --onto DISK ({} disks)",
                    view.spec.disks.len()
                );
            }
        }
        ReplicaCommand::Console { name } => {
            let job = find(&name)?;
            print!("{}", replicas::console(ctx, &job)?);
        }
        ReplicaCommand::Delete { name } => {
            let job = find(&name)?;
            replicas::delete(ctx, &job)?;
            println!(
                "replica {name} removed, with its disks and points at {}",
                job.provider
            );
        }
        ReplicaCommand::RevokeKey { name } | ReplicaCommand::EscrowKey { name } => {
            let job = find(&name)?;
            let view = replicas::set_escrow(ctx, &job, escrow)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else if view.key_escrowed {
                println!("{} holds the key of replica {name} again", job.provider);
            } else {
                println!(
                    "{} no longer holds the key of replica {name}: only you can start it",
                    job.provider
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(provider: &str, p: &cloudkeep_api::replication::TenantPlan) {
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
