//! `cloudkeep host run|show`: this machine as a cloud host of the SP — given its connection
//! details once (`--connect FILE`, kept owner-only in the data home), its storage pools
//! (`--pool NAME=FOLDER`), then reporting to the gateways until stopped (`--once`: one
//! report, for scripts and checks).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_host::config::{HostConfig, PoolConfig, read_connection};
use cloudkeep_model::paths::DataHome;
use cloudkeep_model::units::human_bytes;

/// Arguments of `cloudkeep host`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// Run this machine as a cloud host: report to the SP's gateways what it has (CPUs,
    /// memory, KVM, QEMU, storage pools) every 30 s until stopped.
    Run {
        /// The connection details `cloudkeep sp host add` wrote (needed the first time; kept
        /// owner-only in the data home after).
        #[arg(long, value_name = "FILE")]
        connect: Option<PathBuf>,
        /// A storage pool for replicas' disks, NAME=FOLDER (repeat for more; kept).
        #[arg(long, value_name = "NAME=FOLDER")]
        pool: Vec<String>,
        /// How many isolated tenant networks this host makes at most (kept; default 64).
        #[arg(long, value_name = "N")]
        networks: Option<u32>,
        /// Where to listen for the gateways' replica data (kept; default 0.0.0.0:6181).
        #[arg(long, value_name = "ADDRESS:PORT")]
        listen: Option<String>,
        /// The address the gateways reach this host at, when not the one it listens on.
        #[arg(long, value_name = "HOST:PORT")]
        advertise: Option<String>,
        /// QEMU's accelerator for replicas (kept; default kvm:tcg — KVM where it works; tcg:
        /// plain emulation, for machines whose KVM guests hang).
        #[arg(long, value_name = "ACCEL")]
        accel: Option<String>,
        /// Report once and stop.
        #[arg(long)]
        once: bool,
    },
    /// What this host would report, and where it reports to.
    Show,
}

/// Runs `cloudkeep host …`.
pub fn run_command(args: Args, home: &DataHome) -> anyhow::Result<ExitCode> {
    if !cfg!(target_os = "linux") {
        anyhow::bail!(
            "a cloud host runs replicas with QEMU/KVM on Linux; run `cloudkeep host` on the SP's Linux machines"
        );
    }
    let dir = home.cloud_host();
    let mut config = HostConfig::load(&dir)?;
    match args.command {
        HostCommand::Run {
            connect,
            pool,
            networks,
            listen,
            advertise,
            accel,
            once,
        } => {
            if let Some(accel) = accel {
                if !["kvm", "tcg", "kvm:tcg"].contains(&accel.as_str()) {
                    anyhow::bail!("--accel is kvm, tcg or kvm:tcg, not {accel}");
                }
                config.accel = Some(accel);
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if advertise.is_some() {
                config.advertise = advertise;
            }
            config.ensure_relay_key()?;
            if let Some(file) = connect {
                config.connection = Some(read_connection(&file)?);
            }
            let pools = pool
                .iter()
                .map(|p| PoolConfig::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            config.set_pools(pools)?;
            if let Some(n) = networks {
                config.networks = n;
            }
            if config.pools.is_empty() {
                anyhow::bail!(
                    "give the host a storage pool for replicas' disks: --pool main=/srv/cloudkeep/replicas"
                );
            }
            config.save(&dir)?;
            let rt = crate::runtime::small()?;
            if once {
                let (gateway, facts) = rt
                    .block_on(cloudkeep_host::run::report_once(&config))
                    .map_err(typed)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&facts)?);
                } else {
                    println!(
                        "host {} reported to {gateway}",
                        config.connection.as_ref().map_or("", |c| c.user.as_str())
                    );
                    print_facts(&facts);
                }
            } else {
                serve(&rt, &config, &dir, args.json)?;
            }
        }
        HostCommand::Show => {
            let rt = crate::runtime::small()?;
            let facts = rt.block_on(cloudkeep_host::run::facts(&config));
            if args.json {
                println!("{}", serde_json::to_string_pretty(&facts)?);
            } else {
                match &config.connection {
                    Some(c) => println!(
                        "host {} of the gateways {} (certificate {})",
                        c.user,
                        c.addresses.join(", "),
                        c.fingerprint
                    ),
                    None => println!(
                        "not connected to a gateway yet: run `cloudkeep host run --connect FILE`"
                    ),
                }
                print_facts(&facts);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Listens for the gateways and reports until stopped.
#[cfg(unix)]
fn serve(
    rt: &tokio::runtime::Runtime,
    config: &HostConfig,
    dir: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let relay_key = config.relay_key.clone().unwrap_or_default();
    let listening = rt
        .block_on(cloudkeep_host::server::bind(
            dir,
            config,
            &relay_key,
            &config.listen,
        ))
        .map_err(typed)?;
    let shutdown = {
        let _in = rt.enter();
        crate::shutdown::Shutdown::install()
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"listening": listening.addr.to_string(), "fingerprint": listening.fingerprint})
        );
    } else {
        println!(
            "cloud host listening on {} for its gateways (certificate {})",
            listening.addr, listening.fingerprint
        );
    }
    rt.block_on(cloudkeep_host::run::serve(
        config,
        listening,
        cloudkeep_host::run::BEAT,
        shutdown.recv(),
    ))
    .map_err(typed)
}

#[cfg(not(unix))]
fn serve(
    _rt: &tokio::runtime::Runtime,
    _config: &HostConfig,
    _dir: &std::path::Path,
    _json: bool,
) -> anyhow::Result<()> {
    anyhow::bail!("a cloud host runs on Linux")
}

fn print_facts(facts: &cloudkeep_api::replication::HostFacts) {
    println!(
        "{} CPUs, {} memory, KVM {}, QEMU {}",
        facts.cpus,
        human_bytes(facts.memory),
        if facts.kvm { "yes" } else { "no" },
        facts.qemu.as_deref().unwrap_or("not installed")
    );
    for pool in &facts.pools {
        println!(
            "pool {}: {} ({} free of {})",
            pool.name,
            pool.path,
            human_bytes(pool.free),
            human_bytes(pool.total)
        );
    }
    println!("networks: up to {}", facts.networks);
    if let Some(warning) = facts.warning() {
        println!("warning: {warning}");
    }
}

/// A gateway's refusal keeps its own type, so its exit code is the one a tenant's refused
/// login gets (4 for wrong credentials).
fn typed(e: cloudkeep_host::HostError) -> anyhow::Error {
    match e {
        cloudkeep_host::HostError::Client(c) => c.into(),
        other => other.into(),
    }
}
