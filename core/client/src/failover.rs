//! The one failover loop: a provider's gateways are tried in order while they do not answer
//! (a gateway restarting, a machine down) or say they are drained for maintenance; any other
//! answer ends the loop at once — a success, a
//! refused login, and above all a changed certificate, which is never "failed over" to.
//! Logins, certificate probes, remote stores and an agent's first contact all go through it.

use std::future::Future;

use super::ClientError;

/// Tries `attempt` on each address in order until one answers; the last "does not answer"
/// when none does, and `None` when there is no address at all.
pub async fn first_answering<T, F, Fut>(
    addresses: &[String],
    mut attempt: F,
) -> Option<Result<T, ClientError>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut last = None;
    for address in addresses {
        match attempt(address.clone()).await {
            Err(e @ ClientError::Unreachable { .. }) => {
                tracing::warn!("gateway {address} does not answer; trying the next: {e}");
                last = Some(Err(e));
            }
            // Drained for maintenance: another gateway takes new sessions.
            Err(
                e @ ClientError::Api {
                    code: cloudkeep_api::ErrorCode::Draining,
                    ..
                },
            ) => {
                tracing::info!("gateway {address} is drained; trying the next: {e}");
                last = Some(Err(e));
            }
            answered => return Some(answered),
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(address: &str) -> ClientError {
        ClientError::Unreachable {
            address: address.into(),
            reason: "down".into(),
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_first_gateway_that_answers_ends_the_loop() {
        let addresses = ["a:1".to_owned(), "b:1".to_owned(), "c:1".to_owned()];
        let mut tried = Vec::new();
        let got = run(first_answering(&addresses, |a| {
            tried.push(a.clone());
            async move {
                if a == "a:1" {
                    Err(unreachable(&a))
                } else {
                    Ok(a)
                }
            }
        }));
        assert_eq!(got.unwrap().unwrap(), "b:1");
        assert_eq!(tried, ["a:1", "b:1"], "c is never tried");
    }

    #[test]
    fn a_changed_certificate_is_never_failed_over_to() {
        let addresses = ["a:1".to_owned(), "b:1".to_owned()];
        let got = run(first_answering(&addresses, |a| async move {
            Err::<(), _>(ClientError::CertificateChanged {
                address: a,
                expected: "AB".into(),
                cert: Box::new(cloudkeep_api::CertInfo {
                    subject: String::new(),
                    issuer: String::new(),
                    not_before: String::new(),
                    not_after: String::new(),
                    names: vec![],
                    fingerprint: "CD".into(),
                    self_signed: true,
                }),
            })
        }));
        assert!(matches!(
            got,
            Some(Err(ClientError::CertificateChanged { address, .. })) if address == "a:1"
        ));
    }

    #[test]
    fn none_answering_gives_the_last_reason_and_none_listed_gives_none() {
        let addresses = ["a:1".to_owned(), "b:1".to_owned()];
        let got = run(first_answering(&addresses, |a| async move {
            Err::<(), _>(unreachable(&a))
        }));
        assert!(matches!(
            got,
            Some(Err(ClientError::Unreachable { address, .. })) if address == "b:1"
        ));
        assert!(run(first_answering(&[], |a| async move { Ok(a) })).is_none());
    }
}
