//! Backup policies the tenants publish (an opaque JSON document with a revision the gateway
//! raises on every change), the managed subtenants that run them (one per computer), and the
//! sessions their agents report (the newest [`KEPT_REPORTS`] per computer).
//!
//! Invariant: every call is scoped by the tenant (or subtenant) id from the session.

use sqlx::Row;

use super::{Db, DbError, now_ms};

/// Reports kept per computer.
pub const KEPT_REPORTS: i64 = 200;

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its revision.
    pub revision: i64,
    /// The JSON document.
    pub document: String,
}

/// A managed subtenant's place in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The subtenant.
    pub subtenant_id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// The policy.
    pub policy_id: String,
    /// The computer.
    pub computer: String,
    /// The revision its agent last applied.
    pub applied_revision: i64,
    /// Its next run, as its agent said.
    pub next_run_ms: Option<i64>,
    /// When its agent last connected.
    pub seen_ms: Option<i64>,
}

const MEMBER_COLUMNS: &str =
    "subtenant_id, tenant_id, policy_id, computer, applied_revision, next_run_ms, seen_ms";

fn member_of(r: &sqlx::any::AnyRow) -> Result<Member, DbError> {
    Ok(Member {
        subtenant_id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        policy_id: r.try_get(2)?,
        computer: r.try_get(3)?,
        applied_revision: r.try_get(4)?,
        next_run_ms: r.try_get(5)?,
        seen_ms: r.try_get(6)?,
    })
}

impl Db {
    /// Stores `document` as policy `id` of `tenant`; its revision goes up by one when the
    /// document or name changed (a new policy starts at 1). Returns the stored policy.
    pub async fn put_policy(
        &self,
        tenant: i64,
        id: &str,
        name: &str,
        document: &str,
    ) -> Result<StoredPolicy, DbError> {
        let mut tx = self.pool().begin().await?;
        let old = sqlx::query(
            "SELECT name, revision, document FROM policies WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let revision = match old {
            None => {
                sqlx::query(
                    "INSERT INTO policies (tenant_id, id, name, revision, document, updated_ms) \
                     VALUES ($1, $2, $3, 1, $4, $5)",
                )
                .bind(tenant)
                .bind(id)
                .bind(name)
                .bind(document)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                1
            }
            Some(row) => {
                let (old_name, revision, old_doc): (String, i64, String) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                if old_name == name && old_doc == document {
                    revision
                } else {
                    sqlx::query(
                        "UPDATE policies SET name = $1, document = $2, revision = revision + 1, \
                         updated_ms = $3 WHERE tenant_id = $4 AND id = $5",
                    )
                    .bind(name)
                    .bind(document)
                    .bind(now_ms())
                    .bind(tenant)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    revision + 1
                }
            }
        };
        tx.commit().await?;
        Ok(StoredPolicy {
            id: id.to_owned(),
            name: name.to_owned(),
            revision,
            document: document.to_owned(),
        })
    }

    /// Policy `id` of `tenant`.
    pub async fn policy(&self, tenant: i64, id: &str) -> Result<Option<StoredPolicy>, DbError> {
        let row = sqlx::query(
            "SELECT id, name, revision, document FROM policies WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredPolicy {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                revision: r.try_get(2)?,
                document: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Forgets policy `id` of `tenant` (its managed subtenants stay until the tenant removes
    /// them). False when there was none.
    pub async fn delete_policy(&self, tenant: i64, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that subtenant `subtenant` of `tenant` is `computer` of policy `policy`.
    pub async fn add_member(
        &self,
        subtenant: i64,
        tenant: i64,
        policy: &str,
        computer: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO policy_members (subtenant_id, tenant_id, policy_id, computer) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(subtenant)
        .bind(tenant)
        .bind(policy)
        .bind(computer)
        .execute(self.pool())
        .await
        .map_err(super::conflict(format!(
            "computer \"{computer}\" in this policy"
        )))?;
        Ok(())
    }

    /// The policy membership of a managed subtenant.
    pub async fn member(&self, subtenant: i64) -> Result<Option<Member>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM policy_members WHERE subtenant_id = $1"
        ))
        .bind(subtenant)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(member_of).transpose()
    }

    /// The computers of policy `policy` of `tenant`, by name.
    pub async fn members(&self, tenant: i64, policy: &str) -> Result<Vec<Member>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM policy_members WHERE tenant_id = $1 AND policy_id = $2 \
             ORDER BY computer"
        ))
        .bind(tenant)
        .bind(policy)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(member_of).collect()
    }

    /// An agent connected: the revision it applies and its next run.
    pub async fn agent_seen(
        &self,
        subtenant: i64,
        revision: i64,
        next_run_ms: Option<i64>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE policy_members SET applied_revision = $1, next_run_ms = $2, seen_ms = $3 \
             WHERE subtenant_id = $4",
        )
        .bind(revision)
        .bind(next_run_ms)
        .bind(now_ms())
        .bind(subtenant)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores a session report of `subtenant`'s agent (JSON), keeping the newest
    /// [`KEPT_REPORTS`].
    pub async fn add_agent_session(
        &self,
        subtenant: i64,
        started_ms: i64,
        finished_ms: i64,
        result: &str,
        report: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO agent_sessions (subtenant_id, started_ms, finished_ms, result, report) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(subtenant)
        .bind(started_ms)
        .bind(finished_ms)
        .bind(result)
        .bind(report)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM agent_sessions WHERE subtenant_id = $1 AND id NOT IN \
             (SELECT id FROM agent_sessions WHERE subtenant_id = $1 ORDER BY finished_ms DESC, id DESC LIMIT $2)",
        )
        .bind(subtenant)
        .bind(KEPT_REPORTS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` reports of `subtenant`'s agent (JSON), newest first; `successful`:
    /// only those that made a restore point.
    pub async fn agent_sessions(
        &self,
        subtenant: i64,
        limit: i64,
        successful: bool,
    ) -> Result<Vec<String>, DbError> {
        let filter = if successful {
            "AND result IN ('success', 'warning')"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT report FROM agent_sessions WHERE subtenant_id = $1 {filter} \
             ORDER BY finished_ms DESC, id DESC LIMIT $2"
        ))
        .bind(subtenant)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(DbError::from))
            .collect()
    }
}
