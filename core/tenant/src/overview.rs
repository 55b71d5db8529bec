//! What the tenant sees first (the console's Home, `cloudkeep status`): the latest sessions,
//! each cloud repository's quota use, every job with its last result and next run, and the
//! warnings that need a person — a lease that ends within 14 days or has ended, a quota above
//! 90 %, a provider whose certificate changed or that cannot be reached, a job whose last run
//! failed or looked like ransomware at work.

use chrono::{DateTime, Local};
use cloudkeep_model::units::Limit;
use serde::Serialize;

use super::TenantError;
use super::jobs::{Job, SessionRecord};
use super::providers::{self, Provider};
use super::runner::target_text;
use super::scheduler::next_run;
use super::secrets::Secrets;
use super::state::TenantState;

/// A lease that ends within this many days is a warning.
pub const LEASE_WARNING_DAYS: i64 = 14;
/// A quota used above this share is a warning.
pub const QUOTA_WARNING_SHARE: f64 = 0.9;
/// How long a provider may take to answer a rescan.
pub const RESCAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);
/// How many sessions the overview lists.
pub const RECENT_SESSIONS: usize = 10;

/// One cloud repository's use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoUse {
    /// The provider.
    pub provider: String,
    /// The repository.
    pub repo: String,
    /// Quota (`-1` when serialised: unlimited).
    pub quota_bytes: Limit,
    /// Stored bytes.
    pub used_bytes: i64,
    /// Free bytes (unlimited when the quota is).
    pub free_bytes: Limit,
    /// Used share of the quota, 0 to 1 (0 when unlimited).
    pub used_share: f64,
    /// When the lease ends, ms since the epoch.
    pub lease_until_ms: Option<i64>,
    /// Once the lease has ended: until when restores still work.
    pub restore_until_ms: Option<i64>,
    /// When these figures were read from the provider.
    pub scanned_ms: Option<i64>,
}

/// A job as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    /// Its name.
    pub name: String,
    /// Where it stores its points, for people.
    pub target: String,
    /// Its schedule for people (`manual`, `daily at 02:30`, `every 6 hours`).
    pub schedule: String,
    /// Its latest backup session, without the log.
    pub last: Option<SessionRecord>,
    /// The next scheduled backup, ms since the epoch (in the past when due now).
    pub next_run_ms: Option<i64>,
    /// What its newest restore test says: when it was last proven restorable.
    pub proof: Option<super::restoretest::Proof>,
}

/// A warning that needs a person, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `lease`, `quota`, `certificate`, `unreachable`, `failed`, `suspicious`,
    /// `restore-test`.
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
    /// The provider or job it is about.
    pub subject: String,
}

/// Everything the first screen shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// The latest sessions, newest first, without their logs.
    pub sessions: Vec<SessionRecord>,
    /// Every cloud repository of every provider.
    pub repos: Vec<RepoUse>,
    /// Every job.
    pub jobs: Vec<JobSummary>,
    /// What needs attention.
    pub notices: Vec<Notice>,
    /// How many providers there are (none: the first-run screen).
    pub providers: usize,
}

/// Sessions as lists carry them: without their logs (a log is read on its own).
pub fn brief(session: &SessionRecord) -> SessionRecord {
    SessionRecord {
        log: Vec::new(),
        ..session.clone()
    }
}

/// Every job with its last backup and next run.
pub fn job_summaries(jobs: &[Job], sessions: &[SessionRecord]) -> Vec<JobSummary> {
    jobs.iter()
        .map(|job| JobSummary {
            name: job.name.clone(),
            target: target_text(&job.spec.target),
            schedule: match &job.spec.agent {
                // A policy's computer runs on its agent's schedule, not on this one.
                Some(member) => format!("by the agent of {}", member.computer),
                None => job.spec.schedule.describe(),
            },
            last: sessions
                .iter()
                .find(|s| s.job == job.name && s.kind == "backup")
                .map(brief),
            next_run_ms: next_run(job, sessions).map(|t| t.timestamp_millis()),
            proof: super::restoretest::proof_of(&job.name, sessions),
        })
        .collect()
}

/// The use of each repository of `provider` as last scanned.
fn repo_uses(provider: &Provider) -> Vec<RepoUse> {
    provider
        .repos
        .iter()
        .map(|r| RepoUse {
            provider: provider.name.clone(),
            repo: r.name.clone(),
            quota_bytes: r.quota_bytes,
            used_bytes: r.used_bytes,
            free_bytes: r.free_bytes,
            used_share: match r.quota_bytes {
                Limit::Bytes(0) => 1.0, // nothing may be stored: full
                Limit::Bytes(q) => (r.used_bytes.max(0) as f64 / q as f64).min(1.0),
                Limit::Unlimited => 0.0, // shares its tenant's quota
            },
            lease_until_ms: r.lease_until_ms,
            restore_until_ms: r.restore_until_ms,
            scanned_ms: provider.scanned_ms,
        })
        .collect()
}

