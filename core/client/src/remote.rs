//! A cloud repository on a gateway as a [`RepoBackend`]: the engine backs up, restores,
//! verifies and browses through it exactly as through a local folder. Packs go up with the ids
//! of the blobs inside (the gateway cannot read the sealed pack index), points are committed
//! (the gateway checks their chunks), reads use HTTP ranges. The store holds a task on the
//! gateway (renewed in the background) for its writes.
//!
//! The engine is synchronous; the store owns a small async runtime and blocks on it. Do not
//! call it from inside another async runtime (use `spawn_blocking`).
//!
//! A gateway that stops answering mid-run is left for the next one of the provider's list
//! ([`Gateways`]): the session and the task live in the SP's shared database, so the same run
//! goes on there. A request that got no answer is sent again (reads and idempotent writes);
//! a pack upload first asks whether the pack arrived after all, so nothing stored is sent
//! twice, and a point's commit is idempotent on the gateway, so it commits once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

use super::ClientError;
use super::failover::first_answering;
use cloudkeep_api::{
    CHUNKS_HEADER, LoginRequest, LoginResponse, MAX_READ_PACKS, MAX_READ_RANGES, NewTask, PackInfo,
    PointInfo, ReadRange, ReadRequest, TASK_HEADER, TaskInfo,
};
use cloudkeep_repo::backend::{MetaKind, PackStore, RepoBackend, StoreError};
use cloudkeep_repo::pack::PackEntry;
use cloudkeep_repo::pack::PackId;

/// Read requests one batch keeps in flight: enough to hide the round trip and keep the
/// gateway's disk and the link busy, few enough to bound memory (each up to
/// [`READ_REQUEST_BYTES`]).
const READS_IN_FLIGHT: usize = 4;

/// Spans are gathered into read requests of about this many bytes (one request per several
/// spans): the gateway's per-request work is paid once per request, and a batch of spans
/// (about 32 MiB in a restore) still spreads over [`READS_IN_FLIGHT`] requests.
const READ_REQUEST_BYTES: u64 = 8 << 20;

/// Blobs this far apart are still read as one span. Through a gateway every byte between
/// them is encrypted, sent and decrypted, while another range in the same request costs
/// only a line of its JSON and a read on the gateway's disk.
const MERGE_GAP: u64 = 16 << 10;

/// How a remote store finds its repository.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    /// The provider's gateways (`host:port`), in failover order.
    pub addresses: Vec<String>,
    /// Pinned certificate fingerprint.
    pub fingerprint: String,
    /// Account (`tenant` or `tenant/sub`).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The tenant's name for the cloud repository.
    pub repo: String,
    /// One of the account's own subtenants to act for (its name after `tenant/`): its
    /// repository is reached with the tenant's login, as the subtenant.
    pub act_as: Option<String>,
}

/// How often, in all, a request with no answer is tried again (through the next gateway each
/// time, waiting a little longer each round) before the run gives up.
const TRIES: u32 = 8;

/// How often a write the gateway answers "busy" (its repository is being switched to other
/// storage, usually for seconds) is sent again, half a second apart: ten minutes in all.
const BUSY_TRIES: u32 = 1200;

/// The provider's gateways, and the one this store talks to now.
#[derive(Debug)]
pub struct Gateways {
    /// `host:port` of each, in failover order.
    addresses: Vec<String>,
    /// Index of the one in use.
    current: AtomicUsize,
}

impl Gateways {
    fn new(addresses: Vec<String>, current: usize) -> Self {
        Self {
            addresses,
            current: AtomicUsize::new(current),
        }
    }

    /// The gateway in use.
    fn current(&self) -> (usize, &str) {
        let at = self.current.load(Ordering::Relaxed) % self.addresses.len().max(1);
        (at, self.addresses.get(at).map_or("", String::as_str))
    }

    /// Leaves gateway `from` for the next (unless another request moved on already); returns
    /// the one now in use.
    fn fail_over(&self, from: usize) -> &str {
        let next = (from + 1) % self.addresses.len().max(1);
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed);
        self.current().1
    }
}

