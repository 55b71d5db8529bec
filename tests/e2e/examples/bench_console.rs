//! Console benchmark (issue 6), run by `scripts/bench-console` under Xvfb:
//!
//! 1. **Start to first interactive screen**: the real console binary is started on its own
//!    (no WebDriver), first on a fresh data home, then again on the same one; the figure is the
//!    wall time from spawning the process to the console's own log line "first screen
//!    interactive" (written when the first view has rendered and the page has answered), with
//!    the console's in-process figure beside it.
//! 2. **Folder listing in a 1,100,000-file restore point**: a real gateway, a tenant and a
//!    job made with the `cloudkeep` CLI back up the tree given as the first argument; then the
//!    console (through WebDriver) lists folders of the point exactly as its tree does, timed in
//!    the page around the `point_list_dir` command: the first listing (opens the repository
//!    and loads its index), first visits of folders (tree blobs fetched from the gateway), and
//!    the same folders again (read from the local catalog cache).
//!
//! Usage: `bench_console TREE` where TREE holds `dir0000..dir0999` and `big` (the layout of
//! `scripts/bench-browse`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloudkeep_e2e::{Console, Gateway, console_binary, run_cli, terminate};
use serde_json::{Value, json};

/// Console starts measured on an existing data home.
const WARM_STARTS: usize = 5;
/// Folders visited per pass.
const FOLDERS: usize = 21;
/// Entries per page, as the console's tree asks for.
const PAGE: usize = 200;

#[tokio::main]
async fn main() -> Result<()> {
    let tree = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: bench_console TREE (see scripts/bench-console)")?,
    );
    if !tree.join("big").is_dir() {
        bail!("{} does not hold the benchmark tree", tree.display());
    }
    println!("== Cloudkeep Console benchmark ==");
    startup()?;
    listing(&tree).await
}

/// Starts the console `1 + WARM_STARTS` times and prints the time to the first interactive
/// screen of each.
fn startup() -> Result<()> {
    let home = tempfile::tempdir()?;
    println!("\nstart to first interactive screen (spawn -> log line; in-process figure):");
    let mut warm = Vec::new();
    for i in 0..=WARM_STARTS {
        let (wall, inner) = one_start(home.path())?;
        let label = if i == 0 {
            "first start (new data folder)"
        } else {
            "start"
        };
        println!(
            "  {label:<32} {:>8.1} ms   (in process {inner:>7.1} ms)",
            ms(wall)
        );
        if i > 0 {
            warm.push(ms(wall));
        }
    }
    println!("  {:<32} {:>8.1} ms", "median of starts", median(&mut warm));
    Ok(())
}

