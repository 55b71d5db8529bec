//! Retention: which restore points to keep. Pure logic over (id, time) pairs, so it is
//! tested exhaustively and the engine, the scheduler and the console all apply the same rule.
//!
//! A point is kept when any rule keeps it: the newest `keep_last` points; every point younger
//! than `keep_days` days; and for GFS the newest point of each of the newest `weekly` ISO
//! weeks, `monthly` months and `yearly` years that have points. The newest point is always
//! kept, so retention can never empty a job.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

/// How many restore points to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Keep the newest N points.
    pub keep_last: Option<u32>,
    /// Keep every point younger than N days.
    pub keep_days: Option<u32>,
    /// Keep the newest point of each of the newest N weeks.
    pub weekly: u32,
    /// Keep the newest point of each of the newest N months.
    pub monthly: u32,
    /// Keep the newest point of each of the newest N years.
    pub yearly: u32,
}

impl RetentionPolicy {
    /// True when no rule is set (only the newest point would be kept).
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_days.is_none()
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
    }

    /// Sets the GFS counts from `weekly=W,monthly=M,yearly=Y` (any subset, any order).
    pub fn set_gfs(&mut self, text: &str) -> Result<(), String> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("\"{part}\" is not key=value; write e.g. weekly=4,monthly=12,yearly=3")
            })?;
            let n: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("\"{value}\" is not a count in \"{part}\""))?;
            match key.trim() {
                "weekly" => self.weekly = n,
                "monthly" => self.monthly = n,
                "yearly" => self.yearly = n,
                other => {
                    return Err(format!(
                        "unknown period \"{other}\"; use weekly, monthly or yearly"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Why a point is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// The newest point of the set.
    Newest,
    /// Among the newest `keep_last`.
    Last,
    /// Younger than `keep_days`.
    Days,
    /// GFS weekly.
    Weekly,
    /// GFS monthly.
    Monthly,
    /// GFS yearly.
    Yearly,
    /// The last clean point before a run that looked like ransomware: kept whatever the
    /// policy says, so there is always something to go back to.
    CleanBeforeSuspicious,
}

/// The decision for one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The point's id.
    pub id: String,
    /// Its time.
    pub time: DateTime<Utc>,
    /// Why it is kept; empty means it is removed.
    pub keep: Vec<KeepReason>,
}

impl Decision {
    /// True when no rule keeps the point.
    pub fn remove(&self) -> bool {
        self.keep.is_empty()
    }
}

/// Applies `policy` at `now` to points given as (id, time), in any order. Returns one
/// decision per point, newest first.
pub fn decide(
    policy: &RetentionPolicy,
    points: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = points.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut decisions: Vec<Decision> = sorted
        .iter()
        .map(|(id, time)| Decision {
            id: id.clone(),
            time: *time,
            keep: Vec::new(),
        })
        .collect();
    if let Some(first) = decisions.first_mut() {
        first.keep.push(KeepReason::Newest);
    }
    if let Some(n) = policy.keep_last {
        for d in decisions.iter_mut().take(n as usize) {
            d.keep.push(KeepReason::Last);
        }
    }
    if let Some(days) = policy.keep_days {
        let cutoff = now - chrono::Duration::days(i64::from(days));
        for d in decisions.iter_mut().filter(|d| d.time > cutoff) {
            d.keep.push(KeepReason::Days);
        }
    }
    let mut bucket = |count: u32, reason: KeepReason, key: fn(&DateTime<Utc>) -> (i32, u32)| {
        let mut seen = HashSet::new();
        for d in decisions.iter_mut() {
            if seen.len() >= count as usize {
                break;
            }
            // Newest first, so the first point met in a bucket is that bucket's newest.
            if seen.insert(key(&d.time)) {
                d.keep.push(reason);
            }
        }
    };
    bucket(policy.weekly, KeepReason::Weekly, |t| {
        let w = t.iso_week();
        (w.year(), w.week())
    });
    bucket(policy.monthly, KeepReason::Monthly, |t| {
        (t.year(), t.month())
    });
    bucket(policy.yearly, KeepReason::Yearly, |t| (t.year(), 0));
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
    }

    /// One point a day for `days` days ending at `end`.
    fn daily(end: DateTime<Utc>, days: i64) -> Vec<(String, DateTime<Utc>)> {
        (0..days)
            .map(|i| (format!("p{i:04}"), end - chrono::Duration::days(i)))
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<DateTime<Utc>> {
        decisions
            .iter()
            .filter(|d| !d.remove())
            .map(|d| d.time)
            .collect()
    }

    #[test]
    fn keep_last_keeps_exactly_the_newest() {
        let now = at(2026, 11, 22);
        let d = decide(
            &RetentionPolicy {
                keep_last: Some(3),
                ..Default::default()
            },
            &daily(now, 10),
            now,
        );
        assert_eq!(
            kept(&d),
            [at(2026, 11, 22), at(2026, 11, 21), at(2026, 11, 20)]
        );
    }

    #[test]
    fn keep_days_counts_back_from_now() {
        let now = at(2026, 11, 22);
        let d = decide(
            &RetentionPolicy {
                keep_days: Some(7),
                ..Default::default()
            },
            &daily(now, 30),
            now,
        );
        assert_eq!(kept(&d).len(), 7);
    }

    #[test]
    fn gfs_keeps_the_newest_of_each_week_month_and_year() {
        let now = at(2026, 11, 22); // a Sunday
        let policy = RetentionPolicy {
            keep_last: Some(2),
            weekly: 4,
            monthly: 3,
            yearly: 2,
            ..Default::default()
        };
        let d = decide(&policy, &daily(now, 800), now);
        let kept = kept(&d);
        // 2 last (22, 21 Nov); weekly: newest of 4 ISO weeks = 22, 15, 8, 1 Nov;
        // monthly: 22 Nov, 31 Oct, 30 Sep; yearly: 22 Nov 2026, 31 Dec 2025.
        let expected = [
            at(2026, 11, 22),
            at(2026, 11, 21),
            at(2026, 11, 15),
            at(2026, 11, 8),
            at(2026, 11, 1),
            at(2026, 10, 31),
            at(2026, 9, 30),
            at(2025, 12, 31),
        ];
        assert_eq!(kept, expected);
    }

    #[test]
    fn an_empty_policy_still_keeps_the_newest() {
        let now = at(2026, 1, 1);
        let d = decide(&RetentionPolicy::default(), &daily(now, 5), now);
        assert_eq!(kept(&d), [now]);
        assert_eq!(d[0].keep, [KeepReason::Newest]);
        assert!(decide(&RetentionPolicy::default(), &[], now).is_empty());
    }

    #[test]
    fn gfs_text_parses_with_helpful_errors() {
        let mut p = RetentionPolicy::default();
        assert!(p.is_empty());
        p.set_gfs("monthly=12, weekly=4,yearly=3").unwrap();
        assert_eq!((p.weekly, p.monthly, p.yearly), (4, 12, 3));
        assert!(!p.is_empty());
        assert!(
            p.set_gfs("daily=3")
                .unwrap_err()
                .contains("weekly, monthly or yearly")
        );
        assert!(p.set_gfs("weekly").unwrap_err().contains("key=value"));
        assert!(p.set_gfs("weekly=x").unwrap_err().contains("not a count"));
    }

    proptest! {
        #[test]
        fn never_empties_and_keep_last_is_a_floor(
            offsets in proptest::collection::vec(0i64..5000, 1..60),
            last in 0u32..10, weekly in 0u32..5, monthly in 0u32..5, yearly in 0u32..3,
        ) {
            let now = at(2026, 11, 22);
            let points: Vec<_> = offsets.iter().enumerate()
                .map(|(i, h)| (format!("p{i}"), now - chrono::Duration::hours(*h)))
                .collect();
            let policy = RetentionPolicy { keep_last: Some(last), weekly, monthly, yearly, ..Default::default() };
            let d = decide(&policy, &points, now);
            prop_assert_eq!(d.len(), points.len());
            let kept = d.iter().filter(|x| !x.remove()).count();
            prop_assert!(kept >= 1);
            prop_assert!(kept >= (last as usize).min(points.len()));
            prop_assert!(kept <= 1 + last as usize + (weekly + monthly + yearly) as usize);
            // Newest first.
            prop_assert!(d.windows(2).all(|w| w[0].time >= w[1].time));
        }
    }
}
