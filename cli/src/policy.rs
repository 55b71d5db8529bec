//! `cloudkeep policy …`: backup policies — one job template for many computers, each a
//! managed subtenant at the provider with its own quota, enrolled with a sealed file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_api::policy::PolicySpec;
use cloudkeep_model::units::{human_bytes, parse_limit};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::jobs::Schedule;
use cloudkeep_tenant::policies::{self, Policy};

use crate::secrets;

/// Arguments of `cloudkeep policy`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PolicyCommand,
}

/// What a policy backs up and keeps (for create and edit).
#[derive(Debug, ClapArgs)]
struct SpecArgs {
    /// What each computer protects: entire (every disk, imaged), volumes (the --volume disks
    /// and volumes, imaged) or files (the --source files and folders; the default).
    #[arg(long)]
    mode: Option<cloudkeep_model::mode::BackupMode>,
    /// A file or folder each computer backs up; `~` is its user's home (repeatable; default ~).
    #[arg(long = "source", value_name = "PATH")]
    sources: Vec<String>,
    /// A disk, partition or logical volume each computer images (/dev/sda, /dev/vg/root;
    /// repeatable; volume level).
    #[arg(long = "volume", value_name = "DEV")]
    volumes: Vec<String>,
    /// Leave out paths matching this glob (repeatable; default: caches, trash, temp files).
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// manual, daily@HH:MM[:mon,tue,…] or every:Nh.
    #[arg(long, value_parser = Schedule::parse)]
    schedule: Option<Schedule>,
    /// Keep the newest N restore points.
    #[arg(long, value_name = "N")]
    keep_points: Option<u32>,
    /// Keep every restore point younger than N days.
    #[arg(long, value_name = "N")]
    keep_days: Option<u32>,
    /// Also keep weekly, monthly, yearly points: weekly=4,monthly=12,yearly=3.
    #[arg(long, value_name = "RULES")]
    gfs: Option<String>,
    /// Each computer's quota (e.g. 50G), or "unlimited" to share yours.
    #[arg(long, value_name = "SIZE")]
    quota: Option<String>,
    /// Compression: off, fast, default or max.
    #[arg(long)]
    compression: Option<String>,
    /// When each computer's agent runs a restore test of its newest point: manual,
    /// daily@HH:MM[:days] or every:Nh (default: Sundays at 04:00).
    #[arg(long, value_name = "SCHEDULE", value_parser = Schedule::parse)]
    restore_test: Option<Schedule>,
    /// Share of the files a restore test restores, in percent.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    restore_test_sample: Option<u8>,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Create a policy at a provider (its encryption password is read from stdin).
    Create {
        /// Its name.
        name: String,
        /// The provider the computers back up to.
        #[arg(long)]
        provider: String,
        /// Its cloud repository the computers' quotas are carved from.
        #[arg(long)]
        repo: String,
        #[command(flatten)]
        spec: SpecArgs,
        /// Read the policy's encryption password from stdin (it cannot be recovered without it).
        #[arg(long, required = true)]
        encryption_password_stdin: bool,
    },
    /// Change a policy: the agents apply it on their next cycle.
    Edit {
        /// Its name.
        name: String,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Delete a policy; its computers' subtenants are disabled (or deleted with --with-data).
    Delete {
        /// Its name.
        name: String,
        /// Also delete the computers' subtenants and their restore points.
        #[arg(long)]
        with_data: bool,
    },
    /// List policies with their computers.
    List,
    /// Show a policy and its computers as last synced.
    Show {
        /// Its name.
        name: String,
    },
    /// Add a computer: its managed subtenant POLICY-COMPUTER, its repository and agent key.
    AddComputer {
        /// The policy.
        policy: String,
        /// The computer's name.
        computer: String,
    },
    /// Remove a computer: its subtenant is disabled (deleted with --delete).
    RemoveComputer {
        /// The policy.
        policy: String,
        /// The computer.
        computer: String,
        /// Delete its subtenant and restore points instead of disabling it.
        #[arg(long)]
        delete: bool,
    },
    /// Write a computer's enrollment file, sealed with a one-time code that is printed.
    EnrollFile {
        /// The policy.
        policy: String,
        /// The computer.
        computer: String,
        /// Where to write it (a new file, readable only by you).
        #[arg(long)]
        out: PathBuf,
    },
    /// Read the computers' results from the provider and show them.
    Sync {
        /// The policy.
        name: String,
    },
    /// Restore on one of the policy's computers itself: its agent carries it out on its next
    /// cycle, from that computer's own restore points ("where they came from" is that
    /// computer's paths). See how far it got with `policy restores`.
    Restore {
        /// The policy.
        policy: String,
        /// The computer.
        computer: String,
        /// Restore point id (a unique prefix of at least 4 characters, or "latest").
        #[arg(default_value = "latest")]
        point: String,
        /// A folder on that computer instead of where the items came from.
        #[arg(long, value_name = "DIR")]
        to: Option<String>,
        /// Only this path of the point (repeatable).
        #[arg(long)]
        path: Vec<String>,
        /// When a file exists: overwrite, skip or keep-both.
        #[arg(long, default_value = "keep-both")]
        conflict: String,
    },
    /// The restores ordered for the policy's computers: queued, running, done or failed.
    Restores {
        /// The policy.
        policy: String,
    },
    /// The sessions a computer's agent reported, newest first.
    Sessions {
        /// The policy.
        policy: String,
        /// The computer.
        computer: String,
    },
    /// Show the computers' results as last synced (add --sync to read them first).
    Status {
        /// The policy.
        name: String,
        /// Read them from the provider first.
        #[arg(long)]
        sync: bool,
    },
}

fn spec_of(args: SpecArgs, base: Option<PolicySpec>, repo: String) -> anyhow::Result<PolicySpec> {
    let mut spec = base.unwrap_or_else(|| PolicySpec::template(repo));
    if let Some(mode) = args.mode {
        spec.mode = mode;
        if mode.is_image() {
            // Imaging takes no files; the template's home folder goes.
            spec.sources.clear();
        } else {
            spec.volumes.clear();
        }
    }
    if !args.sources.is_empty() {
        spec.sources = args.sources;
    }
    if !args.volumes.is_empty() {
        spec.volumes = args.volumes;
    }
    if !args.excludes.is_empty() {
        spec.excludes = args.excludes;
    }
    if let Some(s) = args.schedule {
        spec.schedule = s;
    }
    if let Some(n) = args.keep_points {
        spec.retention.keep_last = (n > 0).then_some(n);
    }
    if let Some(n) = args.keep_days {
        spec.retention.keep_days = (n > 0).then_some(n);
    }
    if let Some(gfs) = args.gfs {
        spec.retention.set_gfs(&gfs).map_err(anyhow::Error::msg)?;
    }
    if let Some(q) = args.quota {
        spec.computer_quota_bytes = parse_limit(&q).map_err(anyhow::Error::msg)?;
    }
    if let Some(c) = args.compression {
        spec.compression = c;
    }
    if let Some(s) = args.restore_test {
        spec.restore_test = s;
    }
    if let Some(n) = args.restore_test_sample {
        spec.restore_test_sample = n;
    }
    Ok(spec)
}

fn ago(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "—".into())
}

