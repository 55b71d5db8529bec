//! Clients of the gateway protocol. [`SpClient`] is the SP admin's (used by `cloudkeep sp …`
//! and the console's SP mode); the tenant client joins it with the tenant side. Every
//! connection is pinned to the certificate the user trusted ([`tls`]); [`remote`] is the pack
//! store a tenant's repository uses through the gateway.
//!
//! It speaks the types of `cloudkeep-api` and never depends on the gateway crate.

pub mod failover;
#[cfg(unix)]
pub mod nbd;
pub mod remote;
pub mod replication;
pub mod tenant;
pub mod tls;

use cloudkeep_model::failure::{Failure, FailureKind};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use cloudkeep_api::AuditEntry;
use cloudkeep_api::RecycledPoint;
use cloudkeep_api::{
    CertGenerate, CertImport, CloudRepo, ErrorBody, ErrorCode, GatewayEntry, GatewaySettings,
    Hello, LoginRequest, LoginResponse, MaintenanceMode, NewCloudRepo, NewPassword, NewTenant,
    QuotaSpec, TenantSettings, TenantView, UsageRow,
};
use cloudkeep_api::{CertInfo, RecycledRef};

/// Errors of talking to a gateway.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection.
    #[error(
        "cannot reach the gateway at {address}: {reason}; check the address and port and that the gateway runs"
    )]
    Unreachable {
        /// Where.
        address: String,
        /// Why.
        reason: String,
    },
    /// The certificate is not trusted yet.
    #[error("the certificate of {address} is not trusted ({why}): {} (issued by {}, valid {} to {}), SHA-256 fingerprint {}; compare it with the one your service provider gave you and, if it matches, repeat with --trust {}", .cert.subject, .cert.issuer, .cert.not_before, .cert.not_after, .cert.fingerprint, .cert.fingerprint)]
    Untrusted {
        /// Where.
        address: String,
        /// What it presented.
        cert: Box<CertInfo>,
        /// Why the system's root certificates do not vouch for it.
        why: String,
    },
    /// A fingerprint given to confirm a certificate does not match it.
    #[error(
        "the fingerprint given does not match the certificate of {address}, which is {presented}; check with your service provider"
    )]
    WrongFingerprint {
        /// Where.
        address: String,
        /// What it presents.
        presented: String,
    },
    /// The certificate differs from the pinned one.
    #[error(
        "the certificate of {address} changed: expected {expected}, got {} ({}, issued by {}, valid {} to {}); if the service provider renewed it, trust the new one with --trust {}", .cert.fingerprint, .cert.subject, .cert.issuer, .cert.not_before, .cert.not_after, .cert.fingerprint
    )]
    CertificateChanged {
        /// Where.
        address: String,
        /// The pin.
        expected: String,
        /// What it presented.
        cert: Box<CertInfo>,
    },
    /// A TLS problem.
    #[error("TLS: {0}")]
    Tls(String),
    /// The gateway refused.
    #[error("{message}")]
    Api {
        /// Stable code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// An answer that is not what the protocol says.
    #[error(
        "the gateway's answer is not understood ({0}); check that client and gateway versions match"
    )]
    Protocol(String),
    /// No saved SP session.
    #[error(
        "not logged in to a gateway as SP admin; run \"cloudkeep sp login --gateway HOST[:PORT] --user NAME --password-stdin\""
    )]
    NotLoggedIn,
    /// Local files.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Failure for ClientError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Untrusted { .. }
            | Self::CertificateChanged { .. }
            | Self::WrongFingerprint { .. } => Some(FailureKind::Certificate),
            Self::Api { code, .. } => code.kind(),
            Self::NotLoggedIn => Some(FailureKind::Auth),
            _ => None,
        }
    }
}

/// Adds the default port to an address given without one.
pub fn with_default_port(address: &str) -> String {
    let has_port = match address.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        address.to_owned()
    } else {
        format!("{address}:{}", cloudkeep_api::DEFAULT_PORT)
    }
}

/// An SP admin's saved login: which gateway, which certificate, which session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpSession {
    /// `host:port`.
    pub gateway: String,
    /// The trusted certificate's fingerprint.
    pub fingerprint: String,
    /// Admin name.
    pub user: String,
    /// Session token.
    pub token: String,
}