/// Whether a request that failed this way got no answer (the gateway went away, the
/// connection broke, nothing came back in time): worth sending again elsewhere.
fn unanswered(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

/// A gateway repository as a backend.
pub struct RemoteStore {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    gateways: Arc<Gateways>,
    repo: String,
    token: String,
    task: String,
    lens: Mutex<HashMap<PackId, u64>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("gateway", &self.gateways.current().1)
            .field("repo", &self.repo)
            .finish()
    }
}

fn refused(e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused {
        code: None,
        message: e.to_string(),
    }
}

impl RemoteStore {
    /// Logs in, starts a task and returns the store.
    pub fn connect(target: &RemoteTarget) -> Result<Self, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        // Data moves over several HTTP/1.1 connections, one TLS stream each, so encryption and
        // decryption spread over the cores. `http1_only` alone does not do it with a
        // preconfigured TLS: the ALPN offered decides, and with "h2" offered the gateway picks
        // HTTP/2 and every transfer shares one connection.
        let mut tls = super::tls::pinned_config(&target.fingerprint)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(sub) = &target.act_as {
            let value = reqwest::header::HeaderValue::from_str(sub)
                .map_err(|_| ClientError::Protocol(format!("\"{sub}\" is not a subtenant name")))?;
            headers.insert(cloudkeep_api::ACT_AS_HEADER, value);
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .http1_only()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(600))
            // Before the gateway's own idle limit closes it (`[connections] header_secs`).
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let addresses: Vec<String> = target
            .addresses
            .iter()
            .map(|a| super::with_default_port(a))
            .collect();
        let (root, token, task) = rt
            .block_on(first_answering(&target.addresses, |address| {
                let http = http.clone();
                async move {
                    let address = super::with_default_port(&address);
                    let root = format!("https://{address}/v1");
                    let login: LoginResponse = check(
                        http.post(format!("{root}/login"))
                            .json(&LoginRequest {
                                user: target.user.clone(),
                                password: target.password.clone(),
                            })
                            .send()
                            .await,
                        (&address, &target.fingerprint),
                    )
                    .await?;
                    let task: TaskInfo = check(
                        http.post(format!("{root}/tasks"))
                            .bearer_auth(&login.token)
                            .json(&NewTask {
                                kind: "backup".into(),
                            })
                            .send()
                            .await,
                        (&address, &target.fingerprint),
                    )
                    .await?;
                    Ok((root, login.token, task.id))
                }
            }))
            .unwrap_or_else(|| {
                Err(ClientError::Protocol(
                    "no gateway address to connect to; rescan the provider".into(),
                ))
            })?;
        let first = addresses
            .iter()
            .position(|a| root == format!("https://{a}/v1"))
            .unwrap_or(0);
        let gateways = Arc::new(Gateways::new(addresses, first));
        let renewer = {
            let (http, gateways, token, task) =
                (http.clone(), gateways.clone(), token.clone(), task.clone());
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    // Through whichever gateway the store uses now.
                    let url = format!("https://{}/v1/tasks/{task}/renew", gateways.current().1);
                    if let Err(e) = http.post(&url).bearer_auth(&token).send().await {
                        tracing::warn!("renewing the gateway task failed: {e}");
                    }
                }
            })
        };
        Ok(Self {
            repo: target.repo.clone(),
            gateways,
            rt,
            http,
            token,
            task,
            lens: Mutex::default(),
            renewer: Some(renewer),
        })
    }

    /// The gateways this store goes through, the one in use first.
    pub fn gateway(&self) -> String {
        self.gateways.current().1.to_owned()
    }

    /// A request to the repository on gateway `address`.
    fn request_to(
        &self,
        address: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("https://{address}/v1/repos/{}{path}", self.repo),
            )
            .bearer_auth(&self.token)
            .header(TASK_HEADER, &self.task)
    }

    /// Sends the request `make` builds for a gateway and reads its whole answer; when no
    /// answer comes (the gateway went away mid-run), the same request goes to the next
    /// gateway, up to [`TRIES`] times. `retry` is asked first, each time, whether sending it
    /// again is still needed (`Some(bytes)`: the work was done; that is the answer).
    async fn exchange(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
        retry: Option<&(dyn Fn(&str) -> reqwest::RequestBuilder + Sync)>,
    ) -> Result<(StatusCode, Vec<u8>), StoreError> {
        let mut tries = 0;
        let mut busy = 0;
        loop {
            let (at, address) = self.gateways.current();
            if tries > 0
                && let Some(check) = retry
                && let Ok(resp) = check(address).send().await
                && resp.status().is_success()
            {
                tracing::info!("gateway {address} already has what the lost request sent");
                return Ok((StatusCode::OK, Vec::new()));
            }
            let outcome = match make(address).send().await {
                Ok(resp) => read_whole(resp).await,
                Err(e) => Err(e),
            };
            match outcome {
                // The repository is being switched to other storage: a moment's wait.
                Ok((StatusCode::SERVICE_UNAVAILABLE, body))
                    if busy < BUSY_TRIES
                        && serde_json::from_slice::<cloudkeep_api::ErrorBody>(&body)
                            .is_ok_and(|b| b.code == cloudkeep_api::ErrorCode::Busy) =>
                {
                    busy += 1;
                    if busy == 1 {
                        tracing::info!(
                            "the provider is moving this repository to other storage; waiting to write"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(answered) => return Ok(answered),
                Err(e) if unanswered(&e) && tries + 1 < TRIES => {
                    tries += 1;
                    let next = self.gateways.fail_over(at).to_owned();
                    tracing::warn!(
                        "gateway {address} did not answer ({e}); going on through {next} (try {tries} of {})",
                        TRIES - 1
                    );
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(tries))).await;
                }
                Err(e) => return Err(refused(e)),
            }
        }
    }

    /// Sends a request to the repository (`path` under it), failing over as
    /// [`Self::exchange`] does; `Ok(None)` for 404, the gateway's `{code, message}` as the
    /// error.
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(bytes::Bytes, &'static str)>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let make = |address: &str| {
            let req = self.request_to(address, method.clone(), path);
            match &body {
                Some((bytes, kind)) => req
                    .header(reqwest::header::CONTENT_TYPE, *kind)
                    .body(bytes.clone()),
                None => req,
            }
        };
        self.rt.block_on(async {
            let (status, bytes) = self.exchange(make, None).await?;
            answer(status, bytes)
        })
    }

    /// [`Self::send`] with a JSON body.
    fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let json = serde_json::to_vec(body).map_err(refused)?;
        self.send(method, path, Some((json.into(), "application/json")))
    }

    /// Runs `attempt` against the gateway in use; when it got no answer, against the next
    /// one, up to [`TRIES`] times (reads: sending them again is always safe).
    async fn with_failover<T, Fut>(&self, attempt: impl Fn(String) -> Fut) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, Failed>>,
    {
        let mut tries = 0;
        loop {
            let (at, address) = self.gateways.current();
            match attempt(address.to_owned()).await {
                Ok(done) => return Ok(done),
                Err(Failed::Store(e)) => return Err(e),
                Err(Failed::Unanswered(e)) if tries + 1 < TRIES => {
                    tries += 1;
                    let next = self.gateways.fail_over(at).to_owned();
                    tracing::warn!(
                        "gateway {address} did not answer a read ({e}); going on through {next}"
                    );
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(tries))).await;
                }
                Err(Failed::Unanswered(e)) => return Err(refused(e)),
            }
        }
    }

    /// Reads a range of a pack.
    async fn range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let last = offset
            .checked_add(len - 1)
            .filter(|_| len <= cloudkeep_repo::pack::MAX_PACK_LEN)
            .ok_or(StoreError::OutOfRange {
                pack: *id,
                len: 0,
                offset,
                want: len,
            })?;
        self.with_failover(|address| async move {
            let req = self
                .request_to(
                    &address,
                    reqwest::Method::GET,
                    &format!("/packs/{}", id.to_hex()),
                )
                .header(reqwest::header::RANGE, format!("bytes={offset}-{last}"));
            let mut resp = req.send().await.map_err(Failed::from)?;
            if !resp.status().is_success() {
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(Failed::from)?;
                answer(status, Vec::from(bytes)).map_err(Failed::Store)?;
                return Err(Failed::Store(StoreError::NotFound { pack: *id }));
            }
            // Straight into one buffer of the asked size: the body arrives in many TLS
            // records, and gathering them first and copying after costs a pass over every
            // restored byte.
            let cut = |got: usize| {
                Failed::Store(StoreError::OutOfRange {
                    pack: *id,
                    len: got as u64,
                    offset,
                    want: len,
                })
            };
            let want = usize::try_from(len).map_err(|_| cut(0))?;
            let mut bytes = Vec::with_capacity(want);
            while let Some(piece) = resp.chunk().await.map_err(Failed::from)? {
                if bytes.len() + piece.len() > want {
                    return Err(cut(bytes.len() + piece.len()));
                }
                bytes.extend_from_slice(&piece);
            }
            if bytes.len() != want {
                return Err(cut(bytes.len()));
            }
            Ok(bytes)
        })
        .await
    }

    /// Reads several ranges with one request (`POST …/reads`): the answer is their bytes end
    /// to end, cut here straight into one buffer per range.
    async fn ranges(&self, ranges: &[(PackId, u64, u64)]) -> Result<Vec<Vec<u8>>, StoreError> {
        let body = ReadRequest {
            ranges: ranges
                .iter()
                .map(|(pack, offset, len)| ReadRange {
                    pack: pack.to_hex(),
                    offset: *offset,
                    len: *len,
                })
                .collect(),
        };
        let body = &body;
        self.with_failover(|address| async move {
            let mut resp = self
                .request_to(&address, reqwest::Method::POST, "/reads")
                .json(body)
                .send()
                .await
                .map_err(Failed::from)?;
            if !resp.status().is_success() {
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(Failed::from)?;
                answer(status, Vec::from(bytes)).map_err(Failed::Store)?;
                return Err(Failed::Store(refused(
                    "the gateway does not offer multi-range reads",
                )));
            }
            let mut splitter = RangeSplitter::new(ranges.iter().map(|(_, _, len)| *len));
            while let Some(piece) = resp.chunk().await.map_err(Failed::from)? {
                splitter.push(&piece).map_err(Failed::Store)?;
            }
            splitter.finish().map_err(Failed::Store)
        })
        .await
    }

    /// One request's worth of ranges: all of them, or (when the combined read fails) each
    /// on its own, so that a failure stays with the ranges it concerns.
    async fn read_group(&self, group: &[(PackId, u64, u64)]) -> Vec<Result<Vec<u8>, StoreError>> {
        if let [(id, offset, len)] = group {
            return vec![self.range(id, *offset, *len).await];
        }
        match self.ranges(group).await {
            Ok(parts) => parts.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::debug!(
                    "a read of {} ranges failed ({e}); reading them one by one",
                    group.len()
                );
                let mut out = Vec::with_capacity(group.len());
                for (id, offset, len) in group {
                    out.push(self.range(id, *offset, *len).await);
                }
                out
            }
        }
    }

    /// The gateway's rows of this repository's packs.
    fn pack_rows(&self) -> Result<Vec<PackInfo>, StoreError> {
        let bytes = self
            .send(reqwest::Method::GET, "/packs", None)?
            .ok_or_else(|| refused("the gateway does not know this cloud repository"))?;
        serde_json::from_slice(&bytes).map_err(refused)
    }

    fn meta_path(kind: MetaKind, name: &str) -> String {
        match kind {
            MetaKind::Point => format!("/points/{name}"),
            MetaKind::Keyring => format!("/objects/keyring/{name}"),
            MetaKind::Index => format!("/objects/index/{name}"),
            MetaKind::ChunkSet => format!("/objects/sets/{name}"),
            MetaKind::Lock => format!("/objects/locks/{name}"),
        }
    }

    fn list_path(kind: MetaKind) -> &'static str {
        match kind {
            MetaKind::Point => "/points",
            MetaKind::Keyring => "/objects/keyring",
            MetaKind::Index => "/objects/index",
            MetaKind::ChunkSet => "/objects/sets",
            MetaKind::Lock => "/objects/locks",
        }
    }
}

