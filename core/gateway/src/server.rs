//! The gateway process: binds the listener, accepts TLS 1.3 connections (HTTP/2 or 1.1 by
//! ALPN), serves the routes, and shuts down gracefully — on the shutdown signal it stops
//! accepting, lets requests in flight finish (up to a deadline) and then exits. Background
//! tasks: the heartbeat in the gateway list, certificate reload, expired-session cleanup.
//!
//! What a peer can hold is bounded ([`super::ConnectionLimits`]): connections per address and
//! in all, the time a TLS handshake, a request's headers or the first request may take, and
//! the size of headers. Every error leaves as `{code, message}` JSON, including the ones
//! axum's extractors answer by themselves ([`json_errors`]); only a request hyper cannot
//! parse as HTTP at all gets hyper's bare status line before the connection closes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::auth::{BanPolicy, Bans, Peer};
use super::error::ApiError;
use super::tls::CertStore;
use super::{GatewayConfig, GatewayError, GatewayState};
use crate::store::Db;
use cloudkeep_api::Hello;

/// Requests in flight get this long to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);
/// Most request header bytes (names and values) the gateway reads; larger requests get a
/// JSON `431`. hyper's own parser allows more ([`HYPER_HEADER_BYTES`]) so that this check,
/// not hyper's bare answer, is what a client meets.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most headers in one request (JSON `431` beyond).
pub const MAX_HEADERS: usize = 100;
/// What hyper buffers for a request head before it gives up with a bare `431`.
const HYPER_HEADER_BYTES: usize = 256 << 10;
/// How many headers hyper parses before it gives up with a bare `431`.
const HYPER_HEADERS: usize = 4 * MAX_HEADERS;
/// How often the gateway beats its heartbeat and looks for a new certificate.
const TICK: Duration = Duration::from_secs(2);

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Its data folder.
    pub data_dir: PathBuf,
    /// Overrides the configured listen address.
    pub listen: Option<String>,
    /// Run even as root.
    pub allow_root: bool,
    /// This gateway's id in the gateway list instead of the configured one: every gateway
    /// sharing one database needs its own.
    pub id: Option<String>,
    /// The address tenants reach this gateway at instead of the configured one; a host
    /// without a port takes the port actually bound.
    pub advertise: Option<String>,
    /// Where the admin listener serves `/metrics` and `/healthz` instead of the configured
    /// `metrics_listen` (none: no admin listener).
    pub metrics_listen: Option<String>,
}

/// The address a gateway registers: `advertise` (with the bound port when it names none), or
/// the configured public address.
fn advertised(advertise: Option<&str>, configured: &str, bound: SocketAddr) -> String {
    match advertise {
        None => configured.to_owned(),
        Some(a) if a.parse::<SocketAddr>().is_ok() => a.to_owned(),
        Some(a) if a.starts_with('[') && a.ends_with(']') => format!("{a}:{}", bound.port()),
        Some(a) if a.contains(':') && a.parse::<std::net::Ipv6Addr>().is_ok() => {
            format!("[{a}]:{}", bound.port())
        }
        Some(a)
            if a.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
        {
            a.to_owned()
        }
        Some(a) => format!("{a}:{}", bound.port()),
    }
}

/// A gateway that is up: where it listens and which certificate it serves.
#[derive(Debug, Clone)]
pub struct Started {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// Gateway id.
    pub id: String,
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// All routes.
pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/v1/hello", get(hello))
        .route("/v1/cert/next", get(next_cert))
        .merge(super::admin::routes())
        .merge(super::repos::routes())
        .merge(super::moves::routes())
        .merge(super::tenant::routes())
        .merge(super::policies::routes())
        .merge(super::health::routes())
        .merge(super::replication::routes())
        .merge(super::notify::routes())
        .merge(super::recycle::routes())
        .merge(super::space::routes())
        .merge(super::limits::routes())
        .merge(super::check::routes())
        .fallback(|| async {
            ApiError::not_found("no such call; this gateway speaks protocol v1 under /v1")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::bad_request("this call does not take that method")
        })
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::map_request(header_limits))
        .with_state(state)
}

/// Counts every request by its route pattern (never its path: no ids), method and status,
/// with its latency and its error code.
async fn observe(
    State(state): State<Arc<GatewayState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Only the methods the API uses name a series: a peer inventing methods must not grow
    // the metrics without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let code = response
        .extensions()
        .get::<cloudkeep_api::ErrorCode>()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    state.metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
        code.as_deref(),
    );
    response
}

