//! Moto's S3 server for tests: the one S3 store packaged for this machine (PyPI) that has
//! Object Lock, which Garage does not. Started on 127.0.0.1 in a temporary folder; one bucket
//! made with object lock on, one with a default retention too, one without object lock. boto3, installed with it,
//! is the ordinary S3 client a test uses to look at the bucket as anyone holding its keys
//! would: [`Moto::boto3`] runs a Python snippet with a client `s3` and the bucket `BUCKET`.
//! The environment is the one the test command installs (`CLOUDKEEP_MOTO`, else
//! `~/.cache/cloudkeep/tools/moto-5.2.6`).

// Test support: a failed setup step is a failed test, reported by the panic's message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key (Moto takes any).
pub const ACCESS_KEY: &str = "AKIACLOUDKEEPTEST01";
/// Its secret.
pub const SECRET_KEY: &str = "cloudkeep-moto-secret-0123456789abcdef";
/// The bucket with object lock on.
pub const BUCKET: &str = "immutable";
/// A bucket with object lock on and a default retention (Moto then asks every upload for
/// Content-MD5, as AWS once did).
pub const DEFAULTED: &str = "defaulted";
/// The region.
pub const REGION: &str = "us-east-1";

/// Moto's virtual environment.
pub fn home() -> PathBuf {
    if let Ok(path) = std::env::var("CLOUDKEEP_MOTO") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/cloudkeep/tools/moto-5.2.6")
}

/// A running Moto server, stopped when dropped.
pub struct Moto {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts the server and makes [`BUCKET`] with object lock on (no default retention),
    /// [`DEFAULTED`] with object lock and a 30-day default retention in compliance mode, and
    /// `plain` without; panics with what to install when Moto is missing.
    pub fn start() -> Self {
        let server = home().join("bin/moto_server");
        assert!(
            server.exists(),
            "Moto is needed for this test: python3 -m venv {0} && {0}/bin/pip install 'moto[server]==5.2.6' (the test command installs it)",
            home().display()
        );
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-moto")
            .tempdir()
            .expect("a temporary folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::fs::File::create(dir.path().join("log")).expect("a log file");
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let moto = Self {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto.boto3(
            "s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)\n\
             s3.create_bucket(Bucket='defaulted', ObjectLockEnabledForBucket=True)\n\
             s3.put_object_lock_configuration(Bucket='defaulted', ObjectLockConfiguration={'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': {'Mode': 'COMPLIANCE', 'Days': 30}}})\n\
             s3.create_bucket(Bucket='plain')",
        );
        moto
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `script` with boto3: `s3` is a client of this server, `BUCKET` the locked bucket,
    /// `json` and `datetime` imported; what it prints is returned. Panics when it fails.
    pub fn boto3(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3, json, datetime\nfrom botocore.config import Config\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', \
             aws_secret_access_key='{SECRET_KEY}', region_name='{REGION}', \
             config=Config(retries={{'max_attempts': 1}}))\nBUCKET = '{BUCKET}'\n",
            self.endpoint()
        );
        let out = Command::new(home().join("bin/python"))
            .args(["-c", &format!("{prelude}{script}")])
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3 script failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
