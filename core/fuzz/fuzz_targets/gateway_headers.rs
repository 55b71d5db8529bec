//! Fuzz target: the headers the gateway reads itself — a pack read's `Range`, a pack upload's
//! `Content-Length` and `x-cloudkeep-chunks`, and the size limits on all headers. The input is
//! split at newlines into header values; whatever is accepted must be within bounds.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use cloudkeep_gateway::{packread, server, tenant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == b'\n');
    let mut headers = HeaderMap::new();
    let names = [
        header::RANGE,
        header::CONTENT_LENGTH,
        header::HeaderName::from_static(cloudkeep_api::CHUNKS_HEADER),
        header::AUTHORIZATION,
    ];
    for name in names {
        if let Some(Ok(value)) = parts.next().map(HeaderValue::from_bytes) {
            headers.insert(name, value);
        }
    }
    for (n, rest) in parts.enumerate().take(200) {
        if let Ok(value) = HeaderValue::from_bytes(rest) {
            headers.append(
                header::HeaderName::from_bytes(format!("x-extra-{n}").as_bytes()).expect("a valid name"),
                value,
            );
        }
    }
    for len in [0u64, 1, 4096, cloudkeep_repo::pack::MAX_PACK_LEN] {
        if let Ok(Some((offset, want))) = packread::parse_range(&headers, len) {
            assert!(want >= 1 && offset.checked_add(want).is_some_and(|end| end <= len));
        }
    }
    if let Ok((ids, pack)) = tenant::upload_lengths(&headers) {
        assert!(ids % 32 == 0 && pack <= cloudkeep_repo::pack::MAX_PACK_LEN && pack > 0);
    }
    if server::check_headers(&headers).is_ok() {
        assert!(headers.len() <= server::MAX_HEADERS);
    }
});
