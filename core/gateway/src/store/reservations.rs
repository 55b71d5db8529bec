//! Reservations: bytes of a quota held for a write in flight (a pack upload, a small object, a
//! restore point), recorded in the database in the same transaction that charges them, so
//! that a gateway killed mid-write leaks nothing: when it starts again it gives its own
//! reservations back (and removes what the write left on disk), and the SP's storage check
//! does the same for a gateway that never comes back. A write that completes ends its
//! reservation in the transaction that records it ([`settle`]); one that fails gives the
//! bytes back ([`Db::cancel`]).
//!
//! [`Db::recount`] recomputes a quota's figures from what its rows say is stored, for the
//! storage check: the counters stay fast, and any drift is found and repaired.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::tenants::{charge, uncharge};
use super::{Db, DbError, now_ms};

/// A write in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Its id.
    pub id: String,
    /// The quota charged.
    pub quota_id: i64,
    /// What is written: `pack`, `object` or `point`.
    pub kind: String,
    /// Which: the pack id, `kind/name` of an object, the point's name.
    pub name: String,
    /// Bytes reserved.
    pub bytes: i64,
    /// The gateway writing it.
    pub gateway_id: String,
    /// When it began, ms since the epoch.
    pub started_ms: i64,
}

/// A quota's figures before and after [`Db::recount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recount {
    /// The quota.
    pub quota_id: i64,
    /// `used_bytes` before.
    pub used_before: i64,
    /// `used_bytes` as the rows say.
    pub used_after: i64,
    /// `recycle_bytes` before.
    pub recycle_before: i64,
    /// `recycle_bytes` as the rows say.
    pub recycle_after: i64,
}

impl Recount {
    /// Whether the counters had drifted from the rows.
    pub fn drifted(&self) -> bool {
        self.used_before != self.used_after || self.recycle_before != self.recycle_after
    }
}

const COLUMNS: &str = "id, quota_id, kind, name, bytes, gateway_id, started_ms";

fn reservation_of(r: &sqlx::any::AnyRow) -> Result<Reservation, DbError> {
    Ok(Reservation {
        id: r.try_get(0)?,
        quota_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        name: r.try_get(3)?,
        bytes: r.try_get(4)?,
        gateway_id: r.try_get(5)?,
        started_ms: r.try_get(6)?,
    })
}

/// Ends reservation `id` of `bytes` on `quota` inside the transaction that records its write:
/// the bytes stay counted. When the reservation is gone (a gateway that shares this one's id
/// reclaimed it after a restart), they are charged again, whether or not they fit: the write
/// is stored.
pub(super) async fn settle(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    quota: i64,
    bytes: i64,
) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM reservations WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 && bytes > 0 {
        charge(conn, quota, bytes, true).await?;
    }
    Ok(())
}

/// `CAST(COALESCE(SUM(bytes), 0) AS BIGINT)` of a table's rows of one quota (PostgreSQL's
/// SUM of BIGINT is NUMERIC).
fn sum(table: &str, filter: &str) -> String {
    format!(
        "(SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM {table} WHERE quota_id = q.id{filter})"
    )
}

