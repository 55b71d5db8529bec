//! The audit log of SP admin actions: who did what to which object, when. Append-only.

use cloudkeep_api::accounts::AuditEntry;
use sqlx::Row;

use super::{Db, DbError, now_ms};

impl Db {
    /// Appends an entry.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO audit (time_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now_ms())
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, DbError> {
        let rows = sqlx::query(
            "SELECT time_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    time_ms: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            })
            .collect()
    }
}