/// How a gateway is, for a load balancer and the operator's probes.
#[derive(Debug, serde::Serialize)]
struct Health {
    /// `ok`, `draining` or `unavailable`.
    status: &'static str,
    /// This gateway.
    gateway: String,
    /// What is wrong, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// `GET /healthz`: 200 while the gateway takes new sessions and reaches its database; 503
/// when it is drained for maintenance or its database does not answer (a load balancer
/// sends new sessions elsewhere).
async fn healthz(State(state): State<Arc<GatewayState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (status, health, problem) = match state.db.gateway_draining(&state.id).await {
        Ok(false) => (axum::http::StatusCode::OK, "ok", None),
        Ok(true) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            Some("drained for maintenance: new sessions go to other gateways".to_owned()),
        ),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some(format!("the database does not answer: {e}")),
        ),
    };
    (
        status,
        Json(Health {
            status: health,
            gateway: state.id.clone(),
            problem,
        }),
    )
        .into_response()
}

/// `GET /metrics` on the admin listener.
async fn metrics(State(state): State<Arc<GatewayState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let quotas = match state.db.quota_figures().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("metrics: reading the quotas failed: {e}");
            Vec::new()
        }
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&quotas),
    )
        .into_response()
}

/// The admin listener's routes: `/metrics` and `/healthz`, plain HTTP for the SP's own
/// network (bind it to loopback or a management interface).
pub fn admin_router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Refuses requests whose headers are too many or too large, with a JSON `431`.
async fn header_limits(
    request: axum::extract::Request,
) -> Result<axum::extract::Request, axum::response::Response> {
    match check_headers(request.headers()) {
        Ok(()) => Ok(request),
        Err(message) => Err(error_response(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            cloudkeep_api::ErrorCode::BadRequest,
            message,
        )),
    }
}

/// Whether a request's headers are within [`MAX_HEADERS`] and [`MAX_HEADER_BYTES`]; the
/// refusal's message otherwise.
pub fn check_headers(headers: &axum::http::HeaderMap) -> Result<(), String> {
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(format!(
            "the request's headers are too large ({} headers, {bytes} bytes; at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes)",
            headers.len()
        ));
    }
    Ok(())
}

/// Turns any error response that is not already `{code, message}` JSON — those axum's
/// extractors and routing answer by themselves, in plain text — into one, keeping its status.
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::CONTENT_TYPE;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned()
    } else {
        text
    };
    error_response(status, code_for_status(status), message)
}

