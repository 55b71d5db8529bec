//! Forget: applies a retention policy to a repository's restore points, separately for each
//! job on each computer, and removes the points no rule keeps. The data they alone referenced
//! stays in the repository until garbage collection ([`super::gc`]) removes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::EngineError;
use crate::repo::Repository;
use cloudkeep_model::retention::{self, Decision, RetentionPolicy};

/// Points of one job on one computer, as (id, time).
type Points = Vec<(String, DateTime<Utc>)>;

/// Which points a forget run looks at.
#[derive(Debug, Clone, Default)]
pub struct ForgetFilter {
    /// Only this job.
    pub job: Option<String>,
    /// Only this computer.
    pub host: Option<String>,
}

/// The decisions for one job on one computer.
#[derive(Debug, Clone, Serialize)]
pub struct GroupDecisions {
    /// Computer.
    pub host: String,
    /// Job.
    pub job: String,
    /// One decision per point, newest first.
    pub decisions: Vec<Decision>,
}

/// Decides (and unless `dry_run`, removes) per job and computer.
pub fn forget(
    repo: &Repository,
    policy: &RetentionPolicy,
    filter: &ForgetFilter,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<GroupDecisions>, EngineError> {
    // An empty policy would keep only the newest point of every job: surely a mistake.
    if policy.is_empty() {
        return Err(EngineError::EmptyPolicy);
    }
    // Keyed by (host, job).
    let mut groups: BTreeMap<(String, String), Points> = BTreeMap::new();
    // Empty points (nothing was read: a source gone) never count towards what is kept.
    let mut empty: BTreeMap<(String, String), Vec<(String, i64)>> = BTreeMap::new();
    for point in repo.list_points()? {
        let m = &point.manifest;
        if filter.job.as_ref().is_some_and(|j| *j != m.job)
            || filter.host.as_ref().is_some_and(|h| *h != m.host)
        {
            continue;
        }
        let time = DateTime::from_timestamp(
            point.time_ns.div_euclid(1_000_000_000),
            point.time_ns.rem_euclid(1_000_000_000) as u32,
        )
        .unwrap_or_default();
        let key = (m.host.clone(), m.job.clone());
        if m.stats.files == 0 && m.stats.bytes == 0 {
            empty
                .entry(key.clone())
                .or_default()
                .push((point.id.clone(), point.time_ns));
            groups.entry(key).or_default();
        } else {
            groups
                .entry(key)
                .or_default()
                .push((point.id.clone(), time));
        }
    }
    let mut out = Vec::new();
    for ((host, job), points) in groups {
        let mut decisions = retention::decide(policy, &points, now);
        // An empty point goes, unless it is all the group has (the newest of them stays).
        let mut empties = empty
            .remove(&(host.clone(), job.clone()))
            .unwrap_or_default();
        empties.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        for (n, (id, time_ns)) in empties.into_iter().enumerate() {
            let time = DateTime::from_timestamp(
                time_ns.div_euclid(1_000_000_000),
                time_ns.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap_or_default();
            let keep = if n == 0 && points.is_empty() {
                vec![retention::KeepReason::Newest]
            } else {
                vec![]
            };
            decisions.push(retention::Decision { id, time, keep });
        }
        if !dry_run {
            for d in decisions.iter().filter(|d| d.remove()) {
                repo.delete_point(&d.id)?;
            }
        }
        out.push(GroupDecisions {
            host,
            job,
            decisions,
        });
    }
    Ok(out)
}
