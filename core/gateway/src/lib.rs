//! The SP cloud gateway: a long-running HTTPS server (TLS 1.3, HTTP/2 and 1.1) in front of the
//! metadata database and the cloud repositories. The crate root owns the gateway's data
//! folder: its configuration (`gateway.toml`), the certificate (`tls/`), and `init`.
//!
//! Parts: [`store`] (the SP database, SQLite or PostgreSQL), [`tls`] (certificates), [`error`]
//! (the `{code, message}` error type), [`auth`] (logins, sessions, bans), [`admin`] (the SP
//! admin API), [`tenant`] (the tenant API), [`server`] (accept loop, graceful shutdown,
//! heartbeat, certificate reload), [`lab`] (a local gateway with a demo tenant).
//!
//! The faces start it through the entry points re-exported here ([`init`], [`run`]); they
//! import no handler. It speaks the types of `cloudkeep-api` and never depends on the client.
//!
//! Invariant: the gateway never chunks, decrypts or interprets tenant data; it stores opaque
//! packs and objects and checks only what is in clear (ids, sizes, chunk lists).

pub mod admin;
pub mod auth;
pub mod check;
pub mod error;
pub mod health;
pub mod hostlink;
pub mod keyring;
pub mod lab;
pub mod limits;
pub mod metrics;
pub mod moves;
pub mod notify;
pub mod object_lock;
pub mod packread;
pub mod policies;
pub mod recycle;
pub mod replication;
pub mod repos;
pub mod server;
pub mod session;
pub mod space;
pub mod storage;
pub mod store;
pub mod tenant;
pub mod tls;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{Db, DbError};
use cloudkeep_repo::crypto::{KdfParams, hash_password};

pub use server::{RunOptions, Started, run};

/// What every handler shares (held in an `Arc` by the router).
#[derive(Debug)]
pub struct GatewayState {
    /// The metadata database.
    pub db: Db,
    /// This gateway's id.
    pub id: String,
    /// Its data folder.
    pub data_dir: PathBuf,
    /// The certificate being served.
    pub certs: tls::CertStore,
    /// Failed logins and bans.
    pub bans: auth::Bans,
    /// Open storage areas.
    pub stores: session::Stores,
    /// Bandwidth limits.
    pub buckets: limits::Buckets,
    /// Connection bounds and timeouts.
    pub limits: ConnectionLimits,
    /// What operators scrape.
    pub metrics: metrics::Metrics,
}

/// Errors of setting up or running a gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The data folder is not usable.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `init` on a folder that already has a gateway.
    #[error("{} already holds a gateway; run it with \"cloudkeep gateway run --data-dir {}\"", .0.display(), .0.display())]
    AlreadyInitialized(PathBuf),
    /// `run` on a folder without a gateway.
    #[error("{} holds no gateway; create one with \"cloudkeep gateway init --data-dir {}\"", .0.display(), .0.display())]
    NotInitialized(PathBuf),
    /// The configuration file is damaged.
    #[error("the gateway configuration {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A folder or file of the gateway that other local users can read.
    #[error(
        "{} can be read by other users of this computer ({exposure}); it holds {what}: run \"{}\" and start the gateway again",
        path.display(), exposure.fix
    )]
    Exposed {
        /// The folder or file.
        path: PathBuf,
        /// What lets others in, and the fix.
        exposure: cloudkeep_model::paths::Exposure,
        /// What it holds, for the message.
        what: &'static str,
    },
    /// Running as root without being told to.
    #[error(
        "the gateway refuses to run as root: run it as a service account, or pass --allow-root if you really mean it"
    )]
    Root,
    /// The certificate.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something else.
    #[error("{0}")]
    Other(String),
}

/// `DATA_DIR/gateway.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// This gateway's id in the gateway list.
    pub id: String,
    /// Metadata database: an SQLite path or `postgres://…` (may hold a password: the file is
    /// owner-only).
    pub db: String,
    /// Where to listen.
    pub listen: String,
    /// Host names and addresses of the certificate.
    pub hostnames: Vec<String>,
    /// Address tenants use to reach this gateway (`host:port`).
    pub public_address: String,
    /// Bounds on connections and how long a peer may take to speak (`[connections]`).
    #[serde(default)]
    pub connections: ConnectionLimits,
    /// Where the admin listener serves `/metrics` and `/healthz` (plain HTTP: loopback or a
    /// management network), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// The key (64 hex digits) object-store credentials are sealed under in the database:
    /// every gateway sharing the database needs the same one (it travels with the copied
    /// data folder, like the certificate's key). Made at `init`, or at the first run of an
    /// older configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_key: Option<String>,
}

/// Bounds on the connections a gateway keeps (`[connections]` in `gateway.toml`): a peer that
/// opens many connections, or opens one and never speaks, cannot hold the gateway's memory
/// or file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Connections open at once from one IP address (agents behind one NAT share one).
    pub per_address: usize,
    /// Connections open at once in all.
    pub total: usize,
    /// Seconds a TLS handshake may take.
    pub handshake_secs: u64,
    /// Seconds a request's headers may take to arrive, and a connection may stay idle
    /// between requests (HTTP/1.1), or before its first request (HTTP/2).
    pub header_secs: u64,
    /// Seconds an upload may go without sending a byte before it is cut off.
    pub body_idle_secs: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            per_address: 256,
            total: 10_000,
            handshake_secs: 15,
            header_secs: 30,
            body_idle_secs: 60,
        }
    }
}

/// A new secrets key, as `gateway.toml` holds it.
fn new_secrets_key() -> Result<String, GatewayError> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    cloudkeep_repo::crypto::random_bytes(&mut key[..])
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    Ok(hex::encode(*key))
}

