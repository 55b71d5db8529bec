//! What every gateway of one SP enforces together, kept in the shared database: failed logins
//! and bans per address, and one bandwidth token bucket per limited account. A gateway keeps
//! nothing of either in memory, so an address banned through one gateway is banned on all,
//! and a tenant limited to a rate gets that rate in total however many gateways it uses.
//!
//! Invariant: each change is one statement (an upsert with `RETURNING`), so gateways never
//! read-modify-write a row between them.

use sqlx::Row;

use super::{Db, DbError, now_ms};

impl Db {
    /// When a ban on `ip` ends (ms since the epoch), if one is in force.
    pub async fn banned_until(&self, ip: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query("SELECT banned_until_ms FROM bans WHERE ip = $1")
            .bind(ip)
            .fetch_optional(self.pool())
            .await?;
        let now = now_ms();
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .filter(|until| *until > now))
    }

    /// Records a failed login from `ip` (failures counted in windows of `window_ms`); bans
    /// the address for `ban_ms` when it reaches `limit`. Returns whether it is banned now.
    pub async fn login_failed(
        &self,
        ip: &str,
        window_ms: i64,
        limit: i64,
        ban_ms: i64,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO bans (ip, failures, window_ms, banned_until_ms) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (ip) DO UPDATE SET \
               failures = CASE WHEN bans.window_ms < $3 THEN 1 ELSE bans.failures + 1 END, \
               window_ms = CASE WHEN bans.window_ms < $3 THEN $2 ELSE bans.window_ms END \
             RETURNING failures",
        )
        .bind(ip)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(self.pool())
        .await?;
        let failures: i64 = row.try_get(0)?;
        if failures < limit {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE bans SET banned_until_ms = $2, failures = 0, window_ms = $3 WHERE ip = $1",
        )
        .bind(ip)
        .bind(now + ban_ms)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(true)
    }

    /// Forgets the failures of an address that logged in (a ban in force stays).
    pub async fn login_succeeded(&self, ip: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM bans WHERE ip = $1 AND banned_until_ms <= $2")
            .bind(ip)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes `want` bytes from account `owner`'s bucket (refilled at `rate` bytes per second
    /// up to `burst`); returns the tokens left, negative when the caller must wait
    /// `-left / rate` seconds before sending (the debt every gateway's transfers queue
    /// behind).
    pub async fn take_bandwidth(
        &self,
        owner: i64,
        rate: i64,
        burst: i64,
        want: i64,
    ) -> Result<i64, DbError> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO bandwidth (owner_id, tokens, updated_ms) VALUES ($1, $2 - $3, $4) \
             ON CONFLICT (owner_id) DO UPDATE SET \
               tokens = (CASE \
                 WHEN bandwidth.tokens + ($4 - bandwidth.updated_ms) * $5 / 1000 > $2 THEN $2 \
                 ELSE bandwidth.tokens + ($4 - bandwidth.updated_ms) * $5 / 1000 END) - $3, \
               updated_ms = $4 \
             RETURNING tokens",
        )
        .bind(owner)
        .bind(burst)
        .bind(want)
        .bind(now)
        .bind(rate)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }
}
