//! When things run: the `Schedule` of a job, a policy or a health check (manual, daily at a
//! time on chosen weekdays, every N hours), how it is written (`daily@02:30:mon,thu`), the
//! next run after a moment, and whether a job is due. A job whose runs were missed (the
//! computer slept or was off) is due once, not once per missed run. Daily schedules are in the
//! computer's local time. Part of the shared model: the wire (policies), the tenant side and
//! the faces all use it, and it imports none of them.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone};

use serde::{Deserialize, Serialize};

/// Tries after a failed scheduled run, by default (as backup consoles commonly do).
pub const DEFAULT_RETRIES: u32 = 3;

/// Seconds between tries, by default.
pub const DEFAULT_RETRY_WAIT_S: u64 = 600;

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Only when started.
    #[default]
    Manual,
    /// Daily at a time (`HH:MM`, local time) on the given weekdays (all when empty).
    Daily {
        /// `HH:MM`.
        at: String,
        /// `mon` … `sun`.
        weekdays: Vec<String>,
    },
    /// Every N hours.
    EveryHours {
        /// N.
        hours: u32,
    },
}

impl Schedule {
    /// For people, as the console shows it: `daily at 22:00`, `daily at 03:00 on mon, thu`,
    /// `every 6 hours`, `manual` (the CLI's flag form is [`std::fmt::Display`]).
    pub fn describe(&self) -> String {
        match self {
            Self::Manual => "manual".into(),
            Self::EveryHours { hours: 1 } => "every hour".into(),
            Self::EveryHours { hours } => format!("every {hours} hours"),
            Self::Daily { at, weekdays } if weekdays.is_empty() => format!("daily at {at}"),
            Self::Daily { at, weekdays } => format!("daily at {at} on {}", weekdays.join(", ")),
        }
    }

    /// Parses `manual`, `daily@HH:MM`, `daily@HH:MM:mon,wed,fri` or `every:Nh`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "\"{text}\" is not a schedule; use manual, daily@02:30, daily@02:30:mon,thu or every:6h"
            )
        };
        if text == "manual" {
            return Ok(Self::Manual);
        }
        if let Some(hours) = text
            .strip_prefix("every:")
            .and_then(|h| h.strip_suffix('h'))
        {
            let hours: u32 = hours.parse().map_err(|_| bad())?;
            return if (1..=168).contains(&hours) {
                Ok(Self::EveryHours { hours })
            } else {
                Err(bad())
            };
        }
        let rest = text.strip_prefix("daily@").ok_or_else(bad)?;
        let (at, days) = match rest.match_indices(':').nth(1) {
            Some((i, _)) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        chrono::NaiveTime::parse_from_str(at, "%H:%M").map_err(|_| bad())?;
        let weekdays: Vec<String> = days
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        if weekdays.iter().any(|d| !DAYS.contains(&d.as_str())) {
            return Err(bad());
        }
        Ok(Self::Daily {
            at: at.to_owned(),
            weekdays,
        })
    }
}

impl std::fmt::Display for Schedule {
    /// The form [`Schedule::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Manual => f.write_str("manual"),
            Self::EveryHours { hours } => write!(f, "every:{hours}h"),
            Self::Daily { at, weekdays } if weekdays.is_empty() => write!(f, "daily@{at}"),
            Self::Daily { at, weekdays } => write!(f, "daily@{at}:{}", weekdays.join(",")),
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The first run of `schedule` strictly after `after`; `None` for manual jobs.
pub fn next_after<Tz: TimeZone>(schedule: &Schedule, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
    match schedule {
        Schedule::Manual => None,
        Schedule::EveryHours { hours } => Some(after.clone() + Duration::hours(i64::from(*hours))),
        Schedule::Daily { at, weekdays } => {
            let time = NaiveTime::parse_from_str(at, "%H:%M").ok()?;
            let tz = after.timezone();
            let start = after.date_naive();
            (0..=8).find_map(|offset| {
                let day = start + Duration::days(offset);
                let name = DAYS[day.weekday().num_days_from_monday() as usize];
                if !weekdays.is_empty() && !weekdays.iter().any(|d| d == name) {
                    return None;
                }
                let at = tz.from_local_datetime(&day.and_time(time)).earliest()?;
                (at > *after).then_some(at)
            })
        }
    }
}

/// Whether a job is due at `now`: the next run after its last run (or, never run, after its
/// creation) has come.
pub fn is_due<Tz: TimeZone>(
    schedule: &Schedule,
    last_run: Option<DateTime<Tz>>,
    created: DateTime<Tz>,
    now: &DateTime<Tz>,
) -> bool {
    let since = last_run.unwrap_or(created);
    next_after(schedule, &since).is_some_and(|next| next <= *now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn daily_schedules_pick_the_next_allowed_day() {
        let daily = Schedule::parse("daily@02:30").unwrap();
        // 2026-11-23 is a Monday.
        assert_eq!(
            next_after(&daily, &at("2026-11-23T01:00:00Z")),
            Some(at("2026-11-23T02:30:00Z"))
        );
        assert_eq!(
            next_after(&daily, &at("2026-11-23T02:30:00Z")),
            Some(at("2026-11-24T02:30:00Z"))
        );
        let mon_thu = Schedule::parse("daily@02:30:mon,thu").unwrap();
        assert_eq!(
            next_after(&mon_thu, &at("2026-11-23T03:00:00Z")),
            Some(at("2026-11-26T02:30:00Z"))
        );
        assert_eq!(
            next_after(&mon_thu, &at("2026-11-27T03:00:00Z")),
            Some(at("2026-11-30T02:30:00Z"))
        );
        assert_eq!(
            next_after(&Schedule::Manual, &at("2026-11-23T03:00:00Z")),
            None
        );
    }

    #[test]
    fn schedules_read_as_people_say_them() {
        for (flag, said) in [
            ("manual", "manual"),
            ("daily@22:00", "daily at 22:00"),
            ("daily@03:00:mon,thu", "daily at 03:00 on mon, thu"),
            ("every:1h", "every hour"),
            ("every:6h", "every 6 hours"),
        ] {
            assert_eq!(Schedule::parse(flag).unwrap().describe(), said);
        }
    }

    #[test]
    fn missed_runs_are_due_once() {
        let every = Schedule::parse("every:6h").unwrap();
        let created = at("2026-11-20T00:00:00Z");
        assert!(!is_due(&every, None, created, &at("2026-11-20T05:59:00Z")));
        assert!(is_due(&every, None, created, &at("2026-11-20T06:00:00Z")));
        // Off for three days: due once; after that run, not again until 6 h later.
        let now = at("2026-11-23T10:00:00Z");
        assert!(is_due(
            &every,
            Some(at("2026-11-20T06:00:00Z")),
            created,
            &now
        ));
        assert!(!is_due(
            &every,
            Some(now),
            created,
            &at("2026-11-23T15:59:00Z")
        ));
        let daily = Schedule::parse("daily@02:30").unwrap();
        assert!(is_due(
            &daily,
            Some(at("2026-11-20T02:30:00Z")),
            created,
            &now
        ));
        assert!(!is_due(
            &daily,
            Some(now),
            created,
            &at("2026-11-24T02:29:00Z")
        ));
        assert!(!is_due(&Schedule::Manual, None, created, &now));
    }
}
