//! `cloudkeep sp host …` and `cloudkeep sp plan …`: the SP's cloud hosts (added with their
//! connection details written once, listed with what each reported, removed) and hardware
//! plans (made on a host within what it has, listed with their tenants, given to tenants and
//! taken back, removed).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cloudkeep_api::replication::{HostView, PlanSpec, PlanStorage, PlanView};
use cloudkeep_client::SpClient;
use cloudkeep_model::units::{Limit, human_bytes, parse_limit};

#[derive(Debug, Subcommand)]
pub enum HostAction {
    /// Add a cloud host: its connection details (gateway addresses, certificate, its name
    /// and a password made for it, shown once) to run `cloudkeep host run --connect FILE`
    /// with on the host.
    Add {
        /// Its name.
        name: String,
        /// Save the connection details to this file (readable by you only) instead of
        /// printing them.
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// List the cloud hosts with what each reported (CPUs, memory, KVM, storage pools).
    List,
    /// Remove a cloud host (refused while a hardware plan is on it).
    Remove {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Make a hardware plan: what a tenant's replicas may use on one cloud host. Refused
    /// when the host could never run it.
    Add {
        /// Its name.
        name: String,
        /// Virtual CPUs, in all running replicas together.
        #[arg(long, value_name = "N")]
        cpu: u32,
        /// Memory, in all running replicas together (8G, 512M).
        #[arg(long, value_name = "SIZE")]
        memory: String,
        /// Storage on a host's pool, HOST:SIZE (its only pool) or HOST/POOL:SIZE; repeat
        /// for more pools of the same host.
        #[arg(long, value_name = "HOST[/POOL]:SIZE", required = true)]
        storage: Vec<String>,
        /// Isolated networks.
        #[arg(long, value_name = "N", default_value_t = 1)]
        networks: u32,
        /// Let replicas reach the internet through the host's address.
        #[arg(long)]
        internet: bool,
    },
    /// List the hardware plans with their tenants.
    List,
    /// Remove a hardware plan (refused while a tenant has it).
    Remove {
        /// Its name.
        name: String,
    },
    /// Give a tenant a hardware plan.
    Subscribe {
        /// The plan.
        plan: String,
        /// The tenant.
        tenant: String,
    },
    /// Take a hardware plan from a tenant.
    Unsubscribe {
        /// The plan.
        plan: String,
        /// The tenant.
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReplicaAction {
    /// Every tenant's replicas: plan, host, size, points, whether you hold the key, what runs.
    List,
    /// Start a tenant's replica on its behalf (with the key it lets you hold): a test failover
    /// (--test) or a failover.
    Failover {
        /// The tenant.
        tenant: String,
        /// The replica.
        name: String,
        /// A test failover.
        #[arg(long)]
        test: bool,
        /// The replica point (the newest unless given).
        #[arg(long, value_name = "ID")]
        point: Option<u64>,
        /// A public address rule PUBLIC:REPLICA; repeat for more.
        #[arg(long = "port", value_name = "PUBLIC:REPLICA")]
        ports: Vec<String>,
        /// Join the tenant's network N (extended to its site) instead of the NAT.
        #[arg(long, value_name = "N")]
        network: Option<u8>,
    },
}

/// Runs `sp replica …`.
pub fn replica_command(
    rt: &tokio::runtime::Runtime,
    client: &SpClient,
    action: ReplicaAction,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        ReplicaAction::List => {
            let all = rt.block_on(client.replicas())?;
            if json {
                return print_json(&all);
            }
            println!(
                "{:<14} {:<16} {:<12} {:<12} {:>10} {:>7} {:<9} state",
                "tenant", "replica", "plan", "host", "stored", "points", "key"
            );
            for r in &all {
                println!(
                    "{:<14} {:<16} {:<12} {:<12} {:>10} {:>7} {:<9} {}",
                    r.tenant,
                    r.spec.name,
                    r.spec.plan,
                    r.host,
                    human_bytes(r.stored),
                    r.points.len(),
                    if r.key_escrowed { "held" } else { "revoked" },
                    r.state.as_ref().map_or("stopped", |s| s.mode.as_str())
                );
            }
        }
        ReplicaAction::Failover {
            tenant,
            name,
            test,
            point,
            ports,
            network,
        } => {
            let req = cloudkeep_api::replication::FailoverRequest {
                point,
                test,
                ports: ports
                    .iter()
                    .map(|p| port_rule(p))
                    .collect::<anyhow::Result<_>>()?,
                probes: Vec::new(),
                network,
            };
            let view = rt.block_on(client.replica_failover(&tenant, &name, &req))?;
            if json {
                return print_json(&view);
            }
            print_state(&view);
        }
    }
    Ok(())
}

/// `PUBLIC:REPLICA` ports.
pub(crate) fn port_rule(text: &str) -> anyhow::Result<cloudkeep_api::replication::PortRule> {
    let parsed = text
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)));
    let (port, to) = parsed.with_context(|| {
        format!("\"{text}\" is not a port rule; write PUBLIC:REPLICA, e.g. 8080:80")
    })?;
    Ok(cloudkeep_api::replication::PortRule {
        address: "0.0.0.0".into(),
        port,
        to,
    })
}

