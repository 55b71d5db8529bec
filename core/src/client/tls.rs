//! The client side of the trust model (DESIGN §2): connections to a gateway are accepted only
//! when the certificate's SHA-256 fingerprint equals the pin stored for that SP; before a pin
//! exists, [`probe`] fetches the certificate so that a person (or `--trust FP`) can decide.
//! The handshake signature is still verified against the pinned certificate's key, so a pin
//! cannot be satisfied by someone who merely copied the certificate.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::ClientError;
use crate::gateway::tls::{CertInfo, describe, fingerprint, normalize_fingerprint};

/// Accepts exactly the certificate whose fingerprint is the pin (`None`: any, for probing),
/// recording what the server presented.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
    seen: std::sync::Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
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

fn config(pin: Option<String>) -> Result<(rustls::ClientConfig, Arc<PinVerifier>), ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinVerifier {
        pin,
        provider: provider.clone(),
        seen: std::sync::Mutex::new(None),
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

/// Connects to `address` (`host:port`) and returns the certificate it presents, trusted or not.
pub async fn probe(address: &str) -> Result<CertInfo, ClientError> {
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
    describe(&der).map_err(|e| ClientError::Tls(e.to_string()))
}
