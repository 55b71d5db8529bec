//! `cloudkeep`: the command line. Parses arguments, sets up logging, hands the work to
//! `cloudkeep-core` and prints the result; no domain logic lives here.

mod about;
mod exit;
mod local;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use cloudkeep_core::logging::{self, LogOptions};
use tracing::level_filters::LevelFilter;

/// Cloudkeep: backup to your service provider's cloud repositories.
#[derive(Debug, Parser)]
#[command(name = "cloudkeep", version = cloudkeep_core::VERSION, propagate_version = true)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logs = match logging::init(&LogOptions {
        stderr_level: Some(stderr_level(cli.verbose, cli.quiet)),
        file: None,
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
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