/// How an attempt at a read failed: no answer (try the next gateway), or an answer that
/// says no.
enum Failed {
    /// No answer.
    Unanswered(reqwest::Error),
    /// The gateway's answer, or a broken one.
    Store(StoreError),
}

impl From<reqwest::Error> for Failed {
    fn from(e: reqwest::Error) -> Self {
        if unanswered(&e) {
            Self::Unanswered(e)
        } else {
            Self::Store(refused(e))
        }
    }
}

/// An answer's body; `Ok(None)` for 404, the gateway's `{code, message}` as the error.
fn answer(status: StatusCode, bytes: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(
            match serde_json::from_slice::<cloudkeep_api::ErrorBody>(&bytes) {
                Ok(body) => StoreError::Refused {
                    code: Some(body.code),
                    message: body.message,
                },
                Err(_) => StoreError::Refused {
                    code: None,
                    message: format!("the gateway answered HTTP {status}"),
                },
            },
        );
    }
    Ok(Some(bytes))
}

async fn check<T: serde::de::DeserializeOwned>(
    resp: reqwest::Result<reqwest::Response>,
    (address, pin): (&str, &str),
) -> Result<T, ClientError> {
    let resp = match resp {
        Ok(resp) => resp,
        Err(e) => {
            return Err(super::tls::unreachable_or_changed(address, pin, e.to_string()).await);
        }
    };
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if !status.is_success() {
        return Err(
            match serde_json::from_slice::<cloudkeep_api::ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    code: body.code,
                    message: body.message,
                },
                Err(_) => ClientError::Protocol(format!("HTTP {status}")),
            },
        );
    }
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}

