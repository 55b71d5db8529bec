//! A storage area under a key prefix of an S3-compatible bucket (AWS S3, Garage, Ceph RGW,
//! MinIO, Wasabi), through `object_store`'s S3 client (reqwest with rustls and ring).
//!
//! Layout under the area's prefix, the folder store's: `packs/<first two hex>/<id>.pack`,
//! one folder per object kind (`keys/`, `index/`, `points/`, `sets/`, `locks/`), `damaged/`
//! for packs set aside, and `uploads/<reservation>`: a small marker naming a multipart upload
//! in flight.
//!
//! A pack arrives as a multipart upload straight at its final key, and S3 shows nothing
//! until the upload is completed — after the gateway has checked its length and hash — so a
//! pack is whole or absent, as in a folder. A pack that fits in one part is one plain PUT. A
//! gateway that dies leaves an incomplete upload the bucket bills for: its marker lets the
//! reservation's reclaim (or the leftover sweep) abort it. Objects are single PUTs, which S3
//! makes atomic.
//!
//! Object Lock (WORM), which `object_store` does not speak, goes through requests of our own,
//! signed by its `AwsAuthorizer` and sent by its HTTP client: the bucket's lock configuration
//! ([`S3Bucket::object_lock`]) and an object's retention ([`S3Store::lock_until`] through
//! `AreaStore::lock`). The gateway's own deletes on such a bucket leave delete markers; the
//! locked versions stay until their retention ends (the SP's lifecycle rule then expires them).
//!
//! Every method blocks on the gateway's runtime (see the parent module's invariant); a store
//! made outside a runtime (tests, tools) runs its own.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use cloudkeep_api::{LockMode, ObjectLock, S3Target};
use cloudkeep_repo::backend::{
    MAX_META_LEN, MetaKind, PackHealth, PackStore, RepoBackend, StoreError, valid_meta_name,
};
use cloudkeep_repo::pack::{MAX_PACK_LEN, PackEntry, PackId};

use super::{AreaStore, Lockable, PackUpload, S3Credentials};

/// Bytes gathered before a part is sent: S3 needs at least 5 MiB in every part but the last.
pub const PART: usize = 8 << 20;

/// A marker younger than this may belong to an upload still running on some gateway (a
/// tenant under a bandwidth limit sends a 32 MiB pack slowly): the sweep leaves it.
pub const UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// The block of a pack the bucket's read cache holds: what Garage stores and checks as one
/// piece (its default block size), and a size a restore's scattered ranges fall in many times.
pub const BLOCK: u64 = 1 << 20;

/// Blocks fetched in one request at most.
const RUN_BLOCKS: u64 = 8;

/// Blocks the read cache of one bucket holds (64 MiB): a restore's reads sweep its packs
/// forwards, each block touched by several of its batches within a short while.
const CACHED_BLOCKS: usize = 256;

/// Locks that keep two requests from fetching the same blocks at once, by pack: enough that
/// one request (at most 64 packs) rarely holds up another tenant's pack.
const FETCH_STRIPES: usize = 1024;

/// Recently read blocks, by area (key prefix), pack and block number. Packs never change
/// (their id is their hash), so a cached block is never stale; an area's key is in the key,
/// so one tenant's reads never answer another's.
type BlockCache = hashlink::LruCache<(String, PackId, u64), bytes::Bytes>;

/// Where the store's requests run.
#[derive(Debug, Clone)]
enum Runtime {
    /// The gateway's.
    Shared(tokio::runtime::Handle),
    /// Its own (made outside any runtime).
    Owned(Arc<tokio::runtime::Runtime>),
}

/// One bucket of one object store: the client (its connection pool), shared by every area
/// of the repository.
#[derive(Debug)]
pub struct S3Bucket {
    client: AmazonS3,
    target: S3Target,
    runtime: Runtime,
    /// For the requests `object_store` does not make (Object Lock), signed ourselves.
    http: HttpClient,
    credentials: S3Credentials,
    /// Blocks recently read for restores ([`BLOCK`]).
    cache: std::sync::Mutex<BlockCache>,
    /// Held while blocks of the packs that hash to it are fetched.
    fetching: Vec<std::sync::Mutex<()>>,
}

/// What an S3 request of our own got back.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

/// Most bytes of an answer to a request of our own (lock configuration, retention, errors:
/// a few hundred bytes each); a longer one is cut off, never buffered whole.
const MAX_ANSWER: usize = 64 << 10;

