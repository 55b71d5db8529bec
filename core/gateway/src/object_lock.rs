//! Immutable repositories: on a bucket with S3 Object Lock, the gateway keeps every pack,
//! small object and restore point a tenant's points need locked (WORM) for the tenant's
//! insider-protection window, so that not even someone holding the bucket's credentials — a
//! rogue operator, an attacker on the gateway's machine — can destroy a point inside it.
//!
//! How: the window is the account's insider-protection days, or the bucket's default
//! retention if longer. Whatever is unlocked, or locked until less than a window from now,
//! is locked until one and a half windows from now; so at any moment everything a live
//! point needs stays locked at least a window ahead, and the store is asked again for each
//! object only every half window. A restore point in the recycle bin, and packs and objects
//! retired by compaction, are kept locked as long as insider protection keeps them. Locks
//! are extended right after each commit (a new point is locked at once) and by the
//! gateway's background pass; `locked_until_ms` in the database says what was asked.
//!
//! Invariant: a lock is only ever set or extended, never shortened (the store refuses that
//! in compliance mode anyway); a failed request leaves the row as it was, to be asked again.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use crate::GatewayState;
use crate::error::ApiError;
use crate::session::blocking;
use crate::storage::Lockable;
use crate::store::now_ms;
use crate::store::object_lock::LockItem;
use cloudkeep_api::{CloudRepo, ObjectLock, Quota};
use cloudkeep_repo::backend::MetaKind;
use cloudkeep_repo::pack::PackId;

const DAY_MS: i64 = 86_400_000;

/// Things asked of the database, and locked, per round.
const BATCH: i64 = 512;

/// The window locks are kept for: the account's insider protection, or the bucket's default
/// retention if longer; `None` when neither asks for any.
pub fn window_days(lock: &ObjectLock, keep_days: i64) -> Option<i64> {
    let ObjectLock::On { default_days, .. } = lock else {
        return None;
    };
    let days = keep_days.max(i64::from(default_days.unwrap_or(0)));
    (days > 0).then_some(days)
}

/// Asks repository `repo`'s bucket about object lock and records the answer when it
/// changed; `None` for a folder repository.
pub async fn refresh(
    state: &GatewayState,
    repo: &CloudRepo,
) -> Result<Option<ObjectLock>, ApiError> {
    let Some(target) = &repo.s3 else {
        return Ok(None);
    };
    let bucket = state.bucket(&repo.name, target).await?;
    let lock = blocking(move || Ok(bucket.object_lock()))
        .await?
        .map_err(ApiError::internal)?;
    if repo.object_lock.as_ref() != Some(&lock) {
        state.db.set_repo_lock(&repo.name, &lock).await?;
        state.stores.forget_repo(&repo.name).await;
        tracing::info!(repo = %repo.name, "object lock: {}", lock.describe());
    }
    Ok(Some(lock))
}