fn print_policy(p: &Policy) {
    println!(
        "policy \"{}\" (revision {}) at {} / {}",
        p.name, p.revision, p.provider, p.spec.repo
    );
    println!("  mode      {}", p.spec.mode.label());
    match p.spec.mode {
        cloudkeep_model::mode::BackupMode::Files => {
            println!("  sources   {}", p.spec.sources.join(", "));
        }
        cloudkeep_model::mode::BackupMode::Volumes => {
            println!("  volumes   {}", p.spec.volumes.join(", "));
        }
        cloudkeep_model::mode::BackupMode::Entire => println!("  volumes   every disk"),
    }
    if !p.spec.excludes.is_empty() {
        println!("  excludes  {}", p.spec.excludes.join(", "));
    }
    println!("  schedule  {}", p.spec.schedule);
    println!(
        "  restore test {} ({} % of the files)",
        p.spec.restore_test, p.spec.restore_test_sample
    );
    println!("  quota     {} per computer", p.spec.computer_quota_bytes);
    println!("  computers {}", p.computers.len());
}

fn print_status(p: &Policy) {
    match p.synced_ms {
        None => println!(
            "not synced yet: information appears after synchronization (cloudkeep policy sync {})",
            p.name
        ),
        Some(at) => println!("synced {}", ago(Some(at))),
    }
    println!(
        "{:<16} {:<9} {:<17} {:<17} {:>10} {:>21} {:>4}  {:<24} message",
        "computer",
        "result",
        "last run",
        "next run",
        "protected",
        "quota use",
        "rev",
        "proven restorable"
    );
    for c in &p.computers {
        let s = p.status.iter().find(|s| s.computer == c.computer);
        let (result, last, message) = match s.and_then(|s| s.last.as_ref()) {
            Some(r) => (
                r.result.as_str(),
                ago(Some(r.finished_ms)),
                r.message.as_str(),
            ),
            None => ("never", "—".to_owned(), ""),
        };
        let protected = s
            .and_then(|s| s.last_success.as_ref())
            .map_or("—".to_owned(), |r| human_bytes(r.bytes));
        let quota = s.map_or("—".to_owned(), |s| {
            format!(
                "{} of {}",
                human_bytes(s.used_bytes.max(0) as u64),
                s.quota_bytes
            )
        });
        let state = match s {
            Some(s) if !s.enabled => "disabled",
            _ => result,
        };
        let health = s.and_then(|s| s.health.as_ref());
        let proven = match health {
            Some(h) if h.test_result.as_deref() == Some("failed") => "TEST FAILED".to_owned(),
            Some(h) if h.proven_ms.is_some() => ago(h.proven_ms),
            _ => "never".to_owned(),
        };
        let suspicious = health
            .filter(|h| {
                h.suspicious_ms.is_some_and(|at| {
                    at > cloudkeep_model::clock::now_ms()
                        - cloudkeep_api::health::SUSPICIOUS_SHOWN_DAYS * 86_400_000
                })
            })
            .map_or(String::new(), |h| {
                format!(
                    "SUSPICIOUS run {}: {}; ",
                    ago(h.suspicious_ms),
                    h.suspicious.join("; ")
                )
            });
        let test_message = health
            .filter(|h| h.test_result.as_deref() == Some("failed"))
            .map_or(String::new(), |h| format!("{}; ", h.test_message));
        println!(
            "{:<16} {:<9} {:<17} {:<17} {:>10} {:>21} {:>4}  {:<24} {suspicious}{test_message}{}",
            c.computer,
            state,
            last,
            ago(s.and_then(|s| s.next_run_ms)),
            protected,
            quota,
            s.map_or(0, |s| s.applied_revision),
            proven,
            message
        );
    }
}

