//! `cloudkeep nea run`: this computer as a network extension appliance — a TAP interface
//! joined at layer 2 to one of your networks at the provider (through its gateway), so
//! replicas failed over onto that network keep their addresses at your site.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::nea::{self, NeaEvent, NeaTarget};

/// Arguments of `cloudkeep nea`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: NeaCommand,
}

#[derive(Debug, Subcommand)]
enum NeaCommand {
    /// Join a network of one of your hardware plans until stopped (Linux, as root or with
    /// CAP_NET_ADMIN): bridge the TAP interface it makes into your site's network (with
    /// --bridge, or `ip link set IFACE master BRIDGE`).
    Run {
        /// The hardware plan whose network it joins.
        #[arg(long)]
        plan: String,
        /// The plan's network (0, 1, …).
        #[arg(long, default_value_t = 0)]
        network: u8,
        /// The TAP interface's name.
        #[arg(long, default_value = "cknea0")]
        interface: String,
        /// Put the interface into this bridge of your site's network.
        #[arg(long, value_name = "BRIDGE")]
        bridge: Option<String>,
        /// The provider (needed when you use several).
        #[arg(long)]
        provider: Option<String>,
    },
}

/// Runs `cloudkeep nea …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    match args.command {
        NeaCommand::Run {
            plan,
            network,
            interface,
            bridge,
            provider,
        } => {
            let provider = ctx.block_on(crate::provider::named_or_only(ctx.state(), provider))?;
            let target = NeaTarget {
                provider: provider.clone(),
                plan: plan.clone(),
                network,
                interface,
            };
            let events = |e: NeaEvent| match e {
                NeaEvent::Ready { interface } => {
                    if let Some(bridge) = &bridge {
                        let joined = std::process::Command::new("ip")
                            .args(["link", "set", &interface, "master", bridge])
                            .status();
                        match joined {
                            Ok(s) if s.success() => {
                                println!("interface {interface} is in bridge {bridge}");
                            }
                            _ => eprintln!(
                                "warning: interface {interface} could not be put into bridge {bridge}: do it with `ip link set {interface} master {bridge}`"
                            ),
                        }
                    } else {
                        println!(
                            "interface {interface} is up: bridge it into your site's network (ip link set {interface} master BRIDGE)"
                        );
                    }
                }
                NeaEvent::Connected => {
                    println!("joined network {network} of hardware plan {plan} at {provider}")
                }
                NeaEvent::Lost { reason } => {
                    eprintln!("the tunnel to {provider} is down ({reason}); trying again");
                }
            };
            ctx.block_on(nea::run(ctx, &target, &events))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