impl SpSession {
    fn path(home: &cloudkeep_model::paths::DataHome) -> PathBuf {
        home.sp_session()
    }

    /// Forgets the saved session (logging out); true when there was one.
    pub fn forget(home: &cloudkeep_model::paths::DataHome) -> Result<bool, ClientError> {
        let path = Self::path(home);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ClientError::Io { path, source }),
        }
    }

    /// The saved session, if any.
    pub fn load(home: &cloudkeep_model::paths::DataHome) -> Result<Self, ClientError> {
        let path = Self::path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClientError::NotLoggedIn);
            }
            Err(source) => return Err(ClientError::Io { path, source }),
        };
        serde_json::from_str(&text).map_err(|_| ClientError::NotLoggedIn)
    }

    /// Logs in to a gateway as SP admin through the trust step ([`tls::check_presented`]):
    /// `trust` is a fingerprint the admin was given; `saved` is an earlier session, whose pin
    /// must still match when it is for the same gateway. The console and `cloudkeep sp login`
    /// both come here. The session is returned, not saved.
    pub async fn log_in(
        gateway: &str,
        user: &str,
        password: &str,
        trust: Option<&str>,
        saved: Option<&SpSession>,
    ) -> Result<Self, ClientError> {
        let address = with_default_port(gateway);
        let presented = tls::probe(&address).await?;
        let pinned = saved
            .filter(|s| s.gateway == address)
            .map(|s| s.fingerprint.as_str());
        let fingerprint = tls::check_presented(&address, &presented, trust, pinned)?;
        let mut client = SpClient::new(&address, &fingerprint)?;
        let login = client.login(user, password).await?;
        Ok(Self {
            gateway: address,
            fingerprint,
            user: user.to_owned(),
            token: login.token,
        })
    }

    /// After the admin installed a certificate over this trusted session (generated or
    /// imported), the saved session pins it; true when the pin changed.
    pub fn pin_installed(
        home: &cloudkeep_model::paths::DataHome,
        fingerprint: &str,
    ) -> Result<bool, ClientError> {
        let mut session = Self::load(home)?;
        if session.fingerprint == fingerprint {
            return Ok(false);
        }
        session.fingerprint = fingerprint.to_owned();
        session.save(home)?;
        Ok(true)
    }

    /// Saves it (owner-only).
    pub fn save(&self, home: &cloudkeep_model::paths::DataHome) -> Result<(), ClientError> {
        let path = Self::path(home);
        home.ensure().map_err(|e| ClientError::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let text =
            serde_json::to_string_pretty(self).map_err(|e| ClientError::Protocol(e.to_string()))?;
        cloudkeep_model::paths::write_private_file(&path, text.as_bytes())
            .map_err(|source| ClientError::Io { path, source })
    }
}

/// A connection to a gateway, pinned to one certificate.
#[derive(Debug, Clone)]
pub struct SpClient {
    http: reqwest::Client,
    address: String,
    pin: String,
    token: Option<String>,
}

