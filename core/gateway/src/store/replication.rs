//! Cloud replication's records (migration 0012): cloud hosts (a password hash, what each
//! reported last and when), hardware plans (one host each; CPUs, memory, networks, internet,
//! storage per pool) and the tenants subscribed to each plan.
//!
//! **Invariants:** a host with plans on it is never removed, nor a plan a tenant has (one
//! conditional statement each, so a subscription made meanwhile keeps it); only tenants, never
//! subtenants, are subscribed.

use cloudkeep_api::replication::{HostFacts, HostView, PlanSpec, PlanStorage, PlanView};
use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};

impl Db {
    /// Adds a cloud host that logs in with `password_hash`.
    pub async fn add_host(&self, name: &str, password_hash: &str) -> Result<HostView, DbError> {
        sqlx::query("INSERT INTO hosts (name, password_hash, created_ms) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(password_hash)
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(conflict(format!("cloud host \"{name}\"")))?;
        self.host(name).await
    }

    /// Every cloud host, by name, with the plans on it.
    pub async fn hosts(&self) -> Result<Vec<HostView>, DbError> {
        let rows = sqlx::query("SELECT name FROM hosts ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            hosts.push(self.host(&name).await?);
        }
        Ok(hosts)
    }

    /// A cloud host by name.
    pub async fn host(&self, name: &str) -> Result<HostView, DbError> {
        let row =
            sqlx::query("SELECT id, name, created_ms, seen_ms, facts FROM hosts WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| DbError::NotFound(format!("cloud host \"{name}\"")))?;
        let id: i64 = row.try_get(0)?;
        let facts: Option<String> = row.try_get(4)?;
        // Facts a later version wrote that this one cannot read show as "not reported".
        let facts = facts.and_then(|text| serde_json::from_str::<HostFacts>(&text).ok());
        let plans = sqlx::query("SELECT name FROM plans WHERE host_id = $1 ORDER BY name")
            .bind(id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        Ok(HostView {
            name: row.try_get(1)?,
            created_ms: row.try_get(2)?,
            seen_ms: row.try_get(3)?,
            facts,
            plans,
        })
    }

