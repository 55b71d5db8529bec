//! What each quota's area holds, as the gateway tracks it in clear: packs with the chunk ids
//! the tenant declared for them (32-byte keys under an integer pack key, for presence queries
//! and the commit check), small objects (keyring, index files, chunk sets) with their sizes,
//! and restore points (with the recycle bin: a deleted point keeps its row with `deleted_ms`
//! until it is purged).

use sqlx::Row;

use super::{Db, DbError, conflict, now_ms};
use cloudkeep_repo::crypto::ChunkId;

/// Chunk ids per statement when they travel as one packed parameter.
const ID_BATCH: usize = 8192;

/// `WITH RECURSIVE ids(i)`: 0 … n-1, where n is bound as parameter `$count`. Statements take
/// many chunk ids as one parameter, 32-byte ids laid end to end, and pick id i with
/// `substr(blob, i * 32 + 1, 32)`: one bind instead of thousands, in SQL both engines run.
fn ids_cte(count: usize) -> String {
    format!(
        "WITH RECURSIVE ids(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL \
         SELECT i + 1 FROM ids WHERE i + 1 < ${count})"
    )
}

/// Chunk ids laid end to end.
fn packed(ids: &[ChunkId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0).collect()
}

/// The stored lengths of `chunks` (declared in the same order), 4 bytes each little-endian,
/// in the order of the sorted, unique ids as `chunk_ids` holds them; `None` when the two
/// lists do not match.
fn sorted_lens(chunks: &[ChunkId], lens: &[u32]) -> Option<Vec<u8>> {
    if chunks.len() != lens.len() {
        return None;
    }
    let mut pairs: Vec<(ChunkId, u32)> = chunks.iter().copied().zip(lens.iter().copied()).collect();
    pairs.sort_unstable_by_key(|a| a.0);
    pairs.dedup_by(|a, b| a.0 == b.0);
    Some(
        pairs
            .iter()
            .flat_map(|(_, len)| len.to_le_bytes())
            .collect(),
    )
}

/// A stored pack (its row; the wire form is [`cloudkeep_api::PackInfo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRow {
    /// Its id (hex BLAKE3 of its bytes).
    pub id: String,
    /// Its length.
    pub bytes: i64,
    /// The SP's check found its bytes changed: still readable (its intact blobs can be
    /// salvaged), but its chunks no longer count as stored.
    pub damaged: bool,
}

/// Most objects of one kind a quota may hold: every kind is capped, so no tenant can fill
/// the gateway's database or file system with tiny objects.
pub fn object_cap(kind: &str) -> i64 {
    match kind {
        "keyring" => 1,
        "locks" => 64,
        "packs" => 1_000_000,
        _ => 100_000, // index files, chunk sets, restore points
    }
}

/// A stored restore point (its row; the wire form is [`cloudkeep_api::PointInfo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointRow {
    /// Its name (hex BLAKE3 of the point file).
    pub name: String,
    /// Its time, ns since the epoch (from the point file's clear part).
    pub time_ns: i64,
    /// Its chunk set.
    pub set_name: String,
    /// Size of the point file.
    pub bytes: i64,
    /// When it was stored, ms since the epoch.
    pub created_ms: i64,
    /// When the tenant deleted it (it is in the recycle bin), ms since the epoch.
    pub deleted_ms: Option<i64>,
}

impl From<PackRow> for cloudkeep_api::PackInfo {
    fn from(r: PackRow) -> Self {
        Self {
            id: r.id,
            bytes: r.bytes,
            damaged: r.damaged,
        }
    }
}

impl From<PointRow> for cloudkeep_api::PointInfo {
    fn from(r: PointRow) -> Self {
        Self {
            name: r.name,
            time_ns: r.time_ns,
            set_name: r.set_name,
            bytes: r.bytes,
            created_ms: r.created_ms,
            deleted_ms: r.deleted_ms,
        }
    }
}

