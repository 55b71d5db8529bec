//! A real PostgreSQL 15 server for tests, started in a temporary folder on 127.0.0.1 (the
//! recipe in RECIPES.md): `initdb` + `pg_ctl`, about two seconds. When the test command already
//! runs one it exports `CLOUDKEEP_TEST_POSTGRES` (its URL) and tests only create a fresh
//! database in it.

// Test support: a failed setup step is a failed test, reported by the panic's message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "cloudkeep-test";

/// A running server, stopped and removed when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(55432)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    /// Starts a server; panics with what to install when PostgreSQL 15 is missing.
    pub fn start() -> Self {
        assert!(
            PathBuf::from(BIN).join("initdb").exists(),
            "PostgreSQL 15 is needed for this test: apt-get install postgresql-15 (the test command installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-pg")
            .tempdir()
            .expect("a temporary folder");
        let as_postgres = running_as_root();
        let base = dir.path();
        std::fs::write(base.join("pw"), PASSWORD).expect("password file");
        let run = |args: &[&str]| {
            let mut cmd = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]);
                c
            } else {
                Command::new("env")
            };
            let out = cmd.args(args).output().expect("run a PostgreSQL tool");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if as_postgres {
            run_plain(
                "chown",
                &["-R", "postgres:postgres", &base.display().to_string()],
            );
        }
        let data = base.join("data").display().to_string();
        let pwfile = format!("--pwfile={}", base.join("pw").display());
        run(&[
            &format!("{BIN}/initdb"),
            "-D",
            &data,
            "-U",
            "ck",
            &pwfile,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ]);
        let port = free_port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=300",
            base.display()
        );
        run(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            &data,
            "-l",
            &base.join("log").display().to_string(),
            "-w",
            "-o",
            &options,
            "start",
        ]);
        Self {
            dir,
            port,
            as_postgres,
        }
    }

    /// The URL of the server's default database.
    pub fn url(&self) -> String {
        format!("postgres://ck:{PASSWORD}@127.0.0.1:{}/postgres", self.port)
    }
}

fn run_plain(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} {args:?}");
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            Command::new("env")
        };
        let _ = cmd
            .args([
                &format!("{BIN}/pg_ctl"),
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

/// A fresh, empty database for one test: on the server the test command runs
/// (`CLOUDKEEP_TEST_POSTGRES`), or on a server of its own (returned, so it lives as long as the
/// test holds it).
pub fn fresh_database() -> (Option<PgServer>, String) {
    let (server, base_url) = match std::env::var("CLOUDKEEP_TEST_POSTGRES") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = PgServer::start();
            let url = server.url();
            (Some(server), url)
        }
    };
    let name = format!("t{}", crate::unique_suffix());
    let (prefix, _) = base_url
        .rsplit_once('/')
        .expect("a postgres URL ends with /DATABASE");
    let (host_port, user_pass) = {
        let rest = prefix.trim_start_matches("postgres://");
        let (creds, host) = rest.split_once('@').expect("credentials in the URL");
        (host.to_owned(), creds.to_owned())
    };
    let (user, password) = user_pass.split_once(':').expect("user:password");
    let (host, port) = host_port.split_once(':').expect("host:port");
    let out = Command::new(format!("{BIN}/createdb"))
        .args(["-h", host, "-p", port, "-U", user, &name])
        .env("PGPASSWORD", password)
        .output()
        .expect("createdb");
    assert!(
        out.status.success(),
        "createdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (server, format!("{prefix}/{name}"))
}
