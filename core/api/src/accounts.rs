//! The SP's accounts as they cross the wire: tenants and their settings, quotas, cloud
//! repositories, registered gateways and the audit log. The gateway's database reads its
//! columns into these (`store::tenants` and its neighbours own the tables); no database row
//! type is ever serialised.

use cloudkeep_model::units::Limit;
use serde::{Deserialize, Serialize};

/// What an SP admin (or, for subtenants, the tenant) sets on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Free text for the SP.
    pub description: String,
    /// Disabled accounts cannot log in; their sessions end.
    pub enabled: bool,
    /// After this moment (ms since the epoch) the lease has expired: logins and requests are
    /// refused. `None`: no expiry.
    pub lease_until_ms: Option<i64>,
    /// Concurrent tasks allowed; 0: no limit.
    pub max_tasks: i64,
    /// Bytes per second over all the tenant's transfers; 0: no limit.
    pub bandwidth_bps: i64,
    /// Insider protection: deleted restore points stay this many days in the recycle bin.
    pub keep_deleted_days: i64,
}

/// A tenant or subtenant account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Row id.
    pub id: i64,
    /// The tenant a subtenant belongs to; `None` for a tenant.
    pub parent: Option<i64>,
    /// Login name: `tenant` or `tenant/subtenant`.
    pub login: String,
    /// Its own name (the part after `/` for a subtenant).
    pub name: String,
    /// Settings.
    pub settings: TenantSettings,
    /// Created by a backup policy.
    pub managed: bool,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last request, ms since the epoch.
    pub last_activity_ms: Option<i64>,
}

/// A quota: how much of a cloud repository a tenant may fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Row id.
    pub id: i64,
    /// The tenant.
    pub tenant_id: i64,
    /// The cloud repository.
    pub repo_id: i64,
    /// The cloud repository's SP-side name.
    pub repo_name: String,
    /// The name the tenant sees.
    pub friendly_name: String,
    /// Bytes allowed; unlimited: a subtenant sharing its tenant's quota.
    pub quota_bytes: Limit,
    /// Bytes stored (after dedup and compression).
    pub used_bytes: i64,
    /// Bytes in the recycle bin (not counted against the quota).
    pub recycle_bytes: i64,
    /// Bytes of it given to subtenants as fixed quotas (not usable by the tenant itself).
    #[serde(default)]
    pub carved_bytes: i64,
    /// Bytes the gateway's last space pass found held only by data no restore point (live or
    /// in the recycle bin) references: what a compaction would give back.
    #[serde(default)]
    pub reclaimable_bytes: i64,
    /// Being switched to another cloud repository right now: writes wait a few seconds.
    #[serde(default)]
    pub moving: bool,
}

/// A quota to give a new tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSpec {
    /// Cloud repository name.
    pub repo: String,
    /// Name the tenant sees (default: the repository's name).
    pub friendly_name: Option<String>,
    /// Bytes; unlimited for subtenants only.
    pub bytes: Limit,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            description: String::new(),
            enabled: true,
            lease_until_ms: None,
            max_tasks: 0,
            bandwidth_bps: 0,
            keep_deleted_days: 0,
        }
    }
}

impl Quota {
    /// What is still free for the account itself; unlimited for a subtenant sharing its
    /// tenant's quota (what its tenant has left applies).
    pub fn free(&self) -> Limit {
        match self.quota_bytes {
            Limit::Bytes(n) => {
                let taken = self.used_bytes.max(0) + self.carved_bytes.max(0);
                Limit::Bytes(n.saturating_sub(u64::try_from(taken).unwrap_or(0)))
            }
            Limit::Unlimited => Limit::Unlimited,
        }
    }
}