impl Db {
    /// Records a stored pack and the chunk ids it carries (idempotent), with their stored
    /// lengths when the client declared them, ending the reservation its upload held.
    pub async fn add_pack(
        &self,
        quota: i64,
        id: &str,
        bytes: i64,
        (chunks, lens): (&[ChunkId], Option<&[u32]>),
        reservation: Option<&str>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        if let Some(reservation) = reservation {
            super::reservations::settle(&mut tx, reservation, quota, bytes).await?;
        }
        sqlx::query(
            "INSERT INTO packs (quota_id, id, bytes, created_ms, chunk_lens) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (quota_id, id) DO NOTHING",
        )
        .bind(quota)
        .bind(id)
        .bind(bytes)
        .bind(now_ms())
        .bind(lens.and_then(|lens| sorted_lens(chunks, lens)))
        .execute(&mut *tx)
        .await?;
        let pk: i64 = sqlx::query("SELECT pk FROM packs WHERE quota_id = $1 AND id = $2")
            .bind(quota)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        // Sorted ids land in the clustered key in order: each page is visited once.
        let mut sorted = chunks.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for batch in sorted.chunks(ID_BATCH) {
            let sql = format!(
                "{} INSERT INTO chunk_ids (quota_id, id, pack) \
                 SELECT $1, substr($4, CAST(i * 32 + 1 AS INTEGER), 32), $2 FROM ids WHERE true \
                 ON CONFLICT (quota_id, id, pack) DO NOTHING",
                ids_cte(3)
            );
            sqlx::query(&sql)
                .bind(quota)
                .bind(pk)
                .bind(batch.len() as i64)
                .bind(packed(batch))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether a point in the quota (live or in the recycle bin) names chunk set `set`: its
    /// chunks were all checked present when that point was committed, and stay stored while
    /// a point names them.
    pub async fn set_committed(&self, quota: i64, set: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query("SELECT 1 FROM points WHERE quota_id = $1 AND set_name = $2 LIMIT 1")
                .bind(quota)
                .bind(set)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }

    /// The size of a stored pack, if `quota` has one named `id`.
    pub async fn pack_size(&self, quota: i64, id: &str) -> Result<Option<u64>, DbError> {
        let row = sqlx::query(
            "SELECT bytes FROM packs WHERE quota_id = $1 AND id = $2 AND retired_ms IS NULL",
        )
        .bind(quota)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .map(|bytes| u64::try_from(bytes).unwrap_or(0)))
    }

    /// Every live pack of a quota (not the retired ones, which the tenant no longer sees).
    pub async fn packs(&self, quota: i64) -> Result<Vec<PackRow>, DbError> {
        Ok(self
            .packs_with_retired(quota)
            .await?
            .into_iter()
            .filter_map(|(row, retired)| (!retired).then_some(row))
            .collect())
    }

    /// Every pack of a quota, each with whether it is retired (kept for insider protection):
    /// what the storage must hold.
    pub async fn packs_with_retired(&self, quota: i64) -> Result<Vec<(PackRow, bool)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, bytes, damaged_ms, retired_ms FROM packs WHERE quota_id = $1 ORDER BY id",
        )
        .bind(quota)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    PackRow {
                        id: r.try_get(0)?,
                        bytes: r.try_get(1)?,
                        damaged: r.try_get::<Option<i64>, _>(2)?.is_some(),
                    },
                    r.try_get::<Option<i64>, _>(3)?.is_some(),
                ))
            })
            .collect()
    }

    /// How many objects of `kind` (or packs, for `"packs"`) a quota holds.
    pub async fn object_count(&self, quota: i64, kind: &str) -> Result<i64, DbError> {
        let query = if kind == "packs" {
            sqlx::query("SELECT COUNT(*) FROM packs WHERE quota_id = $1").bind(quota)
        } else {
            sqlx::query("SELECT COUNT(*) FROM objects WHERE quota_id = $1 AND kind = $2")
                .bind(quota)
                .bind(kind)
        };
        Ok(query.fetch_one(self.pool()).await?.try_get(0)?)
    }

    /// Forgets a pack the storage lost (or whose bytes changed and were set aside): its row,
    /// its chunk ids (so they count as absent and the next backup sends them again), and its
    /// bytes in the quota. Returns its size, `None` when there was no such pack.
    pub async fn forget_pack(&self, quota: i64, id: &str) -> Result<Option<i64>, DbError> {
        let mut tx = self.pool().begin().await?;
        let row =
            sqlx::query("DELETE FROM packs WHERE quota_id = $1 AND id = $2 RETURNING pk, bytes")
                .bind(quota)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (pk, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query("DELETE FROM chunk_ids WHERE pack = $1")
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        super::tenants::uncharge(&mut tx, quota, bytes).await?;
        tx.commit().await?;
        Ok(Some(bytes))
    }

    /// Marks a stored pack damaged (its bytes no longer match its id): it stays readable,
    /// but its chunks count as absent until the tenant salvages and replaces them.
    pub async fn mark_damaged(&self, quota: i64, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE packs SET damaged_ms = $1 WHERE quota_id = $2 AND id = $3 AND damaged_ms IS NULL RETURNING pk",
        )
        .bind(now_ms())
        .bind(quota)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM chunk_ids WHERE pack = $1")
            .bind(row.try_get::<i64, _>(0)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// For each id, whether some stored pack of the quota carries it.
    pub async fn chunks_present(&self, quota: i64, ids: &[ChunkId]) -> Result<Vec<bool>, DbError> {
        let mut present = vec![true; ids.len()];
        for (n, batch) in ids.chunks(ID_BATCH).enumerate() {
            let sql = format!(
                "{} SELECT i FROM ids WHERE NOT EXISTS \
                 (SELECT 1 FROM chunk_ids c JOIN packs p ON p.pk = c.pack \
                  WHERE c.quota_id = $1 AND c.id = substr($3, CAST(i * 32 + 1 AS INTEGER), 32) AND p.retired_ms IS NULL)",
                ids_cte(2)
            );
            let rows = sqlx::query(&sql)
                .bind(quota)
                .bind(batch.len() as i64)
                .bind(packed(batch))
                .fetch_all(self.pool())
                .await?;
            for row in rows {
                let i: i64 = row.try_get(0)?;
                if let Some(flag) = usize::try_from(i)
                    .ok()
                    .and_then(|i| present.get_mut(n * ID_BATCH + i))
                {
                    *flag = false;
                }
            }
        }
        Ok(present)
    }

    /// Stores or replaces the record of a small object written under `task` (kept for locks),
    /// ending the reservation of `reserved` bytes its write held; returns the size it
    /// replaced.
    pub async fn put_object(
        &self,
        quota: i64,
        (kind, name): (&str, &str),
        bytes: i64,
        task: Option<&str>,
        reservation: Option<(&str, i64)>,
    ) -> Result<Option<i64>, DbError> {
        let old = self.object_size(quota, kind, name).await?;
        let mut tx = self.pool().begin().await?;
        if let Some((reservation, reserved)) = reservation {
            super::reservations::settle(&mut tx, reservation, quota, reserved).await?;
        }
        sqlx::query(
            "INSERT INTO objects (quota_id, kind, name, bytes, task_id) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (quota_id, kind, name) DO UPDATE SET bytes = excluded.bytes, task_id = excluded.task_id, retired_ms = NULL, locked_until_ms = NULL",
        )
        .bind(quota)
        .bind(kind)
        .bind(name)
        .bind(bytes)
        .bind(task)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Lock objects whose task has ended or expired (their process is gone): (name, size).
    pub async fn stale_locks(&self, quota: i64) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT name, bytes FROM objects o WHERE o.quota_id = $1 AND o.kind = 'locks' AND NOT EXISTS \
             (SELECT 1 FROM tasks t WHERE t.id = o.task_id AND t.expires_ms > $2)",
        )
        .bind(quota)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The size of a small object, when it exists.
    pub async fn object_size(
        &self,
        quota: i64,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>, DbError> {
        let row = sqlx::query(
            "SELECT bytes FROM objects WHERE quota_id = $1 AND kind = $2 AND name = $3",
        )
        .bind(quota)
        .bind(kind)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Names of a quota's objects of one kind, sorted.
    pub async fn objects(&self, quota: i64, kind: &str) -> Result<Vec<String>, DbError> {
        let rows =
            sqlx::query("SELECT name FROM objects WHERE quota_id = $1 AND kind = $2 AND retired_ms IS NULL ORDER BY name")
                .bind(quota)
                .bind(kind)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Removes the record of a small object; returns its size.
    pub async fn delete_object(
        &self,
        quota: i64,
        kind: &str,
        name: &str,
    ) -> Result<Option<i64>, DbError> {
        let old = self.object_size(quota, kind, name).await?;
        sqlx::query("DELETE FROM objects WHERE quota_id = $1 AND kind = $2 AND name = $3")
            .bind(quota)
            .bind(kind)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(old)
    }

    /// Records a committed restore point, ending the reservation its write held.
    pub async fn add_point(
        &self,
        quota: i64,
        name: &str,
        time_ns: i64,
        set: &str,
        bytes: i64,
        reservation: Option<&str>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        if let Some(reservation) = reservation {
            super::reservations::settle(&mut tx, reservation, quota, bytes).await?;
        }
        sqlx::query(
            "INSERT INTO points (quota_id, name, time_ns, set_name, bytes, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(quota)
        .bind(name)
        .bind(time_ns)
        .bind(set)
        .bind(bytes)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(conflict(format!("restore point {name}")))?;
        tx.commit().await?;
        Ok(())
    }

    /// A quota's restore points, oldest first: the live ones, or (with `recycled`) only those
    /// in the recycle bin.
    pub async fn points(&self, quota: i64, recycled: bool) -> Result<Vec<PointRow>, DbError> {
        let sql = format!(
            "SELECT name, time_ns, set_name, bytes, created_ms, deleted_ms FROM points WHERE quota_id = $1 AND deleted_ms IS {} NULL ORDER BY time_ns, name",
            if recycled { "NOT" } else { "" }
        );
        let rows = sqlx::query(&sql).bind(quota).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(PointRow {
                    name: r.try_get(0)?,
                    time_ns: r.try_get(1)?,
                    set_name: r.try_get(2)?,
                    bytes: r.try_get(3)?,
                    created_ms: r.try_get(4)?,
                    deleted_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Moves a live point into the recycle bin; false when there is no such live point.
    pub async fn recycle_point(&self, quota: i64, name: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE points SET deleted_ms = $1 WHERE quota_id = $2 AND name = $3 AND deleted_ms IS NULL",
        )
        .bind(now_ms())
        .bind(quota)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Brings a point back from the recycle bin.
    pub async fn restore_point(&self, quota: i64, name: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE points SET deleted_ms = NULL WHERE quota_id = $1 AND name = $2 AND deleted_ms IS NOT NULL",
        )
        .bind(quota)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a point's row for good; returns its size.
    pub async fn purge_point(&self, quota: i64, name: &str) -> Result<Option<i64>, DbError> {
        let row =
            sqlx::query("DELETE FROM points WHERE quota_id = $1 AND name = $2 RETURNING bytes")
                .bind(quota)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Every point in a recycle bin: (quota id, point), oldest deletion first.
    pub async fn recycle_bin(&self) -> Result<Vec<(i64, PointRow)>, DbError> {
        let rows = sqlx::query(
            "SELECT quota_id, name, time_ns, set_name, bytes, created_ms, deleted_ms FROM points WHERE deleted_ms IS NOT NULL ORDER BY deleted_ms",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    PointRow {
                        name: r.try_get(1)?,
                        time_ns: r.try_get(2)?,
                        set_name: r.try_get(3)?,
                        bytes: r.try_get(4)?,
                        created_ms: r.try_get(5)?,
                        deleted_ms: r.try_get(6)?,
                    },
                ))
            })
            .collect()
    }

    /// How many restore points a quota holds, live and in the recycle bin.
    pub async fn object_count_points(&self, quota: i64) -> Result<i64, DbError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM points WHERE quota_id = $1")
                .bind(quota)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    /// How many live restore points a quota holds.
    pub async fn point_count(&self, quota: i64) -> Result<i64, DbError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM points WHERE quota_id = $1 AND deleted_ms IS NULL")
                .bind(quota)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    /// Moves bytes of a quota between its used and recycle-bin counters (positive: into the
    /// recycle bin); a shared subtenant's tenant quota moves with it.
    pub async fn shift_to_recycle(&self, quota: i64, bytes: i64) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let mut rows = vec![quota];
        sqlx::query("UPDATE quotas SET used_bytes = used_bytes WHERE id = $1")
            .bind(quota)
            .execute(&mut *tx)
            .await?;
        rows.extend(super::tenants::shared_parent(&mut tx, quota).await?);
        for row in rows {
            sqlx::query(
                "UPDATE quotas SET used_bytes = CASE WHEN used_bytes >= $1 THEN used_bytes - $1 ELSE 0 END, \
                 recycle_bytes = CASE WHEN recycle_bytes + $1 >= 0 THEN recycle_bytes + $1 ELSE 0 END WHERE id = $2",
            )
            .bind(bytes)
            .bind(row)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets bytes purged from a quota's recycle bin (and from a shared subtenant's
    /// tenant's).
    pub async fn drop_recycled(&self, quota: i64, bytes: i64) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE quotas SET recycle_bytes = recycle_bytes WHERE id = $1")
            .bind(quota)
            .execute(&mut *tx)
            .await?;
        let mut rows = vec![quota];
        rows.extend(super::tenants::shared_parent(&mut tx, quota).await?);
        for row in rows {
            sqlx::query(
                "UPDATE quotas SET recycle_bytes = CASE WHEN recycle_bytes >= $1 THEN recycle_bytes - $1 ELSE 0 END WHERE id = $2",
            )
            .bind(bytes)
            .bind(row)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