impl Db {
    /// Charges `bytes` to `quota` for a write of `kind` `name` by `gateway` and records the
    /// reservation; `None` (nothing changed) when they do not fit.
    pub async fn reserve_for(
        &self,
        quota: i64,
        kind: &str,
        name: &str,
        bytes: i64,
        gateway: &str,
    ) -> Result<Option<String>, DbError> {
        let mut raw = [0u8; 16];
        cloudkeep_repo::crypto::random_bytes(&mut raw)
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let id = hex::encode(raw);
        let mut tx = self.pool().begin().await?;
        if !charge(&mut tx, quota, bytes, false).await? {
            return Ok(None);
        }
        // Not while the quota is frozen for a move's switch: the freeze and this write are
        // ordered by the quota's row, so a write either shows as in flight to the move or
        // is refused.
        let inserted = sqlx::query(&format!(
            "INSERT INTO reservations ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE NOT EXISTS (SELECT 1 FROM quotas WHERE id = $2 AND frozen = 1)"
        ))
        .bind(&id)
        .bind(quota)
        .bind(kind)
        .bind(name)
        .bind(bytes)
        .bind(gateway)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(DbError::Busy(
                "the repository is being moved to other storage; this write succeeds when sent again in a few seconds".into(),
            ));
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Ends a reservation whose write failed: its bytes are given back. One already ended
    /// changes nothing.
    pub async fn cancel(&self, id: &str) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("DELETE FROM reservations WHERE id = $1 RETURNING quota_id, bytes")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            uncharge(&mut tx, row.try_get(0)?, row.try_get(1)?).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The reservations of gateway `id` (after a restart: every one is dead).
    pub async fn reservations_of(&self, gateway: &str) -> Result<Vec<Reservation>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reservations WHERE gateway_id = $1 ORDER BY started_ms"
        ))
        .bind(gateway)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(reservation_of).collect()
    }

    /// Reservations no live write can still hold: begun before `before_ms`, or by a gateway
    /// whose heartbeat stopped before `silent_since_ms` (or that is not in the list at all).
    pub async fn dead_reservations(
        &self,
        before_ms: i64,
        silent_since_ms: i64,
    ) -> Result<Vec<Reservation>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reservations r WHERE r.started_ms < $1 OR NOT EXISTS \
             (SELECT 1 FROM gateways g WHERE g.id = r.gateway_id AND g.heartbeat_ms >= $2) \
             ORDER BY started_ms"
        ))
        .bind(before_ms)
        .bind(silent_since_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(reservation_of).collect()
    }

    /// The reservations of one quota.
    pub async fn reservations_in(&self, quota: i64) -> Result<Vec<Reservation>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reservations WHERE quota_id = $1"
        ))
        .bind(quota)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(reservation_of).collect()
    }

    /// Sets a quota's `used_bytes` and `recycle_bytes` to what its rows say (packs, small
    /// objects, live points and reservations in flight; recycled points), adding its shared
    /// subtenants' for a tenant's quota. The row is locked first, so concurrent writers wait
    /// for the recount instead of racing it.
    pub async fn recount(&self, quota: i64) -> Result<Recount, DbError> {
        let mut tx = self.pool().begin().await?;
        let before = sqlx::query(
            "UPDATE quotas SET used_bytes = used_bytes WHERE id = $1 RETURNING used_bytes, recycle_bytes",
        )
        .bind(quota)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("quota {quota}")))?;
        let stored = format!(
            "{} + {} + {} + {}",
            sum("packs", " AND retired_ms IS NULL"),
            sum("objects", ""),
            sum("points", " AND deleted_ms IS NULL"),
            sum("reservations", "")
        );
        let recycled = format!(
            "{} + {}",
            sum("points", " AND deleted_ms IS NOT NULL"),
            sum("packs", " AND retired_ms IS NOT NULL")
        );
        // The quota itself, and the quotas of subtenants sharing it.
        let sql = format!(
            "SELECT CAST(COALESCE(SUM({stored}), 0) AS BIGINT), CAST(COALESCE(SUM({recycled}), 0) AS BIGINT) \
             FROM quotas q WHERE q.id = $1 OR q.id IN (SELECT s.id FROM quotas s \
             JOIN tenants t ON t.id = s.tenant_id JOIN quotas p ON p.tenant_id = t.parent_id \
             AND p.repo_id = s.repo_id WHERE p.id = $1 AND s.quota_bytes < 0)"
        );
        let row = sqlx::query(&sql).bind(quota).fetch_one(&mut *tx).await?;
        let (used_after, recycle_after): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query("UPDATE quotas SET used_bytes = $1, recycle_bytes = $2 WHERE id = $3")
            .bind(used_after)
            .bind(recycle_after)
            .bind(quota)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Recount {
            quota_id: quota,
            used_before: before.try_get(0)?,
            used_after,
            recycle_before: before.try_get(1)?,
            recycle_after,
        })
    }

    /// Every quota's id, for checks that go over all of them.
    pub async fn quota_ids(&self) -> Result<Vec<i64>, DbError> {
        let rows = sqlx::query("SELECT id FROM quotas ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