    /// A host's id and password hash, for its login.
    pub async fn host_login(&self, name: &str) -> Result<Option<(i64, String)>, DbError> {
        let row = sqlx::query("SELECT id, password_hash FROM hosts WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// A host's name by id (its session's subject).
    pub async fn host_name(&self, id: i64) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT name FROM hosts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Records what host `id` reports now.
    pub async fn set_host_facts(&self, id: i64, facts: &HostFacts) -> Result<(), DbError> {
        let text = serde_json::to_string(facts).map_err(|e| DbError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE hosts SET facts = $1, seen_ms = $2 WHERE id = $3")
            .bind(text)
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes a cloud host no plan is on (and its sessions); refused otherwise.
    pub async fn remove_host(&self, name: &str) -> Result<(), DbError> {
        let host = self.host(name).await?;
        if !host.plans.is_empty() {
            return Err(DbError::Invalid(format!(
                "hardware plans are on {name} ({}); remove them first",
                host.plans.join(", ")
            )));
        }
        let Some((id, _)) = self.host_login(name).await? else {
            return Err(DbError::NotFound(format!("cloud host \"{name}\"")));
        };
        // One statement: a plan added meanwhile makes it remove nothing.
        let done = sqlx::query(
            "DELETE FROM hosts WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM plans WHERE host_id = $1)",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Invalid(format!(
                "a hardware plan was put on {name} meanwhile; it stays"
            )));
        }
        self.delete_sessions_of(super::accounts::Realm::Host, id)
            .await
    }

    /// Adds a hardware plan (checked by the caller against its host).
    pub async fn add_plan(&self, plan: &PlanSpec) -> Result<PlanView, DbError> {
        let Some((host_id, _)) = self.host_login(&plan.host).await? else {
            return Err(DbError::NotFound(format!("cloud host \"{}\"", plan.host)));
        };
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "INSERT INTO plans (name, host_id, cpu, memory, networks, internet, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&plan.name)
        .bind(host_id)
        .bind(i64::from(plan.cpu))
        .bind(stored(plan.memory)?)
        .bind(i64::from(plan.networks))
        .bind(i64::from(plan.internet))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("hardware plan \"{}\"", plan.name)))?;
        let id: i64 = row.try_get(0)?;
        for s in &plan.storage {
            sqlx::query("INSERT INTO plan_storage (plan_id, pool, bytes) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&s.pool)
                .bind(stored(s.bytes)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.plan(&plan.name).await
    }

    /// Every hardware plan, by name.
    pub async fn plans(&self) -> Result<Vec<PlanView>, DbError> {
        let rows = sqlx::query("SELECT name FROM plans ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut plans = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            plans.push(self.plan(&name).await?);
        }
        Ok(plans)
    }

    /// A hardware plan by name, with its tenants.
    pub async fn plan(&self, name: &str) -> Result<PlanView, DbError> {
        let row = sqlx::query(
            "SELECT p.id, p.name, h.name, p.cpu, p.memory, p.networks, p.internet, p.created_ms \
             FROM plans p JOIN hosts h ON h.id = p.host_id WHERE p.name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("hardware plan \"{name}\"")))?;
        let id: i64 = row.try_get(0)?;
        let storage =
            sqlx::query("SELECT pool, bytes FROM plan_storage WHERE plan_id = $1 ORDER BY pool")
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok(PlanStorage {
                        pool: r.try_get(0)?,
                        bytes: unsigned(r.try_get(1)?)?,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()?;
        let tenants = sqlx::query(
            "SELECT t.name FROM plan_tenants pt JOIN tenants t ON t.id = pt.tenant_id \
             WHERE pt.plan_id = $1 ORDER BY t.name",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
        let small = |v: i64| u32::try_from(v).map_err(|_| DbError::Invalid(format!("{v}")));
        let internet: i64 = row.try_get(6)?;
        Ok(PlanView {
            plan: PlanSpec {
                name: row.try_get(1)?,
                host: row.try_get(2)?,
                cpu: small(row.try_get(3)?)?,
                memory: unsigned(row.try_get(4)?)?,
                storage,
                networks: small(row.try_get(5)?)?,
                internet: internet != 0,
            },
            created_ms: row.try_get(7)?,
            tenants,
        })
    }

    /// Removes a hardware plan no tenant has; refused otherwise.
    pub async fn remove_plan(&self, name: &str) -> Result<(), DbError> {
        let plan = self.plan(name).await?;
        if !plan.tenants.is_empty() {
            return Err(DbError::Invalid(format!(
                "tenants have hardware plan {name} ({}); take it from them first",
                plan.tenants.join(", ")
            )));
        }
        let mut tx = self.pool().begin().await?;
        // One statement decides: a subscription made meanwhile makes it remove nothing.
        let done = sqlx::query(
            "DELETE FROM plans WHERE name = $1 AND NOT EXISTS \
             (SELECT 1 FROM plan_tenants pt WHERE pt.plan_id = plans.id)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Invalid(format!(
                "a tenant was given hardware plan {name} meanwhile; it stays"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives tenant `login` hardware plan `plan` (a tenant, never a subtenant).
    pub async fn subscribe(&self, plan: &str, login: &str) -> Result<PlanView, DbError> {
        let tenant = self.top_tenant_id(login).await?;
        let plan_id = self.plan_id(plan).await?;
        sqlx::query(
            "INSERT INTO plan_tenants (plan_id, tenant_id, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (plan_id, tenant_id) DO NOTHING",
        )
        .bind(plan_id)
        .bind(tenant)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.plan(plan).await
    }

    /// Takes hardware plan `plan` from tenant `login`.
    pub async fn unsubscribe(&self, plan: &str, login: &str) -> Result<PlanView, DbError> {
        let tenant = self.top_tenant_id(login).await?;
        let plan_id = self.plan_id(plan).await?;
        let done = sqlx::query("DELETE FROM plan_tenants WHERE plan_id = $1 AND tenant_id = $2")
            .bind(plan_id)
            .bind(tenant)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!(
                "tenant {login}'s hardware plan \"{plan}\""
            )));
        }
        self.plan(plan).await
    }

    /// The hardware plans tenant `tenant_id` has.
    pub async fn plans_of(&self, tenant_id: i64) -> Result<Vec<PlanView>, DbError> {
        let rows = sqlx::query(
            "SELECT p.name FROM plan_tenants pt JOIN plans p ON p.id = pt.plan_id \
             WHERE pt.tenant_id = $1 ORDER BY p.name",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        let mut plans = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            plans.push(self.plan(&name).await?);
        }
        Ok(plans)
    }

    async fn plan_id(&self, name: &str) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT id FROM plans WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("hardware plan \"{name}\"")))?;
        Ok(row.try_get(0)?)
    }

    async fn top_tenant_id(&self, login: &str) -> Result<i64, DbError> {
        if login.contains('/') {
            return Err(DbError::Invalid(format!(
                "hardware plans are given to tenants, not subtenants: give the plan to {} instead",
                login.split('/').next().unwrap_or(login)
            )));
        }
        let row = sqlx::query("SELECT id FROM tenants WHERE parent_id = 0 AND name = $1")
            .bind(login)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("tenant \"{login}\"")))?;
        Ok(row.try_get(0)?)
    }
}

/// A size as the database keeps it.
fn stored(bytes: u64) -> Result<i64, DbError> {
    i64::try_from(bytes).map_err(|_| DbError::Invalid(format!("{bytes} bytes is out of range")))
}

/// A size the database kept.
fn unsigned(value: i64) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Invalid(format!("a size of {value} bytes")))
}