/// Prints how a replica runs now.
pub(crate) fn print_state(view: &cloudkeep_api::replication::ReplicaView) {
    match &view.state {
        None => println!("replica {} does not run", view.spec.name),
        Some(s) if s.mode == "failback" => println!(
            "replica {} is being failed back: its machine at {} stopped, what it wrote is replica point {}; finish with cloudkeep replica failback {}",
            view.spec.name,
            view.host,
            view.points.last().map_or(0, |p| p.id),
            view.spec.name
        ),
        Some(s) => {
            println!(
                "replica {} runs at {} ({}) from replica point {} since {}",
                view.spec.name,
                view.host,
                match s.mode.as_str() {
                    "test" => "test failover: isolated, replication goes on",
                    "permanent" => "permanent failover",
                    _ => "failover: replication waits",
                },
                s.running.point,
                cloudkeep_model::units::date_time_text(s.running.since_ms)
            );
            for p in &s.running.spec.ports {
                println!("  public port {} → replica port {}", p.port, p.to);
            }
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs `sp host …`.
pub fn host_command(
    rt: &tokio::runtime::Runtime,
    client: &SpClient,
    action: HostAction,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        HostAction::Add { name, to } => {
            let (host, details) = rt.block_on(client.add_host(&name))?;
            if let Some(path) = &to {
                cloudkeep_model::paths::write_private_file(path, details.host_text().as_bytes())
                    .with_context(|| {
                        format!(
                            "cannot write {}; the host was added: remove it and add it again to get new details",
                            path.display()
                        )
                    })?;
            }
            if json {
                let mut out = serde_json::to_value(&host)?;
                out["handoff"] = serde_json::to_value(&details)?;
                return print_json(&out);
            }
            println!("cloud host {} added", host.name);
            match &to {
                Some(path) => println!(
                    "connection details saved to {} (readable by you only); on the host: cloudkeep host run --connect FILE --pool main=/srv/cloudkeep/replicas",
                    path.display()
                ),
                None => print!("\n{}", details.host_text()),
            }
        }
        HostAction::List => {
            let hosts = rt.block_on(client.hosts())?;
            if json {
                return print_json(&hosts);
            }
            print_hosts(&hosts);
        }
        HostAction::Remove { name } => {
            let hosts = rt.block_on(client.remove_host(&name))?;
            if json {
                return print_json(&hosts);
            }
            println!("cloud host {name} removed");
        }
    }
    Ok(())
}

fn print_hosts(hosts: &[HostView]) {
    let now = cloudkeep_model::clock::now_ms();
    println!(
        "{:<16} {:<14} {:>5} {:>10} {:<4} {:<30} plans",
        "host", "state", "CPUs", "memory", "KVM", "storage pools (free of total)"
    );
    for h in hosts {
        let state = match (h.seen_ms, h.is_up(now)) {
            (None, _) => "never reported".to_owned(),
            (Some(_), true) => "up".to_owned(),
            (Some(seen), false) => format!("silent {} min", (now - seen).max(0) / 60_000),
        };
        let (cpus, memory, kvm, pools) = match &h.facts {
            Some(f) => (
                f.cpus.to_string(),
                human_bytes(f.memory),
                if f.kvm { "yes" } else { "no" },
                f.pools
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {} of {}",
                            p.name,
                            human_bytes(p.free),
                            human_bytes(p.total)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => ("-".into(), "-".into(), "-", "-".into()),
        };
        println!(
            "{:<16} {state:<14} {cpus:>5} {memory:>10} {kvm:<4} {pools:<30} {}",
            h.name,
            if h.plans.is_empty() {
                "-".to_owned()
            } else {
                h.plans.join(", ")
            }
        );
        if let Some(warning) = h.facts.as_ref().and_then(|f| f.warning()) {
            println!("  warning: {warning}");
        }
    }
}

/// A size that must be one (not "unlimited").
fn size(text: &str, what: &str) -> anyhow::Result<u64> {
    match parse_limit(text).map_err(anyhow::Error::msg)? {
        Limit::Bytes(n) => Ok(n),
        Limit::Unlimited => anyhow::bail!("give the {what} as a size, e.g. 8G"),
    }
}

/// `HOST:SIZE` or `HOST/POOL:SIZE` against the hosts: the host and the pool's bytes.
fn storage(text: &str, hosts: &[HostView]) -> anyhow::Result<(String, PlanStorage)> {
    let (place, amount) = text.rsplit_once(':').with_context(|| {
        format!("\"{text}\" is not storage; write HOST:SIZE or HOST/POOL:SIZE, e.g. kvm1:200G")
    })?;
    let (host, pool) = match place.split_once('/') {
        Some((host, pool)) => (host, Some(pool)),
        None => (place, None),
    };
    let view = hosts
        .iter()
        .find(|h| h.name == host)
        .with_context(|| format!("there is no cloud host \"{host}\" (sp host list)"))?;
    let pool = match (pool, &view.facts) {
        (Some(pool), _) => pool.to_owned(),
        (None, Some(facts)) if facts.pools.len() == 1 => facts.pools[0].name.clone(),
        (None, Some(facts)) => anyhow::bail!(
            "{host} has several storage pools ({}); write HOST/POOL:SIZE",
            facts
                .pools
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, None) => {
            anyhow::bail!("{host} has not reported yet: start `cloudkeep host run` on it first")
        }
    };
    Ok((
        host.to_owned(),
        PlanStorage {
            pool,
            bytes: size(amount, "storage")?,
        },
    ))
}

/// Runs `sp plan …`.
pub fn plan_command(
    rt: &tokio::runtime::Runtime,
    client: &SpClient,
    action: PlanAction,
    json: bool,
) -> anyhow::Result<()> {
    let view = match action {
        PlanAction::Add {
            name,
            cpu,
            memory,
            storage: given,
            networks,
            internet,
        } => {
            let hosts = rt.block_on(client.hosts())?;
            let mut host = None;
            let mut pools = Vec::new();
            for text in &given {
                let (h, s) = storage(text, &hosts)?;
                if host.as_ref().is_some_and(|first| *first != h) {
                    anyhow::bail!("a hardware plan is on one cloud host; make one plan per host");
                }
                host = Some(h);
                pools.push(s);
            }
            let plan = PlanSpec {
                name,
                host: host.context("give the plan storage: --storage HOST:SIZE")?,
                cpu,
                memory: size(&memory, "memory")?,
                storage: pools,
                networks,
                internet,
            };
            rt.block_on(client.add_plan(&plan))?
        }
        PlanAction::List => {
            let plans = rt.block_on(client.plans())?;
            if json {
                return print_json(&plans);
            }
            println!(
                "{:<16} {:<14} {:>5} {:>10} {:<24} {:>8} {:<8} tenants",
                "plan", "host", "CPUs", "memory", "storage", "networks", "internet"
            );
            for p in &plans {
                print_plan_row(p);
            }
            return Ok(());
        }
        PlanAction::Remove { name } => {
            let plans = rt.block_on(client.remove_plan(&name))?;
            if json {
                return print_json(&plans);
            }
            println!("hardware plan {name} removed");
            return Ok(());
        }
        PlanAction::Subscribe { plan, tenant } => {
            rt.block_on(client.set_subscription(&plan, &tenant, true))?
        }
        PlanAction::Unsubscribe { plan, tenant } => {
            rt.block_on(client.set_subscription(&plan, &tenant, false))?
        }
    };
    if json {
        return print_json(&view);
    }
    let p = &view.plan;
    println!(
        "hardware plan {} on {}: {} CPUs, {} memory, {}, {} networks{}",
        p.name,
        p.host,
        p.cpu,
        human_bytes(p.memory),
        storage_text(p),
        p.networks,
        if p.internet { ", internet" } else { "" }
    );
    println!(
        "tenants: {}",
        if view.tenants.is_empty() {
            "none".to_owned()
        } else {
            view.tenants.join(", ")
        }
    );
    Ok(())
}

fn storage_text(p: &PlanSpec) -> String {
    p.storage
        .iter()
        .map(|s| format!("{} on {}", human_bytes(s.bytes), s.pool))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_plan_row(view: &PlanView) {
    let p = &view.plan;
    println!(
        "{:<16} {:<14} {:>5} {:>10} {:<24} {:>8} {:<8} {}",
        p.name,
        p.host,
        p.cpu,
        human_bytes(p.memory),
        storage_text(p),
        p.networks,
        if p.internet { "yes" } else { "no" },
        if view.tenants.is_empty() {
            "-".to_owned()
        } else {
            view.tenants.join(", ")
        }
    );
}
