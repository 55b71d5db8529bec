//! The gateway process: binds the listener, accepts TLS 1.3 connections (HTTP/2 or 1.1 by
//! ALPN), serves the routes, and shuts down gracefully — on the shutdown signal it stops
//! accepting, lets requests in flight finish (up to a deadline) and then exits. Background
//! tasks: the heartbeat in the gateway list, certificate reload, expired-session cleanup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
use super::{GatewayConfig, GatewayError};
use crate::api::Hello;
use crate::store::Db;
use crate::store::repos::CloudRepo;

/// Requests in flight get this long to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);
/// A TLS handshake must finish within this.
const HANDSHAKE: Duration = Duration::from_secs(15);
/// How often the gateway beats its heartbeat and looks for a new certificate.
const TICK: Duration = Duration::from_secs(2);

/// What every handler shares.
#[derive(Debug)]
pub struct GatewayState {
    /// The metadata database.
    pub db: Db,
    /// This gateway's id.
    pub id: String,
    /// Its data folder.
    pub data_dir: PathBuf,
    /// The certificate being served.
    pub certs: CertStore,
    /// Failed logins and bans.
    pub bans: Bans,
    /// Open storage areas.
    pub stores: super::tenant::Stores,
    /// Bandwidth limits.
    pub buckets: super::limits::Buckets,
}

/// Where a quota's data lives in its cloud repository.
pub fn tenant_area(repo: &CloudRepo, quota_id: i64) -> PathBuf {
    Path::new(&repo.location).join(format!("q{quota_id}"))
}

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
        .merge(super::admin::routes())
        .merge(super::tenant::routes())
        .merge(super::policies::routes())
        .merge(super::recycle::routes())
        .merge(super::limits::routes())
        .fallback(|| async {
            ApiError::not_found("no such call; this gateway speaks protocol v1 under /v1")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::bad_request("this call does not take that method")
        })
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

async fn hello(State(state): State<Arc<GatewayState>>) -> Result<Json<Hello>, ApiError> {
    Ok(Json(Hello {
        product: crate::PRODUCT.into(),
        version: crate::VERSION.into(),
        protocols: crate::api::PROTOCOLS.to_vec(),
        gateway_id: state.id.clone(),
        gateways: state.db.gateways().await?,
        maintenance: state.db.maintenance().await?,
    }))
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
    let config = GatewayConfig::load(&options.data_dir)?;
    let certs = CertStore::open(&options.data_dir)?;
    let db = Db::open(&config.db).await?;
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
        stores: super::tenant::Stores::default(),
        buckets: super::limits::Buckets::default(),
    });
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config()?));
    let info = certs.info()?;
    tracing::info!(%addr, %id, %public, fingerprint = %info.fingerprint, "gateway listening");
    started(&Started {
        addr,
        fingerprint: info.fingerprint,
        id,
    });

    let ticker = tokio::spawn(background(state.clone()));
    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
                let _ = tcp.set_nodelay(true);
                let tls = tls.clone();
                let app = app.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE, tls.accept(tcp)).await {
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
                    let service = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(Peer(peer));
                        req
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
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
    db.close().await;
    Ok(())
}

async fn background(state: Arc<GatewayState>) {
    let mut ticks: u64 = 0;
    loop {
        tokio::time::sleep(TICK).await;
        ticks += 1;
        if let Err(e) = state.db.heartbeat(&state.id).await {
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
