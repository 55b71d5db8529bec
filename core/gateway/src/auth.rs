//! Logins and sessions: password checks (Argon2id, off the async threads), random bearer
//! tokens stored only as hashes, the ban of addresses after repeated failures (default 5 in
//! 60 s, banned 60 s), and the extractor that turns an `Authorization: Bearer` header into
//! the SP admin it belongs to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::GatewayState;
use crate::store::Db;
use crate::store::accounts::Realm;
use cloudkeep_api::{ErrorCode, LoginResponse};

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The client's address, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Ban policy.
#[derive(Debug, Clone, Copy)]
pub struct BanPolicy {
    /// Failures that trigger a ban…
    pub failures: usize,
    /// …within this window.
    pub window: Duration,
    /// How long the ban lasts.
    pub ban: Duration,
}

impl Default for BanPolicy {
    fn default() -> Self {
        Self {
            failures: 5,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(60),
        }
    }
}

/// Failed logins per address and the bans they caused, kept in the shared database so that
/// every gateway of the SP refuses a banned address ([`crate::store::Db::login_failed`]).
#[derive(Debug, Default)]
pub struct Bans {
    policy: BanPolicy,
}

impl Bans {
    /// A tracker with `policy`.
    pub fn new(policy: BanPolicy) -> Self {
        Self { policy }
    }

    /// Refuses a banned address, saying for how long.
    pub async fn check(&self, db: &Db, ip: IpAddr) -> Result<(), ApiError> {
        match db.banned_until(&ip.to_string()).await? {
            Some(until) => Err(ApiError::new(
                ErrorCode::Banned,
                format!(
                    "too many failed logins from {ip}; try again in {} s",
                    (until - crate::store::now_ms()).max(0) / 1000 + 1
                ),
            )),
            None => Ok(()),
        }
    }

    /// Records a failed login; bans the address when it reaches the limit.
    pub async fn failed(&self, db: &Db, ip: IpAddr) {
        let p = &self.policy;
        match db
            .login_failed(
                &ip.to_string(),
                p.window.as_millis() as i64,
                p.failures as i64,
                p.ban.as_millis() as i64,
            )
            .await
        {
            Ok(true) => tracing::warn!(%ip, "banned after repeated failed logins"),
            Ok(false) => {}
            Err(e) => tracing::warn!(%ip, "recording a failed login: {e}"),
        }
    }

    /// Forgets the failures of an address that logged in.
    pub async fn succeeded(&self, db: &Db, ip: IpAddr) {
        if let Err(e) = db.login_succeeded(&ip.to_string()).await {
            tracing::warn!(%ip, "recording a login: {e}");
        }
    }
}

/// Checks a password against a stored hash on a blocking thread (Argon2id takes tens of ms).
pub async fn password_matches(password: String, hash: String) -> Result<bool, ApiError> {
    let _turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || cloudkeep_repo::crypto::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)
}

/// Password hashing (Argon2id, 19 MiB each) runs at most one per core at a time: a hundred
/// agents logging in at once then queue for a few hundred milliseconds instead of taking
/// 2 GiB and every core from the requests already going on.
async fn hashing_turn() -> Result<tokio::sync::SemaphorePermit<'static>, ApiError> {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS
        .get_or_init(|| {
            tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
        })
        .acquire()
        .await
        .map_err(ApiError::internal)
}

/// Hashes a new account password on a blocking thread.
pub async fn hash_new_password(password: String) -> Result<String, ApiError> {
    cloudkeep_model::names::check_password(&password).map_err(ApiError::bad_request)?;
    let _turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || {
        cloudkeep_repo::crypto::hash_password(
            &password,
            cloudkeep_repo::crypto::KdfParams::accounts(),
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Opens a session for `subject` in `realm`: a random token, stored hashed.
pub async fn open_session(
    state: &GatewayState,
    realm: Realm,
    subject: i64,
) -> Result<LoginResponse, ApiError> {
    let mut raw = [0u8; 32];
    cloudkeep_repo::crypto::random_bytes(&mut raw).map_err(ApiError::internal)?;
    let token = hex::encode(raw);
    let ttl = SESSION_TTL.as_millis() as i64;
    state.db.add_session(&token, realm, subject, ttl).await?;
    Ok(LoginResponse {
        token,
        expires_ms: crate::store::now_ms() + ttl,
    })
}

/// The failure every wrong user name or password gets (the same, so that names cannot be
/// probed).
pub fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("wrong user name or password")
}

/// The bearer token of a request.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The address a request came from.
pub fn peer_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<Peer>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip())
}

/// An SP admin's session, taken from the request.
#[derive(Debug, Clone)]
pub struct AdminSession {
    /// Admin id.
    pub id: i64,
    /// Admin name (for the audit log).
    pub name: String,
}

impl FromRequestParts<Arc<GatewayState>> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("log in as an SP admin first (no session token was sent)")
        })?;
        let id = state
            .db
            .session_subject(token, Realm::Admin)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the session has expired or is not an SP admin's; log in again",
                )
            })?;
        let name = state
            .db
            .admin_name(id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the admin account no longer exists"))?;
        Ok(Self { id, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn five_failures_ban_an_address_and_success_forgets_them() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("meta.db").display().to_string())
            .await
            .unwrap();
        let bans = Bans::new(BanPolicy::default());
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..4 {
            bans.failed(&db, a).await;
        }
        assert!(bans.check(&db, a).await.is_ok());
        bans.succeeded(&db, a).await;
        for _ in 0..4 {
            bans.failed(&db, a).await;
        }
        assert!(bans.check(&db, a).await.is_ok(), "success reset the count");
        bans.failed(&db, a).await;
        let err = bans.check(&db, a).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Banned);
        assert!(err.message.contains("try again in"), "{err}");
        assert!(
            bans.check(&db, b).await.is_ok(),
            "other addresses are not affected"
        );

        let quick = Bans::new(BanPolicy {
            failures: 1,
            window: Duration::from_secs(60),
            ban: Duration::from_millis(1),
        });
        quick.failed(&db, b).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(quick.check(&db, b).await.is_ok(), "bans end");
    }
}
