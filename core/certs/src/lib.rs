//! What the gateway and its clients agree on about a certificate: its SHA-256 fingerprint
//! (how a tenant pins its SP), the fingerprint as people type it, and what a certificate says
//! (subject, issuer, validity, names) for the trust prompt and `sp cert show`. Both sides use
//! it, so neither imports the other.

use sha2::{Digest, Sha256};

/// A certificate that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The DER bytes are not an X.509 certificate.
    #[error("{0}")]
    Unreadable(String),
}

pub use cloudkeep_api::CertInfo;

/// SHA-256 fingerprint of a DER certificate: 32 colon-separated upper-case hex bytes.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What a gateway signs with its current key to announce its next certificate (a rollover),
/// and what a client that pins the current one checks: the next certificate's fingerprint,
/// bound to its purpose.
pub fn rollover_message(next_fingerprint: &str) -> Vec<u8> {
    let mut message = b"cloudkeep certificate rollover v1\0".to_vec();
    message.extend_from_slice(normalize_fingerprint(next_fingerprint).as_bytes());
    message
}

/// Days from now until a certificate's `not_after` (RFC 3339); `None` when it cannot be read.
pub fn days_left(not_after: &str, now_ms: i64) -> Option<i64> {
    let end = chrono::DateTime::parse_from_rfc3339(not_after).ok()?;
    Some((end.timestamp_millis() - now_ms).div_euclid(86_400_000))
}

/// How many days before its end a certificate is warned about, on both sides.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Normalises a fingerprint as typed (any case, with or without colons or spaces) for comparison.
pub fn normalize_fingerprint(text: &str) -> String {
    let hex: String = text
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Describes a DER certificate.
pub fn describe(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertError::Unreadable(e.to_string()))?;
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(n) => names.push((*n).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                    4 => {
                        names.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string())
                    }
                    16 => {
                        let mut octets = [0u8; 16];
                        octets.copy_from_slice(ip);
                        names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
        names,
        fingerprint: fingerprint(der),
        self_signed: cert.subject() == cert.issuer(),
    })
}