/// The characters of a key sent as they are in a request's path (S3's URI encoding: the
/// unreserved ones, and `/` between segments).
const KEY_CHARS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `<ObjectLockConfiguration>` as S3 answers `GET ?object-lock`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LockConfiguration {
    object_lock_enabled: Option<String>,
    rule: Option<LockRule>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LockRule {
    default_retention: Option<DefaultRetention>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DefaultRetention {
    mode: Option<String>,
    days: Option<u32>,
    years: Option<u32>,
}

/// `<Error>` as S3 answers a refused request.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ErrorAnswer {
    code: String,
    message: String,
}

impl Answer {
    /// The store's error code and message, or the HTTP status when it sent none.
    fn error(&self) -> (String, String) {
        let text = String::from_utf8_lossy(&self.body);
        match quick_xml::de::from_str::<ErrorAnswer>(&text) {
            Ok(e) if !e.code.is_empty() => (e.code, e.message),
            _ => (self.status.as_u16().to_string(), self.status.to_string()),
        }
    }
}

/// Reads the lock configuration a bucket answered (`GET ?object-lock`).
fn lock_from(answer: &Answer) -> Result<ObjectLock, String> {
    let (code, message) = answer.error();
    match answer.status {
        s if s.is_success() => {
            let text = String::from_utf8_lossy(&answer.body);
            // A store that ignores the query answers something else (a listing): no lock.
            if !text.contains("<ObjectLockConfiguration") {
                return Ok(ObjectLock::Unsupported);
            }
            let config: LockConfiguration = quick_xml::de::from_str(&text).map_err(|e| {
                format!("the store's object-lock configuration is not readable: {e}")
            })?;
            if config.object_lock_enabled.as_deref() != Some("Enabled") {
                return Ok(ObjectLock::Off);
            }
            let default = config.rule.and_then(|r| r.default_retention);
            let mode = match default.as_ref().and_then(|d| d.mode.as_deref()) {
                Some("GOVERNANCE") => LockMode::Governance,
                // A bucket with lock on and no default: locks are set in the strongest mode.
                _ => LockMode::Compliance,
            };
            let default_days =
                default.and_then(|d| d.days.or_else(|| d.years.map(|y| y.saturating_mul(365))));
            Ok(ObjectLock::On { mode, default_days })
        }
        StatusCode::NOT_FOUND if code == "NoSuchBucket" => {
            Err("the bucket does not exist: create it, or check its name".into())
        }
        StatusCode::NOT_FOUND => Ok(ObjectLock::Off), // ObjectLockConfigurationNotFoundError
        StatusCode::NOT_IMPLEMENTED | StatusCode::METHOD_NOT_ALLOWED => Ok(ObjectLock::Unsupported),
        StatusCode::BAD_REQUEST if code == "NotImplemented" || code == "InvalidRequest" => {
            Ok(ObjectLock::Unsupported)
        }
        _ => Err(format!(
            "the store did not say whether the bucket has object lock ({code}: {message}); the key may lack the right to read the bucket's object-lock configuration"
        )),
    }
}

/// The body of `PUT ?retention`.
fn retention_body(mode: LockMode, until: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
        mode.s3_name(),
        until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl S3Bucket {
    /// A client for `target` with `credentials`. Nothing is sent yet.
    pub fn connect(target: &S3Target, credentials: &S3Credentials) -> Result<Self, StoreError> {
        Self::connect_with(target, credentials, false)
    }

    /// [`S3Bucket::connect`]; with `checksums`, every upload carries its SHA-256
    /// (`x-amz-checksum-sha256`): what a bucket with object lock asks of uploads that its
    /// default retention locks.
    pub fn connect_with(
        target: &S3Target,
        credentials: &S3Credentials,
        checksums: bool,
    ) -> Result<Self, StoreError> {
        target.check().map_err(|reason| StoreError::Io {
            path: target.describe().into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
        })?;
        // reqwest's rustls takes the process's provider: ring, as everywhere in Cloudkeep.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = ClientOptions::new()
            .with_allow_http(target.endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(120))
            .with_pool_max_idle_per_host(64);
        let retry = RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
            ..RetryConfig::default()
        };
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(|e| StoreError::Io {
                path: target.describe().into(),
                source: other(e),
            })?;
        // The payload is not hashed into the signature (SHA-256 of every byte, by the gateway
        // and again by the store): TLS (or loopback) carries it, the gateway checked each
        // pack's BLAKE3 before sending it, and every blob is authenticated when read. On a
        // bucket with object lock the upload still carries its SHA-256 checksum.
        let mut builder = AmazonS3Builder::new().with_unsigned_payload(true);
        if checksums {
            builder = builder.with_checksum_algorithm(object_store::aws::Checksum::SHA256);
        }
        let client = builder
            .with_endpoint(target.endpoint.trim_end_matches('/'))
            .with_bucket_name(&target.bucket)
            .with_region(&target.region)
            .with_access_key_id(&credentials.access_key)
            .with_secret_access_key(credentials.secret_key.as_str())
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| StoreError::Io {
                path: target.describe().into(),
                source: other(e),
            })?;
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(handle) => Runtime::Shared(handle),
            Err(_) => Runtime::Owned(Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|source| StoreError::Io {
                        path: target.describe().into(),
                        source,
                    })?,
            )),
        };
        Ok(Self {
            client,
            target: target.clone(),
            runtime,
            http,
            credentials: credentials.clone(),
            cache: std::sync::Mutex::new(BlockCache::new(CACHED_BLOCKS)),
            fetching: (0..FETCH_STRIPES)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
        })
    }

    /// The fetch lock of pack `id` of area `root`.
    fn stripe(&self, root: &str, id: &PackId) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&(root, id.0), &mut hasher);
        (std::hash::Hasher::finish(&hasher) % FETCH_STRIPES as u64) as usize
    }

    /// Sends a request of our own, signed (SigV4) with the bucket's credentials: `method` on
    /// `key` (the bucket itself when `None`) with `query` (`object-lock`, `retention`).
    async fn signed(
        &self,
        method: Method,
        key: Option<&Key>,
        query: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let mut url = format!(
            "{}/{}",
            self.target.endpoint.trim_end_matches('/'),
            self.target.bucket
        );
        if let Some(key) = key {
            url.push('/');
            url.extend(percent_encoding::utf8_percent_encode(
                key.as_ref(),
                KEY_CHARS,
            ));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut request = axum::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut request = request
            .body(HttpRequestBody::from(body))
            .map_err(|e| format!("a request to the object store could not be made: {e}"))?;
        let credential = AwsCredential {
            key_id: self.credentials.access_key.clone(),
            secret_key: self.credentials.secret_key.to_string(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", &self.target.region)
            .try_authorize(&mut request, None)
            .map_err(|e| format!("a request to the object store could not be signed: {e}"))?;
        let answer = tokio::time::timeout(Duration::from_secs(120), self.http.execute(request))
            .await
            .map_err(|_| "the object store did not answer within two minutes".to_owned())?
            .map_err(|e| format!("the object store cannot be reached: {e}"))?;
        let (parts, body) = answer.into_parts();
        let mut stream = body.bytes_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("the object store's answer broke off: {e}"))?;
            out.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - out.len())]);
            if out.len() >= MAX_ANSWER {
                break;
            }
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: out,
        })
    }

    /// Whether the bucket keeps objects immutable (S3 Object Lock), and how.
    pub fn object_lock(&self) -> Result<ObjectLock, String> {
        let answer = self.run(self.signed(Method::GET, None, "object-lock", &[], Vec::new()))?;
        lock_from(&answer)
    }

    /// The object store.
    pub fn target(&self) -> &S3Target {
        &self.target
    }

    /// The runtime requests run on.
    fn handle(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Runtime::Shared(handle) => handle.clone(),
            Runtime::Owned(rt) => rt.handle().clone(),
        }
    }

    /// Runs a request to its end from a blocking thread.
    fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        let handle = self.handle();
        match tokio::runtime::Handle::try_current() {
            // On a worker thread of a runtime: make room for blocking first.
            Ok(current)
                if current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
            {
                tokio::task::block_in_place(|| handle.block_on(fut))
            }
            _ => handle.block_on(fut),
        }
    }

    /// The area of one quota: keys under `root`.
    pub fn area(self: &Arc<Self>, root: String) -> S3Store {
        S3Store {
            bucket: self.clone(),
            root,
        }
    }

    /// Tries the store for `gateway repo test`: lists, writes, reads back and removes a
    /// probe object under `prefix/.cloudkeep-probe-…`; each step with its outcome.
    pub fn probe(&self) -> Vec<(String, Result<(), String>)> {
        let mut steps = Vec::new();
        let mut random = [0u8; 8];
        let _ = cloudkeep_repo::crypto::random_bytes(&mut random);
        let name = format!("cloudkeep-probe-{}", hex::encode(random));
        let key = if self.target.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.target.prefix))
        };
        let body = b"cloudkeep storage probe".to_vec();
        let prefix = Key::from(self.target.prefix.as_str());
        let listed = self.run(async {
            self.client
                .list_with_delimiter(Some(&prefix))
                .await
                .map(|_| ())
        });
        let reached = listed.is_ok();
        steps.push((
            "list the bucket".to_owned(),
            listed.map_err(|e| explain(&e)),
        ));
        if !reached {
            return steps;
        }
        let put = self.run(self.client.put(&key, PutPayload::from(body.clone())));
        let wrote = put.is_ok();
        steps.push((
            "write an object".to_owned(),
            put.map(|_| ()).map_err(|e| explain(&e)),
        ));
        if !wrote {
            return steps;
        }
        let read = self.run(async { self.client.get(&key).await?.bytes().await });
        steps.push((
            "read it back".to_owned(),
            match read {
                Ok(bytes) if bytes.as_ref() == body.as_slice() => Ok(()),
                Ok(_) => Err("the object read back differs from what was written".to_owned()),
                Err(e) => Err(explain(&e)),
            },
        ));
        let range = self.run(self.client.get_range(&key, 10..17));
        steps.push((
            "read a range".to_owned(),
            match range {
                Ok(bytes) if bytes.as_ref() == &body[10..17] => Ok(()),
                Ok(_) => Err("the store does not serve byte ranges correctly".to_owned()),
                Err(e) => Err(explain(&e)),
            },
        ));
        let deleted = self.run(self.client.delete(&key));
        steps.push(("remove it".to_owned(), deleted.map_err(|e| explain(&e))));
        steps
    }

    /// Locks `key` in `mode` until `until` (`PUT ?retention`); `Ok(false)` when the object
    /// is gone. A lock is only ever extended: the store refuses to shorten one.
    fn lock_key(
        &self,
        key: &Key,
        mode: LockMode,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, String> {
        use base64::Engine as _;
        use md5::Digest as _;
        let body = retention_body(mode, until).into_bytes();
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let headers = [
            ("content-md5", md5),
            ("content-type", "application/xml".to_owned()),
        ];
        let answer = self.run(self.signed(Method::PUT, Some(key), "retention", &headers, body))?;
        if answer.status.is_success() {
            return Ok(true);
        }
        let (code, message) = answer.error();
        if answer.status == StatusCode::NOT_FOUND && code != "NoSuchBucket" {
            return Ok(false);
        }
        // A store refuses to shorten a lock: one set longer already (by the SP's operator, or
        // a bucket default) is what was asked for.
        if let Ok(Some((_, held))) = self.retention(key)
            && held >= until
        {
            return Ok(true);
        }
        Err(format!(
            "the object store refused to lock {key} until {until} ({code}: {message}); give the gateway's key the right to set object retention (s3:PutObjectRetention, s3:GetObjectRetention)"
        ))
    }

    /// The retention of `key` as the store tells it (`HEAD`): mode and end, if locked.
    pub fn retention(
        &self,
        key: &Key,
    ) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, String> {
        let answer = self.run(self.signed(Method::HEAD, Some(key), "", &[], Vec::new()))?;
        if !answer.status.is_success() {
            return Err(format!("{key}: {}", answer.status));
        }
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (Some(mode), Some(until)) = (
            header("x-amz-object-lock-mode"),
            header("x-amz-object-lock-retain-until-date"),
        ) else {
            return Ok(None);
        };
        let until = chrono::DateTime::parse_from_rfc3339(&until).map_err(|e| {
            format!("{key}: the store's retain-until date \"{until}\" is not a date: {e}")
        })?;
        Ok(Some((mode, until.with_timezone(&chrono::Utc))))
    }
}

