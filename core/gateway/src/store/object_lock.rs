//! What the gateway told an object store to lock (S3 Object Lock), per pack, small object
//! and restore point: `locked_until_ms`, so that the lock keeper (`crate::object_lock`)
//! asks the store only for what is unlocked or whose lock ends inside the window it keeps.

use sqlx::Row;

use super::{Db, DbError};

/// One thing of a quota's area the store can lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockItem {
    /// A pack, by id (hex).
    Pack(String),
    /// A small object: its kind as the API names it (`keyring`, `index`, `sets`) and name.
    Object(String, String),
    /// A restore point, by name.
    Point(String),
}

impl Db {
    /// Up to `limit` things of quota `quota` whose lock ends before `before_ms` (or that were
    /// never locked): every pack, small object (not `locks`: they come and go with every
    /// task) and restore point still there for the tenant, or kept for insider protection
    /// since `kept_since_ms` or later (retired packs and objects, points in the recycle bin).
    pub async fn to_lock(
        &self,
        quota: i64,
        before_ms: i64,
        kept_since_ms: i64,
        limit: i64,
    ) -> Result<Vec<LockItem>, DbError> {
        const DUE: [&str; 3] = [
            "SELECT id FROM packs WHERE quota_id = $1 \
             AND (locked_until_ms IS NULL OR locked_until_ms < $2) \
             AND (retired_ms IS NULL OR retired_ms >= $3) ORDER BY pk LIMIT $4",
            "SELECT kind, name FROM objects WHERE quota_id = $1 AND kind <> 'locks' \
             AND (locked_until_ms IS NULL OR locked_until_ms < $2) \
             AND (retired_ms IS NULL OR retired_ms >= $3) ORDER BY kind, name LIMIT $4",
            "SELECT name FROM points WHERE quota_id = $1 \
             AND (locked_until_ms IS NULL OR locked_until_ms < $2) \
             AND (deleted_ms IS NULL OR deleted_ms >= $3) ORDER BY name LIMIT $4",
        ];
        let mut out = Vec::new();
        for (table, sql) in DUE.iter().enumerate() {
            let rows = sqlx::query(sql)
                .bind(quota)
                .bind(before_ms)
                .bind(kept_since_ms)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
            for row in &rows {
                out.push(match table {
                    0 => LockItem::Pack(row.try_get(0)?),
                    1 => LockItem::Object(row.try_get(0)?, row.try_get(1)?),
                    _ => LockItem::Point(row.try_get(0)?),
                });
            }
        }
        Ok(out)
    }

    /// Records that the store locked `items` of quota `quota` until `until_ms`.
    pub async fn mark_locked(
        &self,
        quota: i64,
        items: &[LockItem],
        until_ms: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for item in items {
            let query = match item {
                LockItem::Pack(id) => sqlx::query(
                    "UPDATE packs SET locked_until_ms = $1 WHERE quota_id = $2 AND id = $3",
                )
                .bind(until_ms)
                .bind(quota)
                .bind(id.as_str()),
                LockItem::Object(kind, name) => sqlx::query(
                    "UPDATE objects SET locked_until_ms = $1 WHERE quota_id = $2 AND kind = $3 AND name = $4",
                )
                .bind(until_ms)
                .bind(quota)
                .bind(kind.as_str())
                .bind(name.as_str()),
                LockItem::Point(name) => sqlx::query(
                    "UPDATE points SET locked_until_ms = $1 WHERE quota_id = $2 AND name = $3",
                )
                .bind(until_ms)
                .bind(quota)
                .bind(name.as_str()),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