/// The warnings the figures call for at `now`.
pub fn notices_for(repos: &[RepoUse], jobs: &[JobSummary], now: DateTime<Local>) -> Vec<Notice> {
    let mut out = Vec::new();
    let now_ms = now.timestamp_millis();
    let mut leases_seen = std::collections::HashSet::new();
    for r in repos {
        if let Some(until) = r.lease_until_ms
            && until - now_ms < LEASE_WARNING_DAYS * 86_400_000
            && leases_seen.insert(&r.provider)
        {
            let date = cloudkeep_model::units::date_text(Some(until));
            out.push(Notice {
                kind: "lease".into(),
                message: if until < now_ms {
                    let restores = match r.restore_until_ms {
                        Some(last) => format!(
                            "restores work until {}",
                            cloudkeep_model::units::date_text(Some(last))
                        ),
                        None => "restores too, once the service provider's grace period is over".into(),
                    };
                    format!(
                        "the lease at \"{}\" ended on {date}: backups are refused, {restores}; ask your service provider to extend it",
                        r.provider
                    )
                } else {
                    format!(
                        "the lease at \"{}\" ends on {date}; ask your service provider to extend it before then",
                        r.provider
                    )
                },
                subject: r.provider.clone(),
            });
        }
        if r.used_share > QUOTA_WARNING_SHARE {
            out.push(Notice {
                kind: "quota".into(),
                message: format!(
                    "\"{}\" at \"{}\" is {:.0} % full ({} of {}); delete old restore points, keep fewer, or ask for more space",
                    r.repo,
                    r.provider,
                    r.used_share * 100.0,
                    cloudkeep_model::units::human_bytes(r.used_bytes.max(0) as u64),
                    r.quota_bytes
                ),
                subject: r.provider.clone(),
            });
        }
    }
    for j in jobs {
        if let Some(last) = &j.last
            && let Some(reasons) = super::anomaly::reasons_of(last)
        {
            out.push(Notice {
                kind: "suspicious".into(),
                message: format!(
                    "the last run of \"{}\" looks like ransomware at work: {}. Check the computer before anything else; the run's restore point is marked, and the last clean one before it is kept whatever the retention says",
                    j.name,
                    reasons.join("; ")
                ),
                subject: j.name.clone(),
            });
        }
        if let Some(proof) = &j.proof
            && proof.result == "failed"
        {
            out.push(Notice {
                kind: "restore-test".into(),
                message: format!(
                    "the restore test of \"{}\" failed: {}. Run a health check of the job to find and set aside the damage; the next backup sends again what its source still has",
                    j.name, proof.message
                ),
                subject: j.name.clone(),
            });
        }
        if let Some(last) = &j.last
            && last.result == "failed"
        {
            out.push(Notice {
                kind: "failed".into(),
                message: format!("the last run of \"{}\" failed: {}", j.name, last.message),
                subject: j.name.clone(),
            });
        }
    }
    out
}

/// The overview at `now`. With `rescan`, each provider is asked for fresh figures first (a
/// changed certificate or an unreachable gateway becomes a warning; the last figures stay).
pub async fn overview(
    state: &TenantState,
    secrets: &Secrets,
    now: DateTime<Local>,
    rescan: bool,
) -> Result<Overview, TenantError> {
    let mut notices = Vec::new();
    let mut repos = Vec::new();
    let all = state.providers().await?;
    for provider in &all {
        let fresh = if rescan {
            let asked = tokio::time::timeout(
                RESCAN_TIMEOUT,
                providers::rescan(state, secrets, &provider.name),
            )
            .await
            .unwrap_or_else(|_| {
                Err(TenantError::Slow {
                    provider: provider.name.clone(),
                    seconds: RESCAN_TIMEOUT.as_secs(),
                })
            });
            match asked {
                Ok(p) => Some(p),
                Err(e) => {
                    notices.push(provider_notice(&provider.name, &e));
                    None
                }
            }
        } else {
            None
        };
        let seen = fresh.as_ref().unwrap_or(provider);
        notices.extend(cert_notices(seen, now.timestamp_millis()));
        repos.extend(repo_uses(seen));
    }
    let jobs = state.jobs().await?;
    let sessions = state.sessions(None).await?;
    let mut summaries = job_summaries(&jobs, &sessions);
    notices.extend(computers_standing(&state.policies().await?, &mut summaries));
    notices.extend(notices_for(&repos, &summaries, now));
    Ok(Overview {
        sessions: sessions.iter().take(RECENT_SESSIONS).map(brief).collect(),
        repos,
        jobs: summaries,
        notices,
        providers: all.len(),
    })
}

