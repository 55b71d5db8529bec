//! The tenant's local state: an SQLite file in the data folder (`CLOUDKEEP_HOME` overrides
//! where), migrated on open (`core/tenant/migrations/tenant`).

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::TenantError;
use cloudkeep_model::paths::DataHome;

/// The open state database.
#[derive(Debug, Clone)]
pub struct TenantState {
    pool: SqlitePool,
}

impl TenantState {
    /// Opens (creating) `cloudkeep.db` in the data home.
    pub async fn open(home: &DataHome) -> Result<Self, TenantError> {
        home.ensure()?;
        let path = home.state_db();
        cloudkeep_model::paths::touch_private_file(&path).map_err(|source| TenantError::File {
            action: "create",
            path: path.clone(),
            source,
        })?;
        // The file itself, not a URL: a Windows path or a `%` in a folder name stays as it is.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/tenant").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A setting of this computer's, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, TenantError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets (or with `None` removes) a setting of this computer's.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), TenantError> {
        match value {
            Some(v) => sqlx::query(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(v)
            .execute(&self.pool)
            .await?,
            None => sqlx::query("DELETE FROM settings WHERE key = ?1")
                .bind(key)
                .execute(&self.pool)
                .await?,
        };
        Ok(())
    }

    /// The pool, for the table modules.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}
