//! Scale-out benchmark (issue 26), one part per run (`scripts/bench-scale` runs them all):
//!
//! - `upload`: 16 packs of 32 MiB through a real gateway process into a three-node Garage
//!   cluster (4 streams), side by side with the same bytes PUT straight into the same bucket
//!   by the AWS CLI (4 concurrent requests).
//! - `tree DATASET`: a folder backed up and restored by the `cloudkeep` CLI through one
//!   gateway into the Garage repository and into a folder repository, side by side.
//! - `tenants N`: N simulated tenants at once (real TLS sessions, each its own connection)
//!   through three gateway processes on one PostgreSQL, each uploading a small real backup
//!   (keyring, pack, index, chunk set, point) made by the engine: all must succeed; request
//!   latencies (p50, p99) and each gateway's peak memory are printed.
//!
//!   scale_bench CLOUDKEEP_BINARY WORK_DIR upload|tree DATASET|tenants N

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The gateway suite's support (it allows its own unused parts).
#[cfg(unix)]
#[path = "../tests/support.rs"]
mod support;

/// Garage, PostgreSQL and tmpfs mounts are Linux tools: the benchmark runs there.
#[cfg(not(unix))]
fn main() {
    eprintln!("scale_bench runs on Linux (Garage, PostgreSQL and tmpfs mounts)");
}

#[cfg(unix)]
fn main() -> bench::Result<()> {
    bench::main()
}

#[cfg(unix)]
mod bench {
    use super::support;

    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use cloudkeep_api::{QuotaSpec, TenantSettings};
    use cloudkeep_client::SpClient;
    use cloudkeep_tests::garage::{ACCESS_KEY, BUCKET, Garage, REGION, SECRET_KEY};
    use cloudkeep_tests::gateway::{ADMIN_PASSWORD, GatewayProcess, rss_kib_of};

    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    const PACK: usize = 32 << 20;
    const PACKS: usize = 16;
    const STREAMS: usize = 4;

