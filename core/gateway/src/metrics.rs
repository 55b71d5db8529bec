//! What a gateway tells its operators, in the Prometheus (OpenMetrics) text format: requests
//! by route, method and status with their latency, errors by code, bytes in and out per
//! tenant, quota use per tenant and repository (read from the database at each scrape), open
//! connections, and what space reclamation and compaction did. Served on the separate admin
//! listener (`/metrics`, with `/healthz` for load balancers) by `server`.
//!
//! Invariant: labels carry only names an SP already sees (routes, tenant logins, repository
//! names, error codes) — never a token, a credential or a file name of a tenant.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A request's route (the pattern, not the path: no ids), method and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern, e.g. `/v1/repos/{repo}/packs/{id}`.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// A route and method (latency).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern.
    pub route: String,
    /// The HTTP method.
    pub method: String,
}

/// A tenant (or subtenant) login.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    /// The login.
    pub tenant: String,
}

/// A quota: a tenant on a cloud repository.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    /// The login.
    pub tenant: String,
    /// The cloud repository.
    pub repo: String,
}

/// A stable error code (`quota_exceeded`, `not_found`, …).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The code.
    pub code: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    errors: Family<ErrorLabels, Counter>,
    bytes_in: Family<TenantLabels, Counter>,
    bytes_out: Family<TenantLabels, Counter>,
    quota_used: Family<QuotaLabels, Gauge>,
    quota_limit: Family<QuotaLabels, Gauge>,
    connections: Gauge<i64, AtomicI64>,
    space_passes: Counter,
    removed_bytes: Counter,
    retired_bytes: Counter,
    compactions: Counter,
    packs_dropped: Counter,
    /// Every request answered, for the load a heartbeat reports.
    total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cloudkeep_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        let errors = Family::<ErrorLabels, Counter>::default();
        let bytes_in = Family::<TenantLabels, Counter>::default();
        let bytes_out = Family::<TenantLabels, Counter>::default();
        let quota_used = Family::<QuotaLabels, Gauge>::default();
        let quota_limit = Family::<QuotaLabels, Gauge>::default();
        let connections = Gauge::<i64, AtomicI64>::default();
        let (space_passes, removed_bytes, retired_bytes, compactions, packs_dropped) = (
            Counter::default(),
            Counter::default(),
            Counter::default(),
            Counter::default(),
            Counter::default(),
        );
        registry.register(
            "requests",
            "Requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "request_seconds",
            "Time to answer a request (to the first byte of a streamed body), by route and method",
            latency.clone(),
        );
        registry.register(
            "errors",
            "Requests refused or failed, by error code",
            errors.clone(),
        );
        registry.register(
            "tenant_received_bytes",
            "Bytes a tenant uploaded (packs and objects)",
            bytes_in.clone(),
        );
        registry.register(
            "tenant_sent_bytes",
            "Bytes of packs a tenant read",
            bytes_out.clone(),
        );
        registry.register(
            "quota_used_bytes",
            "Bytes a tenant stores on a cloud repository",
            quota_used.clone(),
        );
        registry.register(
            "quota_limit_bytes",
            "A tenant's quota on a cloud repository (-1: shares its tenant's)",
            quota_limit.clone(),
        );
        registry.register("connections", "Connections open now", connections.clone());
        registry.register(
            "space_passes",
            "Space reclamation passes run",
            space_passes.clone(),
        );
        registry.register(
            "space_removed_bytes",
            "Bytes of packs no restore point needs, removed by space reclamation",
            removed_bytes.clone(),
        );
        registry.register(
            "space_retired_bytes",
            "Bytes of packs retired under insider protection by space reclamation",
            retired_bytes.clone(),
        );
        registry.register(
            "compactions",
            "Tenant compactions that dropped packs",
            compactions.clone(),
        );
        registry.register(
            "compaction_dropped_packs",
            "Packs tenants' compactions dropped",
            packs_dropped.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            errors,
            bytes_in,
            bytes_out,
            quota_used,
            quota_limit,
            connections,
            space_passes,
            removed_bytes,
            retired_bytes,
            compactions,
            packs_dropped,
            total: AtomicU64::new(0),
        }
    }

    /// Requests answered since the gateway started.
    pub fn requests_total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }

    /// A request answered.
    pub fn request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        took: Duration,
        error: Option<&str>,
    ) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
        if let Some(code) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    code: code.to_owned(),
                })
                .inc();
        }
    }

    /// Bytes a tenant sent up.
    pub fn received(&self, tenant: &str, bytes: u64) {
        self.bytes_in
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc_by(bytes);
    }

    /// Bytes a tenant read.
    pub fn sent(&self, tenant: &str, bytes: u64) {
        self.bytes_out
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc_by(bytes);
    }

    /// A connection opened (`1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// A space pass and what it dropped.
    pub fn space_pass(&self, removed: i64, retired: i64) {
        self.space_passes.inc();
        self.removed_bytes.inc_by(removed.max(0) as u64);
        self.retired_bytes.inc_by(retired.max(0) as u64);
    }

    /// A tenant's compaction dropped `packs` packs.
    pub fn compaction(&self, packs: usize) {
        self.compactions.inc();
        self.packs_dropped.inc_by(packs as u64);
    }

    /// The text a scrape gets, with the quotas as they are now (`(tenant, repo, used,
    /// limit)`; quotas no longer listed disappear).
    pub fn render(&self, quotas: &[(String, String, i64, i64)]) -> String {
        self.quota_used.clear();
        self.quota_limit.clear();
        for (tenant, repo, used, limit) in quotas {
            let labels = QuotaLabels {
                tenant: tenant.clone(),
                repo: repo.clone(),
            };
            self.quota_used.get_or_create(&labels).set(*used);
            self.quota_limit.get_or_create(&labels).set(*limit);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
