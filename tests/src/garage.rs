//! A real Garage cluster for tests: three nodes on 127.0.0.1 (replication factor 3,
//! consistent mode), each its own process, metadata in LMDB (Garage's default), block
//! compression off (Cloudkeep's packs are compressed and encrypted already: what an SP
//! should set too), started in a temporary folder in a few seconds; one bucket and one access key made through Garage's own CLI. Nodes can
//! be killed and started again mid-test. The binary is the one the test command installs
//! (`CLOUDKEEP_GARAGE`, else `~/.cache/cloudkeep/tools/bin/garage`).

// Test support: a failed setup step is a failed test, reported by the panic's message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key every test cluster has (Garage key ids are `GK` + 24 hex digits).
pub const ACCESS_KEY: &str = "GK00c10d4ee9000000000000a1";
/// Its secret.
pub const SECRET_KEY: &str = "5ec2e7c10d4ee9005ec2e7c10d4ee9005ec2e7c10d4ee9005ec2e7c10d4ee900";
/// The bucket every test cluster has.
pub const BUCKET: &str = "cloudkeep";
/// The region Garage signs for.
pub const REGION: &str = "garage";

/// The Garage binary.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("CLOUDKEEP_GARAGE") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/cloudkeep/tools/bin/garage")
}

/// One node.
struct Node {
    config: PathBuf,
    s3_port: u16,
    child: Option<Child>,
}

/// A running cluster, stopped and removed when dropped.
pub struct Garage {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("a log file");
    Command::new(binary())
        .args(["-c", &config.display().to_string(), "server"])
        .env("RUST_LOG", "garage=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start garage")
}

impl Garage {
    /// Starts a cluster of `n` nodes (replication factor `n` when below 3, else 3), with
    /// the bucket and key made; panics with what to install when Garage is missing.
    pub fn start(n: usize) -> Self {
        assert!(
            binary().exists(),
            "Garage is needed for this test: cargo install garage --locked --root ~/.cache/cloudkeep/tools (the test command installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-garage")
            .tempdir()
            .expect("a temporary folder");
        let mut random = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"),
            &mut random,
        )
        .expect("random bytes");
        let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let factor = n.min(3);
        let mut nodes = Vec::new();
        for i in 0..n {
            let base = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&base).unwrap();
            let (s3, rpc, admin) = (free_port(), free_port(), free_port());
            let config = base.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"lmdb\"\n\
                     metadata_fsync = false\ndata_fsync = false\ncompression_level = \"none\"\n\
                     replication_factor = {factor}\nconsistency_mode = \"consistent\"\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_secret = \"{secret}\"\n\
                     [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    meta = base.join("meta").display(),
                    data = base.join("data").display(),
                ),
            )
            .unwrap();
            let child = spawn(&config, &base.join("log"));
            nodes.push(Node {
                config,
                s3_port: s3,
                child: Some(child),
            });
        }
        let garage = Self { dir, nodes };
        garage.form_cluster();
        garage
    }

    /// Multipart uploads begun in the bucket and neither completed nor aborted, as the
    /// cluster counts them (`garage bucket info` names them only when there are some).
    pub fn unfinished_multipart_uploads(&self) -> u64 {
        let info = self.cli(0, &["bucket", "info", BUCKET]);
        info.lines()
            .find(|l| l.to_lowercase().contains("multipart"))
            .map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.parse().ok())
                    .unwrap_or_else(|| panic!("no count in \"{l}\": {info}"))
            })
            .unwrap_or(0)
    }

    /// Caps the bucket at `bytes` (Garage's bucket quota): writes past it are refused, as a
    /// full store refuses them.
    pub fn cap_bucket(&self, bytes: u64) {
        self.cli(
            0,
            &[
                "bucket",
                "set-quotas",
                BUCKET,
                "--max-size",
                &bytes.to_string(),
            ],
        );
    }

    fn cli(&self, node: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(binary())
                .arg("-c")
                .arg(&self.nodes[node].config)
                .args(args)
                .output()
                .expect("run the garage CLI");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn form_cluster(&self) {
        let ids: Vec<String> = (0..self.nodes.len())
            .map(|i| self.cli(i, &["node", "id", "-q"]).trim().to_owned())
            .collect();
        for id in &ids[1..] {
            self.cli(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = &id[..16];
            self.cli(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        self.cli(0, &["layout", "apply", "--version", "1"]);
        self.cli(
            0,
            &[
                "key",
                "import",
                "--yes",
                "-n",
                "cloudkeep",
                ACCESS_KEY,
                SECRET_KEY,
            ],
        );
        self.cli(0, &["bucket", "create", BUCKET]);
        self.cli(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "cloudkeep",
            ],
        );
        // Every node answers S3 before the cluster is handed over.
        for i in 0..self.nodes.len() {
            self.wait_s3(i);
        }
    }

    fn wait_s3(&self, node: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = format!("127.0.0.1:{}", self.nodes[node].s3_port);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "garage node {node} never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The S3 endpoint of node `i` (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The process ids of the running nodes (for benchmarks that count their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// Kills node `i` (`SIGKILL`: no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again after [`Garage::kill`].
    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].child.is_none() {
            let log = self.dir.path().join(format!("n{i}")).join("log.2");
            self.nodes[i].child = Some(spawn(&self.nodes[i].config, &log));
            self.wait_s3(i);
        }
    }

    /// Bytes in node 0's data folder (with replication factor 3, every block is on it).
    pub fn data_bytes(&self) -> u64 {
        fn walk(path: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(path) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.dir.path().join("n0").join("data"))
    }

    /// The folder the nodes keep their logs in (`nI/log`), for tests that grep them.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
