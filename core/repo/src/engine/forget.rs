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
    /// Points made by runs that looked like ransomware (`signals::assess`), with when each
    /// run started: the newest point older than each of them that is not one of them is
    /// kept, whatever the policy says — also once the suspicious point itself is gone.
    pub suspicious: Vec<(String, DateTime<Utc>)>,
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

/// Keeps, for each suspicious run, the newest point older than it that is not suspicious.
fn protect_clean_points(
    decisions: &mut [retention::Decision],
    suspicious: &[(String, DateTime<Utc>)],
) {
    let marked: std::collections::HashSet<&str> =
        suspicious.iter().map(|(id, _)| id.as_str()).collect();
    for (_, started) in suspicious {
        let clean = decisions
            .iter_mut()
            .filter(|d| d.time < *started && !marked.contains(d.id.as_str()))
            .max_by_key(|d| d.time);
        if let Some(clean) = clean
            && !clean
                .keep
                .contains(&retention::KeepReason::CleanBeforeSuspicious)
        {
            clean
                .keep
                .push(retention::KeepReason::CleanBeforeSuspicious);
        }
    }
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
        protect_clean_points(&mut decisions, &filter.suspicious);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, day: i64, kept: bool) -> retention::Decision {
        retention::Decision {
            id: id.into(),
            time: DateTime::from_timestamp(day * 86_400, 0).unwrap(),
            keep: if kept {
                vec![retention::KeepReason::Last]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn the_last_clean_point_before_a_suspicious_one_is_kept() {
        let at = |day: i64| DateTime::from_timestamp(day * 86_400 + 60, 0).unwrap();
        // Newest first, as the policy decides: keep-last 1 keeps only "d".
        let mut decisions = vec![
            decision("d", 4, true),
            decision("c", 3, false),
            decision("b", 2, false),
            decision("a", 1, false),
        ];
        let suspicious = vec![("c".to_owned(), at(3)), ("d".to_owned(), at(4))];
        protect_clean_points(&mut decisions, &suspicious);
        let kept: Vec<&str> = decisions
            .iter()
            .filter(|d| !d.remove())
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(kept, ["d", "b"], "b is the last clean point before c");
        assert_eq!(
            decisions[2].keep,
            [retention::KeepReason::CleanBeforeSuspicious]
        );
        // The suspicious point gone already: its clean predecessor stays all the same.
        let mut later = vec![
            decision("f", 6, true),
            decision("e", 5, false),
            decision("b", 2, false),
        ];
        protect_clean_points(&mut later, &[("c".to_owned(), at(3))]);
        assert!(!later[2].remove(), "{later:?}");
        assert!(later[1].remove());
        // Nothing suspicious: the policy alone decides.
        let mut plain = vec![decision("b", 2, true), decision("a", 1, false)];
        protect_clean_points(&mut plain, &[]);
        assert!(plain[1].remove());
    }
}