/// Locks what quota `quota` holds that is unlocked or whose lock ends inside the window;
/// returns how many things the store locked.
pub async fn keep_quota(
    state: &GatewayState,
    quota: &Quota,
    lock: &ObjectLock,
    keep_days: i64,
) -> Result<u64, ApiError> {
    let (Some(days), ObjectLock::On { mode, .. }) = (window_days(lock, keep_days), lock) else {
        return Ok(0);
    };
    let mode = *mode;
    let store = state.store_for(quota).await?;
    let mut locked = 0u64;
    loop {
        let now = now_ms();
        let window = days.saturating_mul(DAY_MS);
        let until_ms = now.saturating_add(window.saturating_add(window / 2));
        let items = state
            .db
            .to_lock(quota.id, now.saturating_add(window), now - window, BATCH)
            .await?;
        if items.is_empty() {
            return Ok(locked);
        }
        let until = Utc
            .timestamp_millis_opt(until_ms)
            .single()
            .ok_or_else(|| ApiError::internal("a lock date out of range"))?;
        let mut batch: Vec<(Option<PackId>, MetaKind, String)> = Vec::with_capacity(items.len());
        for item in &items {
            batch.push(match item {
                LockItem::Pack(id) => {
                    let pack = PackId::from_hex(id).ok_or_else(|| {
                        ApiError::internal(format!(
                            "the database holds a pack id \"{id}\" that is not one"
                        ))
                    })?;
                    (Some(pack), MetaKind::Point, String::new())
                }
                LockItem::Object(kind, name) => {
                    let kind = crate::storage::meta_kind(kind).ok_or_else(|| {
                        ApiError::internal(format!(
                            "the database holds an object kind \"{kind}\" that is not one"
                        ))
                    })?;
                    (None, kind, name.clone())
                }
                LockItem::Point(name) => (None, MetaKind::Point, name.clone()),
            });
        }
        // Each object on its own: one the store refuses never keeps the rest unlocked.
        let area = store.clone();
        let outcomes = blocking(move || {
            Ok(batch
                .iter()
                .map(|(pack, kind, name)| {
                    let what = match pack {
                        Some(id) => Lockable::Pack(id),
                        None => Lockable::Meta(*kind, name),
                    };
                    area.lock(what, mode, until)
                })
                .collect::<Vec<_>>())
        })
        .await?;
        let mut done_items = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes) {
            match outcome {
                Ok(was_there) => {
                    locked += u64::from(was_there);
                    done_items.push(item.clone());
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        state
            .db
            .mark_locked(quota.id, &done_items, until_ms)
            .await?;
        if let Some(first) = failures.first() {
            // Those are asked again in the next pass, after everything else was locked.
            return Err(ApiError::internal(format!(
                "{} of {} objects of quota {} could not be locked ({first}); the next pass tries them again",
                failures.len(),
                items.len(),
                quota.id
            )));
        }
        if (items.len() as i64) < BATCH {
            return Ok(locked);
        }
    }
}

/// After a commit into quota `quota`: locks the new point and what it needs, in the
/// background (the tenant's run is not held up; the background pass catches a failure).
pub fn after_commit(state: Arc<GatewayState>, quota: Quota, keep_days: i64) {
    tokio::spawn(async move {
        let result = async {
            let repo = state.db.repo_by_name(&quota.repo_name).await?;
            match repo.object_lock {
                Some(lock) if lock.immutable() => {
                    keep_quota(&state, &quota, &lock, keep_days).await
                }
                _ => Ok(0),
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(
                quota = quota.id,
                "locking a new restore point failed (tried again later): {e}"
            );
        }
    });
}

/// The background pass: asks every object-storage repository about object lock again and,
/// where it is on, keeps every quota's locks; returns how many things were locked.
pub async fn keep_all(state: &GatewayState) -> Result<u64, ApiError> {
    let mut locks = std::collections::HashMap::new();
    for repo in state.db.repos().await? {
        match refresh(state, &repo).await {
            Ok(Some(lock)) if lock.immutable() => {
                locks.insert(repo.name.clone(), lock);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(repo = %repo.name, "object lock not asked: {e}"),
        }
    }
    if locks.is_empty() {
        return Ok(0);
    }
    // One quota the store refuses never leaves the others unlocked.
    let mut locked = 0;
    for tenant in state.db.tenants().await? {
        let keep = crate::session::account_keep_days(state, &tenant).await?;
        for quota in state.db.quotas_of(tenant.id).await? {
            if let Some(lock) = locks.get(&quota.repo_name) {
                match keep_quota(state, &quota, lock, keep).await {
                    Ok(n) => locked += n,
                    Err(e) => tracing::warn!(quota = quota.id, "object lock: {e}"),
                }
            }
        }
    }
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudkeep_api::LockMode;

    #[test]
    fn the_window_is_the_longer_of_insider_protection_and_the_bucket_default() {
        let on = |default_days| ObjectLock::On {
            mode: LockMode::Compliance,
            default_days,
        };
        assert_eq!(window_days(&on(None), 14), Some(14));
        assert_eq!(window_days(&on(Some(30)), 14), Some(30));
        assert_eq!(window_days(&on(Some(7)), 14), Some(14));
        assert_eq!(window_days(&on(None), 0), None, "nothing asks for a lock");
        assert_eq!(window_days(&on(Some(3)), 0), Some(3));
        assert_eq!(window_days(&ObjectLock::Off, 30), None);
        assert_eq!(window_days(&ObjectLock::Unsupported, 30), None);
    }
}
