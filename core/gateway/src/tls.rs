//! The gateway's TLS certificate: generating a self-signed ECDSA P-256 certificate for its host
//! names, importing a CA-signed PEM chain and key, describing a certificate (subject, issuer,
//! validity, SHA-256 fingerprint), and serving whichever is current — a running gateway swaps
//! in a new certificate without a restart ([`CertStore`]).
//!
//! The certificate and key live in `DATA_DIR/tls/{cert,key}.pem` (the key owner-only).
//! Fingerprints are SHA-256 of the leaf's DER as colon-separated upper-case hex (DESIGN §2).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::SignatureScheme;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Errors of certificate handling.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    /// A PEM file holds no certificate, or a bad one.
    #[error("{what}: {reason}")]
    BadPem {
        /// Which input.
        what: String,
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "the private key does not belong to the certificate; give the key the certificate was issued for"
    )]
    KeyMismatch,
    /// Reading or writing the files failed.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// Which file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

pub use cloudkeep_api::CertInfo;
pub use cloudkeep_certs::{fingerprint, normalize_fingerprint};

/// Describes a DER certificate.
pub fn describe(der: &[u8]) -> Result<CertInfo, TlsError> {
    cloudkeep_certs::describe(der).map_err(|e| TlsError::BadPem {
        what: "the certificate".into(),
        reason: e.to_string(),
    })
}

/// A certificate chain and its key, as PEM text.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// Leaf first, then intermediates.
    pub chain: String,
    /// PKCS#8, SEC1 or PKCS#1 private key.
    pub key: String,
}

