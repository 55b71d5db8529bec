//! `cloudkeep lab`: a service provider on this computer for trying everything — a gateway on
//! loopback with a demo tenant — printing how to connect, or adding it as a provider (pinned).

use std::io::Write;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use cloudkeep_gateway::lab::{LabInfo, run_lab};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::providers::{self, NewProvider};

/// Arguments of `cloudkeep lab`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Also add the lab as a service provider of this name (pinned), unless it exists.
    #[arg(long, value_name = "NAME")]
    add_provider: Option<String>,
}

fn print_info(info: &LabInfo) {
    let a = &info.accounts;
    println!("lab gateway listening on {}", info.address);
    println!("certificate fingerprint: {}", info.fingerprint);
    println!("SP admin:   {} / {}", a.admin_user, a.admin_password);
    println!(
        "tenant:     {} / {}  (cloud repository \"{}\", 10 GiB)",
        a.tenant_user, a.tenant_password, a.repo
    );
    println!(
        "connect:    printf '%s\\n' '{}' | cloudkeep provider add lab --host {} --user {} --password-stdin --trust {}",
        a.tenant_password, info.address, a.tenant_user, info.fingerprint
    );
}

/// Runs `cloudkeep lab` until Ctrl-C or SIGTERM.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let home = ctx.home();
    let rt = crate::runtime::server()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<LabInfo>();
    let adder_ctx = ctx.clone();
    let shutdown = {
        let _in = rt.enter();
        crate::shutdown::Shutdown::install()
    };
    rt.block_on(async move {
        let adder = async move {
            let Ok(info) = rx.await else {
                return Ok::<(), anyhow::Error>(());
            };
            print_info(&info);
            if let Some(name) = args.add_provider {
                let state = adder_ctx.state();
                if state.provider(&name).await.is_ok() {
                    println!("provider \"{name}\" already exists");
                } else {
                    providers::add(
                        state,
                        adder_ctx.secrets(),
                        &NewProvider {
                            name: name.clone(),
                            host: info.address.clone(),
                            user: info.accounts.tenant_user.clone(),
                            password: info.accounts.tenant_password.clone(),
                            trust: Some(info.fingerprint.clone()),
                        },
                    )
                    .await?;
                    println!("provider \"{name}\" added, certificate pinned");
                }
            }
            println!("ready; stop the lab with Ctrl-C");
            let _ = std::io::stdout().flush();
            Ok(())
        };
        let gateway = run_lab(
            home,
            move |info| {
                let _ = tx.send(info);
            },
            shutdown.recv(),
        );
        let (served, added) = tokio::join!(gateway, adder);
        added?;
        served?;
        Ok::<(), anyhow::Error>(())
    })?;
    println!("lab stopped");
    Ok(ExitCode::SUCCESS)
}
