//! Backups already in a provider's cloud repositories, for a computer that has none of the
//! jobs that made them (the one with the console was lost, or this is another one): what
//! each repository holds without its key (that it holds backups, encrypted or not, how many
//! restore points and the newest's time) — the tenant's own and those of its backup
//! policies' computers (their managed subtenants, reached with the tenant's login acting for
//! them) — then, with the encryption password, the jobs in it (their computers, sources,
//! points, newest point), and one of them adopted as a job of this computer, so its points
//! can be browsed and restored (and, for the tenant's own, backed up to again).

use cloudkeep_model::retention::RetentionPolicy;
use cloudkeep_model::schedule::Schedule;
use cloudkeep_repo::repo::{Repository, Unlock};
use serde::Serialize;

use super::TenantContext;
use super::TenantError;
use super::jobs::{self, Job, JobSpec, Target};

/// One cloud repository of a provider, as seen without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundRepo {
    /// The provider.
    pub provider: String,
    /// The repository's name (as the provider shows it).
    pub repo: String,
    /// A policy computer's managed subtenant (`tenant/sub`) whose repository this is; `None`
    /// for the tenant's own.
    pub account: Option<String>,
    /// Whether it holds a Cloudkeep repository at all.
    pub has_backups: bool,
    /// Whether opening it needs the encryption password.
    pub encrypted: bool,
    /// Its restore points (of every job in it).
    pub points: usize,
    /// The newest one's time, ms since the epoch.
    pub newest_ms: Option<i64>,
    /// Jobs of this computer that store there already.
    pub jobs_here: Vec<String>,
    /// Why it could not be looked into now (the rest of the list still is).
    pub problem: Option<String>,
}

/// A job found in a repository (opened with its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundJob {
    /// The job's (or policy's) name as its points record it.
    pub name: String,
    /// The computers its points came from.
    pub computers: Vec<String>,
    /// What its newest point backed up.
    pub sources: Vec<String>,
    /// How many restore points it has.
    pub points: usize,
    /// Its newest point: time (ms), files and bytes.
    pub newest_ms: i64,
    /// Files in the newest point.
    pub files: u64,
    /// Bytes in the newest point.
    pub bytes: u64,
    /// `file` (a file-level backup) or `image` (its newest point images disks: `sources` are
    /// the disks).
    pub level: String,
    /// The job of this computer with this name on this repository, if there is one.
    pub here: Option<String>,
}

