//! Tenants, their subtenants and their quotas (one per cloud repository the tenant may use,
//! with the friendly name the tenant sees). Login names: `tenant` or `tenant/subtenant`.
//!
//! Invariant: `used_bytes` changes only through [`Db::reserve`] / [`Db::release`], single
//! conditional updates, so concurrent uploads of one tenant can never overshoot its quota.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::accounts::token_hash;
use super::{Db, DbError, conflict, now_ms};

/// What an SP admin (or, for subtenants, the tenant) sets on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Free text for the SP.
    pub description: String,
    /// Disabled accounts cannot log in; their sessions end.
    pub enabled: bool,
    /// After this moment (ms since the epoch) the lease has expired: logins and requests are
    /// refused. `None`: no expiry.
    pub lease_until_ms: Option<i64>,
    /// Concurrent tasks allowed; 0: no limit.
    pub max_tasks: i64,
    /// Bytes per second over all the tenant's transfers; 0: no limit.
    pub bandwidth_bps: i64,
    /// Insider protection: deleted restore points stay this many days in the recycle bin.
    pub keep_deleted_days: i64,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            description: String::new(),
            enabled: true,
            lease_until_ms: None,
            max_tasks: 0,
            bandwidth_bps: 0,
            keep_deleted_days: 0,
        }
    }
}

/// A tenant or subtenant account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Row id.
    pub id: i64,
    /// The tenant a subtenant belongs to; `None` for a tenant.
    pub parent: Option<i64>,
    /// Login name: `tenant` or `tenant/subtenant`.
    pub login: String,
    /// Its own name (the part after `/` for a subtenant).
    pub name: String,
    /// Settings.
    pub settings: TenantSettings,
    /// Created by a backup policy.
    pub managed: bool,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last request, ms since the epoch.
    pub last_activity_ms: Option<i64>,
}

/// A quota: how much of a cloud repository a tenant may fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Row id.
    pub id: i64,
    /// The tenant.
    pub tenant_id: i64,
    /// The cloud repository.
    pub repo_id: i64,
    /// The cloud repository's SP-side name.
    pub repo_name: String,
    /// The name the tenant sees.
    pub friendly_name: String,
    /// Bytes allowed; -1: unlimited (a subtenant sharing its tenant's quota).
    pub quota_bytes: i64,
    /// Bytes stored (after dedup and compression).
    pub used_bytes: i64,
    /// Bytes in the recycle bin (not counted against the quota).
    pub recycle_bytes: i64,
}

/// A quota to give a new tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSpec {
    /// Cloud repository name.
    pub repo: String,
    /// Name the tenant sees (default: the repository's name).
    pub friendly_name: Option<String>,
    /// Bytes; -1 for unlimited (subtenants only).
    pub bytes: i64,
}