/// What an object-store error means for an SP operator, without any credential.
/// Whether a store's refusal says it has no room: a bucket quota reached (Garage: "Bucket size
/// quota is reached", "Object quota is reached"; Ceph RGW: `QuotaExceeded`; MinIO: "Bucket quota
/// exceeded") or full disks (`XMinioStorageFull`, HTTP 507 Insufficient Storage).
/// (Matched on the store's own words, never on a bare number or word that a key or an SP's
/// prefix could hold.)
fn refused_for_room(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "quota is reached",
        "quotaexceeded",
        "quota exceeded",
        "storagefull",
        "insufficient storage",
    ]
    .iter()
    .any(|words| lower.contains(words))
}

fn explain(e: &object_store::Error) -> String {
    let text = e.to_string();
    let hint = if text.contains("MissingUploadObjectWithObjectLockHeaders")
        || text.contains("Content-MD5")
    {
        "the bucket's default retention makes the store ask for Content-MD5 on every upload, which the gateway does not send (it sends SHA-256 checksums): remove the bucket's default retention — the gateway locks every object itself, for each tenant's insider-protection window"
    } else if refused_for_room(&text) {
        "the object store refuses more data: its bucket quota is reached or its disks are full; give the bucket room, or move tenants to another repository"
    } else if text.contains("403") || text.contains("AccessDenied") || text.contains("Forbidden") {
        "the store refused the credentials: check the access key id, the secret key and that the key may read and write the bucket"
    } else if text.contains("NoSuchBucket") || text.contains("404") {
        "the bucket does not exist: create it, or check its name"
    } else if text.contains("connect") || text.contains("dns") || text.contains("timed out") {
        "the endpoint cannot be reached from the gateway: check the URL and the network"
    } else if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
        "the endpoint's TLS certificate is not trusted by the gateway's machine"
    } else {
        "check the endpoint, region and bucket"
    };
    format!("{hint} (the store said: {text})")
}

