//! `cloudkeep provider …` and `cloudkeep repo list`: the service providers this tenant uses —
//! added through the certificate trust step, rescanned, re-trusted after a renewal, removed —
//! and their cloud repositories with quota, use and lease.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::units::{date_text, human_bytes};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::found;
use cloudkeep_tenant::providers::{self, NewProvider, Provider};

use crate::show::time_text;

use crate::secrets;

/// Arguments of `cloudkeep provider`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ProviderCommand,
}

#[derive(Debug, Subcommand)]
enum ProviderCommand {
    /// Add a service provider: check and pin its certificate, log in, list its repositories.
    Add {
        /// Your name for it.
        name: String,
        /// Its gateway, HOST or HOST:PORT (default port 6180).
        #[arg(long, value_name = "HOST[:PORT]")]
        host: String,
        /// The account it gave you (`tenant` or `tenant/sub`).
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Trust the certificate with this SHA-256 fingerprint (as your provider gave it).
        #[arg(long, value_name = "FINGERPRINT")]
        trust: Option<String>,
    },
    /// Change the account or password you reach a provider with (after your provider changed
    /// them); checked with a login first, nothing changes when it is refused.
    Set {
        /// Its name.
        name: String,
        /// A new account name (`tenant` or `tenant/sub`); the current one when not given.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Read the new password from stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List service providers.
    List,
    /// Show a provider and its repositories (as last scanned).
    Show {
        /// Its name.
        name: String,
    },
    /// Log in again and refresh its gateways and repositories, saying which already hold
    /// backups (from a computer that was lost, or another one) and how to open them.
    Rescan {
        /// Its name.
        name: String,
    },
    /// The backup jobs already in one of its cloud repositories (the encryption password from
    /// stdin), and with --adopt one of them made a job of this computer to restore from.
    Found {
        /// Its name.
        name: String,
        /// The cloud repository.
        #[arg(long, value_name = "REPO")]
        repo: String,
        /// A backup policy's computer: its managed subtenant (`tenant/sub`, as rescan names
        /// it), reached with your own login.
        #[arg(long, value_name = "LOGIN")]
        account: Option<String>,
        /// Read the repository's encryption password from stdin (an encrypted one needs it).
        #[arg(long)]
        password_stdin: bool,
        /// Make this job (by the name its restore points carry) a job of this computer: same
        /// sources, no schedule until you set one, every point kept.
        #[arg(long, value_name = "JOB")]
        adopt: Option<String>,
    },
    /// Trust the certificate it presents now (after your provider renewed it).
    Trust {
        /// Its name.
        name: String,
        /// The new certificate's SHA-256 fingerprint.
        #[arg(long, value_name = "FINGERPRINT")]
        fingerprint: String,
    },
    /// Forget a provider (the restore points stay at the provider).
    Remove {
        /// Its name.
        name: String,
    },
}

/// Arguments of `cloudkeep repo`.
#[derive(Debug, ClapArgs)]
pub struct RepoArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: RepoCommand,
}

#[derive(Debug, Subcommand)]
enum RepoCommand {
    /// Every cloud repository of every provider: quota, used, free, lease end (rescanned now).
    List,
}

fn print_repos(p: &Provider) {
    println!(
        "  {:<20} {:>12} {:>12} {:>12}  lease until",
        "repository", "quota", "used", "free"
    );
    for r in &p.repos {
        println!(
            "  {:<20} {:>12} {:>12} {:>12}  {}",
            r.name,
            r.quota_bytes,
            human_bytes(r.used_bytes.max(0) as u64),
            r.free_bytes,
            date_text(r.lease_until_ms)
        );
        if let Some(last) = r.restore_until_ms {
            println!(
                "  {:<20} the lease has ended: backups are refused, restores work until {}",
                "",
                date_text(Some(last))
            );
        }
    }
}

fn print_provider(p: &Provider) {
    println!("{}  {} as {}", p.name, p.addresses.join(", "), p.user);
    println!("  certificate {}", p.fingerprint);
    print_repos(p);
}

fn show(p: &Provider, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(p)?);
    } else {
        print_provider(p);
        // What Home says of its certificate: a change followed by itself, an end near.
        for notice in cloudkeep_tenant::overview::cert_notices(p, cloudkeep_model::clock::now_ms())
        {
            println!("note: {}", notice.message);
        }
    }
    Ok(())
}

/// What a rescan found in each repository: which hold backups, and how to open them.
fn print_found(repos: &[found::FoundRepo]) {
    for r in repos {
        if let Some(problem) = &r.problem {
            println!("  {}: cannot look inside now: {problem}", r.repo);
        }
    }
    for r in repos.iter().filter(|r| r.has_backups) {
        let newest = r
            .newest_ms
            .map(|ms| format!(", the newest of {}", time_text(ms * 1_000_000)))
            .unwrap_or_default();
        let account = r
            .account
            .as_ref()
            .map(|a| format!(" --account {a}"))
            .unwrap_or_default();
        let used_by = if r.jobs_here.is_empty() {
            format!(
                "no job of this computer uses them: list them with \"cloudkeep provider found {} --repo '{}'{account}{}\"",
                r.provider,
                r.repo,
                if r.encrypted { " --password-stdin" } else { "" }
            )
        } else {
            format!("used by job {}", r.jobs_here.join(", "))
        };
        let whose = r
            .account
            .as_ref()
            .map(|a| format!(" of policy computer {a}"))
            .unwrap_or_default();
        println!(
            "  {}{whose} holds backups: {} restore points{newest}{}; {used_by}",
            r.repo,
            r.points,
            if r.encrypted { ", encrypted" } else { "" }
        );
    }
}