    fn percentile(mut times: Vec<Duration>, p: f64) -> Duration {
        times.sort();
        if times.is_empty() {
            return Duration::ZERO;
        }
        times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1]
    }

    fn access(garage: &Garage, prefix: &str) -> cloudkeep_api::S3Access {
        cloudkeep_api::S3Access {
            target: cloudkeep_api::S3Target {
                endpoint: garage.endpoint(0),
                bucket: BUCKET.into(),
                prefix: prefix.into(),
                region: REGION.into(),
            },
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
        }
    }

    /// A pinned HTTP/1.1 client of `fingerprint` (one connection pool of its own).
    fn pinned(fingerprint: &str) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(cloudkeep_client::tls::pinned_config(fingerprint)?)
            .http1_only()
            .pool_idle_timeout(Duration::from_secs(600))
            .build()?)
    }

    /// Logs `user` in at `addr` and starts a backup task: the session as the test support has it.
    async fn session(
        http: reqwest::Client,
        addr: &str,
        user: &str,
        password: &str,
    ) -> Result<support::Tenant> {
        let base = format!("https://{addr}");
        let login: serde_json::Value = http
            .post(format!("{base}/v1/login"))
            .json(&serde_json::json!({"user": user, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"]
            .as_str()
            .ok_or_else(|| format!("login of {user} refused: {login}"))?
            .to_owned();
        let tenant = support::Tenant {
            http,
            base,
            token,
            task: std::sync::Mutex::new(None),
        };
        let (status, body) = tenant.start_task().await;
        if !status.is_success() {
            return Err(format!("task of {user} refused: {body}").into());
        }
        Ok(tenant)
    }

    async fn upload(binary: &Path, work: &Path) -> Result<()> {
        let garage = tokio::task::spawn_blocking(|| Garage::start(3)).await?;
        let gw = GatewayProcess::start(binary, &work.join("gw"))?;
        let mut admin = SpClient::new(&gw.addr, &gw.fingerprint)?;
        admin.login("admin", ADMIN_PASSWORD).await?;
        admin
            .add_s3_repo("objects", &access(&garage, "via-gateway"))
            .await?;
        admin
            .add_tenant(&cloudkeep_api::NewTenant {
                name: "bench".into(),
                password: "bench-password".into(),
                settings: TenantSettings::default(),
                quotas: vec![QuotaSpec {
                    repo: "objects".into(),
                    friendly_name: Some("Cloud".into()),
                    bytes: cloudkeep_model::units::Limit::Bytes(1 << 40),
                }],
            })
            .await?;
        let packs: Vec<Vec<u8>> = (0..PACKS as u64)
            .map(|i| cloudkeep_tests::pseudo_random(PACK, 2001 + 2 * i))
            .collect();

        // Straight into the bucket with the AWS CLI, the same bytes as files.
        let direct = work.join("direct");
        std::fs::create_dir_all(&direct)?;
        for (i, pack) in packs.iter().enumerate() {
            std::fs::write(direct.join(format!("p{i:02}.pack")), pack)?;
        }
        let config = work.join("aws.config");
        std::fs::write(
            &config,
            format!("[default]\nregion = {REGION}\ns3 =\n  max_concurrent_requests = {STREAMS}\n"),
        )?;
        let started = Instant::now();
        let status = Command::new("aws")
            .args([
                "--endpoint-url",
                &garage.endpoint(0),
                "s3",
                "cp",
                "--recursive",
                "--quiet",
            ])
            .arg(&direct)
            .arg(format!("s3://{BUCKET}/direct/"))
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .status()?;
        if !status.success() {
            return Err("aws s3 cp failed".into());
        }
        let direct_rate = (PACKS * PACK) as f64 / started.elapsed().as_secs_f64() / 1e6;

        // Through the gateway: the tenant protocol, STREAMS uploads at once.
        let tenant = std::sync::Arc::new(
            session(
                pinned(&gw.fingerprint)?,
                &gw.addr,
                "bench",
                "bench-password",
            )
            .await?,
        );
        let started = Instant::now();
        let mut lanes = Vec::new();
        for lane in 0..STREAMS {
            let tenant = tenant.clone();
            let mine: Vec<Vec<u8>> = packs.iter().skip(lane).step_by(STREAMS).cloned().collect();
            lanes.push(tokio::spawn(async move {
                for pack in mine {
                    let id = blake3::hash(&pack).to_hex().to_string();
                    let (status, body) =
                        tenant.upload_pack("Cloud", &id, &[[7u8; 32]], &pack).await;
                    if !status.is_success() {
                        return Err(format!("upload failed: {body}"));
                    }
                }
                Ok(())
            }));
        }
        for lane in lanes {
            lane.await??;
        }
        let gateway_rate = (PACKS * PACK) as f64 / started.elapsed().as_secs_f64() / 1e6;
        println!();
        println!(
            "== Cloudkeep: packs into a 3-node Garage cluster (replication 3), loopback, {} ==",
            chrono::Utc::now().format("%Y-%m-%dT%H:%MZ")
        );
        println!(
            "direct S3 PUT, aws s3 cp ({PACKS} x 32 MiB, {STREAMS} at once)   {direct_rate:>8.1} MB/s"
        );
        println!(
            "through the gateway (TLS, same packs, {STREAMS} streams)     {gateway_rate:>8.1} MB/s"
        );
        println!(
            "gateway / direct                                      {:>8.2}   (target >= 0.70)",
            gateway_rate / direct_rate
        );
        drop(gw);
        drop(garage);
        Ok(())
    }

    /// Runs the CLI with `home` as its data home; its output, or the failure.
    fn cli(binary: &Path, home: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = Command::new(binary)
            .args(args)
            .env("CLOUDKEEP_HOME", home)
            .env("CLOUDKEEP_SECRETS", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(text) = stdin {
            use std::io::Write;
            writeln!(child.stdin.take().ok_or("stdin")?, "{text}")?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "cloudkeep {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// CPU seconds (user + system) process `pid` has used, or, for `None`, this process's
    /// children it has waited for (the CLI runs); 0 when not readable (not Linux).
    fn cpu_seconds(pid: Option<u32>) -> f64 {
        let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
        let Ok(stat) = std::fs::read_to_string(path) else {
            return 0.0;
        };
        // Fields after the command's closing parenthesis, from the state (field 3) on:
        // utime and stime are fields 14 and 15, cutime and cstime 16 and 17.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let (first, second) = if pid.is_some() { (14, 15) } else { (16, 17) };
        let field =
            |n: usize| -> u64 { fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
        let ticks = field(first) + field(second);
        ticks as f64 / 100.0 // USER_HZ, 100 on Linux
    }

    /// CPU seconds of the CLI runs, the gateway and the storage processes so far.
    fn cpu_split(gateway: u32, storage: &[u32]) -> [f64; 3] {
        [
            cpu_seconds(None),
            cpu_seconds(Some(gateway)),
            storage.iter().map(|p| cpu_seconds(Some(*p))).sum(),
        ]
    }

    fn timed(f: impl FnOnce() -> Result<String>) -> Result<f64> {
        let started = Instant::now();
        f()?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// Garage nodes of the tree part: `CLOUDKEEP_BENCH_GARAGE_NODES`, 3 by default.
    fn tree_nodes() -> usize {
        std::env::var("CLOUDKEEP_BENCH_GARAGE_NODES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3)
    }

    async fn tree(binary: &Path, work: &Path, dataset: &Path) -> Result<()> {
        let nodes = tree_nodes();
        let garage = tokio::task::spawn_blocking(move || Garage::start(nodes)).await?;
        let gw = GatewayProcess::start(binary, &work.join("gw"))?;
        let mut admin = SpClient::new(&gw.addr, &gw.fingerprint)?;
        admin.login("admin", ADMIN_PASSWORD).await?;
        admin
            .add_s3_repo("objects", &access(&garage, "tree"))
            .await?;
        admin
            .add_repo("folder", &work.join("folder").display().to_string())
            .await?;
        let rounds: usize = std::env::var("CLOUDKEEP_BENCH_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3);
        // A tenant per side and round: every round's backup is a full one into an empty repository.
        let sides = (0..rounds).flat_map(|r| {
            [
                (format!("on-s3-{r}"), "objects"),
                (format!("on-folder-{r}"), "folder"),
            ]
        });
        for (name, repo) in sides {
            admin
                .add_tenant(&cloudkeep_api::NewTenant {
                    name: name.clone(),
                    password: format!("{name}-password"),
                    settings: TenantSettings::default(),
                    quotas: vec![QuotaSpec {
                        repo: repo.into(),
                        friendly_name: Some("Cloud".into()),
                        bytes: cloudkeep_model::units::Limit::Bytes(1 << 40),
                    }],
                })
                .await?;
        }
        let binary = binary.to_path_buf();
        let measured = dataset.to_path_buf();
        let (work, dataset) = (work.to_path_buf(), dataset.to_path_buf());
        let (addr, fp) = (gw.addr.clone(), gw.fingerprint.clone());
        let (gw_pid, storage_pids) = (gw.child.id(), garage.pids());
        let rows = tokio::task::spawn_blocking(move || -> Result<Vec<(String, f64, f64)>> {
            let data = dataset.display().to_string();
            let mnt = work.join("mnt");
            std::fs::create_dir_all(&mnt)?;
            let mut times: std::collections::BTreeMap<&str, (Vec<f64>, Vec<f64>)> =
                std::collections::BTreeMap::new();
            for round in 0..rounds {
                // A fresh job (a full backup) on each side each round; the sides take turns
                // going first.
                let mut order = ["on-folder", "on-s3"];
                if round % 2 == 1 {
                    order.reverse();
                }
                for name in order {
                    let user = format!("{name}-{round}");
                    let home = work.join(format!("home-{user}"));
                    cli(
                        &binary,
                        &home,
                        &[
                            "provider",
                            "add",
                            "sp",
                            "--host",
                            &addr,
                            "--user",
                            &user,
                            "--password-stdin",
                            "--trust",
                            &fp,
                        ],
                        Some(&format!("{user}-password")),
                    )?;
                    let job = format!("tree{round}");
                    cli(
                        &binary,
                        &home,
                        &[
                            "job",
                            "create",
                            &job,
                            "--provider",
                            "sp",
                            "--repo",
                            "Cloud",
                            "--source",
                            &data,
                            "--encryption-password-stdin",
                        ],
                        Some(&format!("bench-password-{round}")),
                    )?;
                    // The storage's CPU counts on the object-storage side only (the folder
                    // side's writes are the gateway's own).
                    let storage: &[u32] = if name == "on-s3" { &storage_pids } else { &[] };
                    let before = cpu_split(gw_pid, storage);
                    let backup = timed(|| cli(&binary, &home, &["job", "run", &job], None))?;
                    let after_backup = cpu_split(gw_pid, storage);
                    // Restores go into a fresh tmpfs each, so the disk's state does not decide them.
                    let mounted = Command::new("mount")
                        .args(["-t", "tmpfs", "-o", "size=4g", "tmpfs"])
                        .arg(&mnt)
                        .status()?;
                    if !mounted.success() {
                        return Err("mounting a tmpfs for the restore failed (run as root)".into());
                    }
                    let out = mnt.join("out");
                    let restore = timed(|| {
                        cli(
                            &binary,
                            &home,
                            &[
                                "restore",
                                "files",
                                "latest",
                                "--job",
                                &job,
                                "--to",
                                &out.display().to_string(),
                            ],
                            None,
                        )
                    });
                    let after_restore = cpu_split(gw_pid, storage);
                    let spent = |from: [f64; 3], to: [f64; 3]| {
                        format!(
                            "CPU s: client {:.1}, gateway {:.1}, storage {:.1}",
                            to[0] - from[0],
                            to[1] - from[1],
                            to[2] - from[2]
                        )
                    };
                    eprintln!(
                        "round {}: {name}: backup {}; restore {}",
                        round + 1,
                        spent(before, after_backup),
                        spent(after_backup, after_restore)
                    );
                    let same = restore.is_ok()
                        && Command::new("diff")
                            .args(["-rq", &data])
                            .arg(format!("{}{data}", out.display()))
                            .stdout(Stdio::null())
                            .status()?
                            .success();
                    let _ = Command::new("umount").arg(&mnt).status();
                    let restore = restore?;
                    if !same {
                        return Err(format!("the restore from {name} differs from the data").into());
                    }
                    eprintln!(
                        "round {}: {name}: backup {backup:.1} s, restore {restore:.1} s",
                        round + 1
                    );
                    let entry = times.entry(name).or_default();
                    entry.0.push(backup);
                    entry.1.push(restore);
                }
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            Ok(times
                .into_iter()
                .map(|(name, (b, r))| (name.to_owned(), median(b), median(r)))
                .collect())
        })
        .await??;
        let (files, bytes) = cloudkeep_tests::files_under(&measured, &|_| true)
            .iter()
            .fold((0u64, 0u64), |(n, b), (_, len)| (n + 1, b + len));
        println!();
        println!(
            "== Cloudkeep: a tree through one gateway, Garage ({nodes} nodes, replication {}) vs a folder repository, {} ==",
            nodes.min(3),
            chrono::Utc::now().format("%Y-%m-%dT%H:%MZ")
        );
        println!("dataset: {files} files, {} MiB", bytes >> 20);
        println!(
            "{:<22} {:>10} {:>10}   (medians of {} rounds)",
            "repository",
            "backup s",
            "restore s",
            std::env::var("CLOUDKEEP_BENCH_ROUNDS").unwrap_or_else(|_| "3".into())
        );
        for (name, b, r) in &rows {
            println!("{name:<22} {b:>10.1} {r:>10.1}");
        }
        let folder = &rows[0];
        let s3 = &rows[1];
        println!(
            "object storage / folder: backup {:.2}, restore {:.2}   (target <= 1.30)",
            s3.1 / folder.1,
            s3.2 / folder.2
        );
        drop(gw);
        drop(garage);
        Ok(())
    }

    /// A gateway process on an initialised data folder (`--id`), its address and fingerprint.
    fn run_gateway(binary: &Path, data: &Path, id: &str) -> Result<(std::process::Child, String)> {
        use std::io::BufRead;
        let mut child = Command::new(binary)
            .args([
                "-q",
                "gateway",
                "run",
                "--allow-root",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--advertise", "127.0.0.1", "--id", id, "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = std::io::BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
        let first = lines.next().ok_or("the gateway printed nothing")??;
        let addr = first.rsplit(' ').next().unwrap_or_default().to_owned();
        std::thread::spawn(move || for _ in lines {});
        Ok((child, addr))
    }

    async fn tenants(binary: &Path, work: &Path, count: usize) -> Result<()> {
        let (_pg, url) =
            tokio::task::spawn_blocking(cloudkeep_tests::postgres::fresh_database).await?;
        let data = work.join("gw");
        // The first gateway initialises the data folder on PostgreSQL; all three share it.
        let mut init = Command::new(binary)
            .args(["gateway", "init", "--data-dir"])
            .arg(&data)
            .args([
                "--hostname",
                "127.0.0.1",
                "--db",
                &url,
                "--admin-password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        {
            use std::io::Write;
            writeln!(init.stdin.take().ok_or("stdin")?, "{ADMIN_PASSWORD}")?;
        }
        if !init.wait()?.success() {
            return Err("gateway init failed".into());
        }
        let config = data.join("gateway.toml");
        let text = std::fs::read_to_string(&config)?;
        std::fs::write(
            &config,
            text.replace("per_address = 256", "per_address = 8192"),
        )?;
        let fingerprint = cloudkeep_gateway::tls::CertStore::open(&data)?
            .info()?
            .fingerprint;
        let db = cloudkeep_gateway::store::Db::open(&url).await?;
        db.add_repo(cloudkeep_gateway::store::repos::NewRepo::folder(
            "main",
            &work.join("storage").display().to_string(),
        ))
        .await?;
        eprintln!("adding {count} tenants …");
        let hash = cloudkeep_repo::crypto::hash_password(
            "tenant-password",
            cloudkeep_repo::crypto::KdfParams::minimum(),
        )?;
        for i in 0..count {
            db.add_tenant(
                None,
                &format!("t{i:04}"),
                &hash,
                &TenantSettings::default(),
                &[QuotaSpec {
                    repo: "main".into(),
                    friendly_name: Some("Cloud".into()),
                    bytes: cloudkeep_model::units::Limit::Bytes(1 << 30),
                }],
                false,
            )
            .await?;
        }
        let mut gateways = Vec::new();
        for id in ["gw-a", "gw-b", "gw-c"] {
            gateways.push(run_gateway(binary, &data, id)?);
        }
        // One small real backup, made by the engine, that every tenant uploads as its own.
        let scratch = work.join("local");
        std::fs::create_dir_all(&scratch)?;
        let local = std::sync::Arc::new(
            tokio::task::spawn_blocking(move || support::make_local_repo(&scratch)).await?,
        );
        eprintln!("{count} tenants at once through three gateways …");
        let addrs: Vec<String> = gateways.iter().map(|(_, a)| a.clone()).collect();
        let started = Instant::now();
        let mut runs = Vec::new();
        for i in 0..count {
            let (addr, fp, local) = (addrs[i % 3].clone(), fingerprint.clone(), local.clone());
            runs.push(tokio::spawn(async move {
                let mut times = Vec::new();
                let t = Instant::now();
                let tenant =
                    session(pinned(&fp)?, &addr, &format!("t{i:04}"), "tenant-password").await?;
                times.push(t.elapsed());
                let check = |what: &str, status: reqwest::StatusCode, body: &serde_json::Value| {
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("t{i:04} {what}: {status} {body}"))
                    }
                };
                let t = Instant::now();
                let (s, b) = tenant
                    .put_object("Cloud", "keyring", "keyring", local.keyring.clone())
                    .await;
                times.push(t.elapsed());
                check("keyring", s, &b)?;
                for (id, chunks, bytes) in &local.packs {
                    let t = Instant::now();
                    let (s, b) = tenant.upload_pack("Cloud", id, chunks, bytes).await;
                    times.push(t.elapsed());
                    check("pack", s, &b)?;
                }
                for (kind, list) in [("index", &local.index), ("sets", &local.sets)] {
                    for (name, bytes) in list.iter() {
                        let t = Instant::now();
                        let (s, b) = tenant.put_object("Cloud", kind, name, bytes.clone()).await;
                        times.push(t.elapsed());
                        check(kind, s, &b)?;
                    }
                }
                for (name, bytes) in &local.points {
                    let t = Instant::now();
                    let (s, out) = tenant
                        .send(
                            reqwest::Method::PUT,
                            &format!("/v1/repos/Cloud/points/{name}"),
                            Some(bytes.clone()),
                            &[],
                        )
                        .await;
                    times.push(t.elapsed());
                    check(
                        "point",
                        s,
                        &serde_json::Value::String(String::from_utf8_lossy(&out).into()),
                    )?;
                }
                Ok::<Vec<Duration>, Box<dyn std::error::Error + Send + Sync>>(times)
            }));
        }
        let mut all = Vec::new();
        let mut failed = Vec::new();
        for run in runs {
            match run.await? {
                Ok(times) => all.extend(times),
                Err(e) => failed.push(e.to_string()),
            }
        }
        let took = started.elapsed();
        let memory: Vec<(u64, u64)> = gateways
            .iter()
            .map(|(child, _)| rss_kib_of(child.id()).unwrap_or((0, 0)))
            .collect();
        println!();
        println!(
            "== Cloudkeep: {count} tenants at once, 3 gateways, one PostgreSQL, loopback TLS, {} ==",
            chrono::Utc::now().format("%Y-%m-%dT%H:%MZ")
        );
        println!(
            "backups succeeded: {} of {count} (each: login, task, keyring, {} packs, index, chunk set, point) in {:.1} s",
            count - failed.len(),
            local.packs.len(),
            took.as_secs_f64()
        );
        for e in failed.iter().take(5) {
            println!("  failed: {e}");
        }
        println!(
            "requests: {}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            all.len(),
            percentile(all.clone(), 0.5).as_secs_f64() * 1e3,
            percentile(all.clone(), 0.99).as_secs_f64() * 1e3,
            percentile(all, 1.0).as_secs_f64() * 1e3
        );
        for ((now, peak), id) in memory.iter().zip(["gw-a", "gw-b", "gw-c"]) {
            println!(
                "{id}: memory now {} MiB, peak {} MiB",
                now >> 10,
                peak >> 10
            );
        }
        for (mut child, _) in gateways {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        // What the database holds now, per table: rows and bytes with indexes (docs/scale.md
        // grows these to 10,000 tenants and a petabyte).
        let sizes = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-At", "-F", " ", &url, "-c"])
        .arg(
            "SELECT relname, (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' || relname, false, true, '')))[1]::text::bigint, \
             pg_total_relation_size(relid) FROM pg_stat_user_tables \
             WHERE relname NOT LIKE '\\_%' ORDER BY 3 DESC",
        )
        .output()?;
        println!("database after the run (table, rows, bytes with indexes, bytes per row):");
        for line in String::from_utf8_lossy(&sizes.stdout).lines() {
            let cols: Vec<&str> = line.split(' ').collect();
            if let [table, rows, bytes] = cols.as_slice() {
                let (rows, bytes): (u64, u64) =
                    (rows.parse().unwrap_or(0), bytes.parse().unwrap_or(0));
                println!(
                    "  {table:<16} {rows:>8} rows {:>8} KiB {:>8}",
                    bytes >> 10,
                    bytes
                        .checked_div(rows)
                        .map_or_else(|| "-".to_owned(), |b| format!("{b} B"))
                );
            }
        }
        if !failed.is_empty() {
            return Err(format!("{} tenants failed", failed.len()).into());
        }
        Ok(())
    }

    #[tokio::main]
    pub async fn main() -> Result<()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let usage = "usage: scale_bench CLOUDKEEP_BINARY WORK_DIR upload|tree DATASET|tenants N";
        let (binary, work, part) = match args.as_slice() {
            [b, w, p, ..] => (PathBuf::from(b), PathBuf::from(w), p.as_str()),
            _ => return Err(usage.into()),
        };
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        match (part, args.get(3)) {
            ("upload", _) => upload(&binary, &work).await,
            ("tree", Some(dataset)) => tree(&binary, &work, Path::new(dataset)).await,
            ("tenants", n) => {
                let count = n.and_then(|n| n.parse().ok()).unwrap_or(1000);
                tenants(&binary, &work, count).await
            }
            _ => Err(usage.into()),
        }
    }
}
