//! Notifications (by email or a webhook) of what needs a person: a failed run, a failed
//! restore test, a run that looked like ransomware. Configured per tenant (on its computers:
//! the console, `cloudkeep notify`) and per service provider (at the gateway:
//! `PUT /v1/admin/notify`, for every tenant's reports). Sent by `cloudkeep-notify`.

use serde::{Deserialize, Serialize};

/// Where notifications go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    /// Email over SMTP with TLS.
    #[serde(default)]
    pub email: Option<EmailChannel>,
    /// A webhook: an HTTPS POST of the event as JSON.
    #[serde(default)]
    pub webhook: Option<WebhookChannel>,
}

impl Channels {
    /// Whether no channel is set.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.webhook.is_none()
    }
}

/// How the SMTP connection is secured; never in the clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// STARTTLS on the submission port (587), required.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// An SMTP server and the addresses notifications go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChannel {
    /// The server's host name (its certificate must name it).
    pub server: String,
    /// Its port: 587 (STARTTLS) or 465 (TLS).
    pub port: u16,
    /// STARTTLS or TLS.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The login, when the server wants one.
    #[serde(default)]
    pub user: Option<String>,
    /// Its password: sent when set, never shown back (kept as a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A private certificate authority the server's certificate is signed by (PEM), besides
    /// the system's.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookChannel {
    /// `https://…` (plain `http://` only to this computer's loopback).
    pub url: String,
    /// A private certificate authority the endpoint's certificate is signed by (PEM).
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `run-failed`, `restore-test-failed`, `suspicious` or `test`.
    pub kind: String,
    /// Who noticed: `tenant` (its console, daemon or CLI) or `service provider`.
    pub source: String,
    /// The account (a tenant's login, or this computer's name on the tenant side).
    pub account: String,
    /// The job.
    pub job: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// What a person reads first (why it failed, which file, why it looked like ransomware).
    pub message: String,
}

impl Event {
    /// What a run's report calls for, noticed by `source` for `account`: a suspicious run,
    /// a failed restore test or a failed backup; `None` for a run that needs nobody.
    pub fn for_run(source: &str, account: &str, report: &crate::health::RunReport) -> Option<Self> {
        let (kind, message) = if !report.suspicious.is_empty() {
            (
                "suspicious",
                format!(
                    "The run looked like ransomware at work: {}. Its restore point is marked; the last clean one before it is kept.",
                    report.suspicious.join("; ")
                ),
            )
        } else if report.result == "failed" && report.kind == "restore-test" {
            ("restore-test-failed", report.message.clone())
        } else if report.result == "failed" {
            ("run-failed", report.message.clone())
        } else {
            return None;
        };
        Some(Self {
            kind: kind.into(),
            source: source.into(),
            account: account.into(),
            job: report.job.clone(),
            at_ms: report.finished_ms,
            message,
        })
    }

    /// A one-line subject.
    pub fn subject(&self) -> String {
        let what = match self.kind.as_str() {
            "run-failed" => "backup failed",
            "restore-test-failed" => "restore test failed",
            "suspicious" => "SUSPICIOUS backup (ransomware signs)",
            "test" => "test notification",
            other => other,
        };
        format!("Cloudkeep: {what}: {} ({})", self.job, self.account)
    }

    /// The body of an email.
    pub fn body(&self) -> String {
        let when = chrono::DateTime::from_timestamp_millis(self.at_ms)
            .map_or_else(String::new, |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
        format!(
            "{}\n\nJob: {}\nAccount: {}\nWhen: {when}\nNoticed by: {}\n\n{}\n",
            self.subject(),
            self.job,
            self.account,
            self.source,
            self.message
        )
    }
}