impl Drop for RemoteStore {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        let url = format!(
            "https://{}/v1/tasks/{}",
            self.gateways.current().1,
            self.task
        );
        let req = self.http.delete(url).bearer_auth(&self.token);
        let _ = self.rt.block_on(async { req.send().await });
    }
}

impl PackStore for RemoteStore {
    fn put_pack(&self, id: &PackId, bytes: &[u8], blobs: &[PackEntry]) -> Result<(), StoreError> {
        let mut body = Vec::with_capacity(blobs.len() * 36 + bytes.len());
        for blob in blobs {
            body.extend_from_slice(&blob.id.0);
        }
        for blob in blobs {
            body.extend_from_slice(&blob.stored_len.to_le_bytes());
        }
        body.extend_from_slice(bytes);
        let body = bytes::Bytes::from(body);
        let path = format!("/packs/{}", id.to_hex());
        let make = |address: &str| {
            self.request_to(address, reqwest::Method::PUT, &path)
                .header(CHUNKS_HEADER, blobs.len().to_string())
                .header(cloudkeep_api::CHUNK_LENS_HEADER, "1")
                .body(body.clone())
        };
        // Before sending it again: did the lost upload arrive after all?
        let stored = |address: &str| {
            self.request_to(address, reqwest::Method::GET, &path)
                .header(reqwest::header::RANGE, "bytes=0-0")
        };
        let (status, answered) = self.rt.block_on(self.exchange(make, Some(&stored)))?;
        answer(status, answered)?
            .ok_or_else(|| refused("the gateway does not know this cloud repository"))?;
        if let Ok(mut lens) = self.lens.lock() {
            lens.insert(*id, bytes.len() as u64);
        }
        Ok(())
    }

    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        self.rt.block_on(self.range(id, offset, len))
    }

    fn parallel_puts(&self) -> usize {
        2
    }

    fn read_ranges(&self, ranges: &[(PackId, u64, u64)]) -> Vec<Result<Vec<u8>, StoreError>> {
        use futures_util::StreamExt;
        let groups: Vec<Vec<Result<Vec<u8>, StoreError>>> = self.rt.block_on(
            futures_util::stream::iter(request_groups(ranges))
                .map(|group| self.read_group(group))
                .buffered(READS_IN_FLIGHT)
                .collect(),
        );
        groups.into_iter().flatten().collect()
    }

    fn merge_gap(&self) -> u64 {
        MERGE_GAP
    }

    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError> {
        if let Some(len) = self.lens.lock().ok().and_then(|l| l.get(id).copied()) {
            return Ok(len);
        }
        self.list_packs()?
            .into_iter()
            .find(|(p, _)| p == id)
            .map(|(_, len)| len)
            .ok_or(StoreError::NotFound { pack: *id })
    }

    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        let rows = self.pack_rows()?;
        let packs: Vec<(PackId, u64)> = rows
            .into_iter()
            .filter_map(|r| PackId::from_hex(&r.id).map(|id| (id, r.bytes.max(0) as u64)))
            .collect();
        if let Ok(mut lens) = self.lens.lock() {
            lens.extend(packs.iter().copied());
        }
        Ok(packs)
    }

    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError> {
        match self
            .drop_packs(std::slice::from_ref(id))?
            .into_iter()
            .next()
        {
            None => Ok(()),
            Some((_, why)) => Err(refused(format!("the gateway kept pack {id}: {why}"))),
        }
    }

    /// The gateway decides: a pack goes only when no restore point (live or in the recycle
    /// bin) needs a chunk that no other pack has; under insider protection it is retired.
    fn drop_packs(&self, ids: &[PackId]) -> Result<Vec<(PackId, String)>, StoreError> {
        let mut kept = Vec::new();
        for batch in ids.chunks(cloudkeep_api::MAX_DROP_PACKS) {
            let req = cloudkeep_api::DropRequest {
                packs: batch.iter().map(PackId::to_hex).collect(),
            };
            let bytes = self
                .send_json(reqwest::Method::POST, "/packs/drop", &req)?
                .ok_or_else(|| refused("this gateway cannot reclaim space (update it)"))?;
            let report: cloudkeep_api::DropReport =
                serde_json::from_slice(&bytes).map_err(refused)?;
            if let Ok(mut lens) = self.lens.lock() {
                for id in report.removed.iter().chain(&report.retired) {
                    if let Some(id) = PackId::from_hex(id) {
                        lens.remove(&id);
                    }
                }
            }
            kept.extend(
                report
                    .kept
                    .into_iter()
                    .filter_map(|(id, why)| PackId::from_hex(&id).map(|id| (id, why))),
            );
        }
        Ok(kept)
    }

    fn set_aside(&self, id: &PackId) -> Result<cloudkeep_api::PackHealth, StoreError> {
        let Some(bytes) = self.send(
            reqwest::Method::POST,
            &format!("/packs/{}/check", id.to_hex()),
            None,
        )?
        else {
            // The gateway has no such pack (any more): it was lost and forgotten already.
            return Ok(cloudkeep_api::PackHealth::Missing);
        };
        let check: cloudkeep_api::PackCheck = serde_json::from_slice(&bytes).map_err(refused)?;
        if check.health != cloudkeep_api::PackHealth::Intact
            && let Ok(mut lens) = self.lens.lock()
        {
            lens.remove(id);
        }
        Ok(check.health)
    }

    fn damaged_packs(&self) -> Result<Vec<PackId>, StoreError> {
        Ok(self
            .pack_rows()?
            .into_iter()
            .filter(|r| r.damaged)
            .filter_map(|r| PackId::from_hex(&r.id))
            .collect())
    }
}

