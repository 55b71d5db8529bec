//! Wire types of the gateway protocol (HTTPS + JSON under `/v1`, DESIGN §5), shared by the
//! gateway and its clients so that both sides always agree: every request and answer, header
//! and limit. Errors are `{code, message}` with the stable codes of [`ErrorCode`].
//!
//! **Invariant:** this crate depends on serde, chrono and the shared model only; the gateway
//! and the client both depend on it and never on each other.

use cloudkeep_model::units::Limit;
use serde::{Deserialize, Serialize};

pub mod accounts;
pub mod handoff;
pub mod health;
pub mod notify;
pub mod policy;
pub mod replication;

pub use accounts::{
    AuditEntry, CloudRepo, DEFAULT_LEASE_GRACE_DAYS, GatewayEntry, LeaseState, LockMode,
    ObjectLock, Quota, QuotaSpec, S3Access, S3Target, Tenant, TenantSettings,
};

/// Protocol versions this build speaks.
pub const PROTOCOLS: &[u32] = &[1];

/// Default gateway port.
pub const DEFAULT_PORT: u16 = 6180;

/// Stable error codes (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No valid session, or wrong credentials.
    Unauthorized,
    /// Too many failed logins from this address: wait.
    Banned,
    /// The account is disabled.
    AccountDisabled,
    /// The tenant's lease has expired.
    LeaseExpired,
    /// The write does not fit the quota.
    QuotaExceeded,
    /// The tenant runs as many tasks as it may.
    TooManyTasks,
    /// The gateway is in maintenance mode.
    Maintenance,
    /// The repository is busy for a few seconds (its quota is being switched to another
    /// cloud repository): the same request succeeds when sent again shortly.
    Busy,
    /// This gateway is drained for maintenance: it takes no new sessions; another gateway of
    /// the same provider does (clients move on to the next address).
    Draining,
    /// No such object (or not the caller's).
    NotFound,
    /// The object exists, or the request conflicts with its state.
    Conflict,
    /// The request is malformed or out of range.
    BadRequest,
    /// The service provider's storage is full: nothing was stored, earlier points are intact.
    StorageFull,
    /// The cloud host that keeps a replica does not answer (or answered what the gateway
    /// cannot use): nothing changed; the SP must start it.
    HostUnavailable,
    /// The gateway failed; the message says what to check.
    Internal,
}

impl ErrorCode {
    /// The kind of failure a refusal with this code is (`None`: an ordinary failure).
    pub fn kind(self) -> Option<cloudkeep_model::failure::FailureKind> {
        use cloudkeep_model::failure::FailureKind;
        match self {
            Self::Unauthorized | Self::Banned | Self::AccountDisabled => Some(FailureKind::Auth),
            Self::QuotaExceeded | Self::LeaseExpired => Some(FailureKind::Quota),
            _ => None,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

/// `GET /v1/hello` (no login needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always "Cloudkeep".
    pub product: String,
    /// Gateway version.
    pub version: String,
    /// Protocol versions spoken.
    pub protocols: Vec<u32>,
    /// This gateway's id.
    pub gateway_id: String,
    /// Every registered gateway, for failover.
    pub gateways: Vec<GatewayEntry>,
    /// The message when maintenance mode is on.
    pub maintenance: Option<String>,
}

/// `POST /v1/login` and `POST /v1/admin/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Account (`tenant` or `tenant/subtenant` for tenants).
    pub user: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for the `Authorization` header.
    pub token: String,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
}

/// `POST /v1/admin/repos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCloudRepo {
    /// Name.
    pub name: String,
    /// Folder on the gateway's machine (empty for object storage).
    #[serde(default)]
    pub path: String,
    /// Object storage instead of a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<accounts::S3Access>,
}

