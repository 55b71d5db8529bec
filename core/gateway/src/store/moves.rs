//! Moves of a tenant's quota, with its data, to another cloud repository: one row per move
//! with its state and progress (what the SP's console and `sp move` show), and the quota's
//! freeze while the switch happens (writes are answered "busy, retry").
//!
//! Invariant: a quota has at most one move in progress; the switch of its repository and the
//! end of its freeze are one statement.

use cloudkeep_api::MoveInfo;
use sqlx::Row;

use super::{Db, DbError, now_ms};

const COLUMNS: &str = "id, tenant, from_repo, to_repo, state, packs_total, packs_done, \
     bytes_total, bytes_done, started_ms, updated_ms, message";

fn move_of(r: &sqlx::any::AnyRow) -> Result<MoveInfo, DbError> {
    Ok(MoveInfo {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        from: r.try_get(2)?,
        to: r.try_get(3)?,
        state: r.try_get(4)?,
        packs_total: r.try_get(5)?,
        packs_done: r.try_get(6)?,
        bytes_total: r.try_get(7)?,
        bytes_done: r.try_get(8)?,
        started_ms: r.try_get(9)?,
        updated_ms: r.try_get(10)?,
        message: r.try_get(11)?,
    })
}

/// States of a move that is still going.
const ACTIVE: &str = "('copying', 'switching', 'releasing')";

impl Db {
    /// Records a new move of quota `quota`; refused while another move of it goes on.
    pub async fn start_move(
        &self,
        quota: i64,
        tenant: &str,
        (from, to): (&str, &str),
        gateway: &str,
    ) -> Result<i64, DbError> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "INSERT INTO moves (quota_id, tenant, from_repo, to_repo, gateway_id, state, started_ms, updated_ms) \
             SELECT $1, $2, $3, $4, $5, 'copying', $6, $6 \
             WHERE NOT EXISTS (SELECT 1 FROM moves WHERE quota_id = $1 AND state IN {ACTIVE}) \
             RETURNING id"
        ))
        .bind(quota)
        .bind(tenant)
        .bind(from)
        .bind(to)
        .bind(gateway)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => Ok(row.try_get(0)?),
            None => Err(DbError::Conflict(format!(
                "a move of {tenant}'s quota on {from}"
            ))),
        }
    }

    /// Records a move's progress.
    pub async fn move_progress(
        &self,
        id: i64,
        (packs_total, packs_done): (i64, i64),
        (bytes_total, bytes_done): (i64, i64),
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE moves SET packs_total = $2, packs_done = $3, bytes_total = $4, bytes_done = $5, updated_ms = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(packs_total)
        .bind(packs_done)
        .bind(bytes_total)
        .bind(bytes_done)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets a move's state (and message).
    pub async fn move_state(&self, id: i64, state: &str, message: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE moves SET state = $2, message = $3, updated_ms = $4 WHERE id = $1")
            .bind(id)
            .bind(state)
            .bind(message)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest moves first (at most 200).
    pub async fn moves(&self) -> Result<Vec<MoveInfo>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM moves ORDER BY id DESC LIMIT 200"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(move_of).collect()
    }

    /// One move.
    pub async fn move_info(&self, id: i64) -> Result<MoveInfo, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM moves WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("move {id}")))?;
        move_of(&row)
    }

    /// Freezes a quota's writes (or lets them go on).
    pub async fn set_frozen(&self, quota: i64, frozen: bool) -> Result<(), DbError> {
        sqlx::query("UPDATE quotas SET frozen = $2 WHERE id = $1")
            .bind(quota)
            .bind(i64::from(frozen))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Puts a quota on repository `to` and ends its freeze, in one statement.
    pub async fn switch_quota(&self, quota: i64, to: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE quotas SET repo_id = $2, frozen = 0 WHERE id = $1")
            .bind(quota)
            .bind(to)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Writes in flight on a quota (their reservations).
    pub async fn writes_in_flight(&self, quota: i64) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM reservations WHERE quota_id = $1")
            .bind(quota)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Moves gateway `gateway` was running when it stopped: marked failed, their quotas
    /// unfrozen (started again, a move copies only what is missing).
    pub async fn fail_interrupted_moves(&self, gateway: &str) -> Result<u64, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT id, quota_id, state FROM moves WHERE gateway_id = $1 AND state IN {ACTIVE}"
        ))
        .bind(gateway)
        .fetch_all(self.pool())
        .await?;
        for row in &rows {
            let (id, quota, state): (i64, i64, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if state == "releasing" {
                // Switched already: only the old copy was left to remove.
                self.move_state(
                    id,
                    "done",
                    "moved; the old copy was not removed (the gateway stopped): the storage check finds it",
                )
                .await?;
                continue;
            }
            self.set_frozen(quota, false).await?;
            self.move_state(
                id,
                "failed",
                "the gateway moving it stopped; start the move again (what was copied is kept)",
            )
            .await?;
        }
        Ok(rows.len() as u64)
    }
}