/// A cloud repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudRepo {
    /// Row id.
    pub id: i64,
    /// Its name (what SP admins use).
    pub name: String,
    /// Backing kind: `folder` or `s3`.
    pub kind: String,
    /// Where: the folder, or `s3://BUCKET/PREFIX at ENDPOINT` for people.
    pub location: String,
    /// The object store of an `s3` repository (never its credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Target>,
    /// What operators call it (empty: its name).
    #[serde(default)]
    pub title: String,
    /// Whether new tenant quotas may be placed on it (taken out of service: existing ones
    /// keep working, no new ones).
    #[serde(default = "in_service_default")]
    pub in_service: bool,
    /// Most bytes of quota it may hand out in all.
    #[serde(default = "capacity_default")]
    pub capacity: Limit,
    /// Whether its object store keeps the data immutable (S3 Object Lock), as the gateway
    /// last found it; `None` for a folder, or not asked yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
}

/// Whether an object store keeps a repository's objects from being changed or deleted
/// (S3 Object Lock, WORM): what makes its restore points immutable even to someone holding
/// the bucket's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ObjectLock {
    /// The store has no object lock (it answers "not implemented": Garage, for one).
    Unsupported,
    /// The bucket was made without object lock (most stores turn it on only when a bucket
    /// is made).
    Off,
    /// On: the gateway locks every pack and object of a point for the tenant's
    /// insider-protection window (or the bucket's default retention, the longer).
    On {
        /// The mode locks are set in.
        mode: LockMode,
        /// The bucket's default retention in days, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_days: Option<u32>,
    },
}

/// How strong an object lock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Nobody, not even the bucket's owner, can shorten or remove the lock.
    Compliance,
    /// Users with a special permission can remove the lock.
    Governance,
}

impl LockMode {
    /// The word S3 uses.
    pub fn s3_name(self) -> &'static str {
        match self {
            Self::Compliance => "COMPLIANCE",
            Self::Governance => "GOVERNANCE",
        }
    }
}

impl ObjectLock {
    /// Whether restore points on it are immutable.
    pub fn immutable(&self) -> bool {
        matches!(self, Self::On { .. })
    }

    /// For people: "immutable (object lock, compliance mode, bucket default 30 days)".
    pub fn describe(&self) -> String {
        match self {
            Self::Unsupported => "not immutable: the object store has no object lock".into(),
            Self::Off => {
                "not immutable: object lock is off for this bucket (turn it on when the bucket is made)".into()
            }
            Self::On { mode, default_days } => {
                let mode = match mode {
                    LockMode::Compliance => "compliance mode",
                    LockMode::Governance => "governance mode",
                };
                match default_days {
                    Some(days) => {
                        format!("immutable (object lock, {mode}, bucket default {days} days)")
                    }
                    None => format!("immutable (object lock, {mode})"),
                }
            }
        }
    }
}

fn in_service_default() -> bool {
    true
}

fn capacity_default() -> Limit {
    Limit::Unlimited
}

/// Where an object-storage cloud repository keeps its data: an S3-compatible endpoint, a
/// bucket and a key prefix inside it. Credentials travel only in [`S3Access`], once, to the
/// gateway, and are never sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Target {
    /// The endpoint URL (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:3900`).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/`; may be empty).
    #[serde(default)]
    pub prefix: String,
    /// The region the store signs requests for (`us-east-1` when it has none; Garage's is
    /// `garage`).
    pub region: String,
}

impl S3Target {
    /// The location as people read it.
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{} at {}", self.bucket, self.endpoint)
        } else {
            format!("s3://{}/{} at {}", self.bucket, self.prefix, self.endpoint)
        }
    }

    /// Checks the fields, saying what is wrong: an endpoint that is an `http(s)://` URL with
    /// a host, a bucket name as S3 allows, a prefix of plain path segments.
    pub fn check(&self) -> Result<(), String> {
        let rest = self
            .endpoint
            .strip_prefix("https://")
            .or_else(|| self.endpoint.strip_prefix("http://"))
            .ok_or_else(|| {
                format!(
                    "the endpoint \"{}\" is not an http:// or https:// URL (for example https://s3.eu-west-1.amazonaws.com)",
                    self.endpoint
                )
            })?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "the endpoint \"{}\" must be a URL with a host and no path (the bucket is given on its own)",
                self.endpoint
            ));
        }
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && !b.starts_with(['-', '.'])
            && !b.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(format!(
                "\"{b}\" is not a bucket name: 3 to 63 lowercase letters, digits, '-' and '.'"
            ));
        }
        let prefix_ok = self.prefix.is_empty()
            || self.prefix.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
            });
        if !prefix_ok {
            return Err(format!(
                "\"{}\" is not a key prefix: segments of letters, digits, '-', '_' and '.' joined by '/', without a leading or trailing '/'",
                self.prefix
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(format!(
                "\"{}\" is not a region name (us-east-1, eu-west-1, garage)",
                self.region
            ));
        }
        Ok(())
    }
}

