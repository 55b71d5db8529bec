//! `cloudkeep sp …`: the service provider's administration of a gateway over its admin API —
//! login (with the certificate trust step), cloud repositories, tenants and subtenants, usage,
//! maintenance mode, the gateway list, the audit log, the certificate, and (through
//! `plans`) cloud hosts and hardware plans.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_api::health::JobHealth;
use cloudkeep_api::{NewTenant, QuotaSpec, TenantSettings, TenantView};
use cloudkeep_client::{SpClient, SpSession};
use cloudkeep_model::paths::DataHome;
use cloudkeep_model::units::{
    date_text, date_time_text, human_bytes, parse_end_of_day, parse_limit, parse_rate,
};

use crate::secrets;

/// Arguments of `cloudkeep sp`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SpCommand,
}

#[derive(Debug, Subcommand)]
enum SpCommand {
    /// Log in to a gateway as SP admin; the certificate must be trusted (pinned) first.
    Login {
        /// The gateway, HOST or HOST:PORT (default port 6180).
        #[arg(long, value_name = "HOST[:PORT]")]
        gateway: String,
        /// SP admin name.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Trust the certificate with this SHA-256 fingerprint (as `gateway init` printed it).
        #[arg(long, value_name = "FINGERPRINT")]
        trust: Option<String>,
    },
    /// Forget the saved SP session.
    Logout,
    /// Cloud repositories.
    Repo {
        #[command(subcommand)]
        action: RepoAction,
    },
    /// Tenants and subtenants (`tenant/sub`).
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Where the gateway sends word of every tenant's failed runs, failed restore tests and
    /// suspicious runs: email (SMTP with TLS) or a webhook.
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Usage per tenant and cloud repository.
    Usage {
        /// Comma-separated values for spreadsheets.
        #[arg(long)]
        csv: bool,
    },
    /// What you set for every tenant: how many days after its lease ends a tenant may still
    /// restore (not back up). Shows the settings when nothing is given.
    Settings {
        /// Days of restores after a lease ends (0: none; default 30).
        #[arg(long, value_name = "DAYS")]
        lease_grace_days: Option<u32>,
    },
    /// Maintenance mode: new tenant sessions are refused with your message.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// Check the storage against the database and reconcile them: lost packs forgotten (the
    /// tenants' next backups send them again), changed ones marked damaged, leftovers of
    /// killed writes removed, their reservations given back, quota figures recounted.
    Check {
        /// Also re-read every pack and compare it with its id (reads the whole storage).
        #[arg(long)]
        deep: bool,
    },
    /// Reclaim space now (the gateways also do it every hour): packs no restore point (live
    /// or in a recycle bin) needs are removed — kept until insider protection ends where it
    /// is on —, and what tenants' compactions would free is measured (`sp usage`).
    Reclaim,
    /// The gateways registered on this database, with their heartbeats and load; drain one
    /// for maintenance or put it back in service.
    Gateways {
        #[command(subcommand)]
        action: Option<GatewaysAction>,
    },
    /// Restore points tenants deleted under insider protection.
    RecycleBin {
        #[command(subcommand)]
        action: RecycleAction,
    },
    /// The audit log of admin actions, newest first.
    Audit,
    /// The other SP admins: list, add, remove, set a password (every change is audited).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// The gateway's TLS certificate.
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
    /// Cloud hosts: the machines (Linux with QEMU/KVM) that run tenants' replicas.
    Host {
        #[command(subcommand)]
        action: crate::plans::HostAction,
    },
    /// Hardware plans: the compute (CPUs, memory, storage, networks) tenants' replicas may
    /// use on a cloud host, and which tenants have each.
    Plan {
        #[command(subcommand)]
        action: crate::plans::PlanAction,
    },
    /// Tenants' replicas on your cloud hosts; start one on a tenant's behalf.
    Replica {
        #[command(subcommand)]
        action: crate::plans::ReplicaAction,
    },
}