/// `provider rescan` and `provider found`: they open repositories, which blocks.
fn run_found(
    command: ProviderCommand,
    json: bool,
    ctx: &TenantContext,
) -> anyhow::Result<ExitCode> {
    match command {
        ProviderCommand::Rescan { name } => {
            let repos = found::repositories(ctx, &name)?;
            let p = ctx.block_on(ctx.state().provider(&name))?;
            if json {
                // The provider as `provider show` prints it, with what its repositories hold.
                let mut out = serde_json::to_value(&p)?;
                out["found"] = serde_json::to_value(&repos)?;
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                show(&p, false)?;
                print_found(&repos);
            }
        }
        ProviderCommand::Found {
            name,
            repo,
            account,
            password_stdin,
            adopt,
        } => {
            let password = password_stdin
                .then(|| crate::secrets::stdin_line("encryption password"))
                .transpose()?;
            let account = account.as_deref();
            let jobs = found::jobs_in(ctx, &name, &repo, account, password.as_deref())?;
            if let Some(job) = adopt {
                let which = jobs.iter().find(|j| j.name == job).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no job \"{job}\" in \"{repo}\"; the jobs there are: {}",
                        jobs.iter()
                            .map(|j| j.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let made =
                    found::adopt(ctx, &name, &repo, account, which, &job, password.as_deref())?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&made)?);
                } else {
                    println!(
                        "job \"{}\" is now a job of this computer, with its {} restore points; restore with \"cloudkeep restore files latest --job {} --to FOLDER\", back up with \"cloudkeep job run {}\" (set a schedule with \"cloudkeep job edit\")",
                        made.name, which.points, made.name, made.name
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("\"{repo}\" holds no restore point yet");
            } else {
                for j in &jobs {
                    println!(
                        "{:<20} {} restore points, the newest of {} ({} files, {}) from {}; backed up: {}{}",
                        j.name,
                        j.points,
                        time_text(j.newest_ms * 1_000_000),
                        j.files,
                        human_bytes(j.bytes),
                        j.computers.join(", "),
                        j.sources.join(", "),
                        match &j.here {
                            Some(local) => format!("; job \"{local}\" of this computer"),
                            None => String::new(),
                        }
                    );
                }
            }
        }
        // The other commands never come here (`run_command` sends only these two).
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `cloudkeep provider …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    if matches!(
        args.command,
        ProviderCommand::Rescan { .. } | ProviderCommand::Found { .. }
    ) {
        return run_found(args.command, args.json, ctx);
    }
    let (state, secrets) = (ctx.state(), ctx.secrets());
    ctx.block_on(async {
        match args.command {
            ProviderCommand::Add {
                name,
                host,
                user,
                password_stdin: _,
                trust,
            } => {
                let password = secrets::stdin_line("password")?;
                let p = providers::add(
                    state,
                    secrets,
                    &NewProvider {
                        name,
                        host,
                        user,
                        password,
                        trust,
                    },
                )
                .await?;
                show(&p, args.json)?;
            }
            ProviderCommand::Set {
                name,
                user,
                password_stdin: _,
            } => {
                let password = secrets::stdin_line("password")?;
                let p =
                    providers::set_credentials(state, secrets, &name, user.as_deref(), &password)
                        .await?;
                if !args.json {
                    println!("\"{name}\" is reached as {} from now on", p.user);
                }
                show(&p, args.json)?;
            }
            ProviderCommand::List => {
                let all = state.providers().await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else if all.is_empty() {
                    println!("no service provider yet; add one with \"cloudkeep provider add NAME --host HOST --user USER --password-stdin\"");
                } else {
                    for p in &all {
                        println!("{:<20} {:<32} {}", p.name, p.addresses[0], p.user);
                    }
                }
            }
            ProviderCommand::Show { name } => show(&state.provider(&name).await?, args.json)?,
            // Sent to `run_found` before the runtime is entered.
            ProviderCommand::Rescan { .. } | ProviderCommand::Found { .. } => {}
            ProviderCommand::Trust { name, fingerprint } => {
                let p = providers::trust(state, &name, &fingerprint).await?;
                if !args.json {
                    println!("\"{name}\" now trusts certificate {}", p.fingerprint);
                }
                show(&providers::rescan(state, secrets, &name).await?, args.json)?;
            }
            ProviderCommand::Remove { name } => {
                providers::remove(state, secrets, &name).await?;
                println!("removed \"{name}\"; its restore points stay at the provider");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `cloudkeep repo …`.
pub fn run_repo_command(args: RepoArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let RepoCommand::List = args.command;
    let (state, secrets) = (ctx.state(), ctx.secrets());
    ctx.block_on(async {
        let mut all = Vec::new();
        for p in state.providers().await? {
            all.push(providers::rescan(state, secrets, &p.name).await?);
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            for p in &all {
                println!("{}", p.name);
                print_repos(p);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The provider a command names with `--provider`, or the only one there is.
pub async fn named_or_only(
    state: &cloudkeep_tenant::state::TenantState,
    given: Option<String>,
) -> anyhow::Result<String> {
    if let Some(name) = given {
        return Ok(name);
    }
    let all = state.providers().await?;
    match all.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => anyhow::bail!(
            "add a service provider first: cloudkeep provider add NAME --host HOST --user USER --password-stdin"
        ),
        _ => anyhow::bail!("you use several providers; name one with --provider"),
    }
}
