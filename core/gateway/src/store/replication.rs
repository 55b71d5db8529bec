//! Cloud replication's records (migration 0012): cloud hosts (a password hash, what each
//! reported last and when), hardware plans (one host each; CPUs, memory, networks, internet,
//! storage per pool) and the tenants subscribed to each plan.
//!
//! Also each host's endpoint (where gateways reach it for replica data, its relay key sealed)
//! and the tenants' replicas (what each is, its points as the host reported them, the bytes
//! it takes, its key when the tenant lets the SP hold it — sealed).
//!
//! **Invariants:** a host with plans on it is never removed, nor a plan a tenant has, nor a
//! plan taken from a tenant whose replicas use it (one conditional statement each, so a
//! subscription or replica made meanwhile keeps it); only tenants, never subtenants, are
//! subscribed; a replica is made only on a plan its tenant has.

use cloudkeep_api::replication::{
    HostEndpoint, HostFacts, HostView, PlanSpec, PlanStorage, PlanView, ReplicaPoint, ReplicaSpec,
    ReplicaView,
};
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
        let replicas: i64 =
            sqlx::query("SELECT COUNT(*) FROM replicas WHERE plan_id = $1 AND tenant_id = $2")
                .bind(plan_id)
                .bind(tenant)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?;
        if replicas > 0 {
            return Err(DbError::Invalid(format!(
                "{login} has {replicas} replicas on hardware plan {plan}; they must be removed first"
            )));
        }
        // One statement decides: a replica made meanwhile keeps the subscription.
        let done = sqlx::query(
            "DELETE FROM plan_tenants WHERE plan_id = $1 AND tenant_id = $2 AND NOT EXISTS \
             (SELECT 1 FROM replicas r WHERE r.plan_id = $1 AND r.tenant_id = $2)",
        )
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

/// A replica as the database keeps it.
#[derive(Debug, Clone)]
pub struct ReplicaRow {
    /// Row id.
    pub id: i64,
    /// The tenant's row id.
    pub tenant_id: i64,
    /// The replica as the faces see it.
    pub view: ReplicaView,
    /// Its plan.
    pub plan: PlanSpec,
    /// Its key, sealed, while the tenant lets the SP hold it.
    pub key_sealed: Option<String>,
}

const REPLICA_COLUMNS: &str =
    "r.id, r.tenant_id, t.name, r.spec, r.points, r.stored, r.key_sealed, p.name, r.running";
const REPLICA_FROM: &str =
    "FROM replicas r JOIN tenants t ON t.id = r.tenant_id JOIN plans p ON p.id = r.plan_id";