#[derive(Debug, Subcommand)]
enum GatewaysAction {
    /// List the gateways (the default).
    List,
    /// Drain a gateway for maintenance: it takes no new sessions (tenants' programs move on
    /// to the next gateway); sessions running on it finish.
    Drain {
        /// The gateway's id.
        id: String,
    },
    /// Put a drained gateway back in service.
    Resume {
        /// The gateway's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum RepoAction {
    /// Add a cloud repository: a folder on the gateway's machine (--path), or a bucket of an
    /// S3-compatible object store (--s3, tested by the gateway before it is added).
    Add {
        /// Its name.
        name: String,
        /// Folder on the gateway's machine.
        #[arg(
            long,
            value_name = "DIR",
            required_unless_present = "s3",
            conflicts_with = "s3"
        )]
        path: Option<String>,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Test whether the gateway reaches an object store with these credentials (nothing is
    /// added).
    Test {
        #[command(flatten)]
        s3: S3Args,
    },
    /// List cloud repositories.
    List,
    /// Change a cloud repository's title or capacity, or take it out of service (its
    /// tenants keep working; no new quotas go on it) and back.
    Edit {
        /// Its name.
        name: String,
        /// What operators call it.
        #[arg(long)]
        title: Option<String>,
        /// Most bytes of quota it hands out in all (500G, 2T) or "unlimited".
        #[arg(long, value_name = "SIZE")]
        capacity: Option<String>,
        /// Take it out of service: no new quotas on it.
        #[arg(long, conflicts_with = "in_service")]
        out_of_service: bool,
        /// Put it back in service.
        #[arg(long)]
        in_service: bool,
    },
    /// Remove a cloud repository (refused while any quota is on it: move them first).
    Remove {
        /// Its name.
        name: String,
    },
    /// Move a tenant's quota, with its data, to another cloud repository while the tenant
    /// keeps working: copy, verify, switch, release.
    Move {
        /// The account (`tenant` or `tenant/sub`).
        tenant: String,
        /// The repository its quota is on now.
        #[arg(long)]
        from: String,
        /// The repository it goes to.
        #[arg(long)]
        to: String,
        /// Wait until the move is done, showing its progress.
        #[arg(long)]
        wait: bool,
    },
    /// Moves of quotas between repositories, newest first, with their progress.
    Moves,
}

/// An object store given on the command line; the credentials come on stdin.
#[derive(Debug, ClapArgs)]
struct S3Args {
    /// The object store's endpoint URL (https://s3.eu-west-1.amazonaws.com).
    #[arg(long, value_name = "URL")]
    s3: Option<String>,
    /// The bucket.
    #[arg(long, requires = "s3")]
    bucket: Option<String>,
    /// A key prefix inside the bucket.
    #[arg(long, requires = "s3", default_value = "")]
    prefix: String,
    /// The region requests are signed for.
    #[arg(long, requires = "s3", default_value = "us-east-1")]
    region: String,
    /// Read the access key id and then the secret key from stdin, one per line (never on
    /// the command line, where other users of the computer can see them).
    #[arg(long, requires = "s3")]
    access_key_stdin: bool,
}

impl S3Args {
    /// The object store and its credentials, when `--s3` was given.
    fn access(&self) -> anyhow::Result<Option<cloudkeep_api::S3Access>> {
        let Some(endpoint) = &self.s3 else {
            return Ok(None);
        };
        let Some(bucket) = &self.bucket else {
            anyhow::bail!("give the bucket with --bucket NAME");
        };
        if !self.access_key_stdin {
            anyhow::bail!(
                "pass --access-key-stdin and pipe the access key id and the secret key in, one per line"
            );
        }
        let target = cloudkeep_api::S3Target {
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            prefix: self.prefix.trim_matches('/').to_owned(),
            region: self.region.clone(),
        };
        target.check().map_err(anyhow::Error::msg)?;
        let access_key = secrets::stdin_line("access key id")?;
        let secret_key = secrets::stdin_line("secret key")?;
        Ok(Some(cloudkeep_api::S3Access {
            target,
            access_key,
            secret_key,
        }))
    }
}

/// Account settings given on the command line.
#[derive(Debug, ClapArgs)]
struct SettingsArgs {
    /// Free text for your records.
    #[arg(long)]
    description: Option<String>,
    /// Lease end (YYYY-MM-DD, the day included) or "none".
    #[arg(long, value_name = "DATE")]
    lease_until: Option<String>,
    /// Concurrent tasks allowed (0: no limit).
    #[arg(long, value_name = "N")]
    max_tasks: Option<i64>,
    /// Bandwidth limit, e.g. 100Mbit or 20MB/s (0: none).
    #[arg(long, value_name = "RATE")]
    throttle: Option<String>,
    /// Insider protection: keep deleted restore points N days in the recycle bin.
    #[arg(long, value_name = "N")]
    keep_deleted_days: Option<i64>,
}

impl SettingsArgs {
    fn apply(&self, settings: &mut TenantSettings) -> anyhow::Result<()> {
        if let Some(d) = &self.description {
            settings.description = d.clone();
        }
        if let Some(lease) = &self.lease_until {
            settings.lease_until_ms = if lease.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(parse_end_of_day(lease).map_err(anyhow::Error::msg)?)
            };
        }
        if let Some(n) = self.max_tasks {
            settings.max_tasks = n;
        }
        if let Some(rate) = &self.throttle {
            settings.bandwidth_bps = parse_rate(rate).map_err(anyhow::Error::msg)?;
        }
        if let Some(days) = self.keep_deleted_days {
            settings.keep_deleted_days = days;
        }
        Ok(())
    }
}

/// `REPO=SIZE` or `REPO=SIZE:FRIENDLY NAME`.
fn parse_quota(text: &str) -> anyhow::Result<QuotaSpec> {
    let (repo, rest) = text.split_once('=').with_context(|| {
        format!(
            "\"{text}\" is not a quota; write REPO=SIZE or REPO=SIZE:NAME, e.g. main=500G:Cloud"
        )
    })?;
    let (size, friendly) = match rest.split_once(':') {
        Some((size, name)) => (size, Some(name.to_owned())),
        None => (rest, None),
    };
    Ok(QuotaSpec {
        repo: repo.trim().to_owned(),
        friendly_name: friendly,
        bytes: parse_limit(size).map_err(anyhow::Error::msg)?,
    })
}