/// What the provider said of each policy computer at the last sync: its restore test (on its
/// job's line, unless this computer tested it itself later) and a last run that looked like
/// ransomware (a warning).
fn computers_standing(
    policies: &[super::policies::Policy],
    jobs: &mut [JobSummary],
) -> Vec<Notice> {
    let mut out = Vec::new();
    for policy in policies {
        for computer in &policy.computers {
            let Some(health) = policy
                .status
                .iter()
                .find(|s| s.computer == computer.computer)
                .and_then(|s| s.health.as_ref())
            else {
                continue;
            };
            if let Some(job) = jobs.iter_mut().find(|j| j.name == computer.job)
                && let Some(reported) = super::restoretest::proof_from(health)
                && job
                    .proof
                    .as_ref()
                    .is_none_or(|p| p.tested_ms < reported.tested_ms)
            {
                job.proof = Some(reported);
            }
            if health.suspicious_ms.is_some() && health.suspicious_ms >= health.backup_ms {
                out.push(Notice {
                    kind: "suspicious".into(),
                    message: format!(
                        "the last run of computer \"{}\" (policy \"{}\") looks like ransomware at work: {}. Check the computer before anything else; its restore point is marked, and the last clean one before it is kept whatever the retention says",
                        computer.computer,
                        policy.name,
                        health.suspicious.join("; ")
                    ),
                    subject: computer.job.clone(),
                });
            }
        }
    }
    out
}

/// Days before its end that a provider's certificate is warned about.
pub const CERT_WARNING_DAYS: i64 = 30;

/// How long Home tells of a certificate change accepted by itself.
const CHANGE_SHOWN_MS: i64 = 7 * 86_400_000;

/// A provider's certificate: about to expire, or changed lately without anyone asked.
pub fn cert_notices(provider: &providers::Provider, now_ms: i64) -> Vec<Notice> {
    let mut out = Vec::new();
    if let Some(change) = &provider.cert.changed
        && now_ms - change.ms < CHANGE_SHOWN_MS
    {
        out.push(Notice {
            kind: "certificate-changed".into(),
            message: format!("{}; accepted by itself", change.text(&provider.name)),
            subject: provider.name.clone(),
        });
    }
    let ends = provider
        .cert
        .not_after
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(ends) = ends {
        let days = (ends.timestamp_millis() - now_ms).div_euclid(86_400_000);
        if days < CERT_WARNING_DAYS {
            let when = ends.format("%Y-%m-%d");
            out.push(Notice {
                kind: "certificate".into(),
                message: if days < 0 {
                    format!("the certificate of \"{}\" expired on {when}: ask your provider to renew it", provider.name)
                } else {
                    format!(
                        "the certificate of \"{}\" expires on {when}, in {days} days: your provider must renew it before then (a renewal it announces, or a CA-signed one, is followed by itself)",
                        provider.name
                    )
                },
                subject: provider.name.clone(),
            });
        }
    }
    out
}

