//! The host's HTTPS listener for the gateways (TLS 1.3, its own self-signed certificate,
//! which the gateways pin): replicas made, cycles of changed blocks written as replica points
//! (the request body is the block stream, read on a blocking thread as it arrives), replicas
//! removed. Only a gateway holding the host's relay key gets in; a replica's key comes with
//! each request and is never kept on disk.
//!
//! **Invariant:** one cycle, start or stop per replica at a time; another is refused, never
//! interleaved.

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use cloudkeep_api::replication::{CycleReport, ReplicaDisk};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use crate::HostError;
use crate::chain::Key;
use crate::config::HostConfig;
use crate::machine::{self, Running, StartSpec};
use crate::store::ReplicaDir;

/// The header a replica's key travels in (gateway to host, over TLS).
pub const KEY_HEADER: &str = "x-cloudkeep-replica-key";

/// What every request shares.
#[derive(Debug)]
struct Host {
    config: HostConfig,
    relay_key: String,
    busy: Mutex<HashSet<PathBuf>>,
    switches: Arc<crate::network::Switches>,
}

/// An error as the gateway reads it: a status and `{code, message}`.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let code = match self.0 {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::INSUFFICIENT_STORAGE => "storage_full",
            StatusCode::BAD_REQUEST => "bad_request",
            _ => "internal",
        };
        (
            self.0,
            Json(serde_json::json!({"code": code, "message": self.1})),
        )
            .into_response()
    }
}

impl From<HostError> for Refused {
    fn from(e: HostError) -> Self {
        let status = match &e {
            HostError::Invalid(_) => StatusCode::BAD_REQUEST,
            HostError::NotFound(_) => StatusCode::NOT_FOUND,
            HostError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

impl Host {
    fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Compared in constant time: the key is the only thing between a caller and the disks.
        let same = given.len() == self.relay_key.len()
            && given
                .bytes()
                .zip(self.relay_key.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(Refused(
                StatusCode::UNAUTHORIZED,
                "only this host's gateways may call it".into(),
            ))
        }
    }

    fn replica(&self, pool: &str, tenant: &str, name: &str) -> Result<ReplicaDir, Refused> {
        let found = self
            .config
            .pools
            .iter()
            .find(|p| p.name == pool)
            .ok_or_else(|| Refused(StatusCode::NOT_FOUND, format!("no storage pool {pool}")))?;
        Ok(ReplicaDir::new(&found.path, tenant, name)?)
    }
}

fn key_of(headers: &HeaderMap) -> Result<Key, Refused> {
    let hex = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Refused(
                StatusCode::BAD_REQUEST,
                "the replica's key is missing".into(),
            )
        })?;
    Ok(Key::from_hex(hex)?)
}

/// `POST /v1/replicas/{tenant}/{name}`.
#[derive(Debug, Deserialize)]
struct Create {
    pool: String,
    disks: Vec<ReplicaDisk>,
}

/// Where a replica is and how a cycle is bounded.
#[derive(Debug, Deserialize)]
struct Where {
    pool: String,
    #[serde(default)]
    limit: u64,
    #[serde(default = "one")]
    keep: u32,
}

fn one() -> u32 {
    1
}

type Shared = State<Arc<Host>>;

async fn create(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Json(req): Json<Create>,
) -> Result<Json<()>, Refused> {
    host.check(&headers)?;
    let key = key_of(&headers)?;
    let dir = host.replica(&req.pool, &tenant, &name)?;
    tokio::task::spawn_blocking(move || dir.create(&req.disks, &key))
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(()))
}

