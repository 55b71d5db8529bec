//! Running tasks per account, for the "max concurrent tasks" limit. A subtenant's task counts
//! against its own limit and against its tenant's (which covers all of its subtenants). Tasks
//! expire unless their heartbeat is renewed, so a client that dies frees its slot.
//!
//! Invariant: a task is started only inside one transaction that first locks the tenant's row
//! (a no-op update), so concurrent starts on any gateway are serialized per tenant.

use sqlx::Row;

use super::{Db, DbError, now_ms};

/// Why a task could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLimit {
    /// The account whose limit is reached (login).
    pub account: String,
    /// Its limit.
    pub max: i64,
}

impl Db {
    /// Starts a task for `account` (whose tenant is `parent` for a subtenant) unless a limit is
    /// reached. `limits` are `(account id, login, max)` for the account and its tenant.
    pub async fn start_task(
        &self,
        id: &str,
        account: i64,
        parent: Option<i64>,
        kind: &str,
        ttl_ms: i64,
        limits: &[(i64, String, i64)],
    ) -> Result<Result<(), TaskLimit>, DbError> {
        let top = parent.unwrap_or(account);
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE tenants SET max_tasks = max_tasks WHERE id = $1")
            .bind(top)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM tasks WHERE expires_ms <= $1 AND (tenant_id = $2 OR tenant_id IN (SELECT id FROM tenants WHERE parent_id = $2))",
        )
        .bind(now)
        .bind(top)
        .execute(&mut *tx)
        .await?;
        for (limit_id, login, max) in limits {
            if *max <= 0 {
                continue;
            }
            let running: i64 = sqlx::query(
                "SELECT COUNT(*) FROM tasks WHERE tenant_id = $1 OR tenant_id IN (SELECT id FROM tenants WHERE parent_id = $1)",
            )
            .bind(limit_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if running >= *max {
                tx.rollback().await?;
                return Ok(Err(TaskLimit {
                    account: login.clone(),
                    max: *max,
                }));
            }
        }
        sqlx::query("INSERT INTO tasks (id, tenant_id, kind, started_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(account)
            .bind(kind)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Renews a task's heartbeat; false when it is not a live task of `account`.
    pub async fn renew_task(&self, id: &str, account: i64, ttl_ms: i64) -> Result<bool, DbError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE tasks SET expires_ms = $1 WHERE id = $2 AND tenant_id = $3 AND expires_ms > $4",
        )
        .bind(now + ttl_ms)
        .bind(id)
        .bind(account)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a task.
    pub async fn end_task(&self, id: &str, account: i64) -> Result<(), DbError> {
        sqlx::query("DELETE FROM tasks WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(account)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
