//! Gateway benchmark (issue 4), against a real `cloudkeep gateway run` process on loopback:
//! 1. pack upload throughput over TLS into the folder backend, side by side with the raw
//!    sequential write speed of the same disk (`dd … oflag=direct`);
//! 2. 1,000 authenticated TLS connections held open: the gateway's resident memory per
//!    connection, and the p99 latency of `hello` and of a 1,000-id presence batch meanwhile.
//!
//! `cargo run --release -p cloudkeep-gateway --example gateway_bench -- CLOUDKEEP_BINARY WORK_DIR`

use std::process::Command;
use std::time::{Duration, Instant};

use cloudkeep_api::{NewTenant, QuotaSpec, TenantSettings};
use cloudkeep_client::SpClient;
use cloudkeep_tests::pseudo_random as random;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const PACK: usize = 32 << 20;
const PACKS: usize = 16;
const CONNECTIONS: usize = 1000;

fn rss_kib(pid: u32) -> Result<u64> {
    Ok(cloudkeep_tests::gateway::rss_kib_of(pid)?.0)
}

fn percentile(mut times: Vec<Duration>, p: f64) -> Duration {
    times.sort();
    let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
    times[i]
}

/// `dd` of `PACKS` × 32 MiB with direct I/O into `dir`: MB/s as dd reports it.
fn dd_speed(dir: &std::path::Path) -> Result<f64> {
    let src = dir.join("dd-source");
    std::fs::write(&src, random(PACK, 9))?;
    let out = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", dir.join("dd-target").display()))
        .args(["bs=32M", "iflag=fullblock", "oflag=direct", "conv=fsync"])
        .arg(format!("count={PACKS}"))
        .output()?;
    // Reading the same 32 MiB source again and again: count copies of it.
    let text = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_file(dir.join("dd-target"));
    let _ = std::fs::remove_file(&src);
    let line = text.lines().last().ok_or("dd printed nothing")?;
    let bytes: f64 = line.split_whitespace().next().ok_or("dd output")?.parse()?;
    let secs: f64 = line
        .split(", ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .ok_or("dd output")?
        .parse()?;
    Ok(bytes / secs / 1e6)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, work] = args.as_slice() else {
        return Err("usage: gateway_bench CLOUDKEEP_BINARY WORK_DIR".into());
    };
    let work = std::path::PathBuf::from(work);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let storage = work.join("storage");
    let admin_pw = cloudkeep_tests::gateway::ADMIN_PASSWORD;
    let gw = cloudkeep_tests::gateway::GatewayProcess::start(binary.as_ref(), &work.join("gw"))?;
    let (addr, fingerprint) = (gw.addr.clone(), gw.fingerprint.clone());
    let mut admin = SpClient::new(&addr, &fingerprint)?;
    admin.login("admin", admin_pw).await?;
    admin
        .add_repo("main", &storage.display().to_string())
        .await?;
    admin
        .add_tenant(&NewTenant {
            name: "bench".into(),
            password: "bench-password".into(),
            settings: TenantSettings::default(),
            quotas: vec![QuotaSpec {
                repo: "main".into(),
                friendly_name: Some("Cloud".into()),
                bytes: cloudkeep_model::units::Limit::Bytes(1 << 40),
            }],
        })
        .await?;
    let tls = || cloudkeep_client::tls::pinned_config(&fingerprint);
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls()?)
        .http1_only()
        .build()?;
    let base = format!("https://{addr}");
    let login: Value = http
        .post(format!("{base}/v1/login"))
        .json(&json!({"user": "bench", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().ok_or("no token")?.to_owned();
    let task: Value = http
        .post(format!("{base}/v1/tasks"))
        .bearer_auth(&token)
        .json(&json!({"kind": "backup"}))
        .send()
        .await?
        .json()
        .await?;
    let task = task["id"].as_str().ok_or("no task")?.to_owned();

    // 1. 1,000 authenticated connections held open.
    eprintln!("opening {CONNECTIONS} authenticated connections …");
    let pid = gw.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Measured on a gateway that has served only logins so far, so freed upload buffers
    // cannot hide what connections cost.
    let before = rss_kib(pid)?;
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls()?)
            .http1_only()
            .pool_idle_timeout(Duration::from_secs(600))
            .build()?;
        let resp = client
            .get(format!("{base}/v1/repos"))
            .bearer_auth(&token)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err("an authenticated request failed".into());
        }
        resp.bytes().await?;
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid)?;
    let per_conn = after.saturating_sub(before) as f64 / CONNECTIONS as f64;

    let ids: Vec<String> = (0..1000u32)
        .map(|i| blake3::hash(&i.to_le_bytes()).to_hex().to_string())
        .collect();
    let mut hello = Vec::new();
    let mut presence = Vec::new();
    for i in 0..300 {
        let client = &clients[i % CONNECTIONS];
        let t = Instant::now();
        client
            .get(format!("{base}/v1/hello"))
            .send()
            .await?
            .bytes()
            .await?;
        hello.push(t.elapsed());
        let t = Instant::now();
        client
            .post(format!("{base}/v1/repos/Cloud/chunks/present"))
            .bearer_auth(&token)
            .json(&json!({ "ids": ids }))
            .send()
            .await?
            .bytes()
            .await?;
        presence.push(t.elapsed());
    }
    let still_open = clients.len();
    let held = rss_kib(pid)?;

    // 2. Upload throughput, two streams, against dd on the same disk.
    eprintln!("measuring raw disk writes (dd) and pack uploads …");
    let disk = dd_speed(&work)?;
    let packs: Vec<Vec<u8>> = (0..PACKS as u64).map(|i| random(PACK, 100 + i)).collect();
    let started = Instant::now();
    let mut uploads = Vec::new();
    for lane in 0..2 {
        let (http, base, token, task) = (http.clone(), base.clone(), token.clone(), task.clone());
        let mine: Vec<Vec<u8>> = packs.iter().skip(lane).step_by(2).cloned().collect();
        uploads.push(tokio::spawn(async move {
            for pack in mine {
                let id = blake3::hash(&pack).to_hex().to_string();
                let mut body = vec![7u8; 32];
                body.extend_from_slice(&pack);
                let resp = http
                    .put(format!("{base}/v1/repos/Cloud/packs/{id}"))
                    .bearer_auth(&token)
                    .header("x-cloudkeep-task", &task)
                    .header("x-cloudkeep-chunks", "1")
                    .body(body)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    return Err(format!("upload failed: {}", resp.text().await?).into());
                }
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for u in uploads {
        u.await?.map_err(|e| e.to_string())?;
    }
    let upload = (PACKS * PACK) as f64 / started.elapsed().as_secs_f64() / 1e6;

    println!();
    println!(
        "== Cloudkeep gateway benchmark: loopback TLS 1.3, folder backend, {} ==",
        chrono::Utc::now().format("%Y-%m-%dT%H:%MZ")
    );
    println!("pack upload ({PACKS} x 32 MiB, 2 streams)   {upload:>8.1} MB/s");
    println!("raw disk write (dd oflag=direct)         {disk:>8.1} MB/s");
    println!(
        "upload / disk                            {:>8.2}   (target >= 0.70)",
        upload / disk
    );
    println!("gateway RSS before connections           {:>8} KiB", before);
    println!(
        "gateway RSS with {still_open} connections       {:>8} KiB",
        after.max(held)
    );
    println!("per connection                           {per_conn:>8.1} KiB  (target <= 256)");
    println!(
        "hello p50 / p99                          {:>8.2} / {:.2} ms",
        percentile(hello.clone(), 0.5).as_secs_f64() * 1e3,
        percentile(hello, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "presence (1,000 ids) p50 / p99           {:>8.2} / {:.2} ms",
        percentile(presence.clone(), 0.5).as_secs_f64() * 1e3,
        percentile(presence, 0.99).as_secs_f64() * 1e3
    );
    drop(clients);
    drop(gw);
    Ok(())
}
