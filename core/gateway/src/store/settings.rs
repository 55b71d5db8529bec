//! Gateway-wide settings shared by every gateway on the database: maintenance mode and its
//! message, the recycle bin's automatic purge, how long after a lease ends its tenant may
//! still restore. Stored as text key/value pairs.

use sqlx::Row;

use super::{Db, DbError};

const MAINTENANCE: &str = "maintenance_message";
const LEASE_GRACE_DAYS: &str = "lease_grace_days";

impl Db {
    /// A setting's value.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Sets (or with `None` removes) a setting.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), DbError> {
        match value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(key)
                    .execute(self.pool())
                    .await?
            }
        };
        Ok(())
    }

    /// The maintenance message when maintenance mode is on.
    pub async fn maintenance(&self) -> Result<Option<String>, DbError> {
        self.setting(MAINTENANCE).await
    }

    /// Turns maintenance mode on (with the message tenants see) or off.
    pub async fn set_maintenance(&self, message: Option<&str>) -> Result<(), DbError> {
        self.set_setting(MAINTENANCE, message).await
    }

    /// Days after a lease ends during which its tenant may still restore.
    pub async fn lease_grace_days(&self) -> Result<u32, DbError> {
        Ok(self
            .setting(LEASE_GRACE_DAYS)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(cloudkeep_api::DEFAULT_LEASE_GRACE_DAYS))
    }

    /// Sets the days after a lease ends during which its tenant may still restore.
    pub async fn set_lease_grace_days(&self, days: u32) -> Result<(), DbError> {
        self.set_setting(LEASE_GRACE_DAYS, Some(&days.to_string()))
            .await
    }
}