/// The stable code for an HTTP status the gateway's own handlers did not choose.
fn code_for_status(status: axum::http::StatusCode) -> cloudkeep_api::ErrorCode {
    use axum::http::StatusCode;
    use cloudkeep_api::ErrorCode;
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Maintenance,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// A `{code, message}` response with a given status.
fn error_response(
    status: axum::http::StatusCode,
    code: cloudkeep_api::ErrorCode,
    message: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = (status, Json(cloudkeep_api::ErrorBody { code, message })).into_response();
    response.extensions_mut().insert(code);
    response
}

/// Connections open per address and in all: a connection counts from accept until it closes.
#[derive(Debug, Default)]
struct OpenConnections {
    per_address: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One counted connection; dropping it gives its place back.
struct ConnectionSlot {
    open: Arc<OpenConnections>,
    ip: std::net::IpAddr,
}

impl OpenConnections {
    /// A place for a connection from `ip`, or `None` when its address or the gateway is at
    /// its bound.
    fn admit(
        self: &Arc<Self>,
        ip: std::net::IpAddr,
        limits: &super::ConnectionLimits,
    ) -> Option<ConnectionSlot> {
        let mut map = self.per_address.lock().ok()?;
        let total: usize = map.values().sum();
        let mine = map.get(&ip).copied().unwrap_or(0);
        if mine >= limits.per_address || total >= limits.total {
            return None;
        }
        map.insert(ip, mine + 1);
        Some(ConnectionSlot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.open.per_address.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn hello(State(state): State<Arc<GatewayState>>) -> Result<Json<Hello>, ApiError> {
    Ok(Json(Hello {
        product: cloudkeep_model::PRODUCT.into(),
        version: cloudkeep_model::VERSION.into(),
        protocols: cloudkeep_api::PROTOCOLS.to_vec(),
        gateway_id: state.id.clone(),
        gateways: {
            // Drained gateways last: clients try the list in order.
            let mut gateways = state.db.gateways().await?;
            gateways.sort_by_key(|g| g.draining);
            gateways
        },
        maintenance: state.db.maintenance().await?,
    }))
}

/// `GET /v1/cert/next`: the certificate this gateway will serve next, signed with the key of
/// the one it serves now (404 when none is announced).
async fn next_cert(
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<cloudkeep_api::NextCert>, ApiError> {
    match state.certs.announcement().map_err(ApiError::internal)? {
        Some(next) => Ok(Json(next)),
        None => Err(ApiError::not_found("no next certificate is announced")),
    }
}

/// Runs the gateway of `options.data_dir` until `shutdown` completes; calls `started` once it
/// listens.
pub async fn run(
    options: RunOptions,
    started: impl FnOnce(&Started),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), GatewayError> {
    if running_as_root() && !options.allow_root {
        return Err(GatewayError::Root);
    }
    let mut config = GatewayConfig::load(&options.data_dir)?;
    let secrets_key = config.secrets_key(&options.data_dir)?;
    let certs = CertStore::open(&options.data_dir)?;
    super::check_private(&options.data_dir, &config.db, &[])?;
    let db = Db::open(&config.db).await?;
    super::check_private(&options.data_dir, &config.db, &db.repos().await?)?;
    let listen = options.listen.clone().unwrap_or(config.listen.clone());
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| GatewayError::Other(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    let id = options.id.clone().unwrap_or_else(|| config.id.clone());
    let public = advertised(options.advertise.as_deref(), &config.public_address, addr);
    db.register_gateway(&id, &public).await?;
    let state = Arc::new(GatewayState {
        db: db.clone(),
        id: id.clone(),
        data_dir: options.data_dir.clone(),
        certs: certs.clone(),
        bans: Bans::new(BanPolicy::default()),
        stores: crate::session::Stores::new(Some(secrets_key)),
        buckets: super::limits::Buckets::default(),
        limits: config.connections,
        metrics: super::metrics::Metrics::new(),
    });
    // What a killed run of this gateway left half-written is given back before anything new
    // is accepted.
    let reclaimed = super::check::reclaim_own(&state).await.map_err(|e| {
        GatewayError::Other(format!("reconciling the database with the storage: {e}"))
    })?;
    if reclaimed.reservations_reclaimed > 0 || !reclaimed.recounted.is_empty() {
        tracing::warn!(
            "gave back {} reservations ({} bytes) of writes a previous run left unfinished; corrected the figures of {} quotas",
            reclaimed.reservations_reclaimed,
            reclaimed.reserved_bytes_returned,
            reclaimed.recounted.len()
        );
    }
    let interrupted = db.fail_interrupted_moves(&id).await?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} moves this gateway was running when it stopped were called off; start them again"
        );
    }
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config()?));
    let info = certs.info()?;
    tracing::info!(%addr, %id, %public, fingerprint = %info.fingerprint, "gateway listening");
    started(&Started {
        addr,
        fingerprint: info.fingerprint,
        id,
    });

    let admin = match options
        .metrics_listen
        .clone()
        .or(config.metrics_listen.clone())
    {
        Some(at) => {
            let listener = TcpListener::bind(&at).await.map_err(|e| {
                GatewayError::Other(format!("cannot listen on {at} for /metrics: {e}"))
            })?;
            let bound = listener
                .local_addr()
                .map_err(|e| GatewayError::Other(e.to_string()))?;
            tracing::info!(%bound, "admin listener: /metrics and /healthz");
            let app = admin_router(state.clone());
            Some((
                bound,
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::warn!("the admin listener stopped: {e}");
                    }
                }),
            ))
        }
        None => None,
    };
    let ticker = tokio::spawn(background(state.clone()));
    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    let limits = config.connections;
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = open.admit(peer.ip(), &limits) else {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(%peer, "connection refused: its address or the gateway has as many open as allowed ({refused} refused so far)");
                    }
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let tls = tls.clone();
                let app = app.clone();
                let watcher = graceful.watcher();
                let counted = Counted::new(state.clone());
                tokio::spawn(async move {
                    let (_slot, _counted) = (slot, counted);
                    serve_connection(tcp, peer, tls, app, watcher, limits).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; letting requests in flight finish");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN) => tracing::warn!("requests still running after {} s were cut off", DRAIN.as_secs()),
    }
    ticker.abort();
    if let Some((_, task)) = admin {
        task.abort();
    }
    db.close().await;
    Ok(())
}

