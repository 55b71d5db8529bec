//! The keyring a tenant stores, as the gateway accepts it: key material only grows. A new
//! keyring must name the same repository and key as the stored one (a tenant, or whoever has
//! its account's password, can never swap in another key and make every point unreadable),
//! and under insider protection every slot it drops or changes is kept, as a retired slot
//! that still unlocks, until the protection window ends ([`cloudkeep_repo::crypto::Keyring::merged_over`]).
//! The gateway reads only the keyring's clear structure; the slots stay sealed.

use super::error::ApiError;
use crate::GatewayState;
use crate::session::{TenantSession, blocking, protection_days};
use crate::storage::Area;
use cloudkeep_api::{ErrorCode, Quota};
use cloudkeep_repo::backend::{MetaKind, StoreError};
use cloudkeep_repo::crypto::Keyring;

/// The bytes to store for a keyring `body` the tenant sent (already checked to parse), given
/// what the quota holds now.
pub(super) async fn accept(
    state: &GatewayState,
    session: &TenantSession,
    quota: &Quota,
    store: &Area,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let parse = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| Keyring::from_json(text).ok())
    };
    let new = parse(body).ok_or_else(|| ApiError::bad_request("the keyring is not valid"))?;
    let reader = store.clone();
    let old = match blocking(
        move || match reader.get_meta(MetaKind::Keyring, "keyring") {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoreError::NotFoundMeta { .. }) => Ok(None),
            Err(e) => Err(e),
        },
    )
    .await?
    {
        Some(bytes) => Some(parse(&bytes).ok_or_else(|| {
            ApiError::internal(format!(
                "the stored keyring of quota {} does not parse",
                quota.id
            ))
        })?),
        None => None,
    };
    let Some(old) = old else {
        // The first keyring: nothing to keep yet, and no retired slots to plant.
        let mut first = new;
        first.retired.clear();
        return Ok(first.to_json().into_bytes());
    };
    let merged = new
        .merged_over(&old, protection_days(session), chrono::Utc::now())
        .map_err(|e| ApiError::new(ErrorCode::Conflict, format!("keyring refused: {e}")))?;
    let dropped = old
        .slots
        .iter()
        .filter(|s| !merged.slots.contains(s))
        .count();
    if dropped > 0 {
        tracing::info!(
            account = %session.tenant.login,
            quota = quota.id,
            dropped,
            kept = merged.retired.len(),
            "key slots removed from a keyring"
        );
        state
            .db
            .audit(
                &session.tenant.login,
                "keyring.slots_removed",
                &quota.friendly_name,
                &format!(
                    "{dropped} removed, {} kept under insider protection",
                    merged.retired.len()
                ),
            )
            .await?;
    }
    Ok(merged.to_json().into_bytes())
}
