//! A private certificate authority for tests: servers the product must trust only through a
//! CA it is given (a CA-signed gateway, an SMTP server inside an SP's network).

// Test support: a failed setup step is a failed test, reported by the panic's message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

/// A test CA that signs leaves.
pub struct TestCa {
    /// The CA's certificate (PEM).
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A leaf the CA signed.
pub struct Leaf {
    /// The leaf's certificate then the CA's (PEM).
    pub chain: String,
    /// The leaf's certificate alone (PEM).
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
}

impl TestCa {
    /// A new CA named "Cloudkeep Test CA".
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Cloudkeep Test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (host names or addresses) with a new key, common name `common`.
    pub fn leaf(&self, names: &[&str], common: &str) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common);
        let cert = params.signed_by(&key, &self.issuer).unwrap().pem();
        Leaf {
            chain: format!("{cert}{}", self.pem),
            cert,
            key: key.serialize_pem(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