/// One quota's area in a bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    bucket: Arc<S3Bucket>,
    root: String,
}

impl S3Store {
    fn pack_key(&self, id: &PackId) -> Key {
        let hex = id.to_hex();
        Key::from(format!("{}/packs/{}/{hex}.pack", self.root, &hex[..2]))
    }

    fn meta_key(&self, kind: MetaKind, name: &str) -> Result<Key, StoreError> {
        if !valid_meta_name(name) {
            return Err(StoreError::BadName {
                name: name.to_owned(),
            });
        }
        Ok(Key::from(format!("{}/{}/{name}", self.root, kind.dir())))
    }

    /// The key of a pack or object.
    pub fn lockable_key(&self, what: Lockable<'_>) -> Result<Key, StoreError> {
        match what {
            Lockable::Pack(id) => Ok(self.pack_key(id)),
            Lockable::Meta(kind, name) => self.meta_key(kind, name),
        }
    }

    /// The bucket the area is in.
    pub fn bucket(&self) -> &S3Bucket {
        &self.bucket
    }

    /// Drops the cached blocks of pack `id` (removed, or set aside as damaged: a pack stored
    /// again under the id is read afresh).
    fn forget_cached(&self, id: &PackId) {
        let mut cache = self.bucket.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<(String, PackId, u64)> = cache
            .iter()
            .map(|(key, _)| key)
            .filter(|(root, pack, _)| pack == id && *root == self.root)
            .cloned()
            .collect();
        for key in stale {
            cache.remove(&key);
        }
    }

    fn marker_key(&self, reservation: &str) -> Key {
        Key::from(format!("{}/uploads/{reservation}", self.root))
    }

    fn err(&self, key: &Key, e: object_store::Error) -> StoreError {
        let text = explain(&e);
        let source = if refused_for_room(&e.to_string()) {
            // Said to the tenant as the provider's storage being full (`storage_full`).
            std::io::Error::new(std::io::ErrorKind::StorageFull, text)
        } else {
            other(text)
        };
        StoreError::Io {
            path: format!("s3://{}/{key}", self.bucket.target.bucket).into(),
            source,
        }
    }