impl SpClient {
    /// A client for `address` accepting only the certificate `fingerprint`.
    pub fn new(address: &str, fingerprint: &str) -> Result<Self, ClientError> {
        let address = with_default_port(address);
        let config = tls::pinned_config(fingerprint)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .connect_timeout(std::time::Duration::from_secs(15))
            .timeout(std::time::Duration::from_secs(120))
            // Before the gateway's own idle limit closes it (`[connections] header_secs`).
            .pool_idle_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Self {
            http,
            address,
            pin: cloudkeep_certs::normalize_fingerprint(fingerprint),
            token: None,
        })
    }

    /// A client for a saved session.
    pub fn from_session(session: &SpSession) -> Result<Self, ClientError> {
        let mut client = Self::new(&session.gateway, &session.fingerprint)?;
        client.token = Some(session.token.clone());
        Ok(client)
    }

    /// The gateway address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The fingerprint this client pins.
    pub fn pin(&self) -> &str {
        &self.pin
    }

    /// Explains a failed request: a changed certificate is named with both fingerprints.
    async fn transport_error(&self, e: reqwest::Error) -> ClientError {
        tls::unreachable_or_changed(&self.address, &self.pin, e.to_string()).await
    }

    /// Uses `token` for the following calls.
    pub(crate) fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        self.call_within(method, path, body, None).await
    }

    /// [`Self::call`] for work that takes longer than the usual two minutes.
    async fn call_within<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<std::time::Duration>,
    ) -> Result<T, ClientError> {
        let url = format!("https://{}{path}", self.address);
        let mut req = self.http.request(method, &url);
        if let Some(timeout) = timeout {
            req = req.timeout(timeout);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.finish(req).await
    }

    /// Sends `req` and reads its answer: the JSON of a success, the gateway's error otherwise.
    async fn finish<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let bytes = self
            .answer(req)
            .await?
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends `req`: a success's answer (its body not read yet), the gateway's error otherwise.
    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return Err(self.transport_error(e).await),
        };
        let status = resp.status();
        // A tunnel opened (an upgrade) is an answer too.
        if !status.is_success() && status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    code: body.code,
                    message: body.message,
                },
                Err(_) => ClientError::Protocol(format!("HTTP {status}")),
            });
        }
        Ok(resp)
    }

    /// A request whose body is streamed as it is made (`headers` added), for work that may take
    /// hours (`timeout`, a day when `None`).
    pub(crate) async fn send_raw<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: reqwest::Body,
        timeout: Option<std::time::Duration>,
    ) -> Result<T, ClientError> {
        let req = self.raw_request(method, path, headers, body, timeout);
        self.finish(req).await
    }

    /// [`Self::send_raw`] whose answer is streamed too: the response, its body not read yet.
    pub(crate) async fn send_streaming(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: reqwest::Body,
    ) -> Result<reqwest::Response, ClientError> {
        let req = self.raw_request(method, path, headers, body, None);
        self.answer(req).await
    }

    fn raw_request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: reqwest::Body,
        timeout: Option<std::time::Duration>,
    ) -> reqwest::RequestBuilder {
        let url = format!("https://{}{path}", self.address);
        let mut req = self
            .http
            .request(method, &url)
            .timeout(timeout.unwrap_or(std::time::Duration::from_secs(24 * 3600)));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(body)
    }

    /// Opens `path` as a tunnel of `protocol` (an HTTP/1.1 upgrade on a connection of its
    /// own, the same certificate pinned): a byte stream both ways, for as long as it lasts.
    pub(crate) async fn upgrade(
        &self,
        path: &str,
        protocol: &str,
    ) -> Result<reqwest::Upgraded, ClientError> {
        let mut config = tls::pinned_config(&self.pin)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .http1_only()
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let mut req = http
            .get(format!("https://{}{path}", self.address))
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, protocol);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = self.answer(req).await?;
        if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Protocol(format!(
                "the gateway did not open the tunnel (HTTP {})",
                resp.status()
            )));
        }
        resp.upgrade()
            .await
            .map_err(|e| ClientError::Protocol(format!("the tunnel did not open: {e}")))
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(reqwest::Method::GET, path, None).await
    }

    /// `hello`.
    pub async fn hello(&self) -> Result<Hello, ClientError> {
        self.get("/v1/hello").await
    }

    /// Logs in as SP admin; keeps the session in this client.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        let resp: LoginResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/admin/login",
                Some(&LoginRequest {
                    user: user.into(),
                    password: password.into(),
                }),
            )
            .await?;
        self.token = Some(resp.token.clone());
        Ok(resp)
    }

    /// Cloud repositories.
    pub async fn repos(&self) -> Result<Vec<CloudRepo>, ClientError> {
        self.get("/v1/admin/repos").await
    }

    /// Adds a folder cloud repository.
    pub async fn add_repo(&self, name: &str, path: &str) -> Result<CloudRepo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/repos",
            Some(&NewCloudRepo {
                name: name.into(),
                path: path.into(),
                s3: None,
            }),
        )
        .await
    }

    /// Adds an object-storage cloud repository (the gateway tests it first).
    pub async fn add_s3_repo(
        &self,
        name: &str,
        access: &cloudkeep_api::S3Access,
    ) -> Result<CloudRepo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/repos",
            Some(&NewCloudRepo {
                name: name.into(),
                path: String::new(),
                s3: Some(access.clone()),
            }),
        )
        .await
    }

    /// Changes a cloud repository's title, capacity or service state.
    pub async fn edit_repo(
        &self,
        name: &str,
        edit: &cloudkeep_api::RepoEdit,
    ) -> Result<CloudRepo, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/admin/repos/{}", name.replace('/', "%2F")),
            Some(edit),
        )
        .await
    }

    /// Removes a cloud repository no quota is on; the repositories left.
    pub async fn remove_repo(&self, name: &str) -> Result<Vec<CloudRepo>, ClientError> {
        self.call::<(), _>(
            reqwest::Method::DELETE,
            &format!("/v1/admin/repos/{}", name.replace('/', "%2F")),
            None,
        )
        .await
    }

    /// Starts moving a tenant's quota, with its data, to another repository.
    pub async fn start_move(
        &self,
        req: &cloudkeep_api::MoveRequest,
    ) -> Result<cloudkeep_api::MoveInfo, ClientError> {
        self.call(reqwest::Method::POST, "/v1/admin/moves", Some(req))
            .await
    }

    /// Moves, newest first.
    pub async fn moves(&self) -> Result<Vec<cloudkeep_api::MoveInfo>, ClientError> {
        self.get("/v1/admin/moves").await
    }

    /// One move.
    pub async fn move_info(&self, id: i64) -> Result<cloudkeep_api::MoveInfo, ClientError> {
        self.get(&format!("/v1/admin/moves/{id}")).await
    }

    /// Whether the gateway reaches an object store with these credentials; nothing is kept.
    pub async fn test_s3(
        &self,
        access: &cloudkeep_api::S3Access,
    ) -> Result<cloudkeep_api::StorageProbe, ClientError> {
        self.call(reqwest::Method::POST, "/v1/admin/repos/test", Some(access))
            .await
    }

    /// Every tenant and subtenant with quotas.
    pub async fn tenants(&self) -> Result<Vec<TenantView>, ClientError> {
        self.get("/v1/admin/tenants").await
    }

    /// Creates a tenant (`name`) or subtenant (`tenant/sub`).
    pub async fn add_tenant(&self, tenant: &NewTenant) -> Result<TenantView, ClientError> {
        self.call(reqwest::Method::POST, "/v1/admin/tenants", Some(tenant))
            .await
    }

    fn tenant_path(login: &str, rest: &str) -> String {
        format!("/v1/admin/tenants/{}{rest}", login.replace('/', "%2F"))
    }

    /// One tenant.
    pub async fn tenant(&self, login: &str) -> Result<TenantView, ClientError> {
        self.get(&Self::tenant_path(login, "")).await
    }

    /// Replaces a tenant's settings.
    pub async fn set_settings(
        &self,
        login: &str,
        settings: &TenantSettings,
    ) -> Result<TenantView, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &Self::tenant_path(login, "/settings"),
            Some(settings),
        )
        .await
    }

    /// Sets or adds a quota.
    pub async fn set_quota(
        &self,
        login: &str,
        quota: &QuotaSpec,
    ) -> Result<TenantView, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &Self::tenant_path(login, "/quotas"),
            Some(quota),
        )
        .await
    }

    /// Sets a tenant's password.
    pub async fn set_password(&self, login: &str, password: &str) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::POST,
            &Self::tenant_path(login, "/password"),
            Some(&NewPassword {
                password: password.into(),
            }),
        )
        .await
    }

    /// Deletes a tenant, and its stored data when `with_data`.
    pub async fn delete_tenant(&self, login: &str, with_data: bool) -> Result<(), ClientError> {
        self.call::<(), ()>(
            reqwest::Method::DELETE,
            &Self::tenant_path(login, &format!("?with_data={with_data}")),
            None,
        )
        .await
    }

    /// Maintenance mode.
    pub async fn maintenance(&self) -> Result<MaintenanceMode, ClientError> {
        self.get("/v1/admin/maintenance").await
    }

    /// What the SP sets for every tenant (the lease grace period).
    pub async fn gateway_settings(&self) -> Result<GatewaySettings, ClientError> {
        self.get("/v1/admin/settings").await
    }

    /// Changes what the SP sets for every tenant.
    pub async fn set_gateway_settings(
        &self,
        settings: &GatewaySettings,
    ) -> Result<GatewaySettings, ClientError> {
        self.call(reqwest::Method::PUT, "/v1/admin/settings", Some(settings))
            .await
    }

    /// Turns maintenance mode on (with a message) or off.
    pub async fn set_maintenance(
        &self,
        message: Option<&str>,
    ) -> Result<MaintenanceMode, ClientError> {
        self.call(
            reqwest::Method::PUT,
            "/v1/admin/maintenance",
            Some(&MaintenanceMode {
                message: message.map(Into::into),
            }),
        )
        .await
    }

    /// The storage check: the database against the storage, reconciled (`deep` re-reads and
    /// hashes every pack, which takes as long as reading the whole storage).
    pub async fn check(&self, deep: bool) -> Result<cloudkeep_api::CheckReport, ClientError> {
        self.call_within(
            reqwest::Method::POST,
            "/v1/admin/check",
            Some(&cloudkeep_api::CheckRequest { deep }),
            Some(std::time::Duration::from_secs(24 * 3600)),
        )
        .await
    }

    /// The gateway list.
    pub async fn gateways(&self) -> Result<Vec<GatewayEntry>, ClientError> {
        self.get("/v1/admin/gateways").await
    }

    /// Drains gateway `id` (no new sessions) or puts it back in service; the gateway list
    /// after the change.
    pub async fn drain_gateway(
        &self,
        id: &str,
        draining: bool,
    ) -> Result<Vec<GatewayEntry>, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &format!(
                "/v1/admin/gateways/{}/drain",
                id.replace('%', "%25")
                    .replace('/', "%2F")
                    .replace('?', "%3F")
                    .replace('#', "%23")
            ),
            Some(&cloudkeep_api::DrainRequest { draining }),
        )
        .await
    }

    /// Usage per tenant and repository.
    pub async fn usage(&self) -> Result<Vec<UsageRow>, ClientError> {
        self.get("/v1/admin/usage").await
    }

    /// Every SP admin.
    pub async fn admins(&self) -> Result<Vec<cloudkeep_api::AdminView>, ClientError> {
        self.get("/v1/admin/admins").await
    }

    /// Adds an SP admin.
    pub async fn add_admin(
        &self,
        name: &str,
        password: &str,
    ) -> Result<cloudkeep_api::AdminView, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/admins",
            Some(&LoginRequest {
                user: name.to_owned(),
                password: password.to_owned(),
            }),
        )
        .await
    }

    /// Removes another SP admin.
    pub async fn remove_admin(&self, name: &str) -> Result<(), ClientError> {
        self.call::<(), ()>(
            reqwest::Method::DELETE,
            &format!("/v1/admin/admins/{name}"),
            None,
        )
        .await
    }

    /// Sets an SP admin's password (its sessions end).
    pub async fn set_admin_password(&self, name: &str, password: &str) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/admin/admins/{name}/password"),
            Some(&NewPassword {
                password: password.to_owned(),
            }),
        )
        .await
    }

    /// A space pass over every account now: packs no restore point needs removed (retired
    /// under insider protection), retired ones whose window ended removed, what a
    /// compaction would free measured.
    pub async fn space_pass(&self) -> Result<cloudkeep_api::PassReport, ClientError> {
        self.call_within(
            reqwest::Method::POST,
            "/v1/admin/space",
            None::<&()>,
            Some(std::time::Duration::from_secs(24 * 3600)),
        )
        .await
    }

    /// The audit log, newest first.
    pub async fn audit(&self) -> Result<Vec<AuditEntry>, ClientError> {
        self.get("/v1/admin/audit").await
    }

    /// The SP's notification channels (the SMTP password never comes back).
    pub async fn notify_channels(&self) -> Result<cloudkeep_api::notify::Channels, ClientError> {
        self.get("/v1/admin/notify").await
    }

    /// Sets the SP's notification channels.
    pub async fn set_notify_channels(
        &self,
        channels: &cloudkeep_api::notify::Channels,
    ) -> Result<cloudkeep_api::notify::Channels, ClientError> {
        self.call(reqwest::Method::PUT, "/v1/admin/notify", Some(channels))
            .await
    }

    /// Sends a test notification to every channel; each channel's error, if any.
    pub async fn test_notify(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        self.call(reqwest::Method::POST, "/v1/admin/notify/test", None::<&()>)
            .await
    }

    /// Every restore point in a recycle bin.
    pub async fn recycle_bin(&self) -> Result<Vec<RecycledPoint>, ClientError> {
        self.get("/v1/admin/recycle-bin").await
    }

    /// Gives a recycled point back to its tenant.
    pub async fn recycle_restore(&self, point: &RecycledRef) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/recycle-bin/restore",
            Some(point),
        )
        .await
    }

    /// Purges a recycled point for good.
    pub async fn recycle_purge(&self, point: &RecycledRef) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/recycle-bin/purge",
            Some(point),
        )
        .await
    }

    /// What to hand tenant `login`: the gateways' addresses ([`Self::live_addresses`]), the
    /// served certificate's fingerprint, the account, and `password` when it was just set.
    pub async fn handoff(
        &self,
        login: &str,
        password: Option<String>,
    ) -> Result<cloudkeep_api::handoff::Handoff, ClientError> {
        let account = self.tenant(login).await?;
        self.handoff_for(account.tenant.login, password).await
    }

    /// The connection details of account `user` (a tenant or a cloud host).
    pub(crate) async fn handoff_for(
        &self,
        user: String,
        password: Option<String>,
    ) -> Result<cloudkeep_api::handoff::Handoff, ClientError> {
        let cert = self.cert().await?;
        Ok(cloudkeep_api::handoff::Handoff {
            addresses: self.live_addresses().await?,
            fingerprint: cert.fingerprint,
            user,
            password,
        })
    }

    /// The addresses of the gateways that beat their heartbeat lately (the one this client
    /// talks to when none does).
    async fn live_addresses(&self) -> Result<Vec<String>, ClientError> {
        let mut gateways = self.gateways().await?;
        gateways.sort_by_key(|g| std::cmp::Reverse(g.heartbeat_ms));
        let newest = gateways.first().map_or(0, |g| g.heartbeat_ms);
        let mut addresses: Vec<String> = Vec::new();
        for g in gateways {
            // Gateways silent for ten minutes longer than the newest are gone or stopped.
            if newest - g.heartbeat_ms <= 600_000 && !addresses.contains(&g.address) {
                addresses.push(g.address);
            }
        }
        if addresses.is_empty() {
            addresses.push(self.address().to_owned());
        }
        Ok(addresses)
    }

    /// The certificate being served.
    pub async fn cert(&self) -> Result<CertInfo, ClientError> {
        self.get("/v1/admin/cert").await
    }

    /// Replaces the certificate with a new self-signed one.
    pub async fn cert_generate(&self, names: Vec<String>) -> Result<CertInfo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/cert/generate",
            Some(&CertGenerate { names }),
        )
        .await
    }

    /// Generates and announces the next self-signed certificate (served after `cert_rollover`).
    pub async fn cert_next(&self, names: Vec<String>) -> Result<CertInfo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/cert/next",
            Some(&CertGenerate { names }),
        )
        .await
    }

    /// The announced next certificate, if any.
    pub async fn cert_next_info(&self) -> Result<Option<CertInfo>, ClientError> {
        self.get("/v1/admin/cert/next").await
    }

    /// Serves the announced certificate now.
    pub async fn cert_rollover(&self) -> Result<CertInfo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/cert/rollover",
            None::<&()>,
        )
        .await
    }

    /// Replaces the certificate with a PEM chain and key.
    pub async fn cert_import(&self, chain: String, key: String) -> Result<CertInfo, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/cert/import",
            Some(&CertImport { chain, key }),
        )
        .await
    }
}