#[derive(Debug, Subcommand)]
enum TenantAction {
    /// Create a tenant, or a subtenant as TENANT/SUB.
    Add {
        /// Account name.
        name: String,
        /// Read the password from stdin (otherwise one is generated and printed once).
        #[arg(long)]
        password_stdin: bool,
        /// Create it disabled (enable it later with "sp tenant enable").
        #[arg(long)]
        disabled: bool,
        /// Quota on a cloud repository: REPO=SIZE[:NAME TENANTS SEE] (repeatable).
        #[arg(long = "quota", value_name = "REPO=SIZE[:NAME]")]
        quotas: Vec<String>,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Also save the connection details (with the password) to this file, readable by
        /// you only, to hand to the tenant.
        #[arg(long, value_name = "FILE")]
        handoff: Option<std::path::PathBuf>,
    },
    /// The connection details to hand a tenant: gateway addresses, certificate fingerprint,
    /// account (and a password just set, read from stdin).
    Handoff {
        /// Account name.
        name: String,
        /// Include this password (read from stdin; the gateway never shows one back).
        #[arg(long)]
        password_stdin: bool,
        /// Save them to this file (readable by you only) instead of printing them.
        #[arg(long, value_name = "FILE")]
        to: Option<std::path::PathBuf>,
    },
    /// List tenants and subtenants with quota use, lease and state.
    List,
    /// Show one account.
    Show {
        /// Account name.
        name: String,
    },
    /// Change an account's settings, quotas or password.
    Set {
        /// Account name.
        name: String,
        /// Set or add a quota: REPO=SIZE[:NAME] (repeatable).
        #[arg(long = "quota", value_name = "REPO=SIZE[:NAME]")]
        quotas: Vec<String>,
        /// Read a new password from stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Disable an account: its logins and sessions are refused.
    Disable {
        /// Account name.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Account name.
        name: String,
    },
    /// Delete an account and its subtenants (and, with --with-data, everything they stored).
    Delete {
        /// Account name.
        name: String,
        /// Also delete the stored restore points and data.
        #[arg(long, requires = "yes")]
        with_data: bool,
        /// Confirm deleting data.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Every SP admin.
    List,
    /// Add an SP admin (the password is read from stdin).
    Add {
        /// Its login name.
        name: String,
        /// Read the password from stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove another SP admin (never yourself, never the last one); its sessions end.
    Remove {
        /// Its login name.
        name: String,
    },
    /// Set an SP admin's password (read from stdin); its sessions end, yours too if it is you.
    Password {
        /// Its login name.
        name: String,
        /// Read the password from stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RecycleAction {
    /// List them with their purge dates.
    List,
    /// Give one back to its tenant.
    Restore {
        /// Account.
        #[arg(long)]
        tenant: String,
        /// The tenant's name for the repository.
        #[arg(long)]
        repo: String,
        /// Restore point id.
        point: String,
    },
    /// Delete one for good.
    Purge {
        /// Account.
        #[arg(long)]
        tenant: String,
        /// The tenant's name for the repository.
        #[arg(long)]
        repo: String,
        /// Restore point id.
        point: String,
    },
}

#[derive(Debug, Subcommand)]
enum MaintenanceAction {
    /// Turn maintenance mode on.
    On {
        /// What tenants are told.
        #[arg(long)]
        message: String,
    },
    /// Turn maintenance mode off.
    Off,
    /// Show whether maintenance mode is on.
    Show,
}

#[derive(Debug, Subcommand)]
enum CertAction {
    /// Show the certificate the gateway serves.
    Show,
    /// Replace it with a new self-signed certificate for these names.
    Generate {
        /// Host names and addresses (repeatable).
        #[arg(long = "hostname", value_name = "HOST", required = true)]
        hostnames: Vec<String>,
    },
    /// Announce the next self-signed certificate for these names, signed with the current
    /// key: tenants and agents that connect learn it and follow the rollover by themselves.
    /// Announce it days ahead, then `rollover`.
    Next {
        /// Host names and addresses (repeatable).
        #[arg(long = "hostname", value_name = "HOST", required = true)]
        hostnames: Vec<String>,
    },
    /// Serve the announced certificate now.
    Rollover,
    /// Replace it with a CA-signed PEM chain (leaf first) and key.
    Import {
        /// PEM certificate chain.
        #[arg(long, value_name = "FILE")]
        chain: PathBuf,
        /// PEM private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

/// Warns when the served certificate ends within the warning window.
fn warn_expiry(info: &cloudkeep_api::CertInfo) {
    let Ok(end) = chrono::DateTime::parse_from_rfc3339(&info.not_after) else {
        return;
    };
    let days = (end.timestamp_millis() - cloudkeep_model::clock::now_ms()).div_euclid(86_400_000);
    if days < cloudkeep_tenant::overview::CERT_WARNING_DAYS {
        eprintln!(
            "warning: this certificate expires on {} (in {days} days): announce the next one now (`sp cert next`) or import a renewed CA-signed one",
            end.format("%Y-%m-%d")
        );
    }
}

fn session_client(home: &DataHome) -> anyhow::Result<SpClient> {
    Ok(SpClient::from_session(&SpSession::load(home)?)?)
}

fn print_tenant(view: &TenantView) {
    let t = &view.tenant;
    println!(
        "account:       {}{}",
        t.login,
        if t.managed { " (managed)" } else { "" }
    );
    println!(
        "state:         {}",
        if t.settings.enabled {
            "enabled"
        } else {
            "disabled"
        }
    );
    println!("description:   {}", t.settings.description);
    println!("lease until:   {}", date_text(t.settings.lease_until_ms));
    println!(
        "max tasks:     {}",
        if t.settings.max_tasks == 0 {
            "no limit".into()
        } else {
            t.settings.max_tasks.to_string()
        }
    );
    println!(
        "bandwidth:     {}",
        if t.settings.bandwidth_bps == 0 {
            "no limit".into()
        } else {
            format!("{}/s", human_bytes(t.settings.bandwidth_bps as u64))
        }
    );
    println!("keep deleted:  {} days", t.settings.keep_deleted_days);
    for q in &view.quotas {
        println!(
            "quota:         {} on {}: {} used of {}",
            q.friendly_name,
            q.repo_name,
            human_bytes(q.used_bytes.max(0) as u64),
            q.quota_bytes
        );
    }
    for h in &view.health {
        println!("job:           {}: {}", h.job, health_line(h));
    }
}

/// `sp notify …`.
#[derive(Debug, Subcommand)]
enum NotifyAction {
    /// Where the gateway's notifications go.
    Show,
    /// Set where they go (replaces what was set; the SMTP password stays unless given).
    Set(crate::notify::ChannelArgs),
    /// Send a test notification to every channel.
    Test,
    /// Send no more notifications.
    Clear,
}

/// A job's standing, one line.
fn health_line(h: &JobHealth) -> String {
    let mut parts = vec![match (&h.test_result, h.proven_ms) {
        (Some(r), _) if r == "failed" => format!(
            "restore test FAILED {}: {}",
            date_time_text(h.tested_ms.unwrap_or_default()),
            h.test_message
        ),
        (_, Some(ms)) => format!("proven restorable {}", date_time_text(ms)),
        _ => "never proven restorable".to_owned(),
    }];
    if let (Some(ms), Some(r)) = (h.backup_ms, &h.backup_result) {
        parts.push(format!("last backup {r} {}", date_time_text(ms)));
    }
    if let Some(ms) = h.suspicious_ms {
        parts.push(format!(
            "SUSPICIOUS run {}: {}",
            date_time_text(ms),
            h.suspicious.join("; ")
        ));
    }
    parts.join("; ")
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs `cloudkeep sp …`.
pub fn run_command(args: Args, home: &DataHome) -> anyhow::Result<ExitCode> {
    let rt = crate::runtime::small()?;
    let json = args.json;
    match args.command {
        SpCommand::Login {
            gateway,
            user,
            password_stdin: _,
            trust,
        } => {
            let password = secrets::stdin_line("password")?;
            let saved = SpSession::load(home).ok();
            let session = rt.block_on(SpSession::log_in(
                &gateway,
                &user,
                &password,
                trust.as_deref(),
                saved.as_ref(),
            ))?;
            session.save(home)?;
            println!(
                "logged in to {} as {user}; certificate {} pinned",
                session.gateway, session.fingerprint
            );
        }
        SpCommand::Logout => {
            if cloudkeep_client::SpSession::forget(home)? {
                println!("logged out");
            } else {
                println!("not logged in");
            }
        }
        SpCommand::Repo { action } => {
            let client = session_client(home)?;
            match action {
                RepoAction::Add { name, path, s3 } => {
                    let repo = match (s3.access()?, path) {
                        (Some(access), _) => rt.block_on(client.add_s3_repo(&name, &access))?,
                        (None, Some(path)) => rt.block_on(client.add_repo(&name, &path))?,
                        (None, None) => anyhow::bail!("give --path DIR or --s3 URL"),
                    };
                    if json {
                        print_json(&repo)?;
                    } else {
                        println!("cloud repository {} added ({})", repo.name, repo.location);
                        if let Some(lock) = &repo.object_lock {
                            println!("{}", lock.describe());
                        }
                    }
                }
                RepoAction::Test { s3 } => {
                    let Some(access) = s3.access()? else {
                        anyhow::bail!("give the object store with --s3 URL --bucket NAME");
                    };
                    let probe = rt.block_on(client.test_s3(&access))?;
                    if json {
                        print_json(&probe)?;
                    } else {
                        for step in &probe.steps {
                            match &step.error {
                                None => println!("ok      {}", step.what),
                                Some(e) => println!("FAILED  {}: {e}", step.what),
                            }
                        }
                        if let Some(lock) = &probe.object_lock {
                            println!("object lock: {}", lock.describe());
                        }
                    }
                    if let Some(step) = probe.steps.iter().find(|s| s.error.is_some()) {
                        anyhow::bail!(
                            "the gateway cannot use this object store: \"{}\" FAILED: {}",
                            step.what,
                            step.error.as_deref().unwrap_or_default()
                        );
                    }
                }
                RepoAction::List => {
                    let repos = rt.block_on(client.repos())?;
                    if json {
                        print_json(&repos)?;
                    } else {
                        println!(
                            "{:<20} {:<8} {:<16} {:<12} {:<10} location",
                            "name", "kind", "new quotas", "capacity", "immutable"
                        );
                        for r in repos {
                            let service = if r.in_service {
                                "accepted"
                            } else {
                                "out of service"
                            };
                            let immutable = match &r.object_lock {
                                Some(lock) if lock.immutable() => "yes",
                                Some(_) | None if r.kind == "folder" => "-",
                                Some(_) => "no",
                                None => "unknown",
                            };
                            println!(
                                "{:<20} {:<8} {service:<16} {:<12} {immutable:<10} {}",
                                r.name,
                                r.kind,
                                r.capacity.to_string(),
                                r.location
                            );
                        }
                    }
                }
                RepoAction::Edit {
                    name,
                    title,
                    capacity,
                    out_of_service,
                    in_service,
                } => {
                    let edit = cloudkeep_api::RepoEdit {
                        title,
                        capacity: capacity
                            .as_deref()
                            .map(parse_limit)
                            .transpose()
                            .map_err(anyhow::Error::msg)?,
                        in_service: match (out_of_service, in_service) {
                            (true, _) => Some(false),
                            (_, true) => Some(true),
                            _ => None,
                        },
                    };
                    let repo = rt.block_on(client.edit_repo(&name, &edit))?;
                    if json {
                        print_json(&repo)?;
                    } else {
                        println!(
                            "cloud repository {}: {}, capacity {}",
                            repo.name,
                            if repo.in_service {
                                "in service"
                            } else {
                                "out of service"
                            },
                            repo.capacity
                        );
                    }
                }
                RepoAction::Remove { name } => {
                    let left = rt.block_on(client.remove_repo(&name))?;
                    if json {
                        print_json(&left)?;
                    } else {
                        println!("cloud repository {name} removed");
                    }
                }
                RepoAction::Move {
                    tenant,
                    from,
                    to,
                    wait,
                } => {
                    let mut info = rt.block_on(client.start_move(&cloudkeep_api::MoveRequest {
                        tenant,
                        from,
                        to,
                    }))?;
                    if !json {
                        println!(
                            "move {} of {}'s quota from {} to {} started",
                            info.id, info.tenant, info.from, info.to
                        );
                    }
                    while wait && !matches!(info.state.as_str(), "done" | "failed") {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        info = rt.block_on(client.move_info(info.id))?;
                        if !json {
                            eprintln!("{}", move_line(&info));
                        }
                    }
                    if json {
                        print_json(&info)?;
                    } else if wait {
                        println!("{}", move_line(&info));
                    }
                    if info.state == "failed" {
                        anyhow::bail!("the move failed: {}", info.message);
                    }
                }
                RepoAction::Moves => {
                    let moves = rt.block_on(client.moves())?;
                    if json {
                        print_json(&moves)?;
                    } else {
                        for m in &moves {
                            println!("{}", move_line(m));
                        }
                    }
                }
            }
        }
        SpCommand::Host { action } => {
            crate::plans::host_command(&rt, &session_client(home)?, action, json)?;
        }
        SpCommand::Plan { action } => {
            crate::plans::plan_command(&rt, &session_client(home)?, action, json)?;
        }
        SpCommand::Replica { action } => {
            crate::plans::replica_command(&rt, &session_client(home)?, action, json)?;
        }
        SpCommand::Tenant { action } => {
            let client = session_client(home)?;
            tenant_command(&rt, &client, action, json)?;
        }
        SpCommand::Notify { action } => {
            let client = session_client(home)?;
            let channels = match action {
                NotifyAction::Show => rt.block_on(client.notify_channels())?,
                NotifyAction::Set(args) => {
                    rt.block_on(client.set_notify_channels(&args.channels()?))?
                }
                NotifyAction::Clear => rt.block_on(
                    client.set_notify_channels(&cloudkeep_api::notify::Channels::default()),
                )?,
                NotifyAction::Test => {
                    let tried: Vec<(String, Option<String>)> = rt
                        .block_on(client.test_notify())?
                        .into_iter()
                        .map(|v| {
                            (
                                v["channel"].as_str().unwrap_or("?").to_owned(),
                                v["error"].as_str().map(str::to_owned),
                            )
                        })
                        .collect();
                    return crate::notify::print_tried(&tried, json);
                }
            };
            if json {
                print_json(&channels)?;
            } else {
                crate::notify::print_channels(&channels);
            }
        }
        SpCommand::Usage { csv } => {
            let client = session_client(home)?;
            let rows = rt.block_on(client.usage())?;
            if json {
                print_json(&rows)?;
            } else if csv {
                print!("{}", cloudkeep_api::usage_csv(&rows));
            } else {
                println!(
                    "{:<24} {:<16} {:>12} {:>12} {:>12} {:>12}",
                    "tenant", "repository", "quota", "used", "recycle bin", "reclaimable"
                );
                for r in rows {
                    println!(
                        "{:<24} {:<16} {:>12} {:>12} {:>12} {:>12}",
                        r.tenant,
                        r.friendly_name,
                        r.quota_bytes,
                        human_bytes(r.used_bytes.max(0) as u64),
                        human_bytes(r.recycle_bytes.max(0) as u64),
                        human_bytes(r.reclaimable_bytes.max(0) as u64)
                    );
                }
            }
        }
        SpCommand::Settings { lease_grace_days } => {
            let client = session_client(home)?;
            let settings = match lease_grace_days {
                Some(days) => rt.block_on(client.set_gateway_settings(
                    &cloudkeep_api::GatewaySettings {
                        lease_grace_days: days,
                    },
                ))?,
                None => rt.block_on(client.gateway_settings())?,
            };
            if json {
                print_json(&settings)?;
            } else {
                println!(
                    "after a lease ends, its tenant may restore (not back up) for {} days",
                    settings.lease_grace_days
                );
            }
        }
        SpCommand::Maintenance { action } => {
            let client = session_client(home)?;
            let state = match action {
                MaintenanceAction::On { message } => {
                    rt.block_on(client.set_maintenance(Some(&message)))?
                }
                MaintenanceAction::Off => rt.block_on(client.set_maintenance(None))?,
                MaintenanceAction::Show => rt.block_on(client.maintenance())?,
            };
            if json {
                print_json(&state)?;
            } else {
                match state.message {
                    Some(m) => println!("maintenance mode is on: {m}"),
                    None => println!("maintenance mode is off"),
                }
            }
        }
        SpCommand::Check { deep } => {
            let client = session_client(home)?;
            let report = rt.block_on(client.check(deep))?;
            if json {
                print_json(&report)?;
            } else {
                print_check(&report);
            }
            if !report.lost.is_empty()
                || !report.damaged.is_empty()
                || !report.missing_objects.is_empty()
                || !report.unavailable.is_empty()
            {
                return Ok(ExitCode::from(crate::exit::FAILURE));
            }
        }
        SpCommand::Reclaim => {
            let client = session_client(home)?;
            let report = rt.block_on(client.space_pass())?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "removed {}, kept until insider protection ends {}; compactions would free {} more",
                    human_bytes(report.removed_bytes.max(0) as u64),
                    human_bytes(report.retired_bytes.max(0) as u64),
                    human_bytes(report.reclaimable_bytes.max(0) as u64)
                );
            }
        }
        SpCommand::Gateways { action } => {
            let client = session_client(home)?;
            let gateways = match action {
                None | Some(GatewaysAction::List) => rt.block_on(client.gateways())?,
                Some(GatewaysAction::Drain { id }) => {
                    rt.block_on(client.drain_gateway(&id, true))?
                }
                Some(GatewaysAction::Resume { id }) => {
                    rt.block_on(client.drain_gateway(&id, false))?
                }
            };
            if json {
                print_json(&gateways)?;
            } else {
                let now = cloudkeep_model::clock::now_ms();
                println!(
                    "{:<14} {:<28} {:<14} {:>11} {:>12}  last heartbeat",
                    "gateway", "address", "state", "connections", "requests/min"
                );
                for g in gateways {
                    let age = (now - g.heartbeat_ms).max(0) / 1000;
                    let state = match (age < 30, g.draining) {
                        (false, _) => "no heartbeat",
                        (true, true) => "draining",
                        (true, false) => "up",
                    };
                    println!(
                        "{:<14} {:<28} {state:<14} {:>11} {:>12}  {age} s ago",
                        g.id, g.address, g.connections, g.requests_per_min
                    );
                }
            }
        }
        SpCommand::RecycleBin { action } => {
            let client = session_client(home)?;
            use cloudkeep_api::RecycledRef;
            match action {
                RecycleAction::List => {
                    let points = rt.block_on(client.recycle_bin())?;
                    if json {
                        print_json(&points)?;
                    } else {
                        for p in points {
                            println!(
                                "{:<24} {:<16} {}  deleted {}  purged after {}",
                                p.tenant,
                                p.repo,
                                &p.point[..12.min(p.point.len())],
                                date_text(Some(p.deleted_ms)),
                                date_text(Some(p.purge_after_ms))
                            );
                        }
                    }
                }
                RecycleAction::Restore {
                    tenant,
                    repo,
                    point,
                } => {
                    rt.block_on(client.recycle_restore(&RecycledRef {
                        tenant: tenant.clone(),
                        repo,
                        point,
                    }))?;
                    println!("restore point given back to {tenant}");
                }
                RecycleAction::Purge {
                    tenant,
                    repo,
                    point,
                } => {
                    rt.block_on(client.recycle_purge(&RecycledRef {
                        tenant,
                        repo,
                        point,
                    }))?;
                    println!("restore point purged");
                }
            }
        }
        SpCommand::Admin { action } => {
            let client = session_client(home)?;
            match action {
                AdminAction::List => {
                    let admins = rt.block_on(client.admins())?;
                    if json {
                        print_json(&admins)?;
                    } else {
                        for a in admins {
                            println!(
                                "{:<24} added {}",
                                a.name,
                                cloudkeep_model::units::date_time_text(a.created_ms)
                            );
                        }
                    }
                }
                AdminAction::Add { name, .. } => {
                    let password = crate::secrets::stdin_line("password")?;
                    rt.block_on(client.add_admin(&name, &password))?;
                    println!("SP admin \"{name}\" added");
                }
                AdminAction::Remove { name } => {
                    rt.block_on(client.remove_admin(&name))?;
                    println!("SP admin \"{name}\" removed; its sessions ended");
                }
                AdminAction::Password { name, .. } => {
                    let password = crate::secrets::stdin_line("password")?;
                    rt.block_on(client.set_admin_password(&name, &password))?;
                    println!("the password of SP admin \"{name}\" is changed; its sessions ended");
                }
            }
        }
        SpCommand::Audit => {
            let client = session_client(home)?;
            let log = rt.block_on(client.audit())?;
            if json {
                print_json(&log)?;
            } else {
                for e in log {
                    let when = chrono::DateTime::from_timestamp_millis(e.time_ms)
                        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    println!(
                        "{when}  {:<12} {:<18} {} {}",
                        e.actor, e.action, e.target, e.detail
                    );
                }
            }
        }
        SpCommand::Cert { action } => {
            let client = session_client(home)?;
            let info = match action {
                CertAction::Show => {
                    let info = rt.block_on(client.cert())?;
                    let next = rt.block_on(client.cert_next_info())?;
                    if json {
                        print_json(&serde_json::json!({"served": info, "next": next}))?;
                    } else {
                        crate::gateway::print_cert(&info);
                        warn_expiry(&info);
                        if let Some(next) = next {
                            println!(
                                "next:         {} (announced; `sp cert rollover` serves it)",
                                next.fingerprint
                            );
                        }
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                CertAction::Next { hostnames } => {
                    let next = rt.block_on(client.cert_next(hostnames))?;
                    if json {
                        print_json(&next)?;
                    } else {
                        crate::gateway::print_cert(&next);
                        println!(
                            "announced: tenants and agents learn it when they next connect and follow the rollover by themselves; serve it with `cloudkeep sp cert rollover` once they have (days ahead, before the served one expires)"
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                CertAction::Rollover => rt.block_on(client.cert_rollover())?,
                CertAction::Generate { hostnames } => {
                    rt.block_on(client.cert_generate(hostnames))?
                }
                CertAction::Import { chain, key } => {
                    let read = |p: &PathBuf| {
                        std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))
                    };
                    rt.block_on(client.cert_import(read(&chain)?, read(&key)?))?
                }
            };
            // The admin installed it over the trusted connection: this session pins it now.
            let repinned = SpSession::pin_installed(home, &info.fingerprint)?;
            if json {
                print_json(&info)?;
            } else {
                crate::gateway::print_cert(&info);
                if repinned {
                    println!(
                        "the gateway serves it now; this login trusts it, tenants and other admins must trust the new fingerprint"
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes connection details to `path`, readable by its owner only.
fn save_handoff(
    path: &std::path::Path,
    details: &cloudkeep_api::handoff::Handoff,
) -> anyhow::Result<()> {
    cloudkeep_model::paths::write_private_file(path, details.text().as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "cannot write {}: {e}; choose another file with --handoff or --to",
            path.display()
        )
    })
}

fn tenant_command(
    rt: &tokio::runtime::Runtime,
    client: &SpClient,
    action: TenantAction,
    json: bool,
) -> anyhow::Result<()> {
    let show = |view: &TenantView| -> anyhow::Result<()> {
        if json {
            print_json(view)
        } else {
            print_tenant(view);
            Ok(())
        }
    };
    match action {
        TenantAction::Add {
            name,
            password_stdin,
            disabled,
            quotas,
            settings,
            handoff,
        } => {
            let (password, generated) = if password_stdin {
                (secrets::stdin_line("password")?, false)
            } else {
                (secrets::generate_password()?, true)
            };
            let mut s = TenantSettings::default();
            settings.apply(&mut s)?;
            s.enabled = !disabled;
            let quotas = quotas
                .iter()
                .map(|q| parse_quota(q))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let view = rt.block_on(client.add_tenant(&NewTenant {
                name,
                password: password.clone(),
                settings: s,
                quotas,
            }))?;
            let details = rt.block_on(client.handoff(&view.tenant.login, Some(password)))?;
            if let Some(path) = &handoff {
                save_handoff(path, &details)?;
            }
            if json {
                let mut out = serde_json::to_value(&view)?;
                out["handoff"] = serde_json::to_value(&details)?;
                return print_json(&out);
            }
            print_tenant(&view);
            println!();
            print!("{}", details.text());
            if generated {
                println!("(The password was generated and is shown once: give it to the tenant.)");
            }
            if let Some(path) = &handoff {
                println!("saved to {} (readable by you only)", path.display());
            }
        }
        TenantAction::Handoff {
            name,
            password_stdin,
            to,
        } => {
            let password = password_stdin
                .then(|| secrets::stdin_line("password"))
                .transpose()?;
            let details = rt.block_on(client.handoff(&name, password))?;
            match &to {
                Some(path) => {
                    save_handoff(path, &details)?;
                    if json {
                        return print_json(&details);
                    }
                    println!("saved to {} (readable by you only)", path.display());
                }
                None if json => return print_json(&details),
                None => print!("{}", details.text()),
            }
        }
        TenantAction::List => {
            let tenants = rt.block_on(client.tenants())?;
            if json {
                return print_json(&tenants);
            }
            println!(
                "{:<28} {:<9} {:<11} {:<34} quotas (used of quota)",
                "account", "state", "lease", "backups (restore tests, signals)"
            );
            for v in &tenants {
                let standing = v.standing.text(date_time_text);
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
                    "{:<28} {:<9} {:<11} {standing:<34} {quotas}",
                    v.tenant.login,
                    if v.tenant.settings.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    date_text(v.tenant.settings.lease_until_ms)
                );
            }
        }
        TenantAction::Show { name } => show(&rt.block_on(client.tenant(&name))?)?,
        TenantAction::Set {
            name,
            quotas,
            password_stdin,
            settings,
        } => {
            let mut view = rt.block_on(client.tenant(&name))?;
            let mut s = view.tenant.settings.clone();
            settings.apply(&mut s)?;
            if s != view.tenant.settings {
                view = rt.block_on(client.set_settings(&name, &s))?;
            }
            for q in &quotas {
                view = rt.block_on(client.set_quota(&name, &parse_quota(q)?))?;
            }
            if password_stdin {
                rt.block_on(client.set_password(&name, &secrets::stdin_line("password")?))?;
                if !json {
                    println!("password changed; the account's sessions ended");
                }
            }
            show(&view)?;
        }
        TenantAction::Disable { name } => set_enabled(rt, client, &name, false, json)?,
        TenantAction::Enable { name } => set_enabled(rt, client, &name, true, json)?,
        TenantAction::Delete {
            name,
            with_data,
            yes: _,
        } => {
            rt.block_on(client.delete_tenant(&name, with_data))?;
            println!(
                "deleted {name}{}",
                if with_data {
                    " and its data"
                } else {
                    " (its stored data was kept)"
                }
            );
        }
    }
    Ok(())
}

fn set_enabled(
    rt: &tokio::runtime::Runtime,
    client: &SpClient,
    name: &str,
    enabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    let view = rt.block_on(client.tenant(name))?;
    let mut s = view.tenant.settings.clone();
    s.enabled = enabled;
    let view = rt.block_on(client.set_settings(name, &s))?;
    if json {
        print_json(&view)
    } else {
        println!(
            "{} is {}",
            name,
            if enabled { "enabled" } else { "disabled" }
        );
        Ok(())
    }
}

/// One move on one line: which, where, how far.
fn move_line(m: &cloudkeep_api::MoveInfo) -> String {
    let mut line = format!(
        "move {}: {} from {} to {}: {}, {} of {} packs ({} of {})",
        m.id,
        m.tenant,
        m.from,
        m.to,
        m.state,
        m.packs_done,
        m.packs_total,
        human_bytes(m.bytes_done.max(0) as u64),
        human_bytes(m.bytes_total.max(0) as u64)
    );
    if !m.message.is_empty() {
        line.push_str(&format!(" — {}", m.message));
    }
    line
}

/// The storage check's report, for a person.
fn print_check(r: &cloudkeep_api::CheckReport) {
    println!(
        "checked {} packs in {} storage areas{}",
        r.packs_checked,
        r.quotas,
        if r.bytes_hashed > 0 {
            format!(", {} re-read and hashed", human_bytes(r.bytes_hashed))
        } else {
            String::new()
        }
    );
    for area in &r.unavailable {
        println!("not checked: the storage of {area} is not there (is its disk mounted?)");
    }
    for (label, issues) in [
        ("lost", &r.lost),
        ("damaged", &r.damaged),
        ("missing", &r.missing_objects),
    ] {
        for i in issues {
            println!(
                "{label}: {}/{} {}: {}",
                i.tenant,
                i.repo,
                &i.pack[..i.pack.len().min(16)],
                i.what
            );
        }
    }
    if r.orphans_removed > 0 {
        println!(
            "removed {} pack files no table knew ({}), left by writes a crash cut",
            r.orphans_removed,
            human_bytes(r.orphan_bytes)
        );
    }
    if r.temp_bytes_removed > 0 {
        println!(
            "removed {} of temporary files of dead writes",
            human_bytes(r.temp_bytes_removed)
        );
    }
    if r.reservations_reclaimed > 0 {
        println!(
            "gave back {} reservations ({}) of writes whose gateway died",
            r.reservations_reclaimed,
            human_bytes(r.reserved_bytes_returned.max(0) as u64)
        );
    }
    for q in &r.recounted {
        println!(
            "corrected {}/{}: used {} -> {}, recycle bin {} -> {}",
            q.tenant,
            q.repo,
            human_bytes(q.used.0.max(0) as u64),
            human_bytes(q.used.1.max(0) as u64),
            human_bytes(q.recycle.0.max(0) as u64),
            human_bytes(q.recycle.1.max(0) as u64)
        );
    }
    if r.lost.is_empty()
        && r.damaged.is_empty()
        && r.missing_objects.is_empty()
        && r.unavailable.is_empty()
    {
        println!("the storage holds what the database says");
    }
}
