//! Ransomware signals for jobs: each backup run's change signals (`cloudkeep_repo::signals`)
//! judged against the job's own earlier runs, the verdict kept in the session's statistics
//! (`signals`, and `suspicious` with the reasons), and what follows from it — the run's log
//! and Home say so, and retention keeps the last clean point before every suspicious one.

use chrono::{DateTime, Utc};

use cloudkeep_repo::engine::backup::BackupReport;
use cloudkeep_repo::signals::{Assessment, ChangeSignals, assess};
use serde_json::json;

use super::jobs::SessionRecord;

/// Earlier runs a run is judged against at most.
pub const HISTORY: usize = 30;

/// The change signals of a job's earlier backup runs (newest first, as sessions are listed).
pub fn history(sessions: &[SessionRecord]) -> Vec<ChangeSignals> {
    sessions
        .iter()
        .filter(|s| s.kind == "backup")
        .filter_map(|s| serde_json::from_value(s.stats.get("signals")?.clone()).ok())
        .take(HISTORY)
        .collect()
}

/// Judges a run's signals (none: a first backup, nothing to compare) against `sessions`,
/// the job's earlier ones.
pub fn judge(sessions: &[SessionRecord], signals: Option<&ChangeSignals>) -> Assessment {
    match signals {
        Some(signals) => assess(signals, &history(sessions)),
        None => Assessment::default(),
    }
}

/// Why a session's run looked like ransomware; `None` for an ordinary one.
pub fn reasons_of(session: &SessionRecord) -> Option<Vec<String>> {
    let reasons: Vec<String> =
        serde_json::from_value(session.stats.get("suspicious")?.clone()).ok()?;
    (!reasons.is_empty()).then_some(reasons)
}

/// The restore points made by runs that looked like ransomware, with when each run started.
pub fn suspicious_points(sessions: &[SessionRecord]) -> Vec<(String, DateTime<Utc>)> {
    sessions
        .iter()
        .filter(|s| reasons_of(s).is_some())
        .filter_map(|s| {
            Some((
                s.point.clone()?,
                DateTime::from_timestamp_millis(s.started_ms)?,
            ))
        })
        .collect()
}

/// A backup session's statistics: the point's, with the run's signals and, when it looked
/// like ransomware, why.
pub fn session_stats(report: &BackupReport, verdict: &Assessment) -> serde_json::Value {
    let mut stats = json!(report.point.manifest.stats);
    if let Some(signals) = &report.signals {
        stats["signals"] = json!(signals);
    }
    if verdict.suspicious {
        stats["suspicious"] = json!(verdict.reasons);
    }
    stats
}

/// The log line of a suspicious run.
pub fn log_line(verdict: &Assessment) -> String {
    format!(
        "SUSPICIOUS: this run looks like ransomware at work — {}; its restore point is marked, and the last clean one before it is kept whatever the retention says",
        verdict.reasons.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(point: &str, stats: serde_json::Value) -> SessionRecord {
        SessionRecord {
            id: 0,
            job: "docs".into(),
            kind: "backup".into(),
            started_ms: 0,
            finished_ms: 0,
            result: "success".into(),
            point: Some(point.into()),
            stats,
            warnings: json!([]),
            message: String::new(),
            log: Vec::new(),
        }
    }

    #[test]
    fn sessions_carry_the_history_and_the_marks() {
        let quiet = ChangeSignals {
            parent_files: 1000,
            changed: 4,
            ..ChangeSignals::default()
        };
        let sessions = vec![
            session(
                "p3",
                json!({"signals": quiet, "suspicious": ["files renamed"]}),
            ),
            session("p2", json!({"signals": quiet})),
            session("p1", json!({"files": 10})),
        ];
        assert_eq!(history(&sessions), [quiet, quiet]);
        assert_eq!(
            suspicious_points(&sessions),
            [("p3".to_owned(), DateTime::from_timestamp_millis(0).unwrap())]
        );
        assert_eq!(reasons_of(&sessions[0]).unwrap(), ["files renamed"]);
        assert!(reasons_of(&sessions[1]).is_none());
        let attack = ChangeSignals {
            parent_files: 1000,
            encrypted_rewrites: 300,
            ..ChangeSignals::default()
        };
        assert!(judge(&sessions, Some(&attack)).suspicious);
        assert!(!judge(&sessions, None).suspicious, "a first backup");
    }
}
