//! `cloudkeep daemon`: the tenant's scheduler without the console — runs scheduled jobs when
//! they are due (missed runs once at start), and replicas' cycles on their schedules, until
//! stopped.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::scheduler::{DAEMON_BEAT, daemon_beat, run_due, run_due_replicas};

/// Arguments of `cloudkeep daemon`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Run what is due now, once, and exit (for cron-like use and tests).
    #[arg(long)]
    once: bool,
    /// Seconds between checks.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    interval: u64,
}

/// Runs `cloudkeep daemon`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    if !args.once {
        // The heartbeat beats on its own thread, so it goes on during a long backup: the
        // console sees the daemon runs and leaves scheduled runs to it.
        let home = ctx.home().clone();
        std::thread::Builder::new()
            .name("daemon-beat".into())
            .spawn(move || {
                loop {
                    if let Err(e) = daemon_beat(&home) {
                        tracing::warn!("the daemon's heartbeat could not be written: {e}");
                    }
                    std::thread::sleep(DAEMON_BEAT);
                }
            })?;
    }
    loop {
        for session in run_due(ctx, chrono::Local::now())? {
            println!(
                "{} {}{}: {}{}",
                session.job,
                match session.kind.as_str() {
                    "backup" => "",
                    "restore-test" => "restore test ",
                    _ => "health check ",
                },
                session.result,
                session
                    .point
                    .as_deref()
                    .map_or("", |p| &p[..12.min(p.len())]),
                if session.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", session.message)
                }
            );
        }
        for (replica, outcome) in run_due_replicas(ctx, chrono::Utc::now().timestamp_millis())? {
            match outcome {
                Ok(report) => println!(
                    "replica {replica}: point {}, {} changed blocks",
                    report.point.id, report.blocks
                ),
                Err(e) => println!("replica {replica}: cycle failed ({e})"),
            }
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}
