//! Browse benchmark: opens a repository once (as the console does), loads its index, and
//! times listing folders of a restore point, printing the median of repeated runs.
//!
//! `cargo run --release -p cloudkeep-repo --example browse_bench -- REPO PASSWORD_FILE POINT PATH...`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::engine::browse;
use cloudkeep_repo::repo::{Repository, Unlock};

const RUNS: usize = 21;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo_dir, password_file, point, paths @ ..] = args.as_slice() else {
        return Err("usage: browse_bench REPO PASSWORD_FILE POINT PATH...".into());
    };
    let password = std::fs::read_to_string(password_file)?
        .trim_end()
        .to_owned();
    let started = Instant::now();
    let repo = Repository::open(
        Arc::new(FolderStore::open(repo_dir)?),
        Unlock::Password(&password),
    )?;
    let opened = started.elapsed();
    let started = Instant::now();
    let index = repo.load_index()?;
    let point = repo.find_point(point)?;
    let loaded = started.elapsed();
    println!(
        "open (Argon2id unlock)       {:>9.1} ms",
        opened.as_secs_f64() * 1000.0
    );
    println!(
        "index + point ({} blobs)  {:>9.1} ms",
        index.len(),
        loaded.as_secs_f64() * 1000.0
    );
    println!("{} files in the point", point.manifest.stats.files);
    for path in paths {
        let mut times = Vec::with_capacity(RUNS);
        let mut entries = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            entries = browse::list_dir(&repo, &index, &point, path)?.len();
            times.push(t.elapsed());
        }
        println!(
            "list {:<40} {:>7} entries {:>7.2} ms (median of {RUNS})",
            path,
            entries,
            median(times).as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
