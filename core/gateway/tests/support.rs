//! Shared by the suites that talk to an in-process gateway: a real gateway (real TLS on
//! loopback, SQLite) with a folder cloud repository, a tenant's pinned HTTP session that can
//! send anything (well-formed or not), and repositories made by the real engine to upload.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cloudkeep_api::{QuotaSpec, TenantSettings};
use cloudkeep_gateway::server::{RunOptions, Started, run};
use cloudkeep_gateway::store::Db;
use cloudkeep_gateway::{InitOptions, init};
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backend::{MetaKind, PackStore, RepoBackend};
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::repo::{NewRepo, Repository, RestorePoint};
use cloudkeep_tests::pseudo_random;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct Gateway {
    pub addr: String,
    pub db: Db,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// A fresh gateway with one folder cloud repository, "main".
pub async fn gateway_with_repo() -> (tempfile::TempDir, std::path::PathBuf, Gateway) {
    let tmp = tempfile::tempdir().unwrap();
    let gw_dir = tmp.path().join("gw");
    let gw = start_gateway(&gw_dir).await;
    gw.db
        .add_repo(cloudkeep_gateway::store::repos::NewRepo::folder(
            "main",
            &tmp.path().join("storage").display().to_string(),
        ))
        .await
        .unwrap();
    (tmp, gw_dir, gw)
}

#[cfg(unix)]
/// What a test's object-storage repository reaches: the cluster's node `node`, under `prefix`.
pub fn garage_access(
    garage: &cloudkeep_tests::garage::Garage,
    node: usize,
    prefix: &str,
) -> cloudkeep_api::S3Access {
    use cloudkeep_tests::garage::{ACCESS_KEY, BUCKET, REGION, SECRET_KEY};
    cloudkeep_api::S3Access {
        target: cloudkeep_api::S3Target {
            endpoint: garage.endpoint(node),
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            region: REGION.into(),
        },
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
    }
}

#[cfg(unix)]
/// A fresh gateway whose cloud repository "main" is a prefix of the Garage cluster's bucket,
/// added through the admin API (tested, credentials sealed) as an SP would.
pub async fn gateway_with_s3_repo(
    garage: &cloudkeep_tests::garage::Garage,
    prefix: &str,
) -> (tempfile::TempDir, std::path::PathBuf, Gateway) {
    let tmp = tempfile::tempdir().unwrap();
    let gw_dir = tmp.path().join("gw");
    let gw = start_gateway(&gw_dir).await;
    let mut admin = cloudkeep_client::SpClient::new(&gw.addr, &fingerprint(&gw_dir)).unwrap();
    admin.login("admin", "admin-password").await.unwrap();
    let repo = admin
        .add_s3_repo("main", &garage_access(garage, 0, prefix))
        .await
        .unwrap();
    assert_eq!(repo.kind, "s3");
    (tmp, gw_dir, gw)
}

impl Gateway {
    /// Sends the shutdown signal and waits for the gateway to stop.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap();
    }
}

pub async fn start_gateway(dir: &Path) -> Gateway {
    start_gateway_with(dir, |_| {}).await
}

/// A fresh gateway whose configuration `edit` changes before it starts.
pub async fn start_gateway_with(
    dir: &Path,
    edit: impl FnOnce(&mut cloudkeep_gateway::GatewayConfig),
) -> Gateway {
    let mut report = init(InitOptions {
        data_dir: dir.to_path_buf(),
        hostnames: vec!["127.0.0.1".into()],
        db: None,
        admin_user: "admin".into(),
        admin_password: "admin-password".into(),
        listen: Some("127.0.0.1:0".into()),
    })
    .await
    .unwrap();
    edit(&mut report.config);
    report.config.save(dir).unwrap();
    run_gateway(dir, None, None).await
}

