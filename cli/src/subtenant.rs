//! `cloudkeep subtenant …`: the tenant's subtenants at a provider, each with a quota carved from
//! the tenant's own (or sharing it), their state and password.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_api::{NewSubtenant, SubtenantChange};
use cloudkeep_model::units::{human_bytes, parse_limit};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::providers;

use crate::secrets;

/// Arguments of `cloudkeep subtenant`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The provider (needed when you use several).
    #[arg(long, global = true)]
    provider: Option<String>,
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SubtenantCommand,
}

#[derive(Debug, Subcommand)]
enum SubtenantCommand {
    /// Create a subtenant (login TENANT/NAME) with a quota carved from yours.
    Add {
        /// Its name.
        name: String,
        /// Which of your cloud repositories.
        #[arg(long)]
        repo: String,
        /// Its quota (e.g. 200G), or "unlimited" to share yours.
        #[arg(long, default_value = "unlimited")]
        quota: String,
        /// Read its password from stdin (otherwise one is generated and printed once).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List your subtenants with their quota use.
    List,
    /// Change a subtenant's quota, state or password.
    Set {
        /// Its name.
        name: String,
        /// A new quota, or "unlimited".
        #[arg(long)]
        quota: Option<String>,
        /// Disable it (its logins and sessions are refused).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable it again.
        #[arg(long)]
        enable: bool,
        /// Read a new password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a subtenant.
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs `cloudkeep subtenant …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let (state, secrets_store) = (ctx.state(), ctx.secrets());
    ctx.block_on(async {
        let provider = crate::provider::named_or_only(state, args.provider).await?;
        let (client, _) = providers::connect(state, secrets_store, &provider).await?;
        let view = match args.command {
            SubtenantCommand::Add {
                name,
                repo,
                quota,
                password_stdin,
            } => {
                let (password, generated) = if password_stdin {
                    (secrets::stdin_line("password")?, false)
                } else {
                    (secrets::generate_password()?, true)
                };
                let view = client
                    .add_subtenant(&NewSubtenant {
                        name,
                        password: password.clone(),
                        repo,
                        quota_bytes: parse_limit(&quota).map_err(anyhow::Error::msg)?,
                        policy: None,
                    })
                    .await?;
                if generated && !args.json {
                    println!("password: {password}   (shown once: give it to the subtenant)");
                }
                Some(view)
            }
            SubtenantCommand::List => {
                let subs = client.subtenants().await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&subs)?);
                } else {
                    for v in &subs {
                        let quotas = v
                            .quotas
                            .iter()
                            .map(|q| {
                                format!(
                                    "{}: {} of {}",
                                    q.friendly_name,
                                    human_bytes(q.used_bytes.max(0) as u64),
                                    q.quota_bytes
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        println!(
                            "{:<28} {:<9} {quotas}",
                            v.tenant.login,
                            if v.tenant.settings.enabled {
                                "enabled"
                            } else {
                                "disabled"
                            }
                        );
                    }
                }
                None
            }
            SubtenantCommand::Set {
                name,
                quota,
                disable,
                enable,
                password_stdin,
            } => {
                let change = SubtenantChange {
                    quota_bytes: quota
                        .map(|q| parse_limit(&q))
                        .transpose()
                        .map_err(anyhow::Error::msg)?,
                    enabled: if disable {
                        Some(false)
                    } else if enable {
                        Some(true)
                    } else {
                        None
                    },
                    password: if password_stdin {
                        Some(secrets::stdin_line("password")?)
                    } else {
                        None
                    },
                };
                Some(client.set_subtenant(&name, &change).await?)
            }
            SubtenantCommand::Delete { name } => {
                client.delete_subtenant(&name).await?;
                println!("subtenant \"{name}\" deleted");
                None
            }
        };
        if let Some(view) = view {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                let quota = view
                    .quotas
                    .first()
                    .map_or("-".to_owned(), |q| q.quota_bytes.to_string());
                println!(
                    "{}: {}, quota {quota}",
                    view.tenant.login,
                    if view.tenant.settings.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    }
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
