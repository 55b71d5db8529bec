//! What reclaiming space needs of the database: every pack of a quota with its chunk ids,
//! packs and index files retired (hidden from the tenant, kept by the SP until the insider
//! protection window ends) and given back or removed for good, and the reclaimable figure the
//! space pass leaves for the SP's usage and the tenant's repository list.
//!
//! Invariant: a retired pack's chunks count as absent (presence and commit checks skip it);
//! its bytes are in the recycle bin, not in the quota's use, until it is removed.

use std::collections::HashMap;

use sqlx::Row;

use super::{Db, DbError, now_ms};
use cloudkeep_repo::crypto::ChunkId;

/// A pack and the chunk ids the tenant declared for it.
#[derive(Debug, Clone)]
pub struct PackChunks {
    /// Its id (hex).
    pub id: String,
    /// Its length.
    pub bytes: i64,
    /// When it was stored.
    pub created_ms: i64,
    /// When a compaction retired it, if it did.
    pub retired_ms: Option<i64>,
    /// The chunk ids it carries, sorted.
    pub chunks: Vec<ChunkId>,
    /// Their stored lengths (in the same order), when the client declared them.
    pub lens: Option<Vec<u32>>,
}

impl PackChunks {
    /// Bytes of the chunks `unneeded` says no point needs: their declared lengths, or the
    /// pack's size shared out by count for a pack of an older client.
    pub fn unneeded_bytes(&self, unneeded: impl Fn(&ChunkId) -> bool) -> i64 {
        if self.chunks.is_empty() {
            return self.bytes;
        }
        match &self.lens {
            Some(lens) if lens.len() == self.chunks.len() => self
                .chunks
                .iter()
                .zip(lens)
                .filter(|(c, _)| unneeded(c))
                .map(|(_, len)| i64::from(*len))
                .sum(),
            _ => {
                let dead = self.chunks.iter().filter(|c| unneeded(c)).count();
                (self.bytes as f64 * dead as f64 / self.chunks.len() as f64) as i64
            }
        }
    }
}

impl Db {
    /// Every pack of a quota that is not damaged (damaged packs wait for the tenant's
    /// salvage), live and retired, with its chunk ids.
    pub async fn packs_with_chunks(&self, quota: i64) -> Result<Vec<PackChunks>, DbError> {
        let rows = sqlx::query(
            "SELECT pk, id, bytes, created_ms, retired_ms, chunk_lens FROM packs WHERE quota_id = $1 AND damaged_ms IS NULL ORDER BY pk",
        )
        .bind(quota)
        .fetch_all(self.pool())
        .await?;
        let mut packs = Vec::with_capacity(rows.len());
        let mut at: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
        for r in &rows {
            at.insert(r.try_get(0)?, packs.len());
            packs.push(PackChunks {
                id: r.try_get(1)?,
                bytes: r.try_get(2)?,
                created_ms: r.try_get(3)?,
                retired_ms: r.try_get(4)?,
                chunks: Vec::new(),
                lens: r.try_get::<Option<Vec<u8>>, _>(5)?.map(|raw| {
                    raw.chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                }),
            });
        }
        let ids = sqlx::query("SELECT pack, id FROM chunk_ids WHERE quota_id = $1")
            .bind(quota)
            .fetch_all(self.pool())
            .await?;
        for r in &ids {
            let pk: i64 = r.try_get(0)?;
            let raw: Vec<u8> = r.try_get(1)?;
            if let (Some(&i), Ok(bytes)) = (at.get(&pk), <[u8; 32]>::try_from(raw.as_slice())) {
                packs[i].chunks.push(ChunkId(bytes));
            }
        }
        for p in &mut packs {
            p.chunks.sort_unstable();
        }
        Ok(packs)
    }

    /// Retires the live, sound packs among `ids` (their bytes move to the recycle bin);
    /// returns those it retired with their sizes.
    pub async fn retire_packs(
        &self,
        quota: i64,
        ids: &[String],
    ) -> Result<Vec<(String, i64)>, DbError> {
        let now = now_ms();
        let mut retired = Vec::new();
        for id in ids {
            let row = sqlx::query(
                "UPDATE packs SET retired_ms = $1 WHERE quota_id = $2 AND id = $3 AND retired_ms IS NULL AND damaged_ms IS NULL RETURNING bytes",
            )
            .bind(now)
            .bind(quota)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                let bytes: i64 = row.try_get(0)?;
                self.shift_to_recycle(quota, bytes).await?;
                retired.push((id.clone(), bytes));
            }
        }
        Ok(retired)
    }

    /// Gives a retired pack back (its chunks count as stored again); false if it was not
    /// retired.
    pub async fn unretire_pack(&self, quota: i64, id: &str) -> Result<bool, DbError> {
        let row = sqlx::query(
            "UPDATE packs SET retired_ms = NULL WHERE quota_id = $1 AND id = $2 AND retired_ms IS NOT NULL RETURNING bytes",
        )
        .bind(quota)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        self.shift_to_recycle(quota, -row.try_get::<i64, _>(0)?)
            .await?;
        Ok(true)
    }

    /// Forgets a retired pack whose file is gone: its row, its chunk ids, its recycle-bin
    /// bytes.
    pub async fn remove_retired_pack(&self, quota: i64, id: &str) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "DELETE FROM packs WHERE quota_id = $1 AND id = $2 AND retired_ms IS NOT NULL RETURNING pk, bytes",
        )
        .bind(quota)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(());
        };
        sqlx::query("DELETE FROM chunk_ids WHERE pack = $1")
            .bind(row.try_get::<i64, _>(0)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.drop_recycled(quota, row.try_get(1)?).await
    }

    /// Hides an index file from the tenant until the protection window ends; false if there
    /// is no such live object.
    pub async fn retire_object(&self, quota: i64, kind: &str, name: &str) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE objects SET retired_ms = $1 WHERE quota_id = $2 AND kind = $3 AND name = $4 AND retired_ms IS NULL RETURNING bytes",
        )
        .bind(now_ms())
        .bind(quota)
        .bind(kind)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }

    /// Retired small objects of a quota: kind, name, when retired.
    pub async fn retired_objects(&self, quota: i64) -> Result<Vec<(String, String, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT kind, name, retired_ms FROM objects WHERE quota_id = $1 AND retired_ms IS NOT NULL",
        )
        .bind(quota)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Records what the space pass found reclaimable in a quota.
    pub async fn set_reclaimable(&self, quota: i64, bytes: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE quotas SET reclaimable_bytes = $1, space_checked_ms = $2 WHERE id = $3",
        )
        .bind(bytes)
        .bind(now_ms())
        .bind(quota)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// When the space pass last looked at a quota.
    pub async fn space_checked(&self, quota: i64) -> Result<Option<i64>, DbError> {
        Ok(
            sqlx::query("SELECT space_checked_ms FROM quotas WHERE id = $1")
                .bind(quota)
                .fetch_optional(self.pool())
                .await?
                .map(|r| r.try_get::<Option<i64>, _>(0))
                .transpose()?
                .flatten(),
        )
    }

    /// Whether an account (or one of its subtenants) has a task running: its backups may be
    /// about to commit points that name chunks of packs no point names yet.
    pub async fn account_busy(&self, tenant: i64) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "SELECT 1 FROM tasks WHERE expires_ms > $1 AND (tenant_id = $2 OR tenant_id IN (SELECT id FROM tenants WHERE parent_id = $2)) LIMIT 1",
        )
        .bind(now_ms())
        .bind(tenant)
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }
}
