//! The gateway list: every running gateway registers itself (id, public address) and beats a
//! heartbeat with its load (connections, requests per minute); tenants receive the list and
//! fail over between its entries. A drained gateway takes no new sessions.

use cloudkeep_api::accounts::GatewayEntry;
use sqlx::Row;

use super::{Db, DbError, now_ms};

impl Db {
    /// Registers (or re-registers after a restart) a gateway.
    pub async fn register_gateway(&self, id: &str, address: &str) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO gateways (id, address, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms",
        )
        .bind(id)
        .bind(address)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that a gateway is alive, with its load.
    pub async fn heartbeat(
        &self,
        id: &str,
        connections: i64,
        requests_per_min: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE gateways SET heartbeat_ms = $1, connections = $3, requests_per_min = $4 WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .bind(connections)
        .bind(requests_per_min)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drains a gateway (no new sessions) or puts it back in service; `false` when no such
    /// gateway is registered.
    pub async fn set_draining(&self, id: &str, draining: bool) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE gateways SET draining = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(draining))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether a gateway is drained.
    pub async fn gateway_draining(&self, id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT draining FROM gateways WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }

    /// Every registered gateway, by id.
    pub async fn gateways(&self) -> Result<Vec<GatewayEntry>, DbError> {
        let rows = sqlx::query(
            "SELECT id, address, started_ms, heartbeat_ms, draining, connections, requests_per_min \
             FROM gateways ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(GatewayEntry {
                    id: r.try_get(0)?,
                    address: r.try_get(1)?,
                    started_ms: r.try_get(2)?,
                    heartbeat_ms: r.try_get(3)?,
                    draining: r.try_get::<i64, _>(4)? != 0,
                    connections: r.try_get(5)?,
                    requests_per_min: r.try_get(6)?,
                })
            })
            .collect()
    }
}
