//! Logins and sessions: password checks (Argon2id, off the async threads), random bearer
//! tokens stored only as hashes, the ban of addresses after repeated failures (default 5 in
//! 60 s, banned 60 s), and the extractor that turns an `Authorization: Bearer` header into
//! the SP admin it belongs to.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::GatewayState;
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

/// Failed logins per address, and the bans they caused.
#[derive(Debug, Default)]
pub struct Bans {
    policy: BanPolicy,
    state: Mutex<BanState>,
}

#[derive(Debug, Default)]
struct BanState {
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    banned_until: HashMap<IpAddr, Instant>,
}

impl Bans {
    /// A tracker with `policy`.
    pub fn new(policy: BanPolicy) -> Self {
        Self {
            policy,
            state: Mutex::default(),
        }
    }

    /// Refuses a banned address, saying for how long.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| ApiError::internal("ban table poisoned"))?;
        let now = Instant::now();
        match state.banned_until.get(&ip).copied() {
            Some(until) if until > now => Err(ApiError::new(
                ErrorCode::Banned,
                format!(
                    "too many failed logins from {ip}; try again in {} s",
                    (until - now).as_secs() + 1
                ),
            )),
            Some(_) => {
                state.banned_until.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a failed login; bans the address when it reaches the limit.
    pub fn failed(&self, ip: IpAddr) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        let window = self.policy.window;
        let list = state.failures.entry(ip).or_default();
        list.push_back(now);
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            list.pop_front();
        }
        if list.len() >= self.policy.failures {
            state.failures.remove(&ip);
            state.banned_until.insert(ip, now + self.policy.ban);
            tracing::warn!(%ip, "banned after repeated failed logins");
        }
    }

    /// Forgets the failures of an address that logged in.
    pub fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut state) = self.state.lock() {
            state.failures.remove(&ip);
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

    #[test]
    fn five_failures_ban_an_address_and_success_forgets_them() {
        let bans = Bans::new(BanPolicy::default());
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..4 {
            bans.failed(a);
        }
        assert!(bans.check(a).is_ok());
        bans.succeeded(a);
        for _ in 0..4 {
            bans.failed(a);
        }
        assert!(bans.check(a).is_ok(), "success reset the count");
        bans.failed(a);
        let err = bans.check(a).unwrap_err();
        assert_eq!(err.code, ErrorCode::Banned);
        assert!(err.message.contains("try again in"), "{err}");
        assert!(bans.check(b).is_ok(), "other addresses are not affected");

        let quick = Bans::new(BanPolicy {
            failures: 1,
            window: Duration::from_secs(60),
            ban: Duration::from_millis(1),
        });
        quick.failed(b);
        std::thread::sleep(Duration::from_millis(5));
        assert!(quick.check(b).is_ok(), "bans end");
    }
}
