//! The gateway as a client of its cloud hosts: HTTPS to the address a host registered, its
//! certificate pinned by the fingerprint it registered (TLS 1.3, the handshake signature still
//! verified against that certificate's key), the host's relay key as the bearer.
//!
//! **Invariant:** a host is reached only through the certificate it registered; the relay key
//! is opened from its sealed form just for the request.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::ApiError;
use cloudkeep_api::ErrorCode;
use cloudkeep_api::replication::HostEndpoint;

/// Accepts exactly the certificate whose fingerprint is the pin.
#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if cloudkeep_certs::fingerprint(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the cloud host's certificate is not the one it registered".into(),
            ))
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

/// A connection to one cloud host.
#[derive(Debug, Clone)]
pub struct HostLink {
    http: reqwest::Client,
    base: String,
    key: String,
    host: String,
}

impl HostLink {
    /// A link to `host` at `endpoint`, with its relay key `key` (opened).
    pub fn new(host: &str, endpoint: &HostEndpoint, key: String) -> Result<Self, ApiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned {
            pin: cloudkeep_certs::normalize_fingerprint(&endpoint.fingerprint),
            provider: provider.clone(),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ApiError::internal)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(ApiError::internal)?;
        Ok(Self {
            http,
            base: format!("https://{}", endpoint.address),
            key,
            host: host.to_owned(),
        })
    }

    /// A request to `path` with the relay key, answered within five minutes (making layers,
    /// starting or stopping a machine).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.stream_request(method, path)
            .timeout(std::time::Duration::from_secs(300))
    }

    /// A request whose body streams for as long as the tenant sends it (a cycle): no overall
    /// deadline; the tenant's side ends it.
    pub fn stream_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends `req` and reads its JSON answer; the host's refusal keeps its message.
    pub async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let resp = self.answer(req).await?;
        let bytes = resp.bytes().await.map_err(|e| {
            ApiError::new(
                ErrorCode::HostUnavailable,
                format!("cloud host {} broke off its answer: {e}", self.host),
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::HostUnavailable,
                format!(
                    "cloud host {} answered what this gateway cannot read: {e}",
                    self.host
                ),
            )
        })
    }

    /// Sends `req`; its answer when it is a success (its body not read yet), the host's
    /// refusal with its message otherwise.
    pub async fn answer(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let resp = req.send().await.map_err(|e| {
            ApiError::new(
                ErrorCode::HostUnavailable,
                format!(
                    "cloud host {} does not answer ({e}); the SP must start it (cloudkeep host run)",
                    self.host
                ),
            )
        })?;
        let status = resp.status();
        // A tunnel opened (an upgrade) is an answer too.
        if !status.is_success() && status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp.bytes().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = body["message"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned();
            let code = match body["code"].as_str() {
                Some("storage_full") => ErrorCode::StorageFull,
                Some("not_found") => ErrorCode::NotFound,
                Some("conflict") => ErrorCode::Conflict,
                Some("bad_request") => ErrorCode::BadRequest,
                _ => ErrorCode::HostUnavailable,
            };
            return Err(ApiError::new(
                code,
                format!("cloud host {}: {message}", self.host),
            ));
        }
        Ok(resp)
    }
}
