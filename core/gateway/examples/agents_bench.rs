//! Agents benchmark (issue 7): a tenant's backup policy with N computers (100 by default),
//! each a real `cloudkeep agent` process with its own data home and a small tree of its own,
//! all backing up at once against one real `cloudkeep gateway run` on loopback. Prints how
//! many succeeded, the wall time and each agent's cycle time, the gateway's resident memory
//! (before, peak), and the latency of an authenticated request (`GET /v1/repos`, timed by a
//! separate client every 50 ms) while the agents run.
//!
//! `cargo run --release -p cloudkeep-gateway --example agents_bench -- CLOUDKEEP_BINARY WORK_DIR [N]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudkeep_tests::gateway::{ADMIN_PASSWORD, GatewayProcess, rss_kib_of};
use cloudkeep_tests::pseudo_random as random;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const FILES: usize = 50;
const TENANT_PW: &str = "bench-tenant-password";

/// Runs `cloudkeep ARGS` on `home` (and `user` as HOME), feeding `stdin`; its stdout.
fn cli(
    binary: &Path,
    home: &Path,
    user: Option<&Path>,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env("CLOUDKEEP_HOME", home)
        .env("CLOUDKEEP_SECRETS", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(user) = user {
        cmd.env("HOME", user);
    }
    let mut child = cmd.spawn()?;
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        writeln!(pipe, "{text}")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "cloudkeep {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn spawn_cycle(binary: &Path, home: &Path, user: &Path) -> Result<Child> {
    Ok(Command::new(binary)
        .args(["agent", "run", "--once", "--now", "--json"])
        .env("CLOUDKEEP_HOME", home)
        .env("CLOUDKEEP_SECRETS", "file")
        .env("HOME", user)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn percentile(mut times: Vec<Duration>, p: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    times.sort();
    let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
    times[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `GET /v1/repos` as the tenant every 50 ms until `stop`.
fn probe(addr: String, fingerprint: String, stop: Arc<AtomicBool>) -> Result<Vec<Duration>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut client = cloudkeep_client::tenant::TenantClient::new(&addr, &fingerprint)?;
        client.login("bench", TENANT_PW).await?;
        let mut times = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            client.repos().await?;
            times.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(times)
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (binary, work, agents) = match args.as_slice() {
        [b, w] => (PathBuf::from(b), PathBuf::from(w), 100),
        [b, w, n] => (PathBuf::from(b), PathBuf::from(w), n.parse()?),
        _ => return Err("usage: agents_bench CLOUDKEEP_BINARY WORK_DIR [AGENTS]".into()),
    };
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let gw = GatewayProcess::start(&binary, &work.join("gw"))?;
    let (addr, fp) = (gw.addr.clone(), gw.fingerprint.clone());

    // The tenant: provider, policy, N computers with their enrollment files.
    let tenant = work.join("tenant");
    let storage = work.join("storage").display().to_string();
    let t = |args: &[&str], stdin: Option<&str>| cli(&binary, &tenant, None, args, stdin);
    t(
        &[
            "sp",
            "login",
            "--gateway",
            &addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some(ADMIN_PASSWORD),
    )?;
    t(&["sp", "repo", "add", "main", "--path", &storage], None)?;
    t(
        &[
            "sp",
            "tenant",
            "add",
            "bench",
            "--password-stdin",
            "--quota",
            "main=1T",
        ],
        Some(TENANT_PW),
    )?;
    t(
        &[
            "provider",
            "add",
            "sp",
            "--host",
            &addr,
            "--user",
            "bench",
            "--password-stdin",
            "--trust",
            &fp,
        ],
        Some(TENANT_PW),
    )?;
    t(
        &[
            "policy",
            "create",
            "fleet",
            "--provider",
            "sp",
            "--repo",
            "main",
            "--source",
            "~/data",
            "--schedule",
            "daily@03:00",
            "--quota",
            "1G",
            "--encryption-password-stdin",
        ],
        Some("bench policy passphrase"),
    )?;
    let setup = Instant::now();
    let mut computers = Vec::new();
    for i in 0..agents {
        let name = format!("pc{i:03}");
        t(&["policy", "add-computer", "fleet", &name], None)?;
        let file = work.join(format!("{name}.enroll"));
        let out = t(
            &[
                "policy",
                "--json",
                "enroll-file",
                "fleet",
                &name,
                "--out",
                &file.display().to_string(),
            ],
            None,
        )?;
        let code: serde_json::Value = serde_json::from_str(&out)?;
        let home = work.join("agents").join(&name);
        let user = home.join("user");
        for f in 0..FILES {
            let path = user
                .join("data")
                .join(format!("d{}", f % 5))
                .join(format!("f{f:02}.bin"));
            std::fs::create_dir_all(path.parent().ok_or("parent")?)?;
            std::fs::write(
                &path,
                random(1024 + (f * 157) % 7000, (i * FILES + f) as u64),
            )?;
        }
        computers.push((
            name,
            file,
            code["code"].as_str().unwrap_or_default().to_owned(),
            home,
            user,
        ));
        if (i + 1) % 20 == 0 {
            eprintln!(
                "  {} computers added ({:.0} s)",
                i + 1,
                setup.elapsed().as_secs_f64()
            );
        }
    }
    // Enroll a few at a time (each opens the file with Argon2id, 64 MiB).
    for batch in computers.chunks(8) {
        let handles: Vec<_> = batch
            .iter()
            .map(|(_, file, code, home, user)| {
                let (binary, file, code, home, user) = (
                    binary.clone(),
                    file.clone(),
                    code.clone(),
                    home.clone(),
                    user.clone(),
                );
                std::thread::spawn(move || {
                    cli(
                        &binary,
                        &home,
                        Some(&user),
                        &["agent", "enroll", &file.display().to_string()],
                        Some(&code),
                    )
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "enroll thread")??;
        }
    }
    eprintln!(
        "  set-up: {agents} computers enrolled in {:.0} s",
        setup.elapsed().as_secs_f64()
    );

    // Measured: every agent backs up at once.
    let (rss_before, _) = gw.rss_kib()?;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), gw.child.id());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((kib, _)) = rss_kib_of(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let prober = {
        let (addr, fp, stop) = (addr.clone(), fp.clone(), stop.clone());
        std::thread::spawn(move || probe(addr, fp, stop).map_err(|e| e.to_string()))
    };
    let started = Instant::now();
    let children: Vec<(String, Instant, Child)> = computers
        .iter()
        .map(|(name, _, _, home, user)| {
            Ok((
                name.clone(),
                Instant::now(),
                spawn_cycle(&binary, home, user)?,
            ))
        })
        .collect::<Result<_>>()?;
    let mut ok = 0;
    let mut cycle_times = Vec::new();
    for (name, t0, child) in children {
        let out = child.wait_with_output()?;
        cycle_times.push(t0.elapsed());
        let cycle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.success() && cycle["ran"]["result"] == "success" {
            ok += 1;
        } else {
            eprintln!(
                "  {name} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().map_err(|_| "probe thread")??;
    let _ = sampler.join();
    let (_, hwm) = gw.rss_kib()?;

    println!("== {agents} agents against one gateway (loopback TLS, 2 cores shared) ==");
    println!("agents succeeded                 {ok} / {agents}");
    println!(
        "all backed up in                 {:>8.1} s ({FILES} files each)",
        wall.as_secs_f64()
    );
    println!(
        "agent cycle p50 / p99            {:>8.1} / {:.1} s",
        percentile(cycle_times.clone(), 0.5).as_secs_f64(),
        percentile(cycle_times, 0.99).as_secs_f64()
    );
    println!(
        "gateway RSS before / peak        {:>8} / {} KiB (high-water mark {} KiB)",
        rss_before,
        peak.load(Ordering::Relaxed),
        hwm
    );
    println!(
        "GET /v1/repos p50 / p99 / max    {:>8.1} / {:.1} / {:.1} ms ({} requests during the run)",
        ms(percentile(probes.clone(), 0.5)),
        ms(percentile(probes.clone(), 0.99)),
        ms(percentile(probes.clone(), 1.0)),
        probes.len()
    );
    if ok != agents {
        return Err(format!("{} agents failed", agents - ok).into());
    }
    Ok(())
}