/// One open connection in the metrics, from accept until it closes.
struct Counted(Arc<GatewayState>);

impl Counted {
    fn new(state: Arc<GatewayState>) -> Self {
        state.metrics.connection(1);
        Self(state)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.connection(-1);
    }
}

/// Serves one accepted connection: the TLS handshake and the first request within their
/// deadlines, then HTTP/1.1 (headers within `header_secs`, also between requests) or HTTP/2
/// (pinged, so a dead peer is noticed) until the peer or the shutdown ends it.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    limits: super::ConnectionLimits,
) {
    use hyper_util::rt::TokioTimer;
    let handshake = Duration::from_secs(limits.handshake_secs.max(1));
    let headers = Duration::from_secs(limits.header_secs.max(1));
    let stream = match tokio::time::timeout(handshake, tls.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let first_request = Arc::new(tokio::sync::Notify::new());
    let seen = first_request.clone();
    let service = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        seen.notify_one();
        req
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(headers)
        .max_buf_size(HYPER_HEADER_BYTES)
        .max_headers(HYPER_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(HYPER_HEADER_BYTES as u32);
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
        .into_owned();
    let conn = watcher.watch(conn);
    tokio::pin!(conn);
    // A peer that connects and never asks anything is dropped (HTTP/1.1's header timeout
    // covers it too; HTTP/2 has none of its own).
    tokio::select! {
        ended = &mut conn => {
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            return;
        }
        () = first_request.notified() => {}
        () = tokio::time::sleep(headers) => {
            tracing::debug!(%peer, "no request within {} s: connection closed", headers.as_secs());
            return;
        }
    }
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

async fn background(state: Arc<GatewayState>) {
    let mut ticks: u64 = 0;
    // Requests answered so far, sampled at each tick over the last minute.
    let mut samples: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let per_minute = (60 / TICK.as_secs().max(1)) as usize;
    loop {
        tokio::time::sleep(TICK).await;
        ticks += 1;
        let total = state.metrics.requests_total();
        samples.push_back(total);
        if samples.len() > per_minute + 1 {
            samples.pop_front();
        }
        let last_minute = total - samples.front().copied().unwrap_or(total);
        if let Err(e) = state
            .db
            .heartbeat(
                &state.id,
                state.metrics.open_connections(),
                i64::try_from(last_minute).unwrap_or(i64::MAX),
            )
            .await
        {
            tracing::warn!("heartbeat failed: {e}");
        }
        match state.certs.reload_if_changed() {
            Ok(Some(fp)) => tracing::info!(fingerprint = %fp, "certificate reloaded"),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                "the certificate files changed but cannot be used (still serving the old one): {e}"
            ),
        }
        if ticks.is_multiple_of(300)
            && let Err(e) = state.db.purge_expired_sessions().await
        {
            tracing::warn!("session cleanup failed: {e}");
        }
        if ticks % 900 == 1 {
            match super::recycle::purge_expired(&state).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!("purged {n} restore points whose insider protection ran out")
                }
                Err(e) => tracing::warn!("recycle-bin purge failed: {e}"),
            }
        }
        if ticks % 600 == 3 {
            match super::object_lock::keep_all(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("object lock: {n} packs and objects locked or extended"),
                Err(e) => tracing::warn!("object lock pass failed: {e}"),
            }
        }
        if ticks % 3600 == 2 {
            match super::space::pass_all(&state).await {
                Ok(r) if r.removed_bytes + r.retired_bytes > 0 => tracing::info!(
                    removed = r.removed_bytes,
                    retired = r.retired_bytes,
                    "space pass: packs no restore point needs were dropped"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("space pass failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::advertised;

    #[test]
    fn an_advertised_host_takes_the_bound_port() {
        let bound = "127.0.0.1:41234".parse().unwrap();
        let cases = [
            (None, "gw.example:6180"),
            (Some("10.0.0.5"), "10.0.0.5:41234"),
            (Some("10.0.0.5:443"), "10.0.0.5:443"),
            (Some("gw2.example"), "gw2.example:41234"),
            (Some("gw2.example:7000"), "gw2.example:7000"),
            (Some("::1"), "[::1]:41234"),
            (Some("[::1]"), "[::1]:41234"),
            (Some("[::1]:9"), "[::1]:9"),
        ];
        for (given, expected) in cases {
            assert_eq!(
                advertised(given, "gw.example:6180", bound),
                expected,
                "{given:?}"
            );
        }
    }
}