/// One start: spawn, wait for the ready line in the log, stop the console.
fn one_start(home: &Path) -> Result<(Duration, f64)> {
    let logs = home.join("logs");
    let before = ready_lines(&logs).len();
    let started = Instant::now();
    let mut child = Command::new(console_binary()?)
        .env("CLOUDKEEP_HOME", home)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start the console")?;
    let found = loop {
        let lines = ready_lines(&logs);
        if lines.len() > before {
            break lines[before].clone();
        }
        if started.elapsed() > Duration::from_secs(60) {
            terminate(i64::from(child.id()));
            bail!("the console logged no \"first screen interactive\" within 60 s");
        }
        if let Some(status) = child.try_wait()? {
            bail!("the console exited ({status}) before its first screen");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    terminate(i64::from(child.id()));
    let _ = child.wait();
    let inner = found
        .split("ms=")
        .nth(1)
        .and_then(|rest| rest.trim_matches('"').split(['"', ' ']).next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    Ok((wall, inner))
}

/// The "first screen interactive" lines of the console's logs, oldest first.
fn ready_lines(logs: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.contains("first screen interactive"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Backs `tree` up through a real gateway, then times folder listings in the console.
async fn listing(tree: &Path) -> Result<()> {
    let gateway = Gateway::start()?;
    let sp_home = gateway.dir.path().join("sp-admin");
    let storage = gateway.dir.path().join("storage-main");
    let (addr, fp) = (gateway.addr.as_str(), gateway.fingerprint.as_str());
    run_cli(
        &sp_home,
        &[
            "sp",
            "login",
            "--gateway",
            addr,
            "--user",
            "admin",
            "--password-stdin",
            "--trust",
            fp,
        ],
        Some(&gateway.admin_password),
    )?;
    run_cli(
        &sp_home,
        &[
            "sp",
            "repo",
            "add",
            "main",
            "--path",
            &storage.to_string_lossy(),
        ],
        None,
    )?;
    run_cli(
        &sp_home,
        &[
            "sp",
            "tenant",
            "add",
            "acme",
            "--password-stdin",
            "--quota",
            "main=50G",
        ],
        Some("tenant-password-1"),
    )?;
    let home = tempfile::tempdir()?;
    run_cli(
        home.path(),
        &[
            "provider",
            "add",
            "sp",
            "--host",
            addr,
            "--user",
            "acme",
            "--password-stdin",
            "--trust",
            fp,
        ],
        Some("tenant-password-1"),
    )?;
    run_cli(
        home.path(),
        &[
            "job",
            "create",
            "big",
            "--provider",
            "sp",
            "--repo",
            "main",
            "--source",
            &tree.to_string_lossy(),
            "--encryption-password-stdin",
        ],
        Some("job-encryption-secret"),
    )?;
    let files = count_files(tree);
    println!("\nbacking up {files} files through the gateway on loopback ...");
    let started = Instant::now();
    run_cli(home.path(), &["job", "run", "big"], None)?;
    println!("  backup took {:.1} s", started.elapsed().as_secs_f64());

    let console = Console::launch_in(home, &[]).await?;
    let points = console
        .invoke("points_list", json!({ "job": "big", "all": false }))
        .await?
        .map_err(|e| anyhow::anyhow!("points_list: {e}"))?;
    let point = points[0]["id"]
        .as_str()
        .context("no restore point")?
        .to_owned();
    let root = tree.to_string_lossy().into_owned();
    println!(
        "\nfolder listing in the console ({PAGE} entries a page, timed in the page around the command):"
    );

    // points_list opened the repository; drop it so the first listing pays for the opening.
    console
        .invoke("points_refresh", json!({ "job": "big" }))
        .await?
        .ok();
    let (t, total) = list(&console, &point, &root, 0).await?;
    println!(
        "  {:<44} {t:>8.2} ms  ({total} entries)",
        "first listing (open repository + index)"
    );

    let folders: Vec<String> = (0..FOLDERS)
        .map(|i| format!("{root}/dir{:04}", i * 47))
        .collect();
    for pass in ["first visit of each folder", "again (catalog cached)"] {
        let mut times = Vec::new();
        for folder in &folders {
            times.push(list(&console, &point, folder, 0).await?.0);
            // Another folder between visits, as a person browsing goes up and down.
            list(&console, &point, &root, 0).await?;
        }
        let worst = times.iter().copied().fold(0.0, f64::max);
        println!(
            "  {:<44} {:>8.2} ms median, {worst:.2} ms worst ({FOLDERS} folders of 1,000)",
            pass,
            median(&mut times)
        );
    }
    let big = format!("{root}/big");
    let (t, total) = list(&console, &point, &big, 0).await?;
    println!("  {:<44} {t:>8.2} ms  ({total} entries)", "big: first page");
    let (t, _) = list(&console, &point, &big, 50_000).await?;
    println!(
        "  {:<44} {t:>8.2} ms",
        "big: page at entry 50,000 (same folder)"
    );
    list(&console, &point, &root, 0).await?;
    let (t, _) = list(&console, &point, &big, 0).await?;
    println!(
        "  {:<44} {t:>8.2} ms",
        "big: first page again (catalog cached)"
    );
    console.shutdown().await?;
    drop(gateway);
    Ok(())
}

/// Times one `point_list_dir` call in the page; returns (ms, entries in the folder).
async fn list(console: &Console, point: &str, path: &str, offset: usize) -> Result<(f64, u64)> {
    let script = r#"
        const [args, done] = arguments;
        const t0 = performance.now();
        window.__TAURI__.core.invoke('point_list_dir', args).then(
            (page) => done({ ms: performance.now() - t0, total: page.total, n: page.entries.length }),
            (err) => done({ err }));
    "#;
    let args =
        json!({ "job": "big", "point": point, "path": path, "offset": offset, "limit": PAGE });
    let answer: Value = console.client.execute_async(script, vec![args]).await?;
    if let Some(err) = answer.get("err") {
        bail!("point_list_dir {path}: {err}");
    }
    if answer["n"].as_u64() == Some(0) {
        bail!("point_list_dir {path} returned no entries");
    }
    Ok((
        answer["ms"].as_f64().unwrap_or(f64::NAN),
        answer["total"].as_u64().unwrap_or(0),
    ))
}

fn count_files(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
