//! Where notifications land in tests: a real SMTP server requiring STARTTLS (aiosmtpd, the
//! Debian package `python3-aiosmtpd`, run by the system's Python) with a certificate of a
//! private CA, storing mail in a Maildir; and a webhook listener on loopback that records each
//! POST's body and answers 200.

// Test support: a failed setup step is a failed test, reported by the panic's message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::tls::TestCa;

/// A running SMTP server, stopped when dropped.
pub struct Smtp {
    /// Its port on 127.0.0.1 (its certificate names `localhost`).
    pub port: u16,
    /// The CA its certificate is signed by (PEM file).
    pub ca_file: PathBuf,
    maildir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts aiosmtpd with STARTTLS required; panics with what to install when missing.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let leaf = ca.leaf(&["localhost"], "smtp.test");
        let (cert, key, ca_file) = (
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
            dir.path().join("ca.pem"),
        );
        std::fs::write(&cert, &leaf.chain).unwrap();
        std::fs::write(&key, &leaf.key).unwrap();
        std::fs::write(&ca_file, &ca.pem).unwrap();
        let maildir = dir.path().join("mail");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tlscert")
            .arg(&cert)
            .arg("--tlskey")
            .arg(&key)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (Debian package python3-aiosmtpd; the test command installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "aiosmtpd did not start (is python3-aiosmtpd installed?)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            port,
            ca_file,
            maildir,
            child,
            _dir: dir,
        }
    }

    /// Every message received so far, as text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            // Quoted-printable's soft line breaks joined, so long lines read whole.
            .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
            .collect()
    }

    /// The first message containing every one of `needles`, waiting up to 30 s for it.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        first_with("message", needles, || self.messages())
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook listener on 127.0.0.1: records the body of every request and answers 200.
pub struct Webhook {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    /// Starts listening (on a thread that lives as long as the test process).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { url, bodies }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// The first body containing every one of `needles`, waiting up to 30 s for it.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        first_with("webhook call", needles, || self.bodies())
    }
}

/// The first of `received()` containing every one of `needles`, waiting up to 30 s for it.
fn first_with(what: &str, needles: &[&str], received: impl Fn() -> Vec<String>) -> String {
    let started = Instant::now();
    loop {
        if let Some(found) = received()
            .into_iter()
            .find(|m| needles.iter().all(|n| m.contains(n)))
        {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {what} with {needles:?} arrived; got {:#?}",
            received()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
