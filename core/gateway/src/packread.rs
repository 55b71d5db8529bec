//! Pack reads for restores, health checks and browsing: one range of one pack
//! (`GET /v1/repos/{repo}/packs/{id}` with `Range`), or many ranges of several packs in one
//! request (`POST /v1/repos/{repo}/reads`), answered as their bytes end to end. A restore asks
//! for a batch of spans at a time, so the per-request work (session, account, quota and pack
//! lookups, a hop to a blocking thread) is paid once per batch rather than once per span.
//!
//! Every range is checked against its pack's stored length before a byte is read; the bytes
//! are paid for from the tenant's bandwidth bucket as they are sent.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::{ApiError, from_rejection};
use crate::GatewayState;
use crate::session::{
    AppState, JsonBody, TenantSession, area_and_pack, blocking, no_repo, pack_id,
};
use crate::store::tenants::MAX_PACKS_PER_QUERY;
use cloudkeep_api::{MAX_READ_BYTES, MAX_READ_RANGES, ReadRequest};
use cloudkeep_repo::pack::PackId;

/// Parses `Range: bytes=START-END` (one range) of a pack of `len` bytes: `(offset, length)`,
/// `None` without a `Range` header. Anything else is a `bad_request` naming the form.
pub fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request("give one byte range: Range: bytes=START-END");
    let spec = value
        .to_str()
        .map_err(|_| bad())?
        .strip_prefix("bytes=")
        .ok_or_else(bad)?;
    let (start, end) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.parse().map_err(|_| bad())?;
    let end: u64 = if end.is_empty() {
        len.saturating_sub(1)
    } else {
        end.parse().map_err(|_| bad())?
    };
    if start > end || end >= len {
        return Err(outside(
            start,
            end.saturating_sub(start).saturating_add(1),
            len,
        ));
    }
    Ok(Some((start, end - start + 1)))
}

fn outside(offset: u64, len: u64, size: u64) -> ApiError {
    ApiError::bad_request(format!(
        "the range {offset}-{} is outside the pack's {size} bytes",
        offset.saturating_add(len).saturating_sub(1)
    ))
}

