//! The gateway crate's integration tests, one binary: a real gateway in-process (real TLS on
//! loopback) reached through the real client — the SP database on SQLite and PostgreSQL, the
//! tenant API, the abuse suite, and the storage conformance suite every pack store passes.

mod abuse;
mod backends;
mod scaleout;
mod store;
mod support;
mod tenant_api;
