//! `cloudkeep`: the command line. Parses arguments, sets up logging, hands the work to
//! the Cloudkeep crates (`core/`) and prints the result; no domain logic lives here.

mod about;
mod agent;
mod backupfile;
mod daemon;
mod exit;
mod failover_plan;
mod gateway;
mod host;
mod image;
mod job;
mod lab;
mod local;
mod nea;
mod notify;
mod plans;
mod policy;
mod progress;
mod provider;
mod publish;
mod recovery;
mod replica;
mod runtime;
mod secrets;
mod service;
mod show;
mod shutdown;
mod sp;
mod subtenant;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use cloudkeep_tenant::logging::{self, LogOptions};
use tracing::level_filters::LevelFilter;

/// Cloudkeep: backup to your service provider's cloud repositories.
#[derive(Debug, Parser)]
#[command(name = "cloudkeep", bin_name = "cloudkeep", version = cloudkeep_model::VERSION, propagate_version = true)]
struct Cli {
    /// More detail on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Less on stderr (-q errors only, -qq nothing).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show this build's version, protocol and where Cloudkeep keeps its data and logs.
    About(about::Args),
    /// Back up to and restore from a repository in a local folder.
    Local(local::Args),
    /// Create and run an SP cloud gateway on this machine.
    Gateway(gateway::Args),
    /// Administer a gateway as the service provider: tenants, quotas, repositories, certificate.
    Sp(sp::Args),
    /// The service providers you back up to: add (with the certificate check), list, trust.
    Provider(provider::Args),
    /// Your cloud repositories at your service providers.
    Repo(provider::RepoArgs),
    /// Backup jobs: create, list, show, delete, run.
    Job(job::Args),
    /// Restore points of a job.
    Points(job::PointsArgs),
    /// Restore from a restore point.
    Restore(job::RestoreArgs),
    /// Health check of a job's repository or a backup file: re-read and authenticate its data.
    Verify(job::VerifyArgs),
    /// Where this computer sends word of failed runs, failed restore tests and suspicious
    /// runs: email (SMTP with TLS) or a webhook.
    Notify(notify::Args),
    /// Run scheduled jobs when they are due (without the console).
    Daemon(daemon::Args),
    /// Your subtenants at a provider, with quotas carved from yours.
    Subtenant(subtenant::Args),
    /// Backup policies: one job template for many computers, each with its own subtenant.
    Policy(policy::Args),
    /// This computer's agent under a backup policy: enroll, run.
    Agent(agent::Args),
    /// A service provider on this computer, with a demo tenant, for trying everything.
    Lab(lab::Args),
    /// Cloud replication at your provider: your hardware plans.
    Replica(replica::Args),
    /// The order your replicas start in at failover, each waiting for the last to answer.
    FailoverPlan(failover_plan::Args),
    /// This computer as a network extension appliance: your site's network joined to your
    /// network at the provider, so failed-over replicas keep their addresses.
    Nea(nea::Args),
    /// Run this machine as a cloud host of a service provider (Linux with QEMU/KVM): it
    /// runs tenants' replicas.
    Host(host::Args),
    /// Bootable recovery media: restore a dead or blank computer from your provider.
    RecoveryMedia(recovery::MediaArgs),
    /// Restore this whole computer from your provider, question by question (what recovery
    /// media run when booted).
    Recovery(recovery::RecoveryArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_output();
    let cli = Cli::parse();
    // A running gateway is a service: its log on stderr says what it does by default.
    let service = matches!(&cli.command, Command::Gateway(args) if gateway::is_run(args));
    let verbose = if service && cli.quiet == 0 {
        cli.verbose.max(1)
    } else {
        cli.verbose
    };
    // The agent as a Windows service has no console: it logs to its data folder.
    let service_logs = match &cli.command {
        Command::Agent(args) => args.service_run_home().map(|home| logging::LogFile {
            dir: home.join("logs"),
            prefix: "agent",
            keep_files: 14,
        }),
        _ => None,
    };
    let _logs = match logging::init(&LogOptions {
        stderr_level: service_logs
            .is_none()
            .then(|| stderr_level(verbose, cli.quiet)),
        file: service_logs,
    }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = match cli.command {
        Command::About(args) => about::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Local(args) => local::run(args),
        Command::Gateway(args) => gateway::run_command(args),
        Command::Sp(args) => with_home(|home| sp::run_command(args, home)),
        Command::Host(args) => with_home(|home| host::run_command(args, home)),
        Command::Replica(args) => with_tenant(|ctx| replica::run_command(args, ctx)),
        Command::FailoverPlan(args) => with_tenant(|ctx| failover_plan::run_command(args, ctx)),
        Command::Nea(args) => with_tenant(|ctx| nea::run_command(args, ctx)),
        Command::Provider(args) => with_tenant(|ctx| provider::run_command(args, ctx)),
        Command::Repo(args) => with_tenant(|ctx| provider::run_repo_command(args, ctx)),
        Command::Job(args) => with_tenant(|ctx| job::run_command(args, ctx)),
        Command::Points(args) => with_tenant(|ctx| job::run_points(args, ctx)),
        Command::Restore(args) => with_tenant(|ctx| job::run_restore(args, ctx)),
        Command::Verify(args) => with_tenant(|ctx| job::run_verify(args, ctx)),
        Command::Daemon(args) => with_tenant(|ctx| daemon::run_command(args, ctx)),
        Command::Notify(args) => with_tenant(|ctx| notify::run_command(args, ctx)),
        Command::Subtenant(args) => with_tenant(|ctx| subtenant::run_command(args, ctx)),
        Command::Policy(args) => with_tenant(|ctx| policy::run_command(args, ctx)),
        Command::Agent(args) => match args.into_service() {
            Ok((command, json)) => with_home(|home| service::run(command, home, json)),
            Err(args) => with_tenant(|ctx| agent::run_command(args, ctx)),
        },
        Command::Lab(args) => with_tenant(|ctx| lab::run_command(args, ctx)),
        Command::RecoveryMedia(args) => with_tenant(|ctx| recovery::run_media(args, ctx)),
        Command::Recovery(args) => with_tenant(|ctx| recovery::run(args, ctx)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(command) = exit::remedy_for(&e) {
                eprintln!("to fix: {command}");
            }
            ExitCode::from(exit::code_for(&e))
        }
    }
}

/// Runs a command of the tenant side: its context (data home, local state, secrets) is
/// opened once, here, and every tenant entry point the command calls uses it.
fn with_tenant(
    run: impl FnOnce(&cloudkeep_tenant::TenantContext) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let home = cloudkeep_model::paths::DataHome::locate()?;
    run(&cloudkeep_tenant::TenantContext::open(home)?)
}

/// Ends the command quietly (exit 0) when its output pipe is closed, as in
/// `cloudkeep points list --json | head -1`: the reader has what it wanted. `println!` panics
/// on a closed pipe (Rust ignores SIGPIPE), so the panic hook recognises that one panic and
/// leaves every other to the default hook.
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && closed_pipe(message) {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether a "failed printing" panic's message ends in an OS error that is a closed pipe (EPIPE;
/// on Windows ERROR_NO_DATA or ERROR_BROKEN_PIPE, whose text is in the system's language):
/// told by the error's number, as `(os error N)`.
fn closed_pipe(message: &str) -> bool {
    message
        .rsplit_once("(os error ")
        .and_then(|(_, code)| code.strip_suffix(')'))
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| {
            std::io::Error::from_raw_os_error(code).kind() == std::io::ErrorKind::BrokenPipe
        })
}

/// Runs a command that needs the data home (`CLOUDKEEP_HOME` or the OS's data folder) but
/// not the tenant's state (the SP's commands).
fn with_home(
    run: impl FnOnce(&cloudkeep_model::paths::DataHome) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    run(&cloudkeep_model::paths::DataHome::locate()?)
}

fn stderr_level(verbose: u8, quiet: u8) -> LevelFilter {
    match (verbose, quiet) {
        (0, 0) => LevelFilter::WARN,
        (1, _) => LevelFilter::INFO,
        (2, _) => LevelFilter::DEBUG,
        (3.., _) => LevelFilter::TRACE,
        (_, 1) => LevelFilter::ERROR,
        (_, 2..) => LevelFilter::OFF,
    }
}