/// `POST /v1/admin/repos/test`: whether a gateway reaches an object store with these
/// credentials, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageProbe {
    /// Each step tried, in order, with its outcome (`ok`, or what failed and what to do).
    pub steps: Vec<ProbeStep>,
    /// Whether every step worked.
    pub ok: bool,
    /// Whether the bucket keeps objects immutable (S3 Object Lock) — `None` when the
    /// store could not be asked (an earlier step failed).
    #[serde(default)]
    pub object_lock: Option<accounts::ObjectLock>,
}

/// One step of a [`StorageProbe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStep {
    /// What was tried ("write an object", "read it back", …).
    pub what: String,
    /// `None` when it worked; otherwise what went wrong and what to do.
    pub error: Option<String>,
}

/// `POST /v1/admin/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenant {
    /// Account name (`tenant/sub` creates a subtenant of `tenant`).
    pub name: String,
    /// Initial password.
    pub password: String,
    /// Settings.
    pub settings: TenantSettings,
    /// Quotas.
    pub quotas: Vec<QuotaSpec>,
}

/// A tenant with its quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantView {
    /// The account.
    pub tenant: Tenant,
    /// Its quotas.
    pub quotas: Vec<Quota>,
    /// How its jobs stand: restore tests and suspicious runs (no content).
    #[serde(default)]
    pub health: Vec<health::JobHealth>,
    /// In the SP's list of tenants: its jobs' and its subtenants' (computers') standing
    /// together.
    #[serde(default)]
    pub standing: health::Standing,
}

/// `POST /v1/admin/tenants/{login}/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPassword {
    /// The new password.
    pub password: String,
}

/// An SP admin as `GET /v1/admin/admins` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    /// Login name.
    pub name: String,
    /// When added, ms since the epoch.
    pub created_ms: i64,
}

/// `PUT /v1/admin/maintenance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceMode {
    /// The message tenants see; `None` turns maintenance mode off.
    pub message: Option<String>,
}

/// `PUT /v1/admin/repos/{name}`: what changes (`None`: stays).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoEdit {
    /// What operators call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Most bytes of quota it may hand out in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Limit>,
    /// `false` takes it out of service (no new quotas on it); `true` puts it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_service: Option<bool>,
}

/// `POST /v1/admin/moves`: move tenant `tenant`'s quota on repository `from`, with its data,
/// to repository `to`, online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRequest {
    /// The account (`tenant` or `tenant/sub`).
    pub tenant: String,
    /// The repository its quota is on now.
    pub from: String,
    /// The repository it goes to.
    pub to: String,
}

/// A move of a quota to another repository, and how far it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveInfo {
    /// Its id.
    pub id: i64,
    /// The account.
    pub tenant: String,
    /// From which repository.
    pub from: String,
    /// To which.
    pub to: String,
    /// `copying`, `switching`, `releasing`, `done` or `failed`.
    pub state: String,
    /// Packs to copy (grows while the tenant keeps backing up).
    pub packs_total: i64,
    /// Packs copied and verified.
    pub packs_done: i64,
    /// Bytes to copy.
    pub bytes_total: i64,
    /// Bytes copied and verified.
    pub bytes_done: i64,
    /// When it started, ms since the epoch.
    pub started_ms: i64,
    /// Its last progress, ms since the epoch.
    pub updated_ms: i64,
    /// What went wrong (failed), or a note.
    pub message: String,
}

/// `PUT /v1/admin/gateways/{id}/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// `true`: no new sessions on this gateway (running ones finish); `false`: back in
    /// service.
    pub draining: bool,
}

/// `POST /v1/admin/cert/generate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertGenerate {
    /// Host names and addresses.
    pub names: Vec<String>,
}

/// `POST /v1/admin/cert/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertImport {
    /// PEM chain, leaf first.
    pub chain: String,
    /// PEM private key.
    pub key: String,
}

