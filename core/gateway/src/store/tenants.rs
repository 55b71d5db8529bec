//! Tenants, their subtenants and their quotas (one per cloud repository the tenant may use,
//! with the friendly name the tenant sees). Login names: `tenant` or `tenant/subtenant`.
//!
//! Invariant: `used_bytes` changes only through [`Db::reserve`] / [`Db::release`] (and the
//! moves of [`Db::shift_to_recycle`] and the recount of the storage check), conditional
//! updates in one transaction, so concurrent uploads of one tenant can never overshoot its
//! quota. A subtenant that shares its tenant's quota (`quota_bytes` -1) is charged on its
//! own row and on its tenant's; a fixed subtenant quota is carved from its tenant's
//! (`carved_bytes`), and the tenant's own writes fit in what is left.

use std::collections::HashMap;

use cloudkeep_api::accounts::{Quota, QuotaSpec, Tenant, TenantSettings};
use cloudkeep_model::units::Limit;
use sqlx::Row;

use super::accounts::token_hash;
use super::{Db, DbError, conflict, now_ms};

/// Checks an account name ([`cloudkeep_model::names`]; no `/`: that separates tenant and subtenant).
pub fn check_account_name(name: &str) -> Result<(), DbError> {
    cloudkeep_model::names::check("account", name).map_err(|e| DbError::Invalid(e.to_string()))
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
     q.used_bytes, q.recycle_bytes, q.carved_bytes, q.reclaimable_bytes, q.frozen";
/// How many columns [`QUOTA_COLUMNS`] names.
const QUOTA_WIDTH: usize = 11;
/// Most packs one [`Db::quota_and_packs`] names (each is a bound parameter).
pub const MAX_PACKS_PER_QUERY: usize = cloudkeep_api::MAX_READ_PACKS;

const QUOTA_FROM: &str = "FROM quotas q JOIN repos r ON r.id = q.repo_id";

fn quota_of(r: &sqlx::any::AnyRow) -> Result<Quota, DbError> {
    Ok(Quota {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        repo_id: r.try_get(2)?,
        repo_name: r.try_get(3)?,
        friendly_name: r.try_get(4)?,
        quota_bytes: Limit::from_stored(r.try_get(5)?),
        used_bytes: r.try_get(6)?,
        recycle_bytes: r.try_get(7)?,
        carved_bytes: r.try_get(8)?,
        reclaimable_bytes: r.try_get(9)?,
        moving: r.try_get::<i64, _>(10)? != 0,
    })
}

/// Sets the size (and friendly name) of an account's quota on a repository, adding it if
/// missing.
const UPSERT_QUOTA: &str = "INSERT INTO quotas (tenant_id, repo_id, friendly_name, quota_bytes) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, repo_id) DO UPDATE SET quota_bytes = excluded.quota_bytes, friendly_name = excluded.friendly_name";

/// The quota a shared subtenant quota (`quota_bytes` -1) is also charged on: its tenant's on
/// the same repository. `None` for any other quota.
const SHARED_PARENT: &str = "SELECT p.id FROM quotas s JOIN tenants t ON t.id = s.tenant_id \
     JOIN quotas p ON p.tenant_id = t.parent_id AND p.repo_id = s.repo_id \
     WHERE s.id = $1 AND s.quota_bytes < 0";

/// Adds `bytes` to a quota row's use when they fit (`force`: whether or not they fit);
/// false when they do not.
async fn charge_row(
    conn: &mut sqlx::AnyConnection,
    quota: i64,
    bytes: i64,
    force: bool,
) -> Result<bool, DbError> {
    let sql = if force {
        "UPDATE quotas SET used_bytes = used_bytes + $1 WHERE id = $2"
    } else {
        "UPDATE quotas SET used_bytes = used_bytes + $1 WHERE id = $2 \
         AND (quota_bytes < 0 OR used_bytes + carved_bytes + $1 <= quota_bytes)"
    };
    let done = sqlx::query(sql)
        .bind(bytes)
        .bind(quota)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes `bytes` off a quota row's use (never below zero).
async fn uncharge_row(
    conn: &mut sqlx::AnyConnection,
    quota: i64,
    bytes: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE quotas SET used_bytes = CASE WHEN used_bytes >= $1 THEN used_bytes - $1 ELSE 0 END WHERE id = $2")
        .bind(bytes)
        .bind(quota)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The tenant quota a shared subtenant quota is also charged on.
pub(super) async fn shared_parent(
    conn: &mut sqlx::AnyConnection,
    quota: i64,
) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query(SHARED_PARENT)
        .bind(quota)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Charges `bytes` to a quota and, for a shared subtenant quota, to its tenant's, inside the
/// caller's transaction: false (and the caller rolls back) when they do not fit either.
/// The own row is written first, so SQLite takes its write lock before anything is read.
pub(super) async fn charge(
    conn: &mut sqlx::AnyConnection,
    quota: i64,
    bytes: i64,
    force: bool,
) -> Result<bool, DbError> {
    if !charge_row(conn, quota, bytes, force).await? {
        return Ok(false);
    }
    match shared_parent(conn, quota).await? {
        Some(parent) => charge_row(conn, parent, bytes, force).await,
        None => Ok(true),
    }
}

/// Gives `bytes` back to a quota and, for a shared subtenant quota, to its tenant's.
pub(super) async fn uncharge(
    conn: &mut sqlx::AnyConnection,
    quota: i64,
    bytes: i64,
) -> Result<(), DbError> {
    uncharge_row(conn, quota, bytes).await?;
    if let Some(parent) = shared_parent(conn, quota).await? {
        uncharge_row(conn, parent, bytes).await?;
    }
    Ok(())
}

/// A subtenant quota of `bytes` on `repo` that the tenant's quota cannot give.
fn does_not_fit(bytes: u64, repo: &str) -> DbError {
    DbError::QuotaFull(format!(
        "a quota of {} does not fit in what is left of the tenant's quota on \"{repo}\"",
        cloudkeep_model::units::human_bytes(bytes)
    ))
}

/// A byte count as the database's columns hold it.
fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Changes the fixed quota its tenant's quota has given a subtenant by `delta` bytes; a
/// growth must fit what the tenant has left.
async fn carve(
    conn: &mut sqlx::AnyConnection,
    tenant: i64,
    repo: i64,
    delta: i64,
) -> Result<bool, DbError> {
    let sql = if delta > 0 {
        "UPDATE quotas SET carved_bytes = carved_bytes + $1 WHERE tenant_id = $2 AND repo_id = $3 \
         AND used_bytes + carved_bytes + $1 <= quota_bytes"
    } else {
        "UPDATE quotas SET carved_bytes = CASE WHEN carved_bytes + $1 >= 0 THEN carved_bytes + $1 ELSE 0 END \
         WHERE tenant_id = $2 AND repo_id = $3"
    };
    let done = sqlx::query(sql)
        .bind(delta)
        .bind(tenant)
        .bind(repo)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1 || delta <= 0)
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
            if q.bytes.is_unlimited() && parent.is_none() {
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
            if let Some(tenant) = parent
                && let Limit::Bytes(bytes) = q.bytes
                && !carve(&mut tx, tenant, repo_id, signed(bytes)).await?
            {
                return Err(does_not_fit(bytes, &q.repo));
            }
            let friendly = q.friendly_name.clone().unwrap_or_else(|| q.repo.clone());
            sqlx::query(
                "INSERT INTO quotas (tenant_id, repo_id, friendly_name, quota_bytes) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(repo_id)
            .bind(&friendly)
            .bind(q.bytes.stored())
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
        // A subtenant's quotas go back to its tenant: a fixed one's carve, a shared one's use.
        let rows = sqlx::query(
            "SELECT q.id, q.quota_bytes, q.used_bytes, q.recycle_bytes, q.repo_id, t.parent_id FROM quotas q \
             JOIN tenants t ON t.id = q.tenant_id WHERE t.id = $1 AND t.parent_id <> 0",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let (quota, bytes, used, recycled, repo, parent): (i64, i64, i64, i64, i64, i64) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            if bytes >= 0 {
                carve(&mut tx, parent, repo, -bytes).await?;
            } else if let Some(parent_quota) = shared_parent(&mut tx, quota).await? {
                uncharge_row(&mut tx, parent_quota, used).await?;
                sqlx::query("UPDATE quotas SET recycle_bytes = CASE WHEN recycle_bytes >= $1 THEN recycle_bytes - $1 ELSE 0 END WHERE id = $2")
                    .bind(recycled)
                    .bind(parent_quota)
                    .execute(&mut *tx)
                    .await?;
            }
        }
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

    /// Every quota's figures in one statement, for the metrics: (login, repository, used
    /// bytes, quota bytes as stored).
    pub async fn quota_figures(&self) -> Result<Vec<(String, String, i64, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT CASE WHEN p.name IS NULL THEN t.name ELSE p.name || '/' || t.name END, \
               r.name, q.used_bytes, q.quota_bytes FROM quotas q \
             JOIN tenants t ON t.id = q.tenant_id JOIN repos r ON r.id = q.repo_id \
             LEFT JOIN tenants p ON p.id = t.parent_id \
             ORDER BY q.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
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
             LEFT JOIN packs p ON p.quota_id = q.id AND p.id IN ({wanted}) AND p.retired_ms IS NULL \
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
        sqlx::query(UPSERT_QUOTA)
            .bind(tenant)
            .bind(repo.id)
            .bind(&friendly)
            .bind(spec.bytes.stored())
            .execute(self.pool())
            .await
            .map_err(conflict(format!("a quota named \"{friendly}\"")))?;
        Ok(())
    }

    /// Reserves `bytes` of a quota for an upload: true when they fit (and are now counted),
    /// false when the quota would be exceeded (nothing changed). Atomic: concurrent callers
    /// can never together overshoot the quota, nor a shared subtenant its tenant's.
    pub async fn reserve(&self, quota: i64, bytes: i64) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        if !charge(&mut tx, quota, bytes, false).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back bytes reserved or freed.
    pub async fn release(&self, quota: i64, bytes: i64) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        uncharge(&mut tx, quota, bytes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a subtenant's quota on one of its tenant's repositories: a fixed size carved from
    /// the tenant's quota, or unlimited to share it. All or nothing: `QuotaFull` when the new
    /// size does not fit what the tenant has left or is below what the subtenant stores.
    pub async fn set_subtenant_quota(&self, sub: i64, spec: &QuotaSpec) -> Result<(), DbError> {
        let repo = self.repo_by_name(&spec.repo).await?;
        let mut tx = self.pool().begin().await?;
        let parent: i64 = sqlx::query("SELECT parent_id FROM tenants WHERE id = $1")
            .bind(sub)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("account {sub}")))?
            .try_get(0)?;
        if parent == 0 {
            return Err(DbError::Invalid(
                "only a subtenant's quota is carved from its tenant's".into(),
            ));
        }
        let current = sqlx::query(
            "SELECT id, quota_bytes, used_bytes FROM quotas WHERE tenant_id = $1 AND repo_id = $2",
        )
        .bind(sub)
        .bind(repo.id)
        .fetch_optional(&mut *tx)
        .await?;
        let (old, used) = match &current {
            Some(row) => (
                Limit::from_stored(row.try_get(1)?),
                row.try_get::<i64, _>(2)?,
            ),
            None => (Limit::Bytes(0), 0),
        };
        let full = |what: String| DbError::QuotaFull(what);
        if let Limit::Bytes(bytes) = spec.bytes
            && signed(bytes) < used
        {
            return Err(full(format!(
                "a quota of {} is less than the {} the subtenant stores",
                cloudkeep_model::units::human_bytes(bytes),
                cloudkeep_model::units::human_bytes(used.max(0) as u64)
            )));
        }
        // Undo the old arrangement, then make the new one; every growth is checked.
        match (old, spec.bytes) {
            (Limit::Bytes(old), Limit::Bytes(new)) => {
                if !carve(&mut tx, parent, repo.id, signed(new) - signed(old)).await? {
                    return Err(does_not_fit(new, &spec.repo));
                }
            }
            (Limit::Bytes(old), Limit::Unlimited) => {
                carve(&mut tx, parent, repo.id, -signed(old)).await?;
                let parent_quota =
                    sqlx::query("SELECT id FROM quotas WHERE tenant_id = $1 AND repo_id = $2")
                        .bind(parent)
                        .bind(repo.id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                if !charge_row(&mut tx, parent_quota, used, false).await? {
                    return Err(full(format!(
                        "the {} the subtenant stores do not fit in what is left of the tenant's quota",
                        cloudkeep_model::units::human_bytes(used.max(0) as u64)
                    )));
                }
            }
            (Limit::Unlimited, Limit::Bytes(new)) => {
                if let Some(row) = &current
                    && let Some(parent_quota) = shared_parent(&mut tx, row.try_get(0)?).await?
                {
                    uncharge_row(&mut tx, parent_quota, used).await?;
                }
                if !carve(&mut tx, parent, repo.id, signed(new)).await? {
                    return Err(does_not_fit(new, &spec.repo));
                }
            }
            (Limit::Unlimited, Limit::Unlimited) => {}
        }
        let friendly = spec
            .friendly_name
            .clone()
            .unwrap_or_else(|| spec.repo.clone());
        sqlx::query(UPSERT_QUOTA)
            .bind(sub)
            .bind(repo.id)
            .bind(&friendly)
            .bind(spec.bytes.stored())
            .execute(&mut *tx)
            .await
            .map_err(conflict(format!("a quota named \"{friendly}\"")))?;
        tx.commit().await?;
        Ok(())
    }
}