/// `GET /v1/repos/{repo}/packs/{id}`, the whole pack or one `Range`.
pub(super) async fn read_pack(
    State(state): AppState,
    session: TenantSession,
    Path((repo, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pack = pack_id(&id)?;
    let (_, store, stored) = area_and_pack(&state, &session, &repo, &id).await?;
    let Some(len) = stored else {
        return Err(ApiError::not_found(format!("pack {id} is not stored")));
    };
    let range = parse_range(&headers, len)?;
    let (offset, want) = range.unwrap_or((0, len));
    let bytes = blocking(move || store.read_range(&pack, offset, want)).await?;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = paid_body(&state, &session, status, bytes).await;
    if range.is_some()
        && let Ok(value) = format!("bytes {offset}-{}/{len}", offset + want - 1).parse()
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// `POST /v1/repos/{repo}/reads`: the asked ranges' bytes end to end, all or nothing (a
/// missing pack or a range outside its pack refuses the whole request, naming it).
pub(super) async fn read_ranges(
    State(state): AppState,
    session: TenantSession,
    Path(repo): Path<String>,
    req: JsonBody<ReadRequest>,
) -> Result<Response, ApiError> {
    let req = req.map(|Json(v)| v).map_err(from_rejection)?;
    let ranges = checked_ranges(&req)?;
    let total: u64 = ranges.iter().map(|(_, _, len)| len).sum();
    let mut names: Vec<String> = ranges.iter().map(|(pack, _, _)| pack.to_hex()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_PACKS_PER_QUERY {
        return Err(ApiError::bad_request(format!(
            "a read names at most {MAX_PACKS_PER_QUERY} packs, not {}",
            names.len()
        )));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (quota, sizes) = state
        .db
        .quota_and_packs(session.tenant.id, &repo, &names)
        .await?
        .ok_or_else(|| no_repo(&repo))?;
    for (pack, offset, len) in &ranges {
        let hex = pack.to_hex();
        let size = *sizes
            .get(&hex)
            .ok_or_else(|| ApiError::not_found(format!("pack {hex} is not stored")))?;
        if offset.checked_add(*len).is_none_or(|end| end > size) {
            return Err(outside(*offset, *len, size));
        }
    }
    let store = state.store_for(&quota).await?;
    let bytes = blocking(move || store.read_concat(&ranges, total)).await?;
    Ok(paid_body(&state, &session, StatusCode::OK, bytes).await)
}

/// The request's ranges, parsed and within the limits.
fn checked_ranges(req: &ReadRequest) -> Result<Vec<(PackId, u64, u64)>, ApiError> {
    if req.ranges.is_empty() || req.ranges.len() > MAX_READ_RANGES {
        return Err(ApiError::bad_request(format!(
            "a read asks for 1 to {MAX_READ_RANGES} ranges, not {}",
            req.ranges.len()
        )));
    }
    let mut total = 0u64;
    let mut out = Vec::with_capacity(req.ranges.len());
    for range in &req.ranges {
        if range.len == 0 {
            return Err(ApiError::bad_request(
                "every range of a read has at least one byte",
            ));
        }
        total = total.saturating_add(range.len);
        out.push((pack_id(&range.pack)?, range.offset, range.len));
    }
    if total > MAX_READ_BYTES {
        return Err(ApiError::bad_request(format!(
            "a read answers at most {MAX_READ_BYTES} bytes, not {total}; split it"
        )));
    }
    Ok(out)
}

/// A response carrying `bytes`, sent in pieces each paid for from the tenant's bandwidth
/// bucket when it has a limit.
async fn paid_body(
    state: &Arc<GatewayState>,
    session: &TenantSession,
    status: StatusCode,
    bytes: Vec<u8>,
) -> Response {
    state
        .metrics
        .sent(&session.tenant.login, bytes.len() as u64);
    match state.bucket_for(session).await {
        None => (status, bytes).into_response(),
        Some(bucket) => {
            let pieces: Vec<axum::body::Bytes> = bytes
                .chunks(64 * 1024)
                .map(axum::body::Bytes::copy_from_slice)
                .collect();
            let stream = futures_util::stream::iter(pieces).then(move |piece| {
                let bucket = bucket.clone();
                async move {
                    bucket.take(piece.len()).await;
                    Ok::<_, std::io::Error>(piece)
                }
            });
            (status, Body::from_stream(stream)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudkeep_api::ReadRange;

    fn request(ranges: &[(&str, u64, u64)]) -> ReadRequest {
        ReadRequest {
            ranges: ranges
                .iter()
                .map(|(pack, offset, len)| ReadRange {
                    pack: (*pack).to_owned(),
                    offset: *offset,
                    len: *len,
                })
                .collect(),
        }
    }

    #[test]
    fn reads_outside_the_limits_are_refused_with_the_reason() {
        let pack = "ab".repeat(32);
        let ok = checked_ranges(&request(&[(&pack, 0, 10), (&pack, 20, 5)])).unwrap();
        assert_eq!(ok.len(), 2);
        for (bad, says) in [
            (request(&[]), "1 to 4096 ranges"),
            (request(&[(&pack, 0, 0)]), "at least one byte"),
            (request(&[("xyz", 0, 1)]), "not a pack id"),
            (
                request(&[(&pack, 0, MAX_READ_BYTES), (&pack, 0, 1)]),
                "split it",
            ),
            (request(&[(&pack, u64::MAX, u64::MAX)]), "split it"),
        ] {
            let err = checked_ranges(&bad).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        let many: Vec<(&str, u64, u64)> = (0..=MAX_READ_RANGES as u64)
            .map(|n| (pack.as_str(), n, 1))
            .collect();
        assert!(checked_ranges(&request(&many)).is_err());
    }

    /// Found by the `gateway_headers` fuzz target: a range ending at `u64::MAX` overflowed
    /// while the refusal was worded.
    #[test]
    fn ranges_at_the_edges_of_u64_are_refused_not_panicked() {
        let len = 4096;
        for value in [
            "bytes=0-18446744073709551615",
            "bytes=18446744073709551615-18446744073709551615",
            "bytes=18446744073709551615-",
            "bytes=5-1",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::RANGE, value.parse().unwrap());
            let err = parse_range(&headers, len).unwrap_err();
            assert!(err.to_string().contains("outside"), "{value}: {err}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, "bytes=4000-".parse().unwrap());
        assert_eq!(parse_range(&headers, len).unwrap(), Some((4000, 96)));
    }
}
