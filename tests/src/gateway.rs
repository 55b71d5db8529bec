//! A real gateway process for benchmarks: `cloudkeep gateway init` (SQLite, a self-signed
//! certificate for 127.0.0.1, an admin) and `cloudkeep gateway run` on a free loopback port,
//! stopped when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The SP admin's password of [`GatewayProcess`] (the admin is `admin`).
pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// A running gateway.
pub struct GatewayProcess {
    /// The process.
    pub child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// The served certificate's fingerprint.
    pub fingerprint: String,
}

fn failed(what: &str) -> std::io::Error {
    std::io::Error::other(what.to_owned())
}

impl GatewayProcess {
    /// Initialises a gateway in `data` with `binary` (the `cloudkeep` CLI) and starts it.
    pub fn start(binary: &Path, data: &Path) -> std::io::Result<Self> {
        let mut init = Command::new(binary)
            .args(["gateway", "init", "--data-dir"])
            .arg(data)
            .args(["--hostname", "127.0.0.1", "--admin-password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        writeln!(
            init.stdin.take().ok_or_else(|| failed("stdin"))?,
            "{ADMIN_PASSWORD}"
        )?;
        if !init.wait()?.success() {
            return Err(failed("gateway init failed"));
        }
        // A benchmark's clients all come from loopback: let one address hold them all.
        let config = data.join("gateway.toml");
        let text = std::fs::read_to_string(&config)?;
        std::fs::write(
            &config,
            text.replace("per_address = 256", "per_address = 8192"),
        )?;
        let mut child = Command::new(binary)
            .args([
                "-q",
                "gateway",
                "run",
                "--allow-root",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--advertise", "127.0.0.1", "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines =
            BufReader::new(child.stdout.take().ok_or_else(|| failed("stdout"))?).lines();
        let first = lines
            .next()
            .ok_or_else(|| failed("gateway printed nothing"))??;
        let addr = first.rsplit(' ').next().unwrap_or_default().to_owned();
        let second = lines.next().ok_or_else(|| failed("no fingerprint"))??;
        let fingerprint = second.rsplit(' ').next().unwrap_or_default().to_owned();
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            addr,
            fingerprint,
        })
    }

    /// Its resident memory now and at its peak, KiB.
    pub fn rss_kib(&self) -> std::io::Result<(u64, u64)> {
        rss_kib_of(self.child.id())
    }
}

/// Resident memory of process `pid` now and at its peak (`VmRSS`, `VmHWM`), KiB.
pub fn rss_kib_of(pid: u32) -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