/// The cloud repositories of `provider` — the tenant's own, then its policy computers'
/// (managed subtenants) — with what they hold, as far as can be seen without their keys.
/// Blocking.
pub fn repositories(ctx: &TenantContext, provider: &str) -> Result<Vec<FoundRepo>, TenantError> {
    let state = ctx.state();
    let p = ctx.block_on(super::providers::rescan(state, ctx.secrets(), provider))?;
    let local = ctx.block_on(state.jobs())?;
    // A provider that lists no subtenants now (a subtenant's own account, a lease in its
    // grace days) still shows the tenant's own repositories.
    let subtenants = match ctx.block_on(super::providers::connect(state, ctx.secrets(), provider)) {
        Ok((client, _)) => ctx.block_on(client.subtenants()).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut places: Vec<(String, Option<String>)> =
        p.repos.iter().map(|r| (r.name.clone(), None)).collect();
    for sub in subtenants.iter().filter(|v| v.tenant.managed) {
        for q in &sub.quotas {
            places.push((q.friendly_name.clone(), Some(sub.tenant.login.clone())));
        }
    }
    let mut out = Vec::new();
    for (repo, account) in places {
        let target = Target::Provider {
            provider: p.name.clone(),
            repo: repo.clone(),
            account: account.clone(),
        };
        let looked = jobs::open_target_backend(&target, Some(&p), ctx.secrets())
            .and_then(|backend| Ok(Repository::outline(backend.as_ref())?));
        let (outline, problem) = match looked {
            Ok(outline) => (outline, None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(FoundRepo {
            provider: p.name.clone(),
            repo,
            account,
            has_backups: outline.is_some(),
            encrypted: outline.as_ref().is_some_and(|o| o.encrypted),
            points: outline.as_ref().map_or(0, |o| o.point_times_ns.len()),
            newest_ms: outline
                .as_ref()
                .and_then(|o| o.point_times_ns.last())
                .map(|ns| ns / 1_000_000),
            jobs_here: local
                .iter()
                .filter(|j| j.spec.target == target)
                .map(|j| j.name.clone())
                .collect(),
            problem,
        });
    }
    Ok(out)
}

/// The jobs in `repo` of `provider` (of its policy computer `account`, when given), opened
/// with `password` (none for an unencrypted one). Blocking.
pub fn jobs_in(
    ctx: &TenantContext,
    provider: &str,
    repo: &str,
    account: Option<&str>,
    password: Option<&str>,
) -> Result<Vec<FoundJob>, TenantError> {
    let target = Target::Provider {
        provider: provider.to_owned(),
        repo: repo.to_owned(),
        account: account.map(str::to_owned),
    };
    let p = ctx.block_on(ctx.state().provider(provider))?;
    let backend = jobs::open_target_backend(&target, Some(&p), ctx.secrets())?;
    let unlock = match password {
        Some(pw) => Unlock::Password(pw),
        None => Unlock::Unencrypted,
    };
    let repository = match Repository::open(backend, unlock) {
        Err(cloudkeep_repo::repo::RepoError::NotARepository) => {
            return Err(TenantError::Invalid(format!(
                "\"{repo}\" holds no backups yet; back up to it with a new job"
            )));
        }
        other => other?,
    };
    let local = ctx.block_on(ctx.state().jobs())?;
    let mut found: Vec<FoundJob> = Vec::new();
    // Oldest first: the last one seen of a job is its newest.
    for point in repository.list_points()? {
        let m = &point.manifest;
        let at = found.iter().position(|f| f.name == m.job);
        let entry = match at {
            Some(i) => &mut found[i],
            None => {
                found.push(FoundJob {
                    name: m.job.clone(),
                    computers: Vec::new(),
                    sources: Vec::new(),
                    points: 0,
                    newest_ms: 0,
                    files: 0,
                    bytes: 0,
                    level: "file".into(),
                    here: local
                        .iter()
                        .find(|j| j.name == m.job && j.spec.target == target)
                        .map(|j| j.name.clone()),
                });
                let last = found.len() - 1;
                &mut found[last]
            }
        };
        entry.points += 1;
        if !entry.computers.contains(&m.host) {
            entry.computers.push(m.host.clone());
        }
        entry.newest_ms = point.time_ns / 1_000_000;
        if m.is_image() {
            entry.sources = m.disks.iter().map(|d| d.path.clone()).collect();
            entry.level = "image".into();
        } else {
            entry.sources.clone_from(&m.paths);
            entry.level = "file".into();
        }
        entry.files = m.stats.files;
        entry.bytes = m.stats.bytes;
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.newest_ms));
    Ok(found)
}

/// Makes job `found` of `repo` a job of this computer named `name`: same sources, the
/// repository's encryption with `password` (checked: a wrong one is refused and nothing is
/// kept), no schedule (runs only when started, until edited), and a retention that keeps at
/// least every point already there, so adopting never removes one. A policy computer's
/// (`account`) becomes that computer's entry: browsed and restored here, backed up only by
/// its agent. Blocking.
pub fn adopt(
    ctx: &TenantContext,
    provider: &str,
    repo: &str,
    account: Option<&str>,
    found: &FoundJob,
    name: &str,
    password: Option<&str>,
) -> Result<Job, TenantError> {
    if let Some(existing) = &found.here {
        return Err(TenantError::Invalid(format!(
            "job \"{existing}\" of this computer already stores there: open it to browse and restore"
        )));
    }
    if found.name != name {
        // The points carry the job's name: a job sees only the points of its own name.
        return Err(TenantError::Invalid(format!(
            "the restore points are recorded as job \"{}\": adopt it under that name",
            found.name
        )));
    }
    let image = found.level == "image";
    let spec = JobSpec {
        mode: if image {
            cloudkeep_model::mode::BackupMode::Volumes
        } else {
            cloudkeep_model::mode::BackupMode::Files
        },
        volumes: if image {
            found.sources.clone()
        } else {
            Vec::new()
        },
        sources: if image {
            Vec::new()
        } else {
            found.sources.clone()
        },
        excludes: Vec::new(),
        target: Target::Provider {
            provider: provider.to_owned(),
            repo: repo.to_owned(),
            account: account.map(str::to_owned),
        },
        schedule: Schedule::Manual,
        retention: RetentionPolicy {
            keep_last: Some(u32::try_from(found.points).unwrap_or(u32::MAX).max(14)),
            keep_days: None,
            weekly: 4,
            monthly: 6,
            yearly: 1,
        },
        encrypted: password.is_some(),
        compression: "default".into(),
        retries: jobs::DEFAULT_RETRIES,
        retry_wait_s: jobs::DEFAULT_RETRY_WAIT_S,
        health_check: Schedule::Manual,
        restore_test: Schedule::Manual,
        restore_test_sample: jobs::RESTORE_TEST_SAMPLE,
        // Its agent backs it up; the policy itself is not on this computer (its id unknown).
        agent: account.map(|login| cloudkeep_api::policy::Membership {
            policy_id: String::new(),
            computer: found
                .computers
                .first()
                .cloned()
                .unwrap_or_else(|| login.rsplit('/').next().unwrap_or(login).to_owned()),
        }),
    };
    super::keys::create_job(ctx, name, &spec, password)
}
