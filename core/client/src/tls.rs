//! The client side of the trust model (DESIGN §2): connections to a gateway are accepted only
//! when the certificate's SHA-256 fingerprint equals the pin stored for that SP; before a pin
//! exists, [`probe`] fetches the certificate and checks its chain against the system's root
//! certificates, and [`check_presented`] decides: a fingerprint the person was given must
//! match, a chain valid for the host under the system roots is trusted, anything else is
//! untrusted until a person (or `--trust FP`) confirms it. The handshake signature is still
//! verified against the pinned certificate's key, so a pin cannot be satisfied by someone who
//! merely copied the certificate.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};

use super::ClientError;
use cloudkeep_api::CertInfo;
use cloudkeep_certs::{describe, fingerprint, normalize_fingerprint};

/// Whether two fingerprints name the same certificate (separators and case aside).
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    normalize_fingerprint(a) == normalize_fingerprint(b)
}

/// What a gateway presents before it is trusted: its certificate, and whether its chain is
/// valid for the host under the system's root certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presented {
    /// The leaf certificate.
    pub cert: CertInfo,
    /// Valid for the host under the system's roots (a CA-signed certificate): trusted and
    /// pinned on first use without asking.
    pub ca_valid: bool,
    /// Why not, when not (self-signed, unknown issuer, expired, not for this host, …).
    pub ca_problem: Option<String>,
}

/// Accepts exactly the certificate whose fingerprint is the pin (`None`: any, for probing),
/// recording what the server presented and, when probing, what the system roots say of it.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
    seen: std::sync::Mutex<Option<Vec<u8>>>,
    /// Probing only: the system roots' verifier (or why there is none) and its verdict.
    roots: Option<Result<Arc<WebPkiServerVerifier>, String>>,
    verdict: std::sync::Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        if let Some(roots) = &self.roots {
            let verdict = roots.as_ref().map_err(Clone::clone).and_then(|roots| {
                roots
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                    .map(|_| ())
                    .map_err(|e| ca_problem(&e))
            });
            if let Ok(mut slot) = self.verdict.lock() {
                *slot = Some(verdict);
            }
        }
        match &self.pin {
            Some(pin) if *pin != fingerprint(end_entity) => Err(rustls::Error::General(
                "the gateway's certificate is not the pinned one".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not accepted".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A readable reason why the system roots refuse a chain.
fn ca_problem(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "it is not issued by a certificate authority this computer trusts (self-signed or a private CA)".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "it has expired".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "it is not valid yet (check this computer's clock)".into()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "it is not issued for this host name".into(),
        rustls::Error::InvalidCertificate(C::Revoked) => "it has been revoked".into(),
        rustls::Error::InvalidCertificate(C::BadSignature) => {
            "its signature does not verify against the certificate authority it names".into()
        }
        other => other.to_string(),
    }
}

/// The system's root certificates as a verifier, or why there is none.
fn system_roots(provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(format!(
            "this computer's root certificates could not be read{why}"
        ));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("this computer's root certificates cannot be used: {e}"))
}

fn config(pin: Option<String>) -> Result<(rustls::ClientConfig, Arc<PinVerifier>), ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = pin.is_none().then(|| system_roots(&provider));
    let verifier = Arc::new(PinVerifier {
        pin,
        provider: provider.clone(),
        seen: std::sync::Mutex::new(None),
        roots,
        verdict: std::sync::Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, verifier))
}

/// A TLS configuration that accepts only the certificate with fingerprint `pin`.
pub fn pinned_config(pin: &str) -> Result<rustls::ClientConfig, ClientError> {
    Ok(config(Some(normalize_fingerprint(pin)))?.0)
}

/// Connects to `address` (`host:port`) and returns the certificate it presents, trusted or
/// not, with what the system's root certificates say of its chain.
pub async fn probe(address: &str) -> Result<Presented, ClientError> {
    let (config, verifier) = config(None)?;
    let unreachable = |e: std::io::Error| ClientError::Unreachable {
        address: address.to_owned(),
        reason: e.to_string(),
    };
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .map_err(|_| ClientError::Unreachable {
        address: address.to_owned(),
        reason: "no answer within 15 s".into(),
    })?
    .map_err(unreachable)?;
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| ClientError::Tls(format!("\"{host}\" is not a host name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(name, tcp).await.map_err(|e| {
        ClientError::Tls(format!(
            "the TLS handshake with {address} failed: {e}; check that it is a Cloudkeep gateway"
        ))
    })?;
    let der = verifier
        .seen
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .ok_or_else(|| ClientError::Tls("the gateway presented no certificate".into()))?;
    let cert = describe(&der).map_err(|e| ClientError::Tls(e.to_string()))?;
    let verdict = verifier
        .verdict
        .lock()
        .ok()
        .and_then(|v| v.clone())
        .unwrap_or_else(|| Err("the chain was not checked".into()));
    Ok(Presented {
        cert,
        ca_valid: verdict.is_ok(),
        ca_problem: verdict.err(),
    })
}