    fn pack_err(&self, id: &PackId, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound { pack: *id },
            e => self.err(&self.pack_key(id), e),
        }
    }

    fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        self.bucket.run(fut)
    }

    fn client(&self) -> &AmazonS3 {
        &self.bucket.client
    }

    /// Every key under `prefix` (inside the area) with its size and time.
    fn list_under(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        let key = Key::from(format!("{}/{prefix}", self.root));
        self.run(async {
            let mut out = Vec::new();
            let mut stream = self.client().list(Some(&key));
            while let Some(item) = stream.next().await {
                out.push(item.map_err(|e| self.err(&key, e))?);
            }
            Ok(out)
        })
    }

    /// The bytes of `range` of pack `id`, refusing a short answer.
    fn get_exact(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let out_of_range = |size: u64| StoreError::OutOfRange {
            pack: *id,
            len: size,
            offset,
            want: len,
        };
        if len > MAX_PACK_LEN || offset.checked_add(len).is_none_or(|end| end > MAX_PACK_LEN) {
            return Err(out_of_range(self.pack_len(id)?));
        }
        if len == 0 {
            self.pack_len(id)?;
            return Ok(Vec::new());
        }
        let key = self.pack_key(id);
        let range: Range<u64> = offset..offset + len;
        match self.run(self.client().get_range(&key, range)) {
            Ok(bytes) if bytes.len() as u64 == len => Ok(Vec::from(bytes)),
            Ok(_) => Err(out_of_range(self.pack_len(id)?)),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound { pack: *id }),
            Err(e) => match self.pack_len(id) {
                Ok(size) if offset + len > size => Err(out_of_range(size)),
                Ok(_) => Err(self.err(&key, e)),
                Err(e) => Err(e),
            },
        }
    }
}

impl PackStore for S3Store {
    fn put_pack(&self, id: &PackId, bytes: &[u8], _blobs: &[PackEntry]) -> Result<(), StoreError> {
        let key = self.pack_key(id);
        self.run(self.client().put(&key, PutPayload::from(bytes.to_vec())))
            .map(|_| ())
            .map_err(|e| self.err(&key, e))
    }

    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        self.get_exact(id, offset, len)
    }

    fn merge_gap(&self) -> u64 {
        // Every request to an object store costs a round trip and money: read more between.
        512 << 10
    }

    fn parallel_puts(&self) -> usize {
        4
    }

    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError> {
        let key = self.pack_key(id);
        self.run(self.client().head(&key))
            .map(|meta| meta.size)
            .map_err(|e| self.pack_err(id, e))
    }

    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        let mut out: Vec<(PackId, u64)> = self
            .list_under("packs")?
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                let id = PackId::from_hex(name.strip_suffix(".pack")?)?;
                Some((id, meta.size))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError> {
        self.forget_cached(id);
        let key = self.pack_key(id);
        match self.run(self.client().delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&key, e)),
        }
    }

    fn set_aside(&self, id: &PackId) -> Result<PackHealth, StoreError> {
        match AreaStore::pack_matches_id(self, id)? {
            None => return Ok(PackHealth::Missing),
            Some(true) => return Ok(PackHealth::Intact),
            Some(false) => {}
        }
        let key = self.pack_key(id);
        let aside = Key::from(format!("{}/damaged/{}.pack", self.root, id.to_hex()));
        self.run(self.client().copy(&key, &aside))
            .map_err(|e| self.err(&aside, e))?;
        self.delete_pack(id)?;
        tracing::warn!(
            "pack {} no longer matches its id: set aside as {aside}",
            id.to_hex()
        );
        Ok(PackHealth::Damaged)
    }
}

impl RepoBackend for S3Store {
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        cloudkeep_repo::backend::check_meta_len(name, bytes.len() as u64)?;
        let key = self.meta_key(kind, name)?;
        self.run(self.client().put(&key, PutPayload::from(bytes.to_vec())))
            .map(|_| ())
            .map_err(|e| self.err(&key, e))
    }

    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError> {
        let key = self.meta_key(kind, name)?;
        let result = self.run(async {
            let got = self.client().get(&key).await?;
            if got.meta.size > MAX_META_LEN {
                return Ok(Err(got.meta.size));
            }
            got.bytes().await.map(Ok)
        });
        match result {
            Ok(Ok(bytes)) => Ok(Vec::from(bytes)),
            Ok(Err(len)) => Err(StoreError::TooLarge {
                name: name.to_owned(),
                len,
            }),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFoundMeta {
                kind,
                name: name.to_owned(),
            }),
            Err(e) => Err(self.err(&key, e)),
        }
    }

    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .list_under(kind.dir())?
            .into_iter()
            .filter_map(|meta| meta.location.filename().map(str::to_owned))
            .filter(|name| valid_meta_name(name))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError> {
        let key = self.meta_key(kind, name)?;
        match self.run(self.client().delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&key, e)),
        }
    }
}

/// Parts of one pack sent at the same time: while one travels to the store, the next is sent
/// too (the store's write of a part, three replicas in a cluster, is the slow step).
const PARTS_IN_FLIGHT: usize = 2;

/// A part on its way.
type PartJob = tokio::task::JoinHandle<Result<PartId, object_store::Error>>;

/// A pack on its way into a bucket: the first part's bytes are held until there is more than
/// one part (a small pack is then one PUT); later parts go out as they fill, up to
/// [`PARTS_IN_FLIGHT`] at once.
struct S3Upload {
    store: S3Store,
    key: Key,
    marker: Key,
    multipart: Option<object_store::MultipartId>,
    parts: Vec<PartId>,
    in_flight: std::collections::VecDeque<PartJob>,
    buffer: Vec<u8>,
}