async fn remove(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
) -> Result<Json<()>, Refused> {
    host.check(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    if host.busy.lock().map_or(true, |b| b.contains(dir.path())) {
        return Err(Refused(
            StatusCode::CONFLICT,
            "a cycle of this replica is running; remove it after".into(),
        ));
    }
    tokio::task::spawn_blocking(move || {
        machine::stop(&dir)?;
        dir.remove()
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(()))
}

/// The request body as a blocking reader (the cycle is written on a blocking thread).
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    buf: bytes::Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.buf = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A replica's turn: one cycle, start or stop at a time (a start must not meet a cycle's
/// merge of the layers it boots from); the replica leaves the busy set when the turn ends,
/// however it ends.
struct Turn(Arc<Host>, PathBuf);

impl Turn {
    fn take(host: &Arc<Host>, dir: &ReplicaDir) -> Result<Self, Refused> {
        let fresh = host
            .busy
            .lock()
            .map(|mut b| b.insert(dir.path().to_path_buf()))
            .unwrap_or(false);
        if !fresh {
            return Err(Refused(
                StatusCode::CONFLICT,
                "a cycle, start or stop of this replica is running; try again when it ends".into(),
            ));
        }
        Ok(Self(host.clone(), dir.path().to_path_buf()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.0.busy.lock() {
            busy.remove(&self.1);
        }
    }
}

async fn cycle(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CycleReport>, Refused> {
    host.check(&headers)?;
    let key = key_of(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    let turn = Turn::take(&host, &dir)?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut stream = body.into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| e.to_string());
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let report = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let mut reader = BodyReader {
            rx,
            buf: bytes::Bytes::new(),
        };
        dir.apply_cycle(
            &key,
            &mut reader,
            at.limit,
            at.keep,
            cloudkeep_model::clock::now_ms(),
        )
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(report))
}

/// `POST …/start`: the replica started from a point (the key in its header).
async fn start(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
    Json(spec): Json<StartSpec>,
) -> Result<Json<Running>, Refused> {
    host.check(&headers)?;
    let key = key_of(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    let accel = machine::accelerator(host.config.accel.as_deref());
    let turn = Turn::take(&host, &dir)?;
    let card = match spec.network {
        Some(n) => {
            // A MAC goes onto QEMU's command line: only a well-formed one.
            let mac = match &spec.mac {
                Some(mac) if cloudkeep_api::replication::is_mac(mac) => mac.clone(),
                Some(mac) => {
                    return Err(Refused(
                        StatusCode::BAD_REQUEST,
                        format!("\"{mac}\" is not a unicast MAC address"),
                    ));
                }
                None => crate::network::mac_of(&tenant, &name),
            };
            Some(machine::NetworkCard {
                socket: host.switches.socket_for(&tenant, n, spec.test).await?,
                mac,
            })
        }
        None => None,
    };
    let running = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        machine::start(&dir, &spec, &key, &accel, card.as_ref())
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(running))
}

/// `POST …/stop`: what runs stopped, what it wrote removed.
async fn stop(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
) -> Result<Json<Option<Running>>, Refused> {
    host.check(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    let turn = Turn::take(&host, &dir)?;
    let stopped = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        machine::stop(&dir)
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(stopped))
}

/// `POST …/failback`: the machine halted and its writes made the newest point; the answer
/// streams the blocks that differ from the tenant's fingerprints (the request body), its head
/// the points as they are now.
async fn failback(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, Refused> {
    use cloudkeep_api::replication::{FAILBACK_HEADER, FailbackHead, prints};
    host.check(&headers)?;
    let key = key_of(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    let manifest = dir
        .manifest()?
        .ok_or_else(|| Refused(StatusCode::NOT_FOUND, format!("replica {tenant}/{name}")))?;
    let sizes: Vec<u64> = manifest.disks.iter().map(|d| d.size).collect();
    let theirs = prints::decode(&body, &sizes).ok_or_else(|| {
        Refused(
            StatusCode::BAD_REQUEST,
            "the failback's fingerprints are not those of this replica's disks".into(),
        )
    })?;
    let turn = Turn::take(&host, &dir)?;
    let (dir2, key2) = (dir.clone(), key.clone());
    let manifest = tokio::task::spawn_blocking(move || {
        crate::failback::take_over(&dir2, at.keep, &key2, cloudkeep_model::clock::now_ms())
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let head = serde_json::to_string(&FailbackHead {
        points: manifest.points.clone(),
        stored: dir.stored(),
    })
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        // The replica's turn is held until every block is sent: no cycle meets the failback.
        let _turn = turn;
        let mut send = |chunk: Vec<u8>| tx.blocking_send(Ok(bytes::Bytes::from(chunk))).is_ok();
        if let Err(e) = crate::failback::differences(&dir, &manifest, &key, &theirs, &mut send) {
            tracing::warn!(replica = %dir.path().display(), "failback stopped: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header(FAILBACK_HEADER, head)
        .header(axum::http::header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(stream))
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `GET …/probe?port=N`: whether a watched port of the running machine answers.
async fn probe(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    Query(port): Query<PortQuery>,
    headers: HeaderMap,
) -> Result<Json<cloudkeep_api::replication::ProbeAnswer>, Refused> {
    host.check(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    let answer = tokio::task::spawn_blocking(move || machine::probe(&dir, port.port))
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(answer))
}

/// `?port=N`.
#[derive(Debug, Deserialize)]
struct PortQuery {
    port: u16,
}

/// `GET /v1/networks/{tenant}/{n}/join`: an HTTP/1.1 upgrade to a layer-2 tunnel on the
/// tenant's network `n` (an appliance's, relayed by a gateway).
async fn join(
    State(host): Shared,
    UrlPath((tenant, network)): UrlPath<(String, u8)>,
    req: axum::extract::Request,
) -> Result<Response, Refused> {
    use cloudkeep_api::replication::L2_UPGRADE;
    host.check(req.headers())?;
    let asked = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    if asked != Some(L2_UPGRADE) {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("a tenant network is joined with Upgrade: {L2_UPGRADE}"),
        ));
    }
    cloudkeep_model::names::check("tenant", &tenant)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, e.to_string()))?;
    let upgrade = hyper::upgrade::on(req);
    let switches = host.switches.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                if let Err(e) = switches
                    .join(&tenant, network, TokioIo::new(upgraded))
                    .await
                {
                    tracing::debug!("a network tunnel ended: {e}");
                }
            }
            Err(e) => tracing::debug!("a network tunnel was not opened: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(axum::http::header::CONNECTION, "upgrade")
        .header(axum::http::header::UPGRADE, L2_UPGRADE)
        .body(Body::empty())
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `GET …/console`: the end of the running machine's serial console.
async fn console(
    State(host): Shared,
    UrlPath((tenant, name)): UrlPath<(String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Refused> {
    host.check(&headers)?;
    let dir = host.replica(&at.pool, &tenant, &name)?;
    Ok(Json(serde_json::json!({
        "running": machine::running(&dir)?,
        "console": machine::console(&dir, 16 << 10),
    })))
}

fn routes(host: Arc<Host>) -> Router {
    Router::new()
        .route("/v1/replicas/{tenant}/{name}", post(create).delete(remove))
        .route(
            "/v1/replicas/{tenant}/{name}/cycle",
            put(cycle).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/replicas/{tenant}/{name}/start", post(start))
        .route("/v1/replicas/{tenant}/{name}/stop", post(stop))
        .route(
            "/v1/replicas/{tenant}/{name}/failback",
            // A fingerprint list: 16 bytes per MiB of the disks (64 MiB for 4 TiB).
            post(failback).layer(axum::extract::DefaultBodyLimit::max(64 << 20)),
        )
        .route(
            "/v1/replicas/{tenant}/{name}/console",
            axum::routing::get(console),
        )
        .route(
            "/v1/replicas/{tenant}/{name}/probe",
            axum::routing::get(probe),
        )
        .route(
            "/v1/networks/{tenant}/{network}/join",
            axum::routing::get(join),
        )
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(host)
}

/// The host's certificate and key in its folder, made on first use (self-signed, ECDSA
/// P-256, owner-only); the certificate's fingerprint.
pub fn certificate(dir: &Path, names: &[String]) -> Result<(String, String, String), HostError> {
    let (cert_path, key_path) = (dir.join("host-cert.pem"), dir.join("host-key.pem"));
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| HostError::File { what, path, source }
    };
    if !cert_path.exists() || !key_path.exists() {
        let gen_err = |e: rcgen::Error| HostError::Invalid(format!("a host certificate: {e}"));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(gen_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Cloudkeep cloud host");
        let cert = params.self_signed(&key).map_err(gen_err)?;
        cloudkeep_model::paths::create_private_dir(dir).map_err(io("create", dir))?;
        cloudkeep_model::paths::write_private_file(&key_path, key.serialize_pem().as_bytes())
            .map_err(io("write", &key_path))?;
        cloudkeep_model::paths::write_private_file(&cert_path, cert.pem().as_bytes())
            .map_err(io("write", &cert_path))?;
    }
    let cert = std::fs::read_to_string(&cert_path).map_err(io("read", &cert_path))?;
    let key = std::fs::read_to_string(&key_path).map_err(io("read", &key_path))?;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes())
        .map_err(|e| HostError::Invalid(format!("the host's certificate: {e}")))?;
    let fingerprint = cloudkeep_certs::fingerprint(&der);
    Ok((cert, key, fingerprint))
}

/// A listener bound and ready: where it listens and its certificate's fingerprint.
pub struct Listening {
    /// The bound address.
    pub addr: SocketAddr,
    /// The certificate's SHA-256 fingerprint.
    pub fingerprint: String,
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
}

/// Binds the listener with the host's certificate.
pub async fn bind(
    dir: &Path,
    config: &HostConfig,
    relay_key: &str,
    listen: &str,
) -> Result<Listening, HostError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| HostError::File {
            what: "listen on",
            path: PathBuf::from(listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HostError::File {
        what: "listen on",
        path: PathBuf::from(listen),
        source,
    })?;
    let names = vec![addr.ip().to_string(), "localhost".to_owned()];
    let (cert, key, fingerprint) = certificate(dir, &names)?;
    let bad = |e: String| HostError::Invalid(format!("the host's certificate: {e}"));
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| bad(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(e.to_string()))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let host = Arc::new(Host {
        config: config.clone(),
        relay_key: relay_key.to_owned(),
        busy: Mutex::new(HashSet::new()),
        switches: Arc::new(crate::network::Switches::new(&dir.join("net"))),
    });
    Ok(Listening {
        addr,
        fingerprint,
        listener,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        app: routes(host),
    })
}

impl Listening {
    /// Accepts connections until the task is dropped.
    pub async fn serve(self) {
        loop {
            let Ok((tcp, peer)) = self.listener.accept().await else {
                continue;
            };
            let (tls, app) = (self.tls.clone(), self.app.clone());
            tokio::spawn(async move {
                let handshake = std::time::Duration::from_secs(10);
                let stream = match tokio::time::timeout(handshake, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    _ => {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    }
                };
                let builder = auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(app),
                    )
                    .await
                {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            });
        }
    }
}