/// One row of `GET /v1/admin/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// Account login.
    pub tenant: String,
    /// Cloud repository.
    pub repo: String,
    /// The name the tenant sees.
    pub friendly_name: String,
    /// Quota (`-1` on the wire: unlimited).
    pub quota_bytes: Limit,
    /// Stored bytes.
    pub used_bytes: i64,
    /// Recycle-bin bytes.
    pub recycle_bytes: i64,
    /// What a compaction would free (the last space pass's measure).
    #[serde(default)]
    pub reclaimable_bytes: i64,
    /// Live restore points.
    pub points: i64,
    /// Last activity, ms since the epoch.
    pub last_activity_ms: Option<i64>,
}

/// The usage table as CSV (a header line, then one line per row), as `cloudkeep sp usage
/// --csv` prints it and the console's Usage export saves it.
pub fn usage_csv(rows: &[UsageRow]) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    let mut out = String::from(
        "tenant,repository,name,quota_bytes,used_bytes,recycle_bin_bytes,reclaimable_bytes,restore_points,last_activity\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            field(&r.tenant),
            field(&r.repo),
            field(&r.friendly_name),
            r.quota_bytes.stored(),
            r.used_bytes,
            r.recycle_bytes,
            r.reclaimable_bytes,
            r.points,
            r.last_activity_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        ));
    }
    out
}

/// One restore point in a recycle bin (`GET /v1/admin/recycle-bin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycledPoint {
    /// Account login.
    pub tenant: String,
    /// The tenant's name for the repository.
    pub repo: String,
    /// The point.
    pub point: String,
    /// Its time, ns since the epoch.
    pub time_ns: i64,
    /// When the tenant deleted it, ms since the epoch.
    pub deleted_ms: i64,
    /// When it will be purged automatically, ms since the epoch.
    pub purge_after_ms: i64,
}

/// What a store found when told a pack failed a check (`POST /v1/repos/{repo}/packs/{id}/check`
/// answers `{"health": …}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackHealth {
    /// Its bytes match its id: the failure was elsewhere (a blob written wrong, a read cut).
    Intact,
    /// The storage does not have it: forgotten, its chunks count as absent.
    Missing,
    /// Its bytes no longer match its id: set aside, its chunks count as absent.
    Damaged,
}

/// The answer to a pack check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackCheck {
    /// What the gateway found.
    pub health: PackHealth,
}

/// `POST /v1/admin/check`: what the SP's storage check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckRequest {
    /// Also re-read every pack and compare it with its id (BLAKE3), not just its presence
    /// and length.
    #[serde(default)]
    pub deep: bool,
}

/// One pack the storage check found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackIssue {
    /// Account login.
    pub tenant: String,
    /// The tenant's name for the repository.
    pub repo: String,
    /// The pack.
    pub pack: String,
    /// What was found and done.
    pub what: String,
}

/// What the storage check found and did, in numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Quotas (storage areas) checked.
    pub quotas: usize,
    /// Storage areas that could not be checked (their folder is missing: a storage not
    /// mounted?), by `tenant/repo`; nothing in them was changed.
    pub unavailable: Vec<String>,
    /// Packs whose rows were checked against the storage.
    pub packs_checked: usize,
    /// Bytes re-read and hashed (deep check).
    pub bytes_hashed: u64,
    /// Packs the storage lost: forgotten, so the tenants' next backups send their data again.
    pub lost: Vec<PackIssue>,
    /// Packs whose bytes changed: marked damaged, so the tenants salvage what is intact.
    pub damaged: Vec<PackIssue>,
    /// Points, index files or chunk sets whose file is missing.
    pub missing_objects: Vec<PackIssue>,
    /// Files no table knows (a write cut by a crash), removed.
    pub orphans_removed: usize,
    /// Their bytes.
    pub orphan_bytes: u64,
    /// Bytes of temporary files of dead writes, removed.
    pub temp_bytes_removed: u64,
    /// Reservations of writes that died with their gateway, given back.
    pub reservations_reclaimed: usize,
    /// Their bytes.
    pub reserved_bytes_returned: i64,
    /// Quotas whose used or recycle-bin figure had drifted from what is stored, corrected.
    pub recounted: Vec<RecountRow>,
}