/// Cuts the answer to a multi-range read (the ranges' bytes end to end, arriving in pieces of
/// any size) into one buffer per range. The gateway is a peer: an answer longer or shorter
/// than the ranges asked for is refused, never trusted.
pub struct RangeSplitter {
    wants: std::vec::IntoIter<u64>,
    count: usize,
    current: Option<(Vec<u8>, usize)>,
    out: Vec<Vec<u8>>,
}

impl RangeSplitter {
    /// A splitter for ranges of these lengths, in order.
    pub fn new(lens: impl Iterator<Item = u64>) -> Self {
        let wants: Vec<u64> = lens.collect();
        Self {
            count: wants.len(),
            wants: wants.into_iter(),
            current: None,
            out: Vec::new(),
        }
    }

    fn short(&self, what: &str) -> StoreError {
        refused(format!(
            "the gateway's answer to a read of {} ranges was {what}",
            self.count
        ))
    }

    /// Takes the next piece of the answer.
    pub fn push(&mut self, mut piece: &[u8]) -> Result<(), StoreError> {
        while !piece.is_empty() {
            if self.current.is_none() {
                let want = self.wants.next().ok_or_else(|| self.short("too long"))?;
                let want = usize::try_from(want).map_err(|_| self.short("impossible"))?;
                // The lengths are this client's own requests (bounded by the gateway's limit
                // per request), so each buffer is made at its size once: no copies as it fills.
                self.current = Some((Vec::with_capacity(want), want));
            }
            let Some((buf, want)) = self.current.as_mut() else {
                continue;
            };
            let take = (*want - buf.len()).min(piece.len());
            buf.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if buf.len() == *want {
                self.out.extend(self.current.take().map(|(buf, _)| buf));
            }
        }
        Ok(())
    }