/// Another gateway process of the same SP: `run` on a gateway folder made by
/// [`start_gateway`] (its database and storage), registered as `id`, with `/metrics` and
/// `/healthz` at `metrics_listen` when given.
pub async fn run_gateway(dir: &Path, id: Option<&str>, metrics_listen: Option<&str>) -> Gateway {
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Started>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let data_dir = dir.to_path_buf();
    let config = cloudkeep_gateway::GatewayConfig::load(dir).unwrap();
    let (id, metrics_listen) = (id.map(str::to_owned), metrics_listen.map(str::to_owned));
    let task = tokio::spawn(async move {
        run(
            RunOptions {
                data_dir,
                listen: Some("127.0.0.1:0".into()),
                allow_root: true,
                id,
                advertise: Some("127.0.0.1".into()),
                metrics_listen,
            },
            move |s| started_tx.send(s.clone()).unwrap(),
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
        .unwrap();
    });
    let started = tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    Gateway {
        addr: started.addr.to_string(),
        db: Db::open(&config.db).await.unwrap(),
        stop: Some(stop_tx),
        task,
    }
}

/// A tenant's HTTP session on the gateway, pinned to its certificate.
pub struct Tenant {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub task: std::sync::Mutex<Option<String>>,
}

/// A client that trusts the gateway's certificate by its pin; `alpn` replaces the protocols
/// it offers (the remote store offers only `http/1.1`).
pub fn pinned_client(dir: &Path, alpn: Option<&[u8]>) -> reqwest::Client {
    let cert = cloudkeep_gateway::tls::CertStore::open(dir)
        .unwrap()
        .info()
        .unwrap();
    let mut config = cloudkeep_client::tls::pinned_config(&cert.fingerprint).unwrap();
    if let Some(protocol) = alpn {
        config.alpn_protocols = vec![protocol.to_vec()];
    }
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

impl Tenant {
    /// The same session over another client.
    pub fn with_client(&self, http: reqwest::Client) -> Self {
        Self {
            http,
            base: self.base.clone(),
            token: self.token.clone(),
            task: std::sync::Mutex::new(self.task.lock().unwrap().clone()),
        }
    }

    pub async fn login(
        gw: &Gateway,
        dir: &Path,
        user: &str,
        password: &str,
    ) -> Result<Self, (StatusCode, Value)> {
        let http = pinned_client(dir, None);
        let base = format!("https://{}", gw.addr);
        let resp = http
            .post(format!("{base}/v1/login"))
            .json(&json!({"user": user, "password": password}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        if !status.is_success() {
            return Err((status, body));
        }
        Ok(Self {
            http,
            base,
            token: body["token"].as_str().unwrap().to_owned(),
            task: std::sync::Mutex::new(None),
        })
    }

    /// Starts a task (writes need one); returns the gateway's answer.
    pub async fn start_task(&self) -> (StatusCode, Value) {
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/tasks",
                Some(json!({"kind": "backup"})),
            )
            .await;
        if status.is_success() {
            *self.task.lock().unwrap() = body["id"].as_str().map(str::to_owned);
        }
        (status, body)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> (StatusCode, Vec<u8>) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        let task = self.task.lock().unwrap().clone();
        if let Some(task) = task {
            req = req.header("x-cloudkeep-task", task);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let (status, out) = self
            .send(
                method,
                path,
                bytes,
                &[("content-type", "application/json".into())],
            )
            .await;
        (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }

    pub async fn put_object(
        &self,
        repo: &str,
        kind: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let (status, out) = self
            .send(
                reqwest::Method::PUT,
                &format!("/v1/repos/{repo}/objects/{kind}/{name}"),
                Some(bytes),
                &[],
            )
            .await;
        (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }

    pub async fn upload_pack(
        &self,
        repo: &str,
        id: &str,
        chunks: &[[u8; 32]],
        pack: &[u8],
    ) -> (StatusCode, Value) {
        let mut body: Vec<u8> = chunks.iter().flatten().copied().collect();
        body.extend_from_slice(pack);
        let (status, out) = self
            .send(
                reqwest::Method::PUT,
                &format!("/v1/repos/{repo}/packs/{id}"),
                Some(body),
                &[("x-cloudkeep-chunks", chunks.len().to_string())],
            )
            .await;
        (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }
}

/// A repository made by the engine: its objects and packs, ready to upload.
pub struct LocalRepo {
    pub keyring: Vec<u8>,
    pub index: Vec<(String, Vec<u8>)>,
    pub sets: Vec<(String, Vec<u8>)>,
    pub points: Vec<(String, Vec<u8>)>,
    pub packs: Vec<(String, Vec<[u8; 32]>, Vec<u8>)>,
}

pub fn make_local_repo(dir: &Path) -> LocalRepo {
    let source = dir.join("src");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..3 {
        std::fs::write(
            source.join(format!("f{i}.bin")),
            pseudo_random(700_000, i + 1),
        )
        .unwrap();
    }
    let store = Arc::new(FolderStore::open(dir.join("local-repo")).unwrap());
    let repo = new_repo(&store);
    backup_once(&repo, &source, None);
    snapshot(&store, &repo)
}

pub fn new_repo(store: &Arc<FolderStore>) -> Repository {
    encrypted_repo(store.clone())
}

pub fn backup_once(repo: &Repository, source: &Path, parent: Option<RestorePoint>) {
    backup(repo, &backup_options(source, parent), &|_| {}).unwrap();
}

/// A backup of `source` (job "docs" on computer "pc", fast compression).
pub fn backup_options(source: &Path, parent: Option<RestorePoint>) -> BackupOptions {
    BackupOptions {
        sources: vec![source.to_path_buf()],
        disks: vec![],
        excludes: vec![],
        one_file_system: false,
        compression: Compression::Fast,
        host: "pc".into(),
        job: "docs".into(),
        parent,
        cancel: Default::default(),
    }
}

/// Every object of a local repository, with the chunk ids of each pack.
pub fn snapshot(store: &Arc<FolderStore>, repo: &Repository) -> LocalRepo {
    let metas = |kind| {
        store
            .list_meta(kind)
            .unwrap()
            .into_iter()
            .map(|n| {
                let bytes = store.get_meta(kind, &n).unwrap();
                (n, bytes)
            })
            .collect::<Vec<_>>()
    };
    let index = repo.load_index().unwrap();
    let mut by_pack: HashMap<String, Vec<[u8; 32]>> = HashMap::new();
    for (id, loc) in index.iter() {
        by_pack.entry(loc.pack.to_hex()).or_default().push(id.0);
    }
    let packs = store
        .list_packs()
        .unwrap()
        .into_iter()
        .map(|(id, len)| {
            let bytes = store.read_range(&id, 0, len).unwrap();
            (
                id.to_hex(),
                by_pack.remove(&id.to_hex()).unwrap_or_default(),
                bytes,
            )
        })
        .collect();
    LocalRepo {
        keyring: store.get_meta(MetaKind::Keyring, "keyring").unwrap(),
        index: metas(MetaKind::Index),
        sets: metas(MetaKind::ChunkSet),
        points: metas(MetaKind::Point),
        packs,
    }
}

pub async fn add_tenant(
    db: &Db,
    name: &str,
    password: &str,
    quota: i64,
    settings: TenantSettings,
) -> i64 {
    let hash = cloudkeep_repo::crypto::hash_password(password, KdfParams::minimum()).unwrap();
    db.add_tenant(
        None,
        name,
        &hash,
        &settings,
        &[QuotaSpec {
            repo: "main".into(),
            friendly_name: Some("Cloud".into()),
            bytes: cloudkeep_model::units::Limit::from_stored(quota),
        }],
        false,
    )
    .await
    .unwrap()
    .id
}

/// Uploads every object, pack and point of `local` as a tenant would, checking each answer.
pub async fn upload_all(t: &Tenant, local: &LocalRepo) {
    assert_eq!(t.start_task().await.0, StatusCode::OK);
    assert_eq!(
        t.put_object("Cloud", "keyring", "keyring", local.keyring.clone())
            .await
            .0,
        StatusCode::OK
    );
    for (name, bytes) in &local.index {
        assert_eq!(
            t.put_object("Cloud", "index", name, bytes.clone()).await.0,
            StatusCode::OK
        );
    }
    for (name, bytes) in &local.sets {
        assert_eq!(
            t.put_object("Cloud", "sets", name, bytes.clone()).await.0,
            StatusCode::OK
        );
    }
    for (id, chunks, bytes) in &local.packs {
        assert_eq!(
            t.upload_pack("Cloud", id, chunks, bytes).await.0,
            StatusCode::OK
        );
    }
    for (name, bytes) in &local.points {
        let (status, out) = t
            .send(
                reqwest::Method::PUT,
                &format!("/v1/repos/Cloud/points/{name}"),
                Some(bytes.clone()),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
    }
}

/// Adds subtenant `name` of tenant `parent` with one quota on "main" ("Cloud"): `bytes`, or -1
/// to share its tenant's.
pub async fn add_subtenant(db: &Db, parent: i64, name: &str, password: &str, bytes: i64) -> i64 {
    let hash = cloudkeep_repo::crypto::hash_password(password, KdfParams::minimum()).unwrap();
    db.add_tenant(
        Some(parent),
        name,
        &hash,
        &TenantSettings::default(),
        &[QuotaSpec {
            repo: "main".into(),
            friendly_name: Some("Cloud".into()),
            bytes: cloudkeep_model::units::Limit::from_stored(bytes),
        }],
        false,
    )
    .await
    .unwrap()
    .id
}

/// The fingerprint of the certificate a gateway in `gw_dir` serves.
pub fn fingerprint(gw_dir: &Path) -> String {
    cloudkeep_gateway::tls::CertStore::open(gw_dir)
        .unwrap()
        .info()
        .unwrap()
        .fingerprint
}

/// How a tenant's remote store reaches the "Cloud" repository of `user` at `gw`.
pub fn remote_target(
    gw: &Gateway,
    gw_dir: &Path,
    user: &str,
    password: &str,
) -> cloudkeep_client::remote::RemoteTarget {
    cloudkeep_client::remote::RemoteTarget {
        addresses: vec![gw.addr.clone()],
        fingerprint: fingerprint(gw_dir),
        user: user.into(),
        password: password.into(),
        repo: "Cloud".into(),
        act_as: None,
    }
}

/// A new repository in `store`, encrypted with "pw" (cheap key derivation, for tests).
pub fn encrypted_repo(store: Arc<dyn RepoBackend>) -> Repository {
    Repository::init(
        store,
        NewRepo::Encrypted {
            password: "pw",
            kdf: KdfParams::minimum(),
        },
    )
    .unwrap()
}

/// Restores all of `point` into the folder `out` (overwriting).
pub fn restore_to(repo: &Repository, point: &RestorePoint, out: &Path) {
    use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
    restore(
        repo,
        point,
        &RestoreOptions {
            destination: Destination::Folder(out.to_path_buf()),
            paths: vec![],
            conflict: Conflict::Overwrite,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
}

/// The state of a second gateway process on `gw`'s database and data folder, for calling
/// the gateway's own maintenance (storage check, recycle-bin purge) directly.
pub fn gateway_state(gw: &Gateway, gw_dir: &Path, id: &str) -> cloudkeep_gateway::GatewayState {
    cloudkeep_gateway::GatewayState {
        db: gw.db.clone(),
        id: id.into(),
        data_dir: gw_dir.to_path_buf(),
        certs: cloudkeep_gateway::tls::CertStore::open(gw_dir).unwrap(),
        bans: Default::default(),
        stores: cloudkeep_gateway::session::Stores::new(Some(
            cloudkeep_gateway::GatewayConfig::load(gw_dir)
                .unwrap()
                .secrets_key(gw_dir)
                .unwrap(),
        )),
        buckets: Default::default(),
        limits: Default::default(),
        metrics: Default::default(),
    }
}

/// The token of the gateway's SP admin (`admin`), logged in over the pinned client.
pub async fn admin_token(gw: &Gateway, dir: &Path) -> String {
    let resp: Value = pinned_client(dir, None)
        .post(format!("https://{}/v1/admin/login", gw.addr))
        .json(&json!({"user": "admin", "password": "admin-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["token"].as_str().unwrap().to_owned()
}