/// A quota figure the storage check corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecountRow {
    /// Account login.
    pub tenant: String,
    /// The tenant's name for the repository.
    pub repo: String,
    /// Used bytes before and after.
    pub used: (i64, i64),
    /// Recycle-bin bytes before and after.
    pub recycle: (i64, i64),
}

// ---- Tenant API requests and answers (formerly beside their handlers).

/// A tenant's view of one of its cloud repositories (`GET /v1/repos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// The name the SP gave it for this tenant.
    pub name: String,
    /// Quota (`-1` on the wire: unlimited).
    pub quota_bytes: Limit,
    /// Stored bytes.
    pub used_bytes: i64,
    /// What is left (unlimited when the quota is).
    pub free_bytes: Limit,
    /// When the lease ends, ms since the epoch.
    pub lease_until_ms: Option<i64>,
    /// Set once the lease has ended: backups are refused, restores work until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_until_ms: Option<i64>,
    /// What a compaction would free, as the gateway last measured it.
    #[serde(default)]
    pub reclaimable_bytes: i64,
    /// Bytes in the recycle bin (deleted points' and compacted packs' data, kept while
    /// insider protection lasts; not counted against the quota).
    #[serde(default)]
    pub recycle_bytes: i64,
    /// Insider protection: days a deleted restore point stays in the provider's recycle bin,
    /// out of the tenant's reach (0: deleting is final). `None` from an older gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_deleted_days: Option<i64>,
}

/// `POST /v1/repos/{repo}/packs/drop`: packs a compaction has copied the live data out of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRequest {
    /// Pack ids, hex (at most [`MAX_DROP_PACKS`]).
    pub packs: Vec<String>,
}

/// Most packs one drop request names.
pub const MAX_DROP_PACKS: usize = 10_000;

/// What became of the packs a compaction dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropReport {
    /// Removed for good (no insider protection).
    pub removed: Vec<String>,
    /// Retired: hidden, kept by the SP until the insider-protection window ends.
    pub retired: Vec<String>,
    /// Kept live, each with why.
    pub kept: Vec<(String, String)>,
}

/// What a space pass did (`POST /v1/admin/space`, and per repository for a tenant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassReport {
    /// Bytes of packs removed for good.
    pub removed_bytes: i64,
    /// Bytes of packs retired (kept until the insider-protection window ends).
    pub retired_bytes: i64,
    /// What a compaction would still free.
    pub reclaimable_bytes: i64,
}

/// `GET/PUT /v1/admin/settings`: what the SP sets for every tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySettings {
    /// Days after a lease ends during which its tenant may still restore (not back up).
    pub lease_grace_days: u32,
}

/// `POST /v1/repos/{repo}/chunks/present`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRequest {
    /// Chunk ids, hex (at most 10,000).
    pub ids: Vec<String>,
}

/// The answer: one flag per id, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceResponse {
    /// Whether each id is stored.
    pub present: Vec<bool>,
}

/// A subtenant as its tenant manages it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubtenant {
    /// Its name (login `tenant/name`).
    pub name: String,
    /// Its password.
    pub password: String,
    /// Which of the tenant's repositories (by the tenant's name for it).
    pub repo: String,
    /// Its quota, carved from the tenant's; unlimited: shares the tenant's.
    pub quota_bytes: Limit,
    /// Set for a managed subtenant: the computer of a backup policy it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::Membership>,
}

/// `PUT /v1/subtenants/{name}`: what to change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubtenantChange {
    /// A new quota (carved from the tenant's; unlimited shares it).
    pub quota_bytes: Option<Limit>,
    /// Enable or disable it.
    pub enabled: Option<bool>,
    /// A new password.
    pub password: Option<String>,
}

/// Most ids in one presence query.
pub const MAX_PRESENCE_BATCH: usize = 10_000;

/// Header naming how many chunk ids precede the pack in an upload body.
pub const CHUNKS_HEADER: &str = "x-cloudkeep-chunks";