    /// The ranges' bytes, once the answer has ended.
    pub fn finish(mut self) -> Result<Vec<Vec<u8>>, StoreError> {
        // Ranges of length 0 take no bytes.
        while self.current.is_none() && self.out.len() < self.count {
            match self.wants.next() {
                Some(0) => self.out.push(Vec::new()),
                _ => break,
            }
        }
        if self.current.is_some() || self.out.len() != self.count {
            return Err(self.short("cut short"));
        }
        Ok(self.out)
    }
}

/// Cuts `ranges` (in the order given) into runs that one read request each can carry: about
/// [`READ_REQUEST_BYTES`] (a longer range goes alone), within the gateway's limits on ranges
/// and packs per request.
fn request_groups(ranges: &[(PackId, u64, u64)]) -> Vec<&[(PackId, u64, u64)]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes, mut packs) = (0, 0u64, 0usize);
    for (n, (pack, _, len)) in ranges.iter().enumerate() {
        if n > start {
            let new_pack = ranges[n - 1].0 != *pack;
            if bytes + len > READ_REQUEST_BYTES
                || n - start >= MAX_READ_RANGES
                || (new_pack && packs >= MAX_READ_PACKS)
            {
                groups.push(&ranges[start..n]);
                (start, bytes, packs) = (n, 0, 0);
            }
        }
        if n == start || ranges[n - 1].0 != *pack {
            packs += 1;
        }
        bytes += len;
    }
    if start < ranges.len() {
        groups.push(&ranges[start..]);
    }
    groups
}