/// Why a request to `address` failed before any answer: a certificate other than the
/// `pinned` one (named with both fingerprints), or the gateway is not reachable.
pub async fn unreachable_or_changed(address: &str, pinned: &str, reason: String) -> ClientError {
    if let Ok(presented) = probe(address).await
        && presented.cert.fingerprint != normalize_fingerprint(pinned)
    {
        return ClientError::CertificateChanged {
            address: address.to_owned(),
            expected: normalize_fingerprint(pinned),
            cert: Box::new(presented.cert),
        };
    }
    ClientError::Unreachable {
        address: address.to_owned(),
        reason,
    }
}

/// Checks a gateway's announcement of its next certificate against the `pinned` fingerprint:
/// the announcement must carry the pinned certificate itself, and its signature over the next
/// fingerprint must verify with that certificate's key. Returns the next fingerprint.
pub fn verify_announcement(
    next: &cloudkeep_api::NextCert,
    pinned: &str,
) -> Result<String, ClientError> {
    let bad = |why: &str| ClientError::Protocol(format!("the announced next certificate: {why}"));
    let current = hex::decode(&next.current).map_err(|_| bad("not hex"))?;
    if cloudkeep_certs::fingerprint(&current) != normalize_fingerprint(pinned) {
        return Err(bad(
            "it is not signed by the certificate this computer trusts",
        ));
    }
    let signature = hex::decode(&next.signature).map_err(|_| bad("not hex"))?;
    let message = cloudkeep_certs::rollover_message(&next.next_fingerprint);
    let der = CertificateDer::from(current);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| bad("not a certificate"))?;
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let scheme = rustls::SignatureScheme::from(next.scheme);
    let verified = algorithms
        .mapping
        .iter()
        .filter(|(s, _)| *s == scheme)
        .flat_map(|(_, algs)| algs.iter())
        .any(|alg| cert.verify_signature(*alg, &message, &signature).is_ok());
    if !verified {
        return Err(bad("its signature does not verify"));
    }
    Ok(normalize_fingerprint(&next.next_fingerprint))
}

/// The trust step (DESIGN §2) for what `address` presents: a fingerprint the person was
/// `given` must match; otherwise a `pinned` fingerprint must match; with neither, a chain
/// valid under the system roots is trusted. Returns the fingerprint to pin.
pub fn check_presented(
    address: &str,
    presented: &Presented,
    given: Option<&str>,
    pinned: Option<&str>,
) -> Result<String, ClientError> {
    let cert = &presented.cert;
    match (given, pinned) {
        (Some(fp), _) if normalize_fingerprint(fp) == cert.fingerprint => {}
        (Some(_), _) => {
            return Err(ClientError::WrongFingerprint {
                address: address.to_owned(),
                presented: cert.fingerprint.clone(),
            });
        }
        (None, Some(pin)) if normalize_fingerprint(pin) == cert.fingerprint => {}
        (None, Some(pin)) => {
            return Err(ClientError::CertificateChanged {
                address: address.to_owned(),
                expected: normalize_fingerprint(pin),
                cert: Box::new(cert.clone()),
            });
        }
        (None, None) if presented.ca_valid => {}
        (None, None) => {
            return Err(ClientError::Untrusted {
                address: address.to_owned(),
                cert: Box::new(cert.clone()),
                why: presented
                    .ca_problem
                    .clone()
                    .unwrap_or_else(|| "it is not CA-signed".into()),
            });
        }
    }
    Ok(cert.fingerprint.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented(fingerprint: &str, ca_valid: bool) -> Presented {
        Presented {
            cert: CertInfo {
                subject: "CN=gw".into(),
                issuer: "CN=gw".into(),
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                names: vec!["gw.example".into()],
                fingerprint: fingerprint.into(),
                self_signed: !ca_valid,
            },
            ca_valid,
            ca_problem: (!ca_valid).then(|| "it is self-signed".into()),
        }
    }

    #[test]
    fn the_trust_step_decides_as_the_design_says() {
        let fp = ["AB"; 32].join(":");
        let other = ["CD"; 32].join(":");
        let lower = fp.to_lowercase().replace(':', "");
        let self_signed = presented(&fp, false);
        let ca_signed = presented(&fp, true);
        // A given fingerprint must match (in any spelling), CA or not.
        assert_eq!(
            check_presented("gw:1", &self_signed, Some(&lower), None).unwrap(),
            fp
        );
        assert!(matches!(
            check_presented("gw:1", &ca_signed, Some(&other), None),
            Err(ClientError::WrongFingerprint { .. })
        ));
        // A pin must match exactly, even when the new certificate is CA-signed.
        assert_eq!(
            check_presented("gw:1", &self_signed, None, Some(&fp)).unwrap(),
            fp
        );
        assert!(matches!(
            check_presented("gw:1", &ca_signed, None, Some(&other)),
            Err(ClientError::CertificateChanged { expected, .. }) if expected == other
        ));
        // First use: CA-valid is trusted; anything else is untrusted, with the reason.
        assert_eq!(check_presented("gw:1", &ca_signed, None, None).unwrap(), fp);
        let err = check_presented("gw:1", &self_signed, None, None).unwrap_err();
        assert!(matches!(err, ClientError::Untrusted { .. }));
        let text = err.to_string();
        assert!(
            text.contains("it is self-signed") && text.contains(&fp),
            "{text}"
        );
    }
}
