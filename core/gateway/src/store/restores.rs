//! Restores a tenant orders for the computers of its policies: queued here, carried out by
//! the computer's agent (which marks them running, then done or failed).
//!
//! Invariant: a tenant sees and orders only for its own computers; an agent sees and updates
//! only the orders of its own account.

use sqlx::Row;

use super::{Db, DbError, now_ms};
use cloudkeep_api::policy::RestoreOrder;

/// Orders kept per computer (the newest).
pub const KEPT_ORDERS: i64 = 50;

const COLUMNS: &str = "o.id, m.computer, o.point, o.paths, o.destination, o.conflict, o.state, \
     o.message, o.created_ms, o.updated_ms";

fn order_of(r: &sqlx::any::AnyRow) -> Result<RestoreOrder, DbError> {
    let destination: String = r.try_get(4)?;
    Ok(RestoreOrder {
        id: r.try_get(0)?,
        computer: r.try_get(1)?,
        point: r.try_get(2)?,
        paths: serde_json::from_str(&r.try_get::<String, _>(3)?).unwrap_or_default(),
        to: (!destination.is_empty()).then_some(destination),
        conflict: r.try_get(5)?,
        state: r.try_get(6)?,
        message: r.try_get(7)?,
        created_ms: r.try_get(8)?,
        updated_ms: r.try_get(9)?,
    })
}

impl Db {
    /// Queues an order for `subtenant` (a computer of `tenant`'s); returns its id.
    pub async fn add_restore_order(
        &self,
        (subtenant, tenant): (i64, i64),
        point: &str,
        paths: &[String],
        to: Option<&str>,
        conflict: &str,
    ) -> Result<i64, DbError> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO restore_orders (subtenant_id, tenant_id, point, paths, destination, conflict, state, message, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', '', $7, $7) RETURNING id",
        )
        .bind(subtenant)
        .bind(tenant)
        .bind(point)
        .bind(serde_json::to_string(paths).unwrap_or_else(|_| "[]".into()))
        .bind(to.unwrap_or_default())
        .bind(conflict)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        let id: i64 = row.try_get(0)?;
        sqlx::query(
            "DELETE FROM restore_orders WHERE subtenant_id = $1 AND id NOT IN \
             (SELECT id FROM restore_orders WHERE subtenant_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(subtenant)
        .bind(KEPT_ORDERS)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The orders for the computers of `tenant`'s policy `policy`, newest first.
    pub async fn restore_orders(
        &self,
        tenant: i64,
        policy: &str,
    ) -> Result<Vec<RestoreOrder>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM restore_orders o JOIN policy_members m ON m.subtenant_id = o.subtenant_id \
             WHERE m.tenant_id = $1 AND m.policy_id = $2 ORDER BY o.id DESC"
        ))
        .bind(tenant)
        .bind(policy)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_of).collect()
    }

    /// The orders of `subtenant` still to carry out (queued, or running when its agent
    /// stopped half-way), oldest first.
    pub async fn pending_orders(&self, subtenant: i64) -> Result<Vec<RestoreOrder>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM restore_orders o JOIN policy_members m ON m.subtenant_id = o.subtenant_id \
             WHERE o.subtenant_id = $1 AND o.state IN ('queued', 'running') ORDER BY o.id"
        ))
        .bind(subtenant)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_of).collect()
    }

    /// Records an agent's progress on its own order; false when there is no such order.
    pub async fn update_order(
        &self,
        subtenant: i64,
        id: i64,
        state: &str,
        message: &str,
    ) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE restore_orders SET state = $1, message = $2, updated_ms = $3 WHERE id = $4 AND subtenant_id = $5",
        )
        .bind(state)
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .bind(subtenant)
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0)
    }
}