/// An answer's status and body, read into one buffer of the announced length (collecting the
/// body and then joining its pieces held a big object — a full chunk set of hundreds of
/// megabytes — twice). The announced length is only a hint: at most the largest object is
/// reserved up front, and a body of another length still reads whole.
async fn read_whole(mut resp: reqwest::Response) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let status = resp.status();
    let hint = resp
        .content_length()
        .unwrap_or(0)
        .min(cloudkeep_repo::backend::MAX_META_LEN);
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        // No answer is larger than the largest object: a peer sending more is cut off (as a
        // bad answer) before it fills this computer's memory.
        if (body.len() + chunk.len()) as u64 > cloudkeep_repo::backend::MAX_META_LEN {
            return Ok((StatusCode::BAD_GATEWAY, Vec::new()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

impl RepoBackend for RemoteStore {
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_meta_owned(kind, name, bytes.to_vec())
    }

    fn put_meta_owned(&self, kind: MetaKind, name: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.send(
            reqwest::Method::PUT,
            &Self::meta_path(kind, name),
            Some((bytes::Bytes::from(bytes), "application/octet-stream")),
        )?
        .ok_or_else(|| refused("the gateway does not know this cloud repository"))?;
        Ok(())
    }

    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError> {
        self.send(reqwest::Method::GET, &Self::meta_path(kind, name), None)?
            .ok_or_else(|| StoreError::NotFoundMeta {
                kind,
                name: name.to_owned(),
            })
    }

    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        let bytes = self
            .send(reqwest::Method::GET, Self::list_path(kind), None)?
            .ok_or_else(|| refused("the gateway does not know this cloud repository"))?;
        let mut names: Vec<String> = if kind == MetaKind::Point {
            let rows: Vec<PointInfo> = serde_json::from_slice(&bytes).map_err(refused)?;
            rows.into_iter().map(|r| r.name).collect()
        } else {
            serde_json::from_slice(&bytes).map_err(refused)?
        };
        names.sort();
        Ok(names)
    }

    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError> {
        // Missing is not an error (the trait's contract).
        self.send(reqwest::Method::DELETE, &Self::meta_path(kind, name), None)?;
        Ok(())
    }

    fn points_changed(&self) {
        if let Err(e) = self.send(reqwest::Method::POST, "/space", None) {
            tracing::debug!("the gateway did not measure the repository's space again: {e}");
        }
    }

    fn retained_sets(&self) -> Result<Vec<String>, StoreError> {
        let bytes = self
            .send(reqwest::Method::GET, "/retained-sets", None)?
            .ok_or_else(|| refused("this gateway cannot reclaim space (update it)"))?;
        serde_json::from_slice(&bytes).map_err(refused)
    }
}
