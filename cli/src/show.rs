//! What the CLI prints about a repository, the same for a local folder (`cloudkeep local …`)
//! and a job's cloud repository (`cloudkeep points …`, `restore …`): restore points, folder
//! listings, search results, differences, health checks and restores, as text or JSON.

use std::collections::HashMap;

use cloudkeep_tenant::catalog::PointMark;
use std::path::PathBuf;
use std::process::ExitCode;

use cloudkeep_repo::catalog::NodeKind;
use cloudkeep_repo::engine::browse;
use cloudkeep_repo::engine::restore::{
    Conflict, Destination, RestoreOptions, RestoreReport, restore as run_restore,
};
use cloudkeep_repo::engine::verify::verify as run_verify;
use cloudkeep_repo::repo::{Repository, RestorePoint};
use serde_json::json;

use crate::exit;
use crate::progress::ProgressLine;
use cloudkeep_model::units::human_bytes;

/// A time in ns since the epoch, for people (UTC).
pub fn time_text(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    .unwrap_or_else(|| "?".into())
}

/// Whose restore points a command sees: a job's own (`Some`: jobs sharing one repository
/// never see each other's points), or all of a repository named by its folder (`None`).
pub type Job<'a> = Option<&'a str>;

/// A restore point by id prefix or `latest`, among `job`'s points.
fn pick(repo: &Repository, job: Job<'_>, point: &str) -> anyhow::Result<RestorePoint> {
    Ok(match job {
        Some(job) => repo.find_job_point(job, point)?,
        None => repo.find_point(point)?,
    })
}

/// The restore points of a repository (of `job`'s, only its own).
pub fn points(
    repo: &Repository,
    job: Job<'_>,
    marks: &HashMap<String, PointMark>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let mut points = repo.list_points()?;
    if let Some(job) = job {
        points.retain(|p| p.manifest.job == job);
    }
    if json_out {
        let rows: Vec<_> = points
            .iter()
            .map(|p| {
                let mark = marks.get(&p.id).cloned().unwrap_or_default();
                json!({"id": p.id, "time": time_text(p.time_ns), "host": p.manifest.host, "job": p.manifest.job, "level": if p.manifest.is_image() { "image" } else { "files" }, "paths": p.manifest.paths, "disks": p.manifest.disks, "stats": p.manifest.stats, "suspicious": mark.suspicious, "proven_ms": mark.proven_ms})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if points.is_empty() {
        println!("no restore points yet; make one with a backup");
    } else {
        println!(
            "{:<12}  {:<20}  {:<12}  {:<10}  {:>8}  {:>10}  MARK",
            "ID", "TIME (UTC)", "HOST", "JOB", "FILES", "SIZE"
        );
        for p in &points {
            let mark = marks.get(&p.id).map_or(String::new(), |m| {
                match (m.suspicious.is_empty(), m.proven_ms) {
                    (false, _) => "SUSPICIOUS (ransomware signs)".to_owned(),
                    (true, Some(_)) => "proven restorable".to_owned(),
                    (true, None) => String::new(),
                }
            });
            println!(
                "{:<12}  {:<20}  {:<12}  {:<10}  {:>8}  {:>10}  {mark}",
                p.short_id(),
                time_text(p.time_ns),
                p.manifest.host,
                p.manifest.job,
                p.manifest.stats.files,
                human_bytes(p.manifest.stats.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One folder of a restore point.
pub fn browse(
    repo: &Repository,
    job: Job<'_>,
    point: &str,
    path: &str,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let point = pick(repo, job, point)?;
    let index = repo.load_readable_index()?;
    let nodes = browse::list_dir(repo, &index, &point, path)?;
    if json_out {
        let rows: Vec<_> = nodes
            .iter()
            .map(|n| json!({"name": n.display_name(), "kind": format!("{:?}", n.kind).to_lowercase(), "size": n.size, "mtime": time_text(n.times.mtime_ns)}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for n in &nodes {
            let suffix = if n.kind == NodeKind::Dir { "/" } else { "" };
            println!(
                "{:>10}  {}  {}{suffix}",
                human_bytes(n.size),
                time_text(n.times.mtime_ns),
                n.display_name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Entries of a restore point whose name matches a glob.
pub fn find(
    repo: &Repository,
    job: Job<'_>,
    point: &str,
    pattern: &str,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let point = pick(repo, job, point)?;
    let found = browse::find(repo, &repo.load_readable_index()?, &point, pattern)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for f in &found {
            println!(
                "{:>10}  {}  {}",
                human_bytes(f.size),
                time_text(f.mtime_ns),
                f.path
            );
        }
        println!("{} found", found.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// What changed between two restore points.
pub fn diff(
    repo: &Repository,
    job: Job<'_>,
    from: &str,
    to: &str,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let (a, b) = (pick(repo, job, from)?, pick(repo, job, to)?);
    let changes = browse::diff(repo, &repo.load_readable_index()?, &a, &b)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        for c in &changes {
            let mark = match c.kind {
                browse::ChangeKind::Added => '+',
                browse::ChangeKind::Removed => '-',
                browse::ChangeKind::Changed => 'M',
            };
            println!("{mark}  {}", c.path);
        }
        println!(
            "{} changes from {} to {}",
            changes.len(),
            a.short_id(),
            b.short_id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The health check.
pub fn verify(repo: &Repository, sample: u8, json_out: bool) -> anyhow::Result<ExitCode> {
    let report = run_verify(repo, sample)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} packs, {} blobs, {}",
            report.packs_checked,
            report.blobs_checked,
            human_bytes(report.bytes_checked)
        );
        for d in &report.damaged {
            println!("damaged pack {}: {}", &d.pack[..16], d.reason);
            if !d.action.is_empty() {
                println!("  {}", d.action);
            }
        }
        for d in &report.damaged_points {
            println!("restore point {} is damaged: {}", &d.point[..12], d.reason);
        }
        for a in &report.affected {
            println!("restore point {} is affected:", &a.point[..12]);
            for p in &a.paths {
                println!("  {p}");
            }
        }
        if report.is_healthy() {
            println!("no damage found");
        } else {
            println!(
                "everything else restores intact; what is lost is marked, so the next backup sends it again where the files still exist"
            );
        }
    }
    Ok(if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

/// Restores paths (all when empty) of a point to a folder or where they came from.
pub fn restore(
    repo: &Repository,
    point: &str,
    to: Option<PathBuf>,
    paths: Vec<String>,
    conflict: Conflict,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let point = repo.find_point(point)?;
    let show = ProgressLine::new(json_out);
    let report = run_restore(
        repo,
        &point,
        &RestoreOptions {
            destination: to.map_or(Destination::Original, Destination::Folder),
            paths,
            conflict,
            cancel: Default::default(),
        },
        &|p| show.update(p),
    )?;
    show.finish();
    restore_report(&report, json_out)
}

/// Prints what a restore did (skipped and failed items on stderr); exit 1 when some failed.
pub fn restore_report(report: &RestoreReport, json_out: bool) -> anyhow::Result<ExitCode> {
    if json_out {
        println!("{}", json!({"event": "done", "report": report}));
    } else {
        for s in &report.skipped {
            eprintln!("skipped: {}: {}", s.path.display(), s.message);
        }
        for f in &report.failed {
            eprintln!("failed: {}: {}", f.path.display(), f.message);
        }
        for r in &report.renamed {
            eprintln!("renamed: {}: {}", r.path.display(), r.message);
        }
        for p in &report.placed {
            println!("{} -> {}", p.from, p.to.display());
        }
        println!("{}", report.summary());
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}