/// Checks an account name: 1–64 characters of letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit (no `/`: that separates tenant and subtenant).
pub fn check_account_name(name: &str) -> Result<(), DbError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DbError::Invalid(format!(
            "\"{name}\" is not a valid account name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

const TENANT_COLUMNS: &str = "t.id, t.parent_id, t.name, p.name, t.description, t.enabled, t.lease_until_ms, \
     t.max_tasks, t.bandwidth_bps, t.keep_deleted_days, t.managed, t.created_ms, t.last_activity_ms";
const TENANT_FROM: &str = "FROM tenants t LEFT JOIN tenants p ON p.id = t.parent_id";

/// The parent's columns in the same order, for [`tenant_at`] after the account's own (a parent
/// has no parent: its login is its name).
const PARENT_COLUMNS: &str = "p.id, p.parent_id, p.name, NULL, p.description, p.enabled, p.lease_until_ms, \
     p.max_tasks, p.bandwidth_bps, p.keep_deleted_days, p.managed, p.created_ms, p.last_activity_ms";
/// How many columns [`TENANT_COLUMNS`] (and [`PARENT_COLUMNS`]) name.
const TENANT_WIDTH: usize = 13;

fn tenant_of(r: &sqlx::any::AnyRow) -> Result<Tenant, DbError> {
    tenant_at(r, 0)
}

/// The account whose [`TENANT_COLUMNS`] start at column `at`.
fn tenant_at(r: &sqlx::any::AnyRow, at: usize) -> Result<Tenant, DbError> {
    let parent_id: i64 = r.try_get(at + 1)?;
    let name: String = r.try_get(at + 2)?;
    let parent_name: Option<String> = r.try_get(at + 3)?;
    Ok(Tenant {
        id: r.try_get(at)?,
        parent: (parent_id != 0).then_some(parent_id),
        login: match parent_name {
            Some(parent) => format!("{parent}/{name}"),
            None => name.clone(),
        },
        name,
        settings: TenantSettings {
            description: r.try_get(at + 4)?,
            enabled: r.try_get::<i64, _>(at + 5)? != 0,
            lease_until_ms: r.try_get(at + 6)?,
            max_tasks: r.try_get(at + 7)?,
            bandwidth_bps: r.try_get(at + 8)?,
            keep_deleted_days: r.try_get(at + 9)?,
        },
        managed: r.try_get::<i64, _>(at + 10)? != 0,
        created_ms: r.try_get(at + 11)?,
        last_activity_ms: r.try_get(at + 12)?,
    })
}

/// The columns [`quota_of`] reads, and where from.
const QUOTA_COLUMNS: &str = "q.id, q.tenant_id, q.repo_id, r.name, q.friendly_name, q.quota_bytes, \
     q.used_bytes, q.recycle_bytes";
/// How many columns [`QUOTA_COLUMNS`] names.
const QUOTA_WIDTH: usize = 8;
/// Most packs one [`Db::quota_and_packs`] names (each is a bound parameter).
pub const MAX_PACKS_PER_QUERY: usize = 64;

const QUOTA_FROM: &str = "FROM quotas q JOIN repos r ON r.id = q.repo_id";

fn quota_of(r: &sqlx::any::AnyRow) -> Result<Quota, DbError> {
    Ok(Quota {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        repo_id: r.try_get(2)?,
        repo_name: r.try_get(3)?,
        friendly_name: r.try_get(4)?,
        quota_bytes: r.try_get(5)?,
        used_bytes: r.try_get(6)?,
        recycle_bytes: r.try_get(7)?,
    })
}

fn check_settings(s: &TenantSettings) -> Result<(), DbError> {
    if s.max_tasks < 0 || s.bandwidth_bps < 0 || !(0..=3650).contains(&s.keep_deleted_days) {
        return Err(DbError::Invalid(
            "max tasks and bandwidth must be 0 (no limit) or more, insider protection 0 to 3650 days".into(),
        ));
    }
    Ok(())
}

impl Db {
    /// Creates a tenant (`parent` `None`) or a subtenant with its quotas, all or nothing.
    pub async fn add_tenant(
        &self,
        parent: Option<i64>,
        name: &str,
        password_hash: &str,
        settings: &TenantSettings,
        quotas: &[QuotaSpec],
        managed: bool,
    ) -> Result<Tenant, DbError> {
        check_account_name(name)?;
        check_settings(settings)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "INSERT INTO tenants (parent_id, name, password_hash, description, enabled, lease_until_ms, \
             max_tasks, bandwidth_bps, keep_deleted_days, managed, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(parent.unwrap_or(0))
        .bind(name)
        .bind(password_hash)
        .bind(&settings.description)
        .bind(i64::from(settings.enabled))
        .bind(settings.lease_until_ms)
        .bind(settings.max_tasks)
        .bind(settings.bandwidth_bps)
        .bind(settings.keep_deleted_days)
        .bind(i64::from(managed))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("account \"{name}\"")))?;
        let id: i64 = row.try_get(0)?;
        for q in quotas {
            if q.bytes < -1 || (q.bytes == -1 && parent.is_none()) {
                return Err(DbError::Invalid(format!(
                    "the quota on \"{}\" must be a size in bytes (unlimited is only for subtenants)",
                    q.repo
                )));
            }
            let repo = sqlx::query("SELECT id FROM repos WHERE name = $1")
                .bind(&q.repo)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| DbError::NotFound(format!("cloud repository \"{}\"", q.repo)))?;
            let repo_id: i64 = repo.try_get(0)?;
            let friendly = q.friendly_name.clone().unwrap_or_else(|| q.repo.clone());
            sqlx::query(
                "INSERT INTO quotas (tenant_id, repo_id, friendly_name, quota_bytes) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(repo_id)
            .bind(&friendly)
            .bind(q.bytes)
            .execute(&mut *tx)
            .await
            .map_err(conflict(format!("a quota on \"{}\" or named \"{friendly}\"", q.repo)))?;
        }
        tx.commit().await?;
        self.tenant(id).await
    }

    /// A tenant by id.
    pub async fn tenant(&self, id: i64) -> Result<Tenant, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} {TENANT_FROM} WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("account {id}")))?;
        tenant_of(&row)
    }

    /// The account of a live tenant session and, for a subtenant, its tenant: one statement
    /// per request instead of a session lookup and one per account.
    pub async fn tenant_session(
        &self,
        token: &str,
    ) -> Result<Option<(Tenant, Option<Tenant>)>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS}, {PARENT_COLUMNS} FROM sessions s \
             JOIN tenants t ON t.id = s.subject_id LEFT JOIN tenants p ON p.id = t.parent_id \
             WHERE s.token_hash = $1 AND s.realm = 'tenant' AND s.expires_ms > $2"
        ))
        .bind(token_hash(token))
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let tenant = tenant_of(&row)?;
        let parent = match tenant.parent {
            Some(_) => Some(tenant_at(&row, TENANT_WIDTH)?),
            None => None,
        };
        Ok(Some((tenant, parent)))
    }

    /// A tenant or subtenant by login name (`tenant` or `tenant/subtenant`), with its password
    /// hash.
    pub async fn tenant_by_login(&self, login: &str) -> Result<Option<(Tenant, String)>, DbError> {
        let (parent, name) = match login.split_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, login),
        };
        let row = match parent {
            None => {
                sqlx::query(&format!(
                    "SELECT {TENANT_COLUMNS}, t.password_hash {TENANT_FROM} WHERE t.parent_id = 0 AND t.name = $1"
                ))
                .bind(name)
                .fetch_optional(self.pool())
                .await?
            }
            Some(parent) => {
                sqlx::query(&format!(
                    "SELECT {TENANT_COLUMNS}, t.password_hash {TENANT_FROM} WHERE p.parent_id = 0 AND p.name = $1 AND t.name = $2"
                ))
                .bind(parent)
                .bind(name)
                .fetch_optional(self.pool())
                .await?
            }
        };
        row.map(|r| Ok((tenant_of(&r)?, r.try_get(13)?)))
            .transpose()
    }

    /// Every account (tenants and subtenants), by login name.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, DbError> {
        let rows = sqlx::query(&format!("SELECT {TENANT_COLUMNS} {TENANT_FROM}"))
            .fetch_all(self.pool())
            .await?;
        let mut out = rows.iter().map(tenant_of).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.login.cmp(&b.login));
        Ok(out)
    }

    /// The subtenants of a tenant.
    pub async fn subtenants(&self, parent: i64) -> Result<Vec<Tenant>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} {TENANT_FROM} WHERE t.parent_id = $1 ORDER BY t.name"
        ))
        .bind(parent)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tenant_of).collect()
    }

    /// Replaces an account's settings.
    pub async fn update_tenant(&self, id: i64, settings: &TenantSettings) -> Result<(), DbError> {
        check_settings(settings)?;
        let done = sqlx::query(
            "UPDATE tenants SET description = $1, enabled = $2, lease_until_ms = $3, max_tasks = $4, \
             bandwidth_bps = $5, keep_deleted_days = $6 WHERE id = $7",
        )
        .bind(&settings.description)
        .bind(i64::from(settings.enabled))
        .bind(settings.lease_until_ms)
        .bind(settings.max_tasks)
        .bind(settings.bandwidth_bps)
        .bind(settings.keep_deleted_days)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("account {id}")));
        }
        Ok(())
    }

    /// Sets an account's password hash.
    pub async fn set_tenant_password(&self, id: i64, password_hash: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE tenants SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a request by an account.
    pub async fn touch_tenant(&self, id: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE tenants SET last_activity_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes an account, its subtenants, their quotas and sessions (not their data: the
    /// caller removes that first when asked).
    pub async fn delete_tenant(&self, id: i64) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM sessions WHERE realm = 'tenant' AND (subject_id = $1 OR subject_id IN (SELECT id FROM tenants WHERE parent_id = $1))",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tenants WHERE parent_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("account {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The quotas of an account, by friendly name.
    pub async fn quotas_of(&self, tenant: i64) -> Result<Vec<Quota>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} {QUOTA_FROM} WHERE q.tenant_id = $1 ORDER BY q.friendly_name"
        ))
        .bind(tenant)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(quota_of).collect()
    }

    /// The quota of `tenant` its owner calls `friendly_name`.
    pub async fn quota_named(
        &self,
        tenant: i64,
        friendly_name: &str,
    ) -> Result<Option<Quota>, DbError> {
        sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} {QUOTA_FROM} WHERE q.tenant_id = $1 AND q.friendly_name = $2"
        ))
        .bind(tenant)
        .bind(friendly_name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(quota_of)
        .transpose()
    }

    /// The quota of `tenant` named `friendly_name` and the size of its pack `pack`, if stored:
    /// one statement for a pack read or upload.
    pub async fn quota_and_pack(
        &self,
        tenant: i64,
        friendly_name: &str,
        pack: &str,
    ) -> Result<Option<(Quota, Option<u64>)>, DbError> {
        Ok(self
            .quota_and_packs(tenant, friendly_name, &[pack])
            .await?
            .map(|(quota, mut sizes)| (quota, sizes.remove(pack))))
    }

    /// The quota of `tenant` named `friendly_name` and the sizes of those of `packs` it
    /// stores (the others are absent from the map): one statement for a read of several
    /// packs. Give at most [`MAX_PACKS_PER_QUERY`] ids.
    pub async fn quota_and_packs(
        &self,
        tenant: i64,
        friendly_name: &str,
        packs: &[&str],
    ) -> Result<Option<(Quota, HashMap<String, u64>)>, DbError> {
        if packs.is_empty() || packs.len() > MAX_PACKS_PER_QUERY {
            return Err(DbError::Invalid(format!(
                "a query names 1 to {MAX_PACKS_PER_QUERY} packs, not {}",
                packs.len()
            )));
        }
        let wanted = (0..packs.len())
            .map(|n| format!("${}", n + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {QUOTA_COLUMNS}, p.id, p.bytes {QUOTA_FROM} \
             LEFT JOIN packs p ON p.quota_id = q.id AND p.id IN ({wanted}) \
             WHERE q.tenant_id = $1 AND q.friendly_name = $2"
        );
        let mut query = sqlx::query(&sql).bind(tenant).bind(friendly_name);
        for pack in packs {
            query = query.bind(*pack);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut sizes = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: Option<String> = row.try_get(QUOTA_WIDTH)?;
            let bytes: Option<i64> = row.try_get(QUOTA_WIDTH + 1)?;
            if let (Some(id), Some(bytes)) = (id, bytes) {
                sizes.insert(id, u64::try_from(bytes).unwrap_or(0));
            }
        }
        Ok(Some((quota_of(first)?, sizes)))
    }

    /// Sets the size of an existing quota, or adds a quota on another repository.
    pub async fn set_quota(&self, tenant: i64, spec: &QuotaSpec) -> Result<(), DbError> {
        let repo = self.repo_by_name(&spec.repo).await?;
        let friendly = spec
            .friendly_name
            .clone()
            .unwrap_or_else(|| spec.repo.clone());
        if spec.bytes < -1 {
            return Err(DbError::Invalid("a quota is a size in bytes".into()));
        }
        sqlx::query(
            "INSERT INTO quotas (tenant_id, repo_id, friendly_name, quota_bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, repo_id) DO UPDATE SET quota_bytes = excluded.quota_bytes, friendly_name = excluded.friendly_name",
        )
        .bind(tenant)
        .bind(repo.id)
        .bind(&friendly)
        .bind(spec.bytes)
        .execute(self.pool())
        .await
        .map_err(conflict(format!("a quota named \"{friendly}\"")))?;
        Ok(())
    }

    /// Reserves `bytes` of a quota for an upload: true when they fit (and are now counted),
    /// false when the quota would be exceeded (nothing changed). Atomic: concurrent callers
    /// can never together overshoot the quota.
    pub async fn reserve(&self, quota: i64, bytes: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE quotas SET used_bytes = used_bytes + $1 WHERE id = $2 AND (quota_bytes < 0 OR used_bytes + $1 <= quota_bytes)",
        )
        .bind(bytes)
        .bind(quota)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back bytes reserved or freed.
    pub async fn release(&self, quota: i64, bytes: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE quotas SET used_bytes = CASE WHEN used_bytes >= $1 THEN used_bytes - $1 ELSE 0 END WHERE id = $2")
            .bind(bytes)
            .bind(quota)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
