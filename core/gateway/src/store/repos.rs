//! Cloud repositories: the SP's named backing stores — a folder on the gateway's machine or
//! a bucket (and prefix) of an S3-compatible object store. Each tenant quota on a repository
//! gets its own area in it (`storage`). An object store's credentials are kept sealed under
//! the gateways' secrets key ([`Db::repo_secret`]); they are never part of a [`CloudRepo`].

use cloudkeep_api::S3Target;
use cloudkeep_api::accounts::CloudRepo;
use cloudkeep_model::units::Limit;
use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};

const COLUMNS: &str = "id, name, kind, location, s3, title, in_service, capacity";

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
        let row = sqlx::query(
            "INSERT INTO repos (name, kind, location, created_ms, s3, secret) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(repo.name)
        .bind(repo.kind)
        .bind(repo.location)
        .bind(now_ms())
        .bind(s3)
        .bind(repo.secret)
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
    Ok(CloudRepo {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        location: r.try_get(3)?,
        s3,
        title: r.try_get(5)?,
        in_service: in_service != 0,
        capacity: Limit::from_stored(r.try_get(7)?),
    })
}
