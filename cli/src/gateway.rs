//! `cloudkeep gateway …`: create and run an SP cloud gateway on this machine, and manage its
//! certificate files (a running gateway picks up a changed certificate within seconds).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_gateway::tls::{self, CertStore, PemPair};
use cloudkeep_gateway::{InitOptions, init};
use cloudkeep_gateway::{RunOptions, run};

use crate::secrets;

/// Arguments of `cloudkeep gateway`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: GatewayCommand,
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Create a gateway: configuration, metadata database, first SP admin and a self-signed
    /// certificate; prints the certificate's fingerprint for tenants to check.
    Init {
        /// The gateway's data folder (created).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Host name or address tenants connect to (repeatable); the first is the public
        /// address. Default: this computer's name.
        #[arg(long = "hostname", value_name = "HOST")]
        hostnames: Vec<String>,
        /// Metadata database: an SQLite file (default DIR/meta.db) or postgres://USER:PASSWORD@HOST:PORT/DB.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Address to listen on (default 0.0.0.0:6180).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Name of the first SP admin.
        #[arg(long, default_value = "admin", value_name = "NAME")]
        admin_user: String,
        /// Read the first SP admin's password from stdin (otherwise one is generated and printed once).
        #[arg(long)]
        admin_password_stdin: bool,
    },
    /// Run the gateway until SIGTERM or Ctrl-C; prints where it listens and its fingerprint.
    Run {
        /// The gateway's data folder.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Address to listen on instead of the configured one (port 0: any free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Run even as root (not recommended: use a service account).
        #[arg(long)]
        allow_root: bool,
        /// This gateway's id in the gateway list (default: the one chosen at init). Each
        /// gateway sharing one database and storage needs its own.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Address tenants reach this gateway at, HOST or HOST:PORT (default: the public
        /// address chosen at init; a HOST alone takes the port listened on).
        #[arg(long, value_name = "ADDR")]
        advertise: Option<String>,
        /// Serve /metrics (Prometheus) and /healthz (load balancers) over plain HTTP at
        /// HOST:PORT — loopback or a management network (default: metrics_listen in
        /// gateway.toml; none when unset).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
    },
    /// Show or replace the gateway's certificate.
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
}

#[derive(Debug, Subcommand)]
enum CertAction {
    /// Show the certificate: subject, issuer, validity, names, fingerprint.
    Show {
        /// The gateway's data folder.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Replace it with a new self-signed certificate.
    Generate {
        /// The gateway's data folder.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Host names and addresses (repeatable).
        #[arg(long = "hostname", value_name = "HOST", required = true)]
        hostnames: Vec<String>,
    },
    /// Replace it with a CA-signed certificate: a PEM chain (leaf first) and its key.
    Import {
        /// The gateway's data folder.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// PEM file with the certificate chain.
        #[arg(long, value_name = "FILE")]
        chain: PathBuf,
        /// PEM file with the private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

/// Prints a certificate's description.
pub fn print_cert(info: &tls::CertInfo) {
    println!("subject:      {}", info.subject);
    println!(
        "issuer:       {}{}",
        info.issuer,
        if info.self_signed {
            " (self-signed)"
        } else {
            ""
        }
    );
    println!("valid:        {} to {}", info.not_before, info.not_after);
    println!("names:        {}", info.names.join(", "));
    println!("fingerprint:  {} (SHA-256)", info.fingerprint);
}

/// Runs `cloudkeep gateway …`.
pub fn run_command(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        GatewayCommand::Init {
            data_dir,
            hostnames,
            db,
            listen,
            admin_user,
            admin_password_stdin,
        } => {
            let (admin_password, generated) = if admin_password_stdin {
                (secrets::stdin_line("admin password")?, false)
            } else {
                (secrets::generate_password()?, true)
            };
            let report = crate::runtime::server()?.block_on(init(InitOptions {
                data_dir: data_dir.clone(),
                hostnames,
                db,
                admin_user: admin_user.clone(),
                admin_password: admin_password.clone(),
                listen,
            }))?;
            println!(
                "gateway {} created in {}",
                report.config.id,
                data_dir.display()
            );
            println!("public address: {}", report.config.public_address);
            println!("SP admin:       {admin_user}");
            if generated {
                println!("admin password: {admin_password}   (shown once: keep it safe)");
            }
            print_cert(&report.cert);
            println!(
                "give tenants the address and this fingerprint; start it with: cloudkeep gateway run --data-dir {}",
                data_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        GatewayCommand::Run {
            data_dir,
            listen,
            allow_root,
            id,
            advertise,
            metrics_listen,
        } => {
            let rt = crate::runtime::server()?;
            let shutdown = {
                let _in = rt.enter();
                crate::shutdown::Shutdown::install()
            };
            rt.block_on(run(
                RunOptions {
                    data_dir,
                    listen,
                    allow_root,
                    id,
                    advertise,
                    metrics_listen,
                },
                |started| {
                    println!("gateway {} listening on {}", started.id, started.addr);
                    println!("certificate fingerprint: {}", started.fingerprint);
                    let _ = std::io::stdout().flush();
                },
                shutdown.recv(),
            ))?;
            println!("gateway stopped");
            Ok(ExitCode::SUCCESS)
        }
        GatewayCommand::Cert { action } => {
            let info = match action {
                CertAction::Show { data_dir } => CertStore::open(&data_dir)?.info()?,
                CertAction::Generate {
                    data_dir,
                    hostnames,
                } => CertStore::install(&data_dir, &tls::generate_self_signed(&hostnames)?)?,
                CertAction::Import {
                    data_dir,
                    chain,
                    key,
                } => {
                    let read = |p: &PathBuf| {
                        std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))
                    };
                    CertStore::install(
                        &data_dir,
                        &PemPair {
                            chain: read(&chain)?,
                            key: read(&key)?,
                        },
                    )?
                }
            };
            print_cert(&info);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// True for `gateway run`, which logs at info level by default (a service's log).
pub fn is_run(args: &Args) -> bool {
    matches!(args.command, GatewayCommand::Run { .. })
}