/// Runs `cloudkeep policy …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let show = |p: &Policy, status: bool| -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(p)?);
        } else if status {
            print_status(p);
        } else {
            print_policy(p);
        }
        Ok(())
    };
    let local =
        |name: &str| -> anyhow::Result<Policy> { Ok(ctx.block_on(ctx.state().policy(name))?) };
    match args.command {
        PolicyCommand::Create {
            name,
            provider,
            repo,
            spec,
            encryption_password_stdin: _,
        } => {
            let spec = spec_of(spec, None, repo)?;
            let password = secrets::stdin_line("encryption password")?;
            let p = policies::create(ctx, &name, &provider, spec, &password)?;
            show(&p, false)?;
        }
        PolicyCommand::Edit { name, spec } => {
            let old = local(&name)?;
            let repo = old.spec.repo.clone();
            let p = policies::edit(ctx, &name, spec_of(spec, Some(old.spec), repo)?)?;
            show(&p, false)?;
        }
        PolicyCommand::Delete { name, with_data } => {
            policies::delete(ctx, &name, with_data)?;
            println!(
                "policy \"{name}\" deleted; its computers' subtenants were {}",
                if with_data {
                    "deleted with their data"
                } else {
                    "disabled"
                }
            );
        }
        PolicyCommand::List => {
            let all = ctx.block_on(ctx.state().policies())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!(
                    "no backup policy yet: cloudkeep policy create NAME --provider P --repo R --encryption-password-stdin"
                );
            } else {
                for p in &all {
                    print_policy(p);
                }
            }
        }
        PolicyCommand::Show { name } => {
            let p = local(&name)?;
            show(&p, false)?;
            if !json {
                print_status(&p);
            }
        }
        PolicyCommand::AddComputer { policy, computer } => {
            let c = policies::add_computer(ctx, &policy, &computer)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!(
                    "computer \"{computer}\" added: subtenant {}; write its enrollment file with: cloudkeep policy enroll-file {policy} {computer} --out FILE",
                    c.login
                );
            }
        }
        PolicyCommand::RemoveComputer {
            policy,
            computer,
            delete,
        } => {
            policies::remove_computer(ctx, &policy, &computer, delete)?;
            println!(
                "computer \"{computer}\" {}",
                if delete {
                    "removed; its subtenant and restore points are deleted"
                } else {
                    "disabled: its agent can no longer back up; its restore points stay"
                }
            );
        }
        PolicyCommand::EnrollFile {
            policy,
            computer,
            out,
        } => {
            let code = policies::enroll_file(ctx, &policy, &computer, &out)?;
            if json {
                println!("{}", serde_json::json!({ "file": out, "code": code }));
            } else {
                println!(
                    "enrollment file written to {} (readable only by you)",
                    out.display()
                );
                println!("one-time code: {code}");
                println!(
                    "on the computer: cloudkeep agent enroll {} (it asks for the code); give the code separately from the file",
                    out.display()
                );
            }
        }
        PolicyCommand::Sessions { policy, computer } => {
            let reports = policies::computer_sessions(ctx, &policy, &computer)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else if reports.is_empty() {
                println!("the agent of \"{computer}\" has reported no session yet");
            } else {
                println!(
                    "{:<17} {:>7} {:<9} {:>8} {:>10} {:>4}  message",
                    "finished", "took", "result", "files", "size", "rev"
                );
                for r in &reports {
                    println!(
                        "{:<17} {:>6.1}s {:<9} {:>8} {:>10} {:>4}  {}",
                        ago(Some(r.finished_ms)),
                        (r.finished_ms - r.started_ms) as f64 / 1000.0,
                        r.result,
                        r.files,
                        human_bytes(r.bytes),
                        r.revision,
                        r.message
                    );
                }
            }
        }
        PolicyCommand::Sync { name } => show(&policies::sync(ctx, &name)?, true)?,
        PolicyCommand::Restore {
            policy,
            computer,
            point,
            to,
            path,
            conflict,
        } => {
            let order = policies::order_restore(
                ctx,
                &policy,
                &cloudkeep_api::policy::RestoreOrderRequest {
                    computer: computer.clone(),
                    point,
                    paths: path,
                    to,
                    conflict,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&order)?);
            } else {
                println!(
                    "restore {} queued: the agent of \"{computer}\" carries it out on its next cycle; see it with \"cloudkeep policy restores {policy}\"",
                    order.id
                );
            }
        }
        PolicyCommand::Restores { policy } => {
            let orders = policies::restore_orders(ctx, &policy)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&orders)?);
            } else if orders.is_empty() {
                println!("no restore was ordered for the computers of \"{policy}\"");
            } else {
                for o in &orders {
                    println!(
                        "{:>5}  {:<16} {:<8} {:<12} {}  {}",
                        o.id,
                        o.computer,
                        o.state,
                        o.point,
                        o.to.as_deref().unwrap_or("where it came from"),
                        o.message
                    );
                }
            }
        }
        PolicyCommand::Status { name, sync } => {
            let p = if sync {
                policies::sync(ctx, &name)?
            } else {
                local(&name)?
            };
            show(&p, true)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