/// A provider that could not be rescanned, as a warning.
fn provider_notice(name: &str, e: &TenantError) -> Notice {
    use cloudkeep_model::failure::{Failure, FailureKind};
    let kind = match e.kind() {
        Some(FailureKind::Certificate) => "certificate",
        Some(FailureKind::Quota) => "lease",
        _ => "unreachable",
    };
    Notice {
        kind: kind.into(),
        message: e.to_string(),
        subject: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn repo(share: f64, lease_days: Option<i64>, now: i64) -> RepoUse {
        RepoUse {
            provider: "acme".into(),
            repo: "Cloud".into(),
            quota_bytes: Limit::Bytes(1000),
            used_bytes: (share * 1000.0) as i64,
            free_bytes: Limit::Bytes(1000 - (share * 1000.0) as u64),
            used_share: share,
            lease_until_ms: lease_days.map(|d| now + d * 86_400_000),
            restore_until_ms: lease_days
                .filter(|d| *d < 0)
                .map(|d| now + (d + 30) * 86_400_000),
            scanned_ms: Some(now),
        }
    }

    #[test]
    fn a_certificate_near_its_end_or_changed_by_itself_is_told() {
        let now = 1_800_000_000_000;
        let day = 86_400_000;
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339()
        };
        let mut p = providers::Provider {
            name: "acme".into(),
            addresses: vec!["gw:1".into()],
            fingerprint: "AA".into(),
            user: "acme".into(),
            added_ms: now,
            repos: vec![],
            scanned_ms: None,
            cert: providers::CertState {
                not_after: Some(at(now + 90 * day)),
                ..Default::default()
            },
        };
        assert!(cert_notices(&p, now).is_empty());
        p.cert.not_after = Some(at(now + 29 * day + 1));
        let soon = cert_notices(&p, now);
        assert_eq!(soon.len(), 1);
        assert!(soon[0].message.contains("in 29 days"), "{soon:?}");
        p.cert.not_after = Some(at(now - day));
        assert!(cert_notices(&p, now)[0].message.contains("expired"));
        p.cert.not_after = None;
        p.cert.changed = Some(providers::CertChange {
            ms: now - day,
            previous: "AA".into(),
            now: "BB".into(),
            how: "a CA-signed renewal for the gateway's host name".into(),
        });
        let changed = cert_notices(&p, now);
        assert_eq!(changed[0].kind, "certificate-changed");
        assert!(changed[0].message.contains("now BB, was AA"), "{changed:?}");
        // After a week it is no longer news.
        assert!(cert_notices(&p, now + 7 * day).is_empty());
    }

    #[test]
    fn notices_name_leases_quotas_and_failed_jobs() {
        let now = Local.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let ms = now.timestamp_millis();
        assert!(notices_for(&[repo(0.5, Some(30), ms)], &[], now).is_empty());
        let soon = notices_for(&[repo(0.95, Some(10), ms)], &[], now);
        let kinds: Vec<&str> = soon.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["lease", "quota"]);
        assert!(soon[0].message.contains("ends on"), "{}", soon[0].message);
        assert!(soon[1].message.contains("95 % full"), "{}", soon[1].message);
        let ended = notices_for(&[repo(0.1, Some(-1), ms)], &[], now);
        assert!(ended[0].message.contains("ended"), "{:?}", ended);
        let failed = SessionRecord {
            id: 3,
            job: "docs".into(),
            kind: "backup".into(),
            started_ms: ms,
            finished_ms: ms,
            result: "failed".into(),
            point: None,
            stats: serde_json::json!({}),
            warnings: serde_json::json!([]),
            message: "quota exceeded".into(),
            log: vec![],
        };
        let job = JobSummary {
            name: "docs".into(),
            target: "folder /x".into(),
            schedule: "manual".into(),
            last: Some(failed),
            next_run_ms: None,
            proof: None,
        };
        let notices = notices_for(&[], std::slice::from_ref(&job), now);
        assert_eq!(notices[0].kind, "failed");
        assert!(notices[0].message.contains("quota exceeded"));

        // A failed restore test warns, naming what does not restore.
        let tested = JobSummary {
            last: None,
            proof: Some(crate::restoretest::Proof {
                result: "failed".into(),
                tested_ms: ms,
                proven_point_ms: None,
                proven_ms: None,
                message: "NOT restorable as backed up: /home/a.txt: damaged".into(),
            }),
            ..job
        };
        let notices = notices_for(&[], &[tested], now);
        assert_eq!(notices[0].kind, "restore-test");
        assert!(notices[0].message.contains("/home/a.txt"), "{notices:?}");
    }

    /// A policy computer's restore test and suspicious run, as the provider reported them at
    /// the last sync, show on its job's line and as a warning.
    #[test]
    fn a_policy_computers_standing_reaches_home() {
        use cloudkeep_api::health::JobHealth;
        use cloudkeep_api::policy::{ComputerStatus, PolicySpec};
        let policy = crate::policies::Policy {
            name: "laptops".into(),
            id: "p1".into(),
            provider: "acme".into(),
            spec: PolicySpec::template("Cloud".into()),
            revision: 1,
            created_ms: 0,
            synced_ms: Some(10),
            computers: vec![crate::policies::PolicyComputer {
                computer: "pc1".into(),
                login: "acme/laptops-pc1".into(),
                job: "laptops-pc1".into(),
                added_ms: 0,
            }],
            status: vec![ComputerStatus {
                computer: "pc1".into(),
                login: "acme/laptops-pc1".into(),
                enabled: true,
                quota_bytes: Limit::Unlimited,
                used_bytes: 0,
                applied_revision: 1,
                seen_ms: None,
                next_run_ms: None,
                last: None,
                last_success: None,
                health: Some(JobHealth {
                    login: "acme/laptops-pc1".into(),
                    job: "laptops-pc1".into(),
                    backup_ms: Some(500),
                    backup_result: Some("warning".into()),
                    tested_ms: Some(400),
                    test_result: Some("success".into()),
                    proven_ms: Some(400),
                    suspicious_ms: Some(500),
                    suspicious: vec!["120 files rewritten with random-looking content".into()],
                    ..JobHealth::default()
                }),
            }],
        };
        let mut jobs = vec![JobSummary {
            name: "laptops-pc1".into(),
            target: "acme / Cloud".into(),
            schedule: "by the agent of pc1".into(),
            last: None,
            next_run_ms: None,
            proof: None,
        }];
        let notices = computers_standing(&[policy], &mut jobs);
        assert_eq!(jobs[0].proof.as_ref().and_then(|p| p.proven_ms), Some(400));
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].kind, "suspicious");
        assert!(
            notices[0].message.contains("computer \"pc1\""),
            "{notices:?}"
        );
    }
}
