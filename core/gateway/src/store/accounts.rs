//! SP admin accounts and the login sessions of every realm (admins, tenants, cloud hosts). Session tokens
//! are random; only their BLAKE3 hash is stored, so a copy of the database opens no session.

use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};

/// Which accounts a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// SP administrators.
    Admin,
    /// Tenants and subtenants.
    Tenant,
    /// Cloud hosts (replication).
    Host,
}

impl Realm {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Tenant => "tenant",
            Self::Host => "host",
        }
    }
}

/// An SP admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Argon2id hash ([`cloudkeep_repo::crypto::hash_password`]).
    pub password_hash: String,
}

/// The stored form of a session token.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

impl Db {
    /// Adds an SP admin.
    pub async fn add_admin(&self, name: &str, password_hash: &str) -> Result<i64, DbError> {
        let row = sqlx::query(
            "INSERT INTO admins (name, password_hash, created_ms) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
        .map_err(conflict(format!("admin \"{name}\"")))?;
        Ok(row.try_get(0)?)
    }

    /// An SP admin by name.
    pub async fn admin_by_name(&self, name: &str) -> Result<Option<Admin>, DbError> {
        let row = sqlx::query("SELECT id, name, password_hash FROM admins WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Admin {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                password_hash: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// An SP admin's name by id.
    pub async fn admin_name(&self, id: i64) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT name FROM admins WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Every SP admin: name and when added.
    pub async fn admins(&self) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query("SELECT name, created_ms FROM admins ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Removes SP admin `name` and its sessions, unless it is the last one; `Ok(false)` when
    /// there is no such admin.
    pub async fn delete_admin(&self, name: &str) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        // The admins' rows are locked first, so two removals cannot leave none.
        sqlx::query("UPDATE admins SET name = name")
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM admins")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let row = sqlx::query("SELECT id FROM admins WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        if count <= 1 {
            return Err(DbError::Invalid(format!(
                "\"{name}\" is the last SP admin; add another before removing it"
            )));
        }
        let id: i64 = row.try_get(0)?;
        sqlx::query("DELETE FROM sessions WHERE realm = 'admin' AND subject_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM admins WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets an SP admin's password hash; false when there is no such admin.
    pub async fn set_admin_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, DbError> {
        Ok(
            sqlx::query("UPDATE admins SET password_hash = $1 WHERE name = $2")
                .bind(password_hash)
                .bind(name)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// How many SP admins exist.
    pub async fn admin_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM admins")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }

    /// Stores a new session (by the hash of its token) for `subject` in `realm`.
    pub async fn add_session(
        &self,
        token: &str,
        realm: Realm,
        subject: i64,
        ttl_ms: i64,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (token_hash, realm, subject_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(token))
        .bind(realm.as_str())
        .bind(subject)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The subject of a live session of `realm`, if the token names one.
    pub async fn session_subject(&self, token: &str, realm: Realm) -> Result<Option<i64>, DbError> {
        let row = sqlx::query(
            "SELECT subject_id FROM sessions WHERE token_hash = $1 AND realm = $2 AND expires_ms > $3",
        )
        .bind(token_hash(token))
        .bind(realm.as_str())
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Ends a session.
    pub async fn delete_session(&self, token: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of a subject (an account disabled or deleted).
    pub async fn delete_sessions_of(&self, realm: Realm, subject: i64) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE realm = $1 AND subject_id = $2")
            .bind(realm.as_str())
            .bind(subject)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(now_ms())
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