/// A new self-signed ECDSA P-256 certificate for `names` (host names or IP addresses), valid
/// from yesterday for three years.
pub fn generate_self_signed(names: &[String]) -> Result<PemPair, TlsError> {
    if names.is_empty() {
        return Err(TlsError::Generate(
            "name at least one host name or address tenants will connect to (--hostname)".into(),
        ));
    }
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(gen_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Cloudkeep gateway");
    let day = |d: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let now = chrono::Utc::now();
    params.not_before = day(now - chrono::Duration::days(1));
    params.not_after = day(now + chrono::Duration::days(3 * 365));
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok(PemPair {
        chain: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Parses and checks a PEM chain and key: at least one certificate, a key of a supported kind
/// that belongs to the leaf.
pub fn load(pair: &PemPair) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pair.chain.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadPem {
            what: "the certificate chain".into(),
            reason: format!("{e}; give PEM text with BEGIN CERTIFICATE blocks, leaf first"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::BadPem {
            what: "the certificate chain".into(),
            reason:
                "it holds no certificate; give PEM text with BEGIN CERTIFICATE blocks, leaf first"
                    .into(),
        });
    }
    describe(&chain[0])?;
    let key = PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).map_err(|e| TlsError::BadPem {
        what: "the private key".into(),
        reason: format!("{e}; give an unencrypted PEM private key (PKCS#8, SEC1 or RSA)"),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadPem {
            what: "the private key".into(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(_) => Err(TlsError::KeyMismatch),
    }
}

/// The next certificate's files, beside the current ones.
const NEXT_CERT: &str = "next-cert.pem";
const NEXT_KEY: &str = "next-key.pem";

/// The certificate files of a gateway's data folder, and the certificate being served.
/// Cloning shares the same current certificate.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
    current: Arc<RwLock<Current>>,
}

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    loaded: Option<SystemTime>,
}

impl CertStore {
    /// The store in `data_dir/tls`.
    pub fn cert_path(data_dir: &Path) -> PathBuf {
        data_dir.join("tls").join("cert.pem")
    }

    fn key_path(dir: &Path) -> PathBuf {
        dir.join("key.pem")
    }

    /// Writes `pair` as the gateway's certificate (after checking it), key owner-only.
    pub fn install(data_dir: &Path, pair: &PemPair) -> Result<CertInfo, TlsError> {
        let certified = load(pair)?;
        let dir = data_dir.join("tls");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Io { path, source }
        };
        cloudkeep_model::paths::create_private_dir(&dir).map_err(io(&dir))?;
        let key_path = Self::key_path(&dir);
        cloudkeep_model::paths::write_private_file(&key_path, pair.key.as_bytes())
            .map_err(io(&key_path))?;
        let cert_path = dir.join("cert.pem");
        let tmp = dir.join("cert.pem.new");
        std::fs::write(&tmp, pair.chain.as_bytes()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &cert_path).map_err(io(&cert_path))?;
        describe(&certified.cert[0])
    }

    /// Opens the certificate of `data_dir` for serving.
    pub fn open(data_dir: &Path) -> Result<Self, TlsError> {
        let dir = data_dir.join("tls");
        let (key, loaded) = Self::read(&dir)?;
        Ok(Self {
            dir,
            current: Arc::new(RwLock::new(Current {
                key: Arc::new(key),
                loaded,
            })),
        })
    }

    fn read(dir: &Path) -> Result<(CertifiedKey, Option<SystemTime>), TlsError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io { path, source })
        };
        let cert_path = dir.join("cert.pem");
        let modified = std::fs::metadata(&cert_path)
            .and_then(|m| m.modified())
            .ok();
        let mut pair = PemPair {
            chain: read(cert_path)?,
            key: read(Self::key_path(dir))?,
        };
        if matches!(load(&pair), Err(TlsError::KeyMismatch)) && dir.join(NEXT_KEY).exists() {
            // A rollover stopped between its two renames: its key is still beside.
            let key_path = Self::key_path(dir);
            std::fs::rename(dir.join(NEXT_KEY), &key_path).map_err(|source| TlsError::Io {
                path: key_path,
                source,
            })?;
            pair.key = read(Self::key_path(dir))?;
        }
        Ok((load(&pair)?, modified))
    }

    /// Reloads from the files when they changed since the last load (called periodically
    /// and after an admin changes the certificate). Returns the new fingerprint when it did.
    pub fn reload_if_changed(&self) -> Result<Option<String>, TlsError> {
        let modified = std::fs::metadata(self.dir.join("cert.pem"))
            .and_then(|m| m.modified())
            .ok();
        let stale = self
            .current
            .read()
            .map(|c| c.loaded != modified)
            .unwrap_or(true);
        if !stale {
            return Ok(None);
        }
        let (key, loaded) = Self::read(&self.dir)?;
        let fp = fingerprint(&key.cert[0]);
        if let Ok(mut current) = self.current.write() {
            *current = Current {
                key: Arc::new(key),
                loaded,
            };
        }
        Ok(Some(fp))
    }

    /// Keeps `pair` as the next certificate: checked and stored beside the current one
    /// (`next-cert.pem`, `next-key.pem` owner-only), announced to clients, not yet served.
    pub fn install_next(data_dir: &Path, pair: &PemPair) -> Result<CertInfo, TlsError> {
        let certified = load(pair)?;
        let dir = data_dir.join("tls");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Io { path, source }
        };
        let key_path = dir.join(NEXT_KEY);
        cloudkeep_model::paths::write_private_file(&key_path, pair.key.as_bytes())
            .map_err(io(&key_path))?;
        let cert_path = dir.join(NEXT_CERT);
        std::fs::write(&cert_path, pair.chain.as_bytes()).map_err(io(&cert_path))?;
        describe(&certified.cert[0])
    }

    /// The next certificate, when one waits.
    fn next(&self) -> Result<Option<CertifiedKey>, TlsError> {
        let cert_path = self.dir.join(NEXT_CERT);
        let chain = match std::fs::read_to_string(&cert_path) {
            Ok(chain) => chain,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TlsError::Io {
                    path: cert_path,
                    source,
                });
            }
        };
        let key_path = self.dir.join(NEXT_KEY);
        let key = std::fs::read_to_string(&key_path).map_err(|source| TlsError::Io {
            path: key_path,
            source,
        })?;
        load(&PemPair { chain, key }).map(Some)
    }

    /// What the next certificate is, when one waits.
    pub fn next_info(&self) -> Result<Option<CertInfo>, TlsError> {
        self.next()?.map(|next| describe(&next.cert[0])).transpose()
    }

    /// The announcement of the next certificate, signed with the current key; `None` when no
    /// next certificate waits.
    pub fn announcement(&self) -> Result<Option<cloudkeep_api::NextCert>, TlsError> {
        let Some(next) = self.next()? else {
            return Ok(None);
        };
        let next_info = describe(&next.cert[0])?;
        let current = self.certified();
        let schemes = [
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
        ];
        let signer = current.key.choose_scheme(&schemes).ok_or_else(|| {
            TlsError::Generate("the current key cannot sign an announcement".into())
        })?;
        let message = cloudkeep_certs::rollover_message(&next_info.fingerprint);
        let signature = signer
            .sign(&message)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(Some(cloudkeep_api::NextCert {
            current: hex::encode(current.cert[0].as_ref()),
            next_fingerprint: next_info.fingerprint,
            next_not_after: next_info.not_after,
            scheme: u16::from(signer.scheme()),
            signature: hex::encode(signature),
        }))
    }

    /// Serves the next certificate now (it becomes the current one); refused when none waits.
    pub fn roll_over(&self, data_dir: &Path) -> Result<CertInfo, TlsError> {
        let dir = data_dir.join("tls");
        if self.next()?.is_none() {
            return Err(TlsError::Generate(
                "no next certificate waits: announce one first (it must be announced days ahead, so that every tenant and agent has learnt it)".into(),
            ));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Io { path, source }
        };
        // The certificate first, then its key: a crash in between leaves `next-key.pem`, which
        // `read` then finishes the rollover with.
        let cert_path = dir.join("cert.pem");
        std::fs::rename(dir.join(NEXT_CERT), &cert_path).map_err(io(&cert_path))?;
        let key_path = Self::key_path(&dir);
        std::fs::rename(dir.join(NEXT_KEY), &key_path).map_err(io(&key_path))?;
        self.reload_if_changed()?;
        self.info()
    }

    /// What is being served now.
    pub fn info(&self) -> Result<CertInfo, TlsError> {
        let key = self.certified();
        describe(&key.cert[0])
    }

    fn certified(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => c.key.clone(),
            Err(poisoned) => poisoned.into_inner().key.clone(),
        }
    }

    /// A TLS 1.3-only server configuration serving the current certificate, with ALPN h2 and
    /// http/1.1.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Generate(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_name_their_hosts_and_load() {
        let pair =
            generate_self_signed(&["backup.example.net".into(), "127.0.0.1".into()]).unwrap();
        let key = load(&pair).unwrap();
        let info = describe(&key.cert[0]).unwrap();
        assert_eq!(info.names, ["backup.example.net", "127.0.0.1"]);
        assert!(info.self_signed);
        assert!(info.subject.contains("backup.example.net"), "{info:?}");
        assert_eq!(info.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(
            normalize_fingerprint(&info.fingerprint.replace(':', "").to_lowercase()),
            info.fingerprint
        );
        assert!(generate_self_signed(&[]).is_err());
    }

    #[test]
    fn mismatched_or_garbled_pem_is_refused_with_the_fix() {
        let a = generate_self_signed(&["a.example".into()]).unwrap();
        let b = generate_self_signed(&["b.example".into()]).unwrap();
        let mixed = PemPair {
            chain: a.chain.clone(),
            key: b.key,
        };
        assert!(matches!(load(&mixed), Err(TlsError::KeyMismatch)));
        let garbled = PemPair {
            chain: "hello".into(),
            key: a.key.clone(),
        };
        assert!(
            load(&garbled)
                .unwrap_err()
                .to_string()
                .contains("BEGIN CERTIFICATE")
        );
        let no_key = PemPair {
            chain: a.chain,
            key: "nope".into(),
        };
        assert!(
            load(&no_key)
                .unwrap_err()
                .to_string()
                .contains("private key")
        );
    }
}
