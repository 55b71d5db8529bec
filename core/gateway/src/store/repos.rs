//! Cloud repositories: the SP's named backing stores (a local folder now; S3 later behind the
//! same pack-store interface). Each tenant quota on a repository gets its own area in it.

use cloudkeep_api::accounts::CloudRepo;
use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};

impl Db {
    /// Adds a cloud repository.
    pub async fn add_repo(
        &self,
        name: &str,
        kind: &str,
        location: &str,
    ) -> Result<CloudRepo, DbError> {
        let row = sqlx::query(
            "INSERT INTO repos (name, kind, location, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .bind(location)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
        .map_err(conflict(format!("cloud repository \"{name}\"")))?;
        Ok(CloudRepo {
            id: row.try_get(0)?,
            name: name.to_owned(),
            kind: kind.to_owned(),
            location: location.to_owned(),
        })
    }

    /// Every cloud repository, by name.
    pub async fn repos(&self) -> Result<Vec<CloudRepo>, DbError> {
        let rows = sqlx::query("SELECT id, name, kind, location FROM repos ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(|r| repo_of(&r)).collect()
    }

    /// A cloud repository by name.
    pub async fn repo_by_name(&self, name: &str) -> Result<CloudRepo, DbError> {
        let row = sqlx::query("SELECT id, name, kind, location FROM repos WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("cloud repository \"{name}\"")))?;
        repo_of(&row)
    }
}

fn repo_of(r: &sqlx::any::AnyRow) -> Result<CloudRepo, DbError> {
    Ok(CloudRepo {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        location: r.try_get(3)?,
    })
}