/// An object store and the credentials a gateway uses for it: sent once, when an SP admin
/// adds (or tests) an object-storage cloud repository. The secret never appears in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Access {
    /// Where.
    pub target: S3Target,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access")
            .field("target", &self.target)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

/// A registered gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayEntry {
    /// Its id (chosen at `gateway init`).
    pub id: String,
    /// Public address tenants connect to (`host:port`).
    pub address: String,
    /// When it started, ms since the epoch.
    pub started_ms: i64,
    /// Its last heartbeat, ms since the epoch.
    pub heartbeat_ms: i64,
    /// Drained for maintenance: no new sessions (running ones finish).
    #[serde(default)]
    pub draining: bool,
    /// Connections it had open at its last heartbeat.
    #[serde(default)]
    pub connections: i64,
    /// Requests it answered in the minute before its last heartbeat.
    #[serde(default)]
    pub requests_per_min: i64,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// Who (admin name, or `gateway` for automatic actions).
    pub actor: String,
    /// What (`tenant.create`, `repo.add`, `maintenance.on`, …).
    pub action: String,
    /// On what (a tenant or repository name).
    pub target: String,
    /// Details (never secrets).
    pub detail: String,
}

/// How long after a lease ends its tenant may still restore, by default (days).
pub const DEFAULT_LEASE_GRACE_DAYS: u32 = 30;

/// Where an account's lease stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// No end, or not ended yet: everything works.
    Running,
    /// Ended at `ended_ms`: backups are refused; restores, browsing and verify work until
    /// `restore_until_ms`.
    RestoreOnly {
        /// When the lease ended.
        ended_ms: i64,
        /// When restores stop too.
        restore_until_ms: i64,
    },
    /// Ended, and the grace period for restores is over too: the account is refused.
    Over {
        /// When the lease ended.
        ended_ms: i64,
    },
}

impl TenantSettings {
    /// The lease at `now_ms`, with restores allowed `grace_days` after it ends.
    pub fn lease_at(&self, now_ms: i64, grace_days: u32) -> LeaseState {
        match self.lease_until_ms {
            Some(ended_ms) if ended_ms < now_ms => {
                let restore_until_ms = ended_ms.saturating_add(i64::from(grace_days) * 86_400_000);
                if now_ms < restore_until_ms {
                    LeaseState::RestoreOnly {
                        ended_ms,
                        restore_until_ms,
                    }
                } else {
                    LeaseState::Over { ended_ms }
                }
            }
            _ => LeaseState::Running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_then_allows_restores_then_ends() {
        let day = 86_400_000;
        let settings = TenantSettings {
            lease_until_ms: Some(10 * day),
            ..TenantSettings::default()
        };
        assert_eq!(settings.lease_at(9 * day, 30), LeaseState::Running);
        assert_eq!(
            settings.lease_at(11 * day, 30),
            LeaseState::RestoreOnly {
                ended_ms: 10 * day,
                restore_until_ms: 40 * day
            }
        );
        assert_eq!(
            settings.lease_at(41 * day, 30),
            LeaseState::Over { ended_ms: 10 * day }
        );
        assert_eq!(
            settings.lease_at(11 * day, 0),
            LeaseState::Over { ended_ms: 10 * day }
        );
        assert_eq!(
            TenantSettings::default().lease_at(i64::MAX, 0),
            LeaseState::Running
        );
    }
}