impl S3Upload {
    /// Waits for the oldest part in flight.
    fn settle_one(&mut self) -> Result<(), StoreError> {
        let Some(job) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let store = self.store.clone();
        let part = store
            .run(job)
            .map_err(|e| store.err(&self.key, object_store::Error::JoinError { source: e }))?
            .map_err(|e| store.err(&self.key, e))?;
        self.parts.push(part);
        Ok(())
    }

    /// Every part in flight, settled in order.
    fn settle_all(&mut self) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            self.settle_one()?;
        }
        Ok(())
    }

    fn send_part(&mut self) -> Result<(), StoreError> {
        let data = std::mem::take(&mut self.buffer);
        let store = self.store.clone();
        let id = match &self.multipart {
            Some(id) => id.clone(),
            None => {
                let id = store
                    .run(store.client().create_multipart(&self.key))
                    .map_err(|e| store.err(&self.key, e))?;
                // The marker names the upload so that a crash's leftover can be aborted.
                let marker = format!("{}\n{id}\n", self.key);
                store
                    .run(
                        store
                            .client()
                            .put(&self.marker, PutPayload::from(marker.into_bytes())),
                    )
                    .map_err(|e| store.err(&self.marker, e))?;
                self.multipart = Some(id.clone());
                id
            }
        };
        if self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_one()?;
        }
        let index = self.parts.len() + self.in_flight.len();
        let (client, key) = (store.client().clone(), self.key.clone());
        let job = store.bucket.handle().spawn(async move {
            client
                .put_part(&key, &id, index, PutPayload::from(data))
                .await
        });
        self.in_flight.push_back(job);
        Ok(())
    }
}

impl PackUpload for S3Upload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART {
            self.send_part()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        let store = self.store.clone();
        let Some(id) = self.multipart.clone() else {
            let data = std::mem::take(&mut self.buffer);
            return store
                .run(store.client().put(&self.key, PutPayload::from(data)))
                .map(|_| ())
                .map_err(|e| store.err(&self.key, e));
        };
        if !self.buffer.is_empty() {
            self.send_part()?;
        }
        if let Err(e) = self.settle_all() {
            let _ = store.run(store.client().abort_multipart(&self.key, &id));
            let _ = store.run(store.client().delete(&self.marker));
            return Err(e);
        }
        let parts = std::mem::take(&mut self.parts);
        if let Err(e) = store.run(store.client().complete_multipart(&self.key, &id, parts)) {
            let _ = store.run(store.client().abort_multipart(&self.key, &id));
            let _ = store.run(store.client().delete(&self.marker));
            return Err(store.err(&self.key, e));
        }
        let _ = store.run(store.client().delete(&self.marker));
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        // Parts still travelling finish (or fail) before the upload is called off.
        let _ = self.settle_all();
        if let Some(id) = &self.multipart {
            let store = &self.store;
            if let Err(e) = store.run(store.client().abort_multipart(&self.key, id)) {
                tracing::warn!("aborting the upload of {}: {}", self.key, explain(&e));
                return; // the marker stays: the sweep tries again
            }
            let _ = store.run(store.client().delete(&self.marker));
        }
    }
}

impl S3Store {
    /// Aborts the multipart upload a marker names and removes the marker.
    fn abort_marked(&self, marker: &Key) -> Result<bool, StoreError> {
        let text = match self.run(async { self.client().get(marker).await?.bytes().await }) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.err(marker, e)),
        };
        let mut lines = text.lines();
        if let (Some(key), Some(id)) = (lines.next(), lines.next())
            // Only a key inside this area: a marker never steers a deletion elsewhere.
            && key.starts_with(&format!("{}/packs/", self.root))
        {
            let key = Key::from(key);
            match self.run(self.client().abort_multipart(&key, &id.to_owned())) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(&key, e)),
            }
        }
        match self.run(self.client().delete(marker)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(self.err(marker, e)),
        }
    }
}

