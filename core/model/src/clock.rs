//! The clock: one way to read "now" as stored everywhere (milliseconds since the epoch, UTC).

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
