//! The host's heartbeat: log in to the SP's gateways (failing over along their list) and
//! report what the host has, once (`--once`) or every interval until stopped. A gateway that
//! does not answer is tried again at the next beat; an expired session is opened again.

#[cfg(unix)]
use std::future::Future;
use std::time::Duration;

use cloudkeep_api::replication::HostFacts;
#[cfg(unix)]
use cloudkeep_client::ClientError;
use cloudkeep_client::replication::HostClient;

use crate::HostError;
use crate::config::HostConfig;

/// How often a running host reports.
pub const BEAT: Duration = Duration::from_secs(30);

/// What the host has now (read off the async threads: QEMU is asked as a process).
pub async fn facts(config: &HostConfig) -> HostFacts {
    let config = config.clone();
    match tokio::task::spawn_blocking(move || crate::facts::gather(&config)).await {
        Ok(facts) => facts,
        Err(e) => {
            tracing::warn!("gathering the host's facts: {e}");
            crate::facts::gather(&HostConfig::default())
        }
    }
}

/// Logs in and reports once; the gateway that took the report and what was reported.
pub async fn report_once(config: &HostConfig) -> Result<(String, HostFacts), HostError> {
    let details = config.connection.as_ref().ok_or(HostError::NotConnected)?;
    let client = HostClient::log_in(details).await?;
    let facts = facts(config).await;
    client.report(&facts).await?;
    Ok((client.address().to_owned(), facts))
}

/// Serves the gateways on `listening` and reports every `beat` (with where it listens) until
/// `stop` completes. Failures are logged and tried again at the next beat; a refused login (the
/// host removed, its password changed) ends the run.
#[cfg(unix)]
pub async fn serve(
    config: &HostConfig,
    listening: crate::server::Listening,
    beat: Duration,
    stop: impl Future<Output = ()>,
) -> Result<(), HostError> {
    let details = config.connection.as_ref().ok_or(HostError::NotConnected)?;
    let endpoint = cloudkeep_api::replication::HostEndpoint {
        address: config
            .advertise
            .clone()
            .unwrap_or_else(|| listening.addr.to_string()),
        fingerprint: listening.fingerprint.clone(),
        key: config
            .relay_key
            .clone()
            .ok_or_else(|| HostError::Invalid("the host has no relay key yet".into()))?,
    };
    let server = tokio::spawn(listening.serve());
    let _stop_server = AbortOnDrop(server);
    tokio::pin!(stop);
    let mut client: Option<HostClient> = None;
    loop {
        let facts = facts(config).await;
        if client.is_none() {
            match HostClient::log_in(details).await {
                Ok(c) => match c.set_endpoint(&endpoint).await {
                    Ok(()) => {
                        tracing::info!(
                            "logged in to gateway {} as host {}",
                            c.address(),
                            details.user
                        );
                        client = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!("telling {} where this host listens: {e}", c.address());
                    }
                },
                Err(e @ ClientError::Api { .. }) if refused(&e) => return Err(e.into()),
                Err(e) => tracing::warn!("no gateway answers; trying again: {e}"),
            }
        }
        if let Some(c) = &client {
            match c.report(&facts).await {
                Ok(()) => tracing::debug!("reported to {}", c.address()),
                Err(e) => {
                    tracing::warn!("reporting to {}: {e}; logging in again", c.address());
                    client = None;
                }
            }
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(beat) => {}
        }
    }
}

/// Stops the listener when the run ends.
#[cfg(unix)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

#[cfg(unix)]
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A login the gateway refused for good: wrong name or password.
#[cfg(unix)]
fn refused(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Api {
            code: cloudkeep_api::ErrorCode::Unauthorized,
            ..
        }
    )
}
