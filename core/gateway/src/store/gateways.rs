//! The gateway list: every running gateway registers itself (id, public address) and beats a
//! heartbeat; tenants receive the list and fail over between its entries.

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

    /// Records that a gateway is alive.
    pub async fn heartbeat(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE gateways SET heartbeat_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every registered gateway, by id.
    pub async fn gateways(&self) -> Result<Vec<GatewayEntry>, DbError> {
        let rows =
            sqlx::query("SELECT id, address, started_ms, heartbeat_ms FROM gateways ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(GatewayEntry {
                    id: r.try_get(0)?,
                    address: r.try_get(1)?,
                    started_ms: r.try_get(2)?,
                    heartbeat_ms: r.try_get(3)?,
                })
            })
            .collect()
    }
}
