//! Cloud repositories: the SP's named backing stores — a folder on the gateway's machine or
//! a bucket (and prefix) of an S3-compatible object store. Each tenant quota on a repository
//! gets its own area in it (`storage`). An object store's credentials are kept sealed under
//! the gateways' secrets key ([`Db::repo_secret`]); they are never part of a [`CloudRepo`].

use cloudkeep_api::accounts::CloudRepo;
use cloudkeep_api::{ObjectLock, S3Target};
use cloudkeep_model::units::Limit;
use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};

const COLUMNS: &str = "id, name, kind, location, s3, title, in_service, capacity, object_lock";

/// A repository to add.
#[derive(Debug, Clone)]
pub struct NewRepo<'a> {
    /// Its name.
    pub name: &'a str,
    /// `folder` or `s3`.
    pub kind: &'a str,
    /// The folder, or the object store described for people.
    pub location: &'a str,
    /// The object store.
    pub s3: Option<&'a S3Target>,
    /// Its credentials, sealed (hex).
    pub secret: Option<&'a str>,
    /// What its bucket said of object lock.
    pub object_lock: Option<&'a ObjectLock>,
}

impl<'a> NewRepo<'a> {
    /// A folder repository.
    pub fn folder(name: &'a str, path: &'a str) -> Self {
        Self {
            name,
            kind: "folder",
            location: path,
            s3: None,
            secret: None,
            object_lock: None,
        }
    }
}

impl Db {
    /// Adds a cloud repository.
    pub async fn add_repo(&self, repo: NewRepo<'_>) -> Result<CloudRepo, DbError> {
        let s3 = repo
            .s3
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let lock = repo
            .object_lock
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO repos (name, kind, location, created_ms, s3, secret, object_lock) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(repo.name)
        .bind(repo.kind)
        .bind(repo.location)
        .bind(now_ms())
        .bind(s3)
        .bind(repo.secret)
        .bind(lock)
        .fetch_one(self.pool())
        .await
        .map_err(conflict(format!("cloud repository \"{}\"", repo.name)))?;
        let id: i64 = row.try_get(0)?;
        self.repo_by_id(id).await
    }

    /// Every cloud repository, by name.
    pub async fn repos(&self) -> Result<Vec<CloudRepo>, DbError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM repos ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(repo_of).collect()
    }

    /// A cloud repository by name.
    pub async fn repo_by_name(&self, name: &str) -> Result<CloudRepo, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM repos WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("cloud repository \"{name}\"")))?;
        repo_of(&row)
    }

    async fn repo_by_id(&self, id: i64) -> Result<CloudRepo, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM repos WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("cloud repository {id}")))?;
        repo_of(&row)
    }

    /// Records what repository `name`'s bucket said of object lock.
    pub async fn set_repo_lock(&self, name: &str, lock: &ObjectLock) -> Result<(), DbError> {
        let text = serde_json::to_string(lock).map_err(|e| DbError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE repos SET object_lock = $1 WHERE name = $2")
            .bind(text)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The sealed credentials of an object-storage repository (hex), if it has any.
    pub async fn repo_secret(&self, name: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT secret FROM repos WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("cloud repository \"{name}\"")))?;
        Ok(row.try_get(0)?)
    }
}

fn repo_of(r: &sqlx::any::AnyRow) -> Result<CloudRepo, DbError> {
    let s3: Option<String> = r.try_get(4)?;
    let s3 = s3
        .map(|text| serde_json::from_str::<S3Target>(&text))
        .transpose()
        .map_err(|e| DbError::Invalid(format!("a cloud repository's object store: {e}")))?;
    let in_service: i64 = r.try_get(6)?;
    let object_lock: Option<String> = r.try_get(8)?;
    // An unreadable record (a later version's) reads as "not asked yet": it is asked again.
    let object_lock = object_lock.and_then(|text| serde_json::from_str(&text).ok());
    Ok(CloudRepo {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        location: r.try_get(3)?,
        s3,
        title: r.try_get(5)?,
        in_service: in_service != 0,
        capacity: Limit::from_stored(r.try_get(7)?),
        object_lock,
    })
}

impl Db {
    /// Changes a repository's title, capacity or service state; the repository after.
    pub async fn edit_repo(
        &self,
        name: &str,
        edit: &cloudkeep_api::RepoEdit,
    ) -> Result<CloudRepo, DbError> {
        let repo = self.repo_by_name(name).await?;
        let title = edit.title.clone().unwrap_or(repo.title);
        let capacity = edit.capacity.unwrap_or(repo.capacity);
        let in_service = edit.in_service.unwrap_or(repo.in_service);
        if let Limit::Bytes(cap) = capacity {
            let given = self.repo_quota_total(repo.id).await?;
            if given > cap {
                return Err(DbError::Invalid(format!(
                    "{name} already hands out {given} bytes of quota, more than a capacity of {cap}: lower quotas or move tenants first"
                )));
            }
        }
        sqlx::query("UPDATE repos SET title = $2, capacity = $3, in_service = $4 WHERE id = $1")
            .bind(repo.id)
            .bind(&title)
            .bind(capacity.stored())
            .bind(i64::from(in_service))
            .execute(self.pool())
            .await?;
        self.repo_by_id(repo.id).await
    }

    /// Bytes of quota a repository hands out (tenants' own quotas; subtenants' are carved
    /// from them).
    pub async fn repo_quota_total(&self, repo: i64) -> Result<u64, DbError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(q.quota_bytes), 0) FROM quotas q JOIN tenants t ON t.id = q.tenant_id \
             WHERE q.repo_id = $1 AND t.parent_id = 0 AND q.quota_bytes > 0",
        )
        .bind(repo)
        .fetch_one(self.pool())
        .await?;
        let total: i64 = row.try_get(0)?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// How many quotas (of tenants and subtenants) are on a repository.
    pub async fn repo_quota_count(&self, repo: i64) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM quotas WHERE repo_id = $1")
            .bind(repo)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Removes a repository no quota is on; refused otherwise (its data stays where it is).
    pub async fn remove_repo(&self, name: &str) -> Result<(), DbError> {
        let repo = self.repo_by_name(name).await?;
        let quotas = self.repo_quota_count(repo.id).await?;
        if quotas > 0 {
            return Err(DbError::Invalid(format!(
                "{name} still holds the data of {quotas} quotas: move them to another repository or remove them first"
            )));
        }
        // One statement: a quota added meanwhile makes it remove nothing.
        let done = sqlx::query(
            "DELETE FROM repos WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM quotas WHERE repo_id = $1)",
        )
        .bind(repo.id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Invalid(format!(
                "{name} was given a quota meanwhile; it stays"
            )));
        }
        Ok(())
    }
}
