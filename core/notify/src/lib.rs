//! Sends notifications ([`cloudkeep_api::notify::Event`]) to the channels a tenant or a
//! service provider set: an email through an SMTP server, over STARTTLS or TLS and never in
//! the clear (`lettre` on rustls), and a webhook, the event as JSON in an HTTPS POST
//! (`reqwest` on rustls; plain HTTP only to the loopback). A private certificate authority
//! may be trusted besides the system's, for servers inside an SP's or tenant's network.
//!
//! Sending never fails the run it reports: each channel's outcome is returned for the caller
//! to log, and every connection has a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_api::notify::{Channels, EmailChannel, Event, SmtpSecurity, WebhookChannel};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How long one channel may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Why a channel cannot be used, or did not take the notification.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// An address that is not an email address.
    #[error("\"{0}\" is not an email address; write it as name@example.com")]
    Address(String),
    /// A webhook URL this version will not post to.
    #[error("webhook \"{url}\": {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A certificate authority that does not read as PEM.
    #[error("the certificate authority given is not a PEM certificate: {0}")]
    Ca(String),
    /// The SMTP server refused or could not be reached.
    #[error("email through {server}: {reason}")]
    Email {
        /// `host:port`.
        server: String,
        /// Why.
        reason: String,
    },
    /// The webhook's endpoint refused or could not be reached.
    #[error("webhook {url}: {reason}")]
    Webhook {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// One channel's outcome.
#[derive(Debug)]
pub struct Delivery {
    /// `email` or `webhook`.
    pub channel: &'static str,
    /// Whether it took the notification.
    pub outcome: Result<(), NotifyError>,
}

/// Checks channels before they are kept: addresses parse, a webhook is HTTPS (or HTTP to the
/// loopback), a certificate authority is PEM.
pub fn check(channels: &Channels) -> Result<(), NotifyError> {
    if let Some(email) = &channels.email {
        mailbox(&email.from)?;
        if email.to.is_empty() {
            return Err(NotifyError::Address(String::new()));
        }
        for to in &email.to {
            mailbox(to)?;
        }
        if let Some(pem) = &email.ca_pem {
            Certificate::from_pem(pem.as_bytes()).map_err(|e| NotifyError::Ca(e.to_string()))?;
        }
    }
    if let Some(hook) = &channels.webhook {
        webhook_url(&hook.url)?;
        if let Some(pem) = &hook.ca_pem {
            ca_certs(pem)?;
        }
    }
    Ok(())
}

/// Sends `event` to every channel; one outcome each.
pub async fn send(channels: &Channels, event: &Event) -> Vec<Delivery> {
    let mut out = Vec::new();
    if let Some(email) = &channels.email {
        out.push(Delivery {
            channel: "email",
            outcome: send_email(email, event).await,
        });
    }
    if let Some(hook) = &channels.webhook {
        out.push(Delivery {
            channel: "webhook",
            outcome: send_webhook(hook, event).await,
        });
    }
    for d in &out {
        match &d.outcome {
            Ok(()) => {
                tracing::info!(channel = d.channel, kind = %event.kind, job = %event.job, "notification sent")
            }
            Err(e) => {
                tracing::warn!(channel = d.channel, kind = %event.kind, "notification not sent: {e}")
            }
        }
    }
    out
}

fn mailbox(text: &str) -> Result<Mailbox, NotifyError> {
    text.parse()
        .map_err(|_| NotifyError::Address(text.to_owned()))
}

async fn send_email(c: &EmailChannel, event: &Event) -> Result<(), NotifyError> {
    let server = format!("{}:{}", c.server, c.port);
    let fail = |reason: String| NotifyError::Email {
        server: server.clone(),
        reason,
    };
    let mut message = Message::builder()
        .from(mailbox(&c.from)?)
        .subject(event.subject());
    for to in &c.to {
        message = message.to(mailbox(to)?);
    }
    let message = message
        .body(event.body())
        .map_err(|e| fail(e.to_string()))?;
    let mut tls = TlsParameters::builder(c.server.clone());
    if let Some(pem) = &c.ca_pem {
        tls = tls.add_root_certificate(
            Certificate::from_pem(pem.as_bytes()).map_err(|e| NotifyError::Ca(e.to_string()))?,
        );
    }
    let tls = tls.build_rustls().map_err(|e| fail(e.to_string()))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.server)
        .port(c.port)
        .timeout(Some(DEADLINE))
        .tls(match c.security {
            SmtpSecurity::Starttls => Tls::Required(tls),
            SmtpSecurity::Tls => Tls::Wrapper(tls),
        });
    if let Some(user) = &c.user {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            c.password.clone().unwrap_or_default(),
        ));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| fail(e.to_string()))
}

/// The webhook's URL when this version posts to it.
fn webhook_url(url: &str) -> Result<reqwest::Url, NotifyError> {
    let bad = |reason: &str| NotifyError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(parsed)
            } else {
                Err(bad(
                    "plain HTTP would send job names and results in the clear; use https:// (http:// only to this computer)",
                ))
            }
        }
        _ => Err(bad("use an https:// URL")),
    }
}

fn ca_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, NotifyError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| NotifyError::Ca(e.to_string()))?;
    if certs.is_empty() {
        return Err(NotifyError::Ca("no certificate in it".into()));
    }
    Ok(certs)
}

fn webhook_client(c: &WebhookChannel) -> Result<reqwest::Client, NotifyError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = &c.ca_pem {
        for cert in ca_certs(pem)? {
            roots
                .add(cert)
                .map_err(|e| NotifyError::Ca(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NotifyError::Ca(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(DEADLINE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NotifyError::Webhook {
            url: c.url.clone(),
            reason: e.to_string(),
        })
}

async fn send_webhook(c: &WebhookChannel, event: &Event) -> Result<(), NotifyError> {
    let url = webhook_url(&c.url)?;
    let fail = |reason: String| NotifyError::Webhook {
        url: c.url.clone(),
        reason,
    };
    let body = serde_json::json!({
        "product": "Cloudkeep",
        "event": event.kind,
        "source": event.source,
        "account": event.account,
        "job": event.job,
        "at_ms": event.at_ms,
        "subject": event.subject(),
        "message": event.message,
    });
    let answer = webhook_client(c)?
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(fail(format!("it answered {}", answer.status())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_https_or_loopback_and_addresses_parse() {
        assert!(webhook_url("https://hooks.example.com/x").is_ok());
        assert!(webhook_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(webhook_url("http://[::1]:9000/hook").is_ok());
        assert!(webhook_url("http://localhost/hook").is_ok());
        let err = webhook_url("http://hooks.example.com/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        assert!(webhook_url("ftp://x").is_err());
        assert!(mailbox("ops@example.com").is_ok());
        assert!(mailbox("not an address").is_err());
        assert!(ca_certs("garbage").is_err());
    }
}