impl AreaStore for S3Store {
    fn begin_upload(
        &self,
        reservation: &str,
        id: &PackId,
    ) -> Result<Box<dyn PackUpload>, StoreError> {
        if reservation.is_empty() || !reservation.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadName {
                name: reservation.to_owned(),
            });
        }
        Ok(Box::new(S3Upload {
            store: self.clone(),
            key: self.pack_key(id),
            marker: self.marker_key(reservation),
            multipart: None,
            parts: Vec::new(),
            in_flight: std::collections::VecDeque::new(),
            buffer: Vec::with_capacity(PART),
        }))
    }

    fn remove_upload(&self, reservation: &str) -> Result<u64, StoreError> {
        if reservation.is_empty() || !reservation.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(0);
        }
        self.abort_marked(&self.marker_key(reservation))?;
        Ok(0)
    }

    fn remove_leftovers(&self, age: Duration) -> Result<u64, StoreError> {
        let age = age.max(UPLOAD_AGE);
        let now = chrono::Utc::now();
        for meta in self.list_under("uploads")? {
            let old = (now - meta.last_modified)
                .to_std()
                .is_ok_and(|elapsed| elapsed >= age);
            if old {
                self.abort_marked(&meta.location)?;
            }
        }
        Ok(0)
    }

    fn pack_matches_id(&self, id: &PackId) -> Result<Option<bool>, StoreError> {
        let key = self.pack_key(id);
        let hashed = self.run(async {
            let got = self.client().get(&key).await?;
            let mut stream = got.into_stream();
            let mut hasher = blake3::Hasher::new();
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
            Ok::<_, object_store::Error>(hasher.finalize())
        });
        match hashed {
            Ok(hash) => Ok(Some(hash.as_bytes() == &id.0)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&key, e)),
        }
    }

    fn pack_modified(&self, id: &PackId) -> Option<std::time::SystemTime> {
        let meta = self.run(self.client().head(&self.pack_key(id))).ok()?;
        Some(meta.last_modified.into())
    }

    fn has_meta(&self, kind: MetaKind, name: &str) -> Result<bool, StoreError> {
        let key = self.meta_key(kind, name)?;
        match self.run(self.client().head(&key)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(&key, e)),
        }
    }

    fn read_concat(
        &self,
        ranges: &[(PackId, u64, u64)],
        total: u64,
    ) -> Result<Vec<u8>, StoreError> {
        // Whole blocks through the bucket's cache: a restore reads a pack in many scattered
        // ranges, several per block, and the store reads (and checks) a whole block for each.
        let mut wanted: std::collections::BTreeSet<(PackId, u64)> = Default::default();
        for (id, offset, len) in ranges {
            if offset
                .checked_add(*len)
                .is_none_or(|end| end > MAX_PACK_LEN)
            {
                return Err(StoreError::OutOfRange {
                    pack: *id,
                    len: self.pack_len(id)?,
                    offset: *offset,
                    want: *len,
                });
            }
            if *len > 0 {
                wanted.extend((offset / BLOCK..=(offset + len - 1) / BLOCK).map(|b| (*id, b)));
            }
        }
        let mut blocks: std::collections::HashMap<(PackId, u64), bytes::Bytes> =
            std::collections::HashMap::with_capacity(wanted.len());
        let mut missing: Vec<(PackId, u64)> = Vec::new();
        {
            let mut cache = self.bucket.cache.lock().unwrap_or_else(|e| e.into_inner());
            for key in wanted {
                match cache.get(&(self.root.clone(), key.0, key.1)) {
                    Some(bytes) => {
                        blocks.insert(key, bytes.clone());
                    }
                    None => missing.push(key),
                }
            }
        }
        // One fetch of a block at a time: requests that miss the same blocks together (a
        // restore's parallel batches do) wait for the first and find them cached.
        let mut stripes: Vec<usize> = missing
            .iter()
            .map(|(id, _)| self.bucket.stripe(&self.root, id))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _fetching: Vec<std::sync::MutexGuard<'_, ()>> = stripes
            .iter()
            .map(|i| {
                self.bucket.fetching[*i]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            })
            .collect();
        if !missing.is_empty() {
            let mut cache = self.bucket.cache.lock().unwrap_or_else(|e| e.into_inner());
            missing.retain(|key| match cache.get(&(self.root.clone(), key.0, key.1)) {
                Some(bytes) => {
                    blocks.insert(*key, bytes.clone());
                    false
                }
                None => true,
            });
        }
        // Consecutive missing blocks of a pack are one request (up to a span's worth).
        let mut runs: Vec<(PackId, u64, u64)> = Vec::new();
        for (id, block) in missing {
            match runs.last_mut() {
                Some((pack, first, count))
                    if *pack == id && *first + *count == block && *count < RUN_BLOCKS =>
                {
                    *count += 1;
                }
                _ => runs.push((id, block, 1)),
            }
        }
        // A restore sweeps each pack forwards: a run of a large read goes on to a whole
        // request's worth of blocks not cached yet (the store ends it at the pack's end), so
        // the next batches find them here.
        if total >= BLOCK {
            let cache = self.bucket.cache.lock().unwrap_or_else(|e| e.into_inner());
            let taken: std::collections::HashSet<(PackId, u64)> = runs
                .iter()
                .flat_map(|(id, first, count)| (*first..first + count).map(|b| (*id, b)))
                .collect();
            for (id, first, count) in &mut runs {
                while *count < RUN_BLOCKS
                    && (*first + *count + 1) * BLOCK <= MAX_PACK_LEN
                    && !taken.contains(&(*id, *first + *count))
                    && !cache.contains_key(&(self.root.clone(), *id, *first + *count))
                {
                    *count += 1;
                }
            }
        }
        let fetched = self.run(futures_util::future::join_all(runs.iter().map(
            |(id, first, count)| async move {
                let key = self.pack_key(id);
                self.client()
                    .get_range(&key, first * BLOCK..(first + count) * BLOCK)
                    .await
            },
        )));
        {
            let mut cache = self.bucket.cache.lock().unwrap_or_else(|e| e.into_inner());
            for ((id, first, _), result) in runs.iter().zip(fetched) {
                let bytes = match result {
                    Ok(bytes) => bytes,
                    Err(object_store::Error::NotFound { .. }) => {
                        return Err(StoreError::NotFound { pack: *id });
                    }
                    // Past the pack's end, or a failed read: say which, and whether it is short.
                    Err(e) => {
                        drop(cache);
                        let size = self.pack_len(id)?;
                        if let Some((_, offset, len)) =
                            ranges.iter().find(|(p, o, l)| p == id && o + l > size)
                        {
                            return Err(StoreError::OutOfRange {
                                pack: *id,
                                len: size,
                                offset: *offset,
                                want: *len,
                            });
                        }
                        return Err(self.err(&self.pack_key(id), e));
                    }
                };
                // The store ends the last block at the pack's end: a block shorter than
                // BLOCK is the last one.
                let mut at = 0;
                let mut block = *first;
                while at < bytes.len() {
                    let end = (at + BLOCK as usize).min(bytes.len());
                    // A copy of its own: a slice would keep the whole answer alive as long
                    // as any of its blocks stays cached.
                    let piece = bytes::Bytes::copy_from_slice(&bytes[at..end]);
                    cache.insert((self.root.clone(), *id, block), piece.clone());
                    blocks.insert((*id, block), piece);
                    at = end;
                    block += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for (id, offset, len) in ranges {
            let mut at = *offset;
            let end = offset + len;
            while at < end {
                let piece = blocks
                    .get(&(*id, at / BLOCK))
                    .map(|b| &b[..])
                    .unwrap_or_default();
                let from = (at % BLOCK) as usize;
                let take = ((end - at) as usize).min(piece.len().saturating_sub(from));
                if take == 0 {
                    return Err(StoreError::OutOfRange {
                        pack: *id,
                        len: self.pack_len(id)?,
                        offset: *offset,
                        want: *len,
                    });
                }
                out.extend_from_slice(&piece[from..from + take]);
                at += take as u64;
            }
        }
        Ok(out)
    }

    fn lock(
        &self,
        what: Lockable<'_>,
        mode: LockMode,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let key = self.lockable_key(what)?;
        self.bucket
            .lock_key(&key, mode, until)
            .map_err(|text| StoreError::Io {
                path: format!("s3://{}/{key}", self.bucket.target.bucket).into(),
                source: other(text),
            })
    }

    fn remove_all(&self) -> Result<(), StoreError> {
        let keys: Vec<Key> = self
            .list_under("")?
            .into_iter()
            .map(|meta| meta.location)
            .collect();
        for marker in keys.iter().filter(|k| k.as_ref().contains("/uploads/")) {
            self.abort_marked(marker)?;
        }
        for key in keys {
            match self.run(self.client().delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(&key, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: axum::http::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_bucket_lock_configuration_is_read_as_the_store_says_it() {
        let on = |mode, default_days| Ok(ObjectLock::On { mode, default_days });
        let cases = [
            (
                answer(
                    200,
                    "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>30</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
                ),
                on(LockMode::Governance, Some(30)),
            ),
            (
                answer(
                    200,
                    "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>",
                ),
                on(LockMode::Compliance, Some(730)),
            ),
            (
                answer(
                    200,
                    "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>",
                ),
                on(LockMode::Compliance, None),
            ),
            (
                answer(200, "<ObjectLockConfiguration></ObjectLockConfiguration>"),
                Ok(ObjectLock::Off),
            ),
            (
                answer(
                    404,
                    "<Error><Code>ObjectLockConfigurationNotFoundError</Code><Message>Object Lock configuration does not exist for this bucket</Message></Error>",
                ),
                Ok(ObjectLock::Off),
            ),
            (
                answer(
                    501,
                    "<Error><Code>NotImplemented</Code><Message>not implemented</Message></Error>",
                ),
                Ok(ObjectLock::Unsupported),
            ),
            // A store that ignores the query and lists the bucket.
            (
                answer(200, "<ListBucketResult><Name>b</Name></ListBucketResult>"),
                Ok(ObjectLock::Unsupported),
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(
                lock_from(&given),
                expected,
                "{}",
                String::from_utf8_lossy(&given.body)
            );
        }
        let missing = lock_from(&answer(
            404,
            "<Error><Code>NoSuchBucket</Code><Message>no</Message></Error>",
        ));
        assert!(missing.unwrap_err().contains("does not exist"));
        let refused = lock_from(&answer(
            403,
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        ));
        assert!(refused.unwrap_err().contains("AccessDenied"));
        // Not XML at all (a proxy's page): an error, never a panic.
        assert!(lock_from(&answer(502, "<html>bad gateway")).is_err());
    }

    #[test]
    fn a_retention_is_asked_in_the_words_s3_uses() {
        let until = chrono::DateTime::parse_from_rfc3339("2027-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            retention_body(LockMode::Compliance, until),
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>2027-01-02T03:04:05.678Z</RetainUntilDate></Retention>"
        );
    }

    #[test]
    fn a_refusal_for_room_is_told_from_other_refusals() {
        for full in [
            "403 AccessDenied: Bucket size quota is reached, maximum total size of objects for this bucket: 8388608",
            "Forbidden: Object quota is reached, maximum objects for this bucket: 10",
            "<Code>QuotaExceeded</Code>",
            "XMinioAdminBucketQuotaExceeded: Bucket quota exceeded",
            "XMinioStorageFull: Storage backend has reached its minimum free drive threshold",
            "Client error with status 507 Insufficient Storage",
        ] {
            assert!(refused_for_room(full), "{full}");
        }
        for not in [
            "403 AccessDenied: The AWS Access Key Id you provided does not exist",
            "Error performing PUT http://127.0.0.1:3900/cloudkeep/quotas/q5070/packs/50/507a.pack",
            "NoSuchBucket",
        ] {
            assert!(!refused_for_room(not), "{not}");
        }
    }
}