/// Set (to `1`) on a pack upload whose declared chunk ids are followed by their stored
/// lengths (4 bytes each, little-endian, in the same order): the gateway then knows how many
/// bytes each chunk takes, to measure what a compaction would free.
pub const CHUNK_LENS_HEADER: &str = "x-cloudkeep-chunk-lens";

/// Header carrying the task a write belongs to.
pub const TASK_HEADER: &str = "x-cloudkeep-task";

/// Header with which a tenant's session acts for one of its own subtenants (its name, the
/// part after `tenant/`): every rule of that subtenant applies, as if it had logged in. A
/// tenant owns its subtenants (it sets their passwords and can delete them); this lets it
/// reach their restore points without their passwords — from a computer that lost them.
pub const ACT_AS_HEADER: &str = "x-cloudkeep-act-as";

/// `POST /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// What it is: `backup`, `restore`, `verify`, `maintenance`.
    pub kind: String,
}

/// A started task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Its id, for the `x-cloudkeep-task` header and the heartbeat.
    pub id: String,
    /// Renew it before this (ms since the epoch).
    pub expires_ms: i64,
}

/// The kinds of task a tenant may start.
pub const TASK_KINDS: &[&str] = &["backup", "restore", "verify", "maintenance"];

/// `POST /v1/repos/{repo}/reads`: the ranges to read, in the order their bytes are answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// At most [`MAX_READ_RANGES`], of at most [`MAX_READ_PACKS`] packs, together at most
    /// [`MAX_READ_BYTES`].
    pub ranges: Vec<ReadRange>,
}

/// One range of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRange {
    /// The pack's id (64 hex digits).
    pub pack: String,
    /// First byte.
    pub offset: u64,
    /// Length in bytes (at least 1).
    pub len: u64,
}

/// Most ranges in one read request.
pub const MAX_READ_RANGES: usize = 4096;
/// Most bytes one read request answers: twice the engine's longest span, so a client's
/// batch of spans fits a few requests and the gateway's memory per request stays bounded.
pub const MAX_READ_BYTES: u64 = 16 << 20;

/// Names one recycled point (`POST /v1/admin/recycle-bin/restore|purge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycledRef {
    /// Account login.
    pub tenant: String,
    /// The tenant's name for the repository.
    pub repo: String,
    /// The point.
    pub point: String,
}

/// What a tenant or SP admin is shown about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name (the same as the subject when self-signed).
    pub issuer: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// Host names and addresses it is valid for.
    pub names: Vec<String>,
    /// SHA-256 of the leaf's DER, `AB:CD:…`.
    pub fingerprint: String,
    /// Whether it is self-signed.
    pub self_signed: bool,
}

/// `GET /v1/cert/next`: a gateway announces the certificate it will serve next, signed with
/// the key of the one it serves now, so that clients pinning the current one accept the next
/// without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextCert {
    /// The current certificate (DER, hex): the one whose fingerprint clients pin.
    pub current: String,
    /// The next certificate's fingerprint.
    pub next_fingerprint: String,
    /// When the next certificate's validity ends (RFC 3339).
    pub next_not_after: String,
    /// The TLS signature scheme of `signature` (IANA code).
    pub scheme: u16,
    /// The current key's signature over `cloudkeep_certs::rollover_message(next_fingerprint)`,
    /// hex.
    pub signature: String,
}

/// Most packs one multi-range read may name (each is a bound parameter of one query).
pub const MAX_READ_PACKS: usize = 64;

/// A stored pack, as the tenant API lists it (`GET /v1/repos/{repo}/packs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackInfo {
    /// Its id (hex BLAKE3 of its bytes).
    pub id: String,
    /// Its length.
    pub bytes: i64,
    /// The SP's check found its bytes changed: still readable (its intact blobs can be
    /// salvaged), but its chunks no longer count as stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub damaged: bool,
}

/// A restore point, as the tenant API lists it (`GET /v1/repos/{repo}/points`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInfo {
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