impl GatewayConfig {
    /// The secrets key, made (and the configuration saved) when it has none yet.
    pub fn secrets_key(
        &mut self,
        data_dir: &Path,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, GatewayError> {
        if self.secrets_key.is_none() {
            self.secrets_key = Some(new_secrets_key()?);
            self.save(data_dir)?;
        }
        let text = self.secrets_key.as_deref().unwrap_or_default();
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, &mut key[..]).map_err(|_| GatewayError::Config {
            path: Self::path(data_dir),
            reason: "secrets_key is not 64 hex digits".to_owned(),
        })?;
        Ok(key)
    }

    /// The config file of a data folder.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("gateway.toml")
    }

    /// Reads the configuration of a data folder.
    pub fn load(data_dir: &Path) -> Result<Self, GatewayError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GatewayError::NotInitialized(data_dir.to_path_buf()));
            }
            Err(source) => return Err(GatewayError::Io { path, source }),
        };
        toml::from_str(&text).map_err(|e| GatewayError::Config {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes the configuration of a data folder (owner-only).
    pub fn save(&self, data_dir: &Path) -> Result<(), GatewayError> {
        let path = Self::path(data_dir);
        let text = toml::to_string(self).map_err(|e| GatewayError::Other(e.to_string()))?;
        cloudkeep_model::paths::write_private_file(&path, text.as_bytes())
            .map_err(|source| GatewayError::Io { path, source })
    }
}

/// Refuses a gateway whose data folder, SQLite database or folder repositories other local
/// users can read: they hold password hashes, keys, sessions and every tenant's data.
pub fn check_private(
    data_dir: &Path,
    db_url: &str,
    repos: &[cloudkeep_api::CloudRepo],
) -> Result<(), GatewayError> {
    let mut places: Vec<(PathBuf, &'static str)> = vec![(
        data_dir.to_path_buf(),
        "the gateway's configuration, certificate key and database",
    )];
    if let Some(path) = crate::store::sqlite_path(db_url) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            places.push((PathBuf::from(name), "account password hashes and sessions"));
        }
    }
    for repo in repos.iter().filter(|r| r.kind == "folder") {
        places.push((
            PathBuf::from(&repo.location),
            "the tenants' backups of a cloud repository",
        ));
    }
    for (path, what) in places {
        if let Some(exposure) = cloudkeep_model::paths::exposed(&path) {
            return Err(GatewayError::Exposed {
                path,
                exposure,
                what,
            });
        }
    }
    Ok(())
}

/// What `gateway init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The data folder (created).
    pub data_dir: PathBuf,
    /// Host names and addresses for the certificate; the first is the public address.
    pub hostnames: Vec<String>,
    /// Database URL; default: `DATA_DIR/meta.db` (SQLite).
    pub db: Option<String>,
    /// First SP admin account.
    pub admin_user: String,
    /// Its password.
    pub admin_password: String,
    /// Where to listen; default `0.0.0.0:6180`.
    pub listen: Option<String>,
}

/// What `gateway init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The configuration written.
    pub config: GatewayConfig,
    /// The certificate generated.
    pub cert: tls::CertInfo,
}

/// Creates a gateway in an empty (or new) data folder: configuration, database with its
/// schema and the first SP admin, and a self-signed certificate for the host names.
pub async fn init(options: InitOptions) -> Result<InitReport, GatewayError> {
    let dir = &options.data_dir;
    if GatewayConfig::path(dir).exists() {
        return Err(GatewayError::AlreadyInitialized(dir.clone()));
    }
    cloudkeep_model::paths::create_private_dir(dir)
        .and_then(|()| cloudkeep_model::paths::make_dir_private(dir))
        .map_err(|source| GatewayError::Io {
            path: dir.clone(),
            source,
        })?;
    let hostnames = if options.hostnames.is_empty() {
        vec![cloudkeep_repo::lock::hostname()]
    } else {
        options.hostnames.clone()
    };
    crate::store::tenants::check_account_name(&options.admin_user)?;
    cloudkeep_model::names::check_password(&options.admin_password)
        .map_err(|e| GatewayError::Other(format!("the admin password: {e}")))?;
    let db_url = options
        .db
        .clone()
        .unwrap_or_else(|| dir.join("meta.db").display().to_string());
    let db = Db::open(&db_url).await?;
    if db.admin_count().await? == 0 {
        let hash = hash_password(&options.admin_password, KdfParams::accounts())
            .map_err(|e| GatewayError::Other(e.to_string()))?;
        db.add_admin(&options.admin_user, &hash).await?;
        db.audit("gateway", "admin.create", &options.admin_user, "at init")
            .await?;
    }
    db.close().await;
    let pair = tls::generate_self_signed(&hostnames)?;
    let cert = tls::CertStore::install(dir, &pair)?;
    let listen = options
        .listen
        .clone()
        .unwrap_or_else(|| format!("0.0.0.0:{}", cloudkeep_api::DEFAULT_PORT));
    let port = listen
        .rsplit_once(':')
        .map_or(cloudkeep_api::DEFAULT_PORT.to_string(), |(_, p)| {
            p.to_owned()
        });
    let mut id_bytes = [0u8; 4];
    cloudkeep_repo::crypto::random_bytes(&mut id_bytes)
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    let config = GatewayConfig {
        id: format!("gw-{}", hex::encode(id_bytes)),
        db: db_url,
        listen,
        public_address: format!("{}:{port}", hostnames[0]),
        hostnames,
        connections: ConnectionLimits::default(),
        secrets_key: Some(new_secrets_key()?),
        metrics_listen: None,
    };
    config.save(dir)?;
    Ok(InitReport { config, cert })
}