impl Db {
    /// Records where host `id` listens for its gateways (`endpoint.key` sealed by the caller).
    pub async fn set_host_endpoint(&self, id: i64, endpoint: &HostEndpoint) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE hosts SET endpoint_address = $1, endpoint_fingerprint = $2, endpoint_key = $3 WHERE id = $4",
        )
        .bind(&endpoint.address)
        .bind(&endpoint.fingerprint)
        .bind(&endpoint.key)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Where host `name` listens (its key sealed), once it said.
    pub async fn host_endpoint(&self, name: &str) -> Result<Option<HostEndpoint>, DbError> {
        let row = sqlx::query(
            "SELECT endpoint_address, endpoint_fingerprint, endpoint_key FROM hosts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("cloud host \"{name}\"")))?;
        let (address, fingerprint, key): (Option<String>, Option<String>, Option<String>) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        Ok(match (address, fingerprint, key) {
            (Some(address), Some(fingerprint), Some(key)) => Some(HostEndpoint {
                address,
                fingerprint,
                key,
            }),
            _ => None,
        })
    }

    /// Adds tenant `tenant_id`'s replica on plan `spec.plan`, which it must have.
    pub async fn add_replica(
        &self,
        tenant_id: i64,
        spec: &ReplicaSpec,
        key_sealed: Option<&str>,
    ) -> Result<ReplicaRow, DbError> {
        let text = serde_json::to_string(spec).map_err(|e| DbError::Invalid(e.to_string()))?;
        // One statement: the plan must be the tenant's at the moment the row is made.
        let done = sqlx::query(
            "INSERT INTO replicas (tenant_id, name, plan_id, spec, key_sealed, created_ms) \
             SELECT $1, $2, p.id, $3, $4, $5 FROM plans p JOIN plan_tenants pt ON pt.plan_id = p.id \
             WHERE p.name = $6 AND pt.tenant_id = $1",
        )
        .bind(tenant_id)
        .bind(&spec.name)
        .bind(text)
        .bind(key_sealed)
        .bind(now_ms())
        .bind(&spec.plan)
        .execute(self.pool())
        .await
        .map_err(conflict(format!("replica \"{}\"", spec.name)))?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!(
                "your hardware plan \"{}\"",
                spec.plan
            )));
        }
        self.replica(tenant_id, &spec.name).await
    }

    /// A tenant's replica by name.
    pub async fn replica(&self, tenant_id: i64, name: &str) -> Result<ReplicaRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {REPLICA_COLUMNS} {REPLICA_FROM} WHERE r.tenant_id = $1 AND r.name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("replica \"{name}\"")))?;
        self.replica_of(&row).await
    }

    /// Every replica of a tenant (`Some`), or of every tenant, by tenant and name.
    pub async fn replicas(&self, tenant_id: Option<i64>) -> Result<Vec<ReplicaRow>, DbError> {
        let rows =
            match tenant_id {
                Some(id) => sqlx::query(&format!(
                    "SELECT {REPLICA_COLUMNS} {REPLICA_FROM} WHERE r.tenant_id = $1 ORDER BY r.name"
                ))
                .bind(id)
                .fetch_all(self.pool())
                .await?,
                None => {
                    sqlx::query(&format!(
                        "SELECT {REPLICA_COLUMNS} {REPLICA_FROM} ORDER BY t.name, r.name"
                    ))
                    .fetch_all(self.pool())
                    .await?
                }
            };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.replica_of(row).await?);
        }
        Ok(out)
    }

    async fn replica_of(&self, row: &sqlx::any::AnyRow) -> Result<ReplicaRow, DbError> {
        let spec: String = row.try_get(3)?;
        let spec: ReplicaSpec = serde_json::from_str(&spec)
            .map_err(|e| DbError::Invalid(format!("a replica's record: {e}")))?;
        let points: String = row.try_get(4)?;
        let points: Vec<ReplicaPoint> = serde_json::from_str(&points).unwrap_or_default();
        let key_sealed: Option<String> = row.try_get(6)?;
        let plan_name: String = row.try_get(7)?;
        let plan = self.plan(&plan_name).await?.plan;
        let running: Option<String> = row.try_get(8)?;
        // A record a later version wrote that this one cannot read counts as running with
        // nothing known: never as stopped.
        let state = running
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| DbError::Invalid(format!("a replica's failover state: {e}")))?;
        Ok(ReplicaRow {
            id: row.try_get(0)?,
            tenant_id: row.try_get(1)?,
            view: ReplicaView {
                tenant: row.try_get(2)?,
                host: plan.host.clone(),
                networks: plan.networks,
                spec,
                points,
                stored: unsigned(row.try_get(5)?)?,
                key_escrowed: key_sealed.is_some(),
                state,
            },
            plan,
            key_sealed,
        })
    }

    /// Records a replica's points and size after a cycle.
    pub async fn record_replica(
        &self,
        id: i64,
        points: &[ReplicaPoint],
        stored: u64,
    ) -> Result<(), DbError> {
        let text = serde_json::to_string(points).map_err(|e| DbError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE replicas SET points = $1, stored = $2 WHERE id = $3")
            .bind(text)
            .bind(self::stored(stored)?)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets (or with `None` forgets) the sealed key the SP holds for replica `id`.
    pub async fn set_replica_key(&self, id: i64, sealed: Option<&str>) -> Result<(), DbError> {
        sqlx::query("UPDATE replicas SET key_sealed = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records what runs of replica `id` (`None`: nothing).
    pub async fn set_replica_state(
        &self,
        id: i64,
        state: Option<&cloudkeep_api::replication::FailoverState>,
    ) -> Result<(), DbError> {
        let text = state
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE replicas SET running = $1 WHERE id = $2")
            .bind(text)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes replica `id`'s record.
    pub async fn remove_replica(&self, id: i64) -> Result<(), DbError> {
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Bytes the tenant's replicas on plan `plan` take on pool `pool`, but replica `but`.
    pub async fn plan_stored(
        &self,
        tenant_id: i64,
        plan: &str,
        pool: &str,
        but: i64,
    ) -> Result<u64, DbError> {
        let mut total = 0u64;
        for r in self.replicas(Some(tenant_id)).await? {
            if r.id != but && r.view.spec.plan == plan && r.view.spec.pool == pool {
                total = total.saturating_add(r.view.stored);
            }
        }
        Ok(total)
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
