//! A replica disk as QEMU keeps it: a chain of qcow2 layers, each encrypted (LUKS inside
//! qcow2) with the replica's key — the base, then one layer per replica point on top of the one
//! before. QEMU's own tools do the format and the cryptography: `qemu-img` makes, merges and
//! re-parents layers, `qemu-storage-daemon` serves a chain over NBD on a private Unix socket
//! (`Export`), and the same chain boots a replica.
//!
//! **Invariants:** the key reaches QEMU only through a pipe on its standard input (never a
//! command line other users can read, never a file on disk); every layer is owner-only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use crate::HostError;
use cloudkeep_client::nbd::Nbd;

/// The cluster size of replica layers: one change-tracking block.
pub const CLUSTER: u64 = 1 << 20;

/// A replica's key: 32 random bytes as 64 hex digits, the LUKS passphrase of every layer.
#[derive(Clone)]
pub struct Key(Zeroizing<String>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from its hex form, checked.
    pub fn from_hex(hex: &str) -> Result<Self, HostError> {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(Zeroizing::new(hex.to_ascii_lowercase())))
        } else {
            Err(HostError::Invalid(
                "a replica key is 64 hexadecimal digits".into(),
            ))
        }
    }

    fn text(&self) -> &str {
        &self.0
    }

    /// The key as QEMU takes it (for the replica's own process).
    pub(crate) fn hex(&self) -> &str {
        &self.0
    }
}

fn qemu_failed(what: &str, detail: impl std::fmt::Display) -> HostError {
    HostError::Qemu(format!("{what}: {detail}"))
}

/// A copy of `cmd` (its program and arguments) to run again.
fn clone_command(cmd: &Command) -> Command {
    let mut again = Command::new(cmd.get_program());
    again.args(cmd.get_args());
    again
}

/// Runs a QEMU tool with the key on its standard input.
fn run_with_key(mut cmd: Command, key: &Key, what: &str) -> Result<String, HostError> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| qemu_failed(what, format!("{e} (is qemu-utils installed?)")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(key.text().as_bytes())
            .map_err(|e| qemu_failed(what, e))?;
    }
    let out = child.wait_with_output().map_err(|e| qemu_failed(what, e))?;
    if !out.status.success() {
        return Err(qemu_failed(
            what,
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const SECRET: &str = "secret,id=key,file=/dev/stdin";

/// Makes a new encrypted layer of `size` bytes at `path` (over `backing`, the layer below,
/// when given; it is not opened).
pub fn create_layer(
    path: &Path,
    size: u64,
    backing: Option<&Path>,
    key: &Key,
) -> Result<(), HostError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2", "--object", SECRET, "-o"])
        .arg(format!(
            "encrypt.format=luks,encrypt.key-secret=key,encrypt.iter-time=10,cluster_size={CLUSTER}"
        ));
    if let Some(backing) = backing {
        cmd.arg("-u").arg("-b").arg(backing).args(["-F", "qcow2"]);
    }
    cmd.arg(path).arg(size.to_string());
    // QEMU times its key derivation on the CPU clock; on a busy machine a round can measure
    // nothing and it gives up ("Unable to get accurate CPU usage"): that is tried again.
    let mut tries = 0;
    loop {
        match run_with_key(clone_command(&cmd), key, "make a replica layer") {
            Err(HostError::Qemu(e)) if tries < 20 && e.contains("accurate CPU usage") => {
                tries += 1;
                let _ = std::fs::remove_file(path);
            }
            done => {
                done?;
                break;
            }
        }
    }
    // QEMU makes files as the umask says: a replica's layers are its owner's alone.
    cloudkeep_model::paths::make_file_private(path)
        .map_err(|e| qemu_failed("make a replica layer owner-only", e))
}

/// The blockdev options of a chain, `layers` from the base up (the top one last), every
/// layer opened with the key.
pub fn chain_options(layers: &[PathBuf], node: &str) -> serde_json::Value {
    let mut below: Option<serde_json::Value> = None;
    for layer in layers {
        let mut opts = json!({
            "driver": "qcow2",
            "encrypt": {"format": "luks", "key-secret": "key"},
            "file": {"driver": "file", "filename": layer.display().to_string()},
        });
        opts["backing"] = below.take().unwrap_or(serde_json::Value::Null);
        below = Some(opts);
    }
    let mut top = below.unwrap_or(serde_json::Value::Null);
    top["node-name"] = json!(node);
    top
}

/// A chain served over NBD by `qemu-storage-daemon` on a Unix socket in a private folder;
/// stopped when dropped.
#[derive(Debug)]
pub struct Export {
    child: Child,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Export {
    /// Serves `layers` (base first), writable or not; waits until it answers.
    pub fn start(layers: &[PathBuf], writable: bool, key: &Key) -> Result<Self, HostError> {
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-nbd-")
            .tempdir()
            .map_err(|e| qemu_failed("make the block server's folder", e))?;
        let socket = dir.path().join("disk.sock");
        let mut cmd = Command::new("qemu-storage-daemon");
        cmd.args(["--object", SECRET, "--blockdev"])
            .arg(chain_options(layers, "disk").to_string())
            .arg("--nbd-server")
            .arg(format!("addr.type=unix,addr.path={}", socket.display()))
            .arg("--export")
            .arg(format!(
                "type=nbd,id=export,node-name=disk,name=disk,writable={}",
                if writable { "on" } else { "off" }
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            qemu_failed(
                "start qemu-storage-daemon",
                format!("{e} (is qemu-system-common installed?)"),
            )
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(key.text().as_bytes())
                .map_err(|e| qemu_failed("hand the key to qemu-storage-daemon", e))?;
        }
        let mut export = Self {
            child,
            _dir: dir,
            socket,
        };
        // Served once a connection to the export succeeds (dropped here; the export's Drop
        // stops the server when this fails).
        Nbd::connect_when_served(
            &mut export.child,
            &export.socket,
            "disk",
            Duration::from_secs(60),
        )
        .map_err(|e| qemu_failed("serve the replica disk", e))?;
        Ok(export)
    }

    /// A connection to the served disk.
    pub fn connect(&self) -> Result<Nbd, HostError> {
        Nbd::connect(&self.socket, "disk").map_err(|e| qemu_failed("open the replica disk", e))
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Merges `layer` (whose backing is `base`) into `base`: base then holds what the two held.
pub fn commit(base: &Path, layer: &Path, key: &Key) -> Result<(), HostError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["commit", "-q", "--object", SECRET])
        .arg(image_opts(&[base.to_path_buf(), layer.to_path_buf()]));
    run_with_key(cmd, key, "merge a replica point").map(drop)
}

/// Points `layer` at `backing` without copying anything (the two must hold the same data).
pub fn rebase(layer: &Path, backing: &Path, key: &Key) -> Result<(), HostError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args([
        "rebase", "-q", "-u", "--object", SECRET, "-F", "qcow2", "-b",
    ])
    .arg(backing)
    .arg(image_opts(&[layer.to_path_buf()]));
    run_with_key(cmd, key, "re-parent a replica point").map(drop)
}

/// A chain as a file name for `qemu-img` (the `json:` pseudo-protocol).
fn image_opts(layers: &[PathBuf]) -> String {
    let mut opts = chain_options(layers, "disk");
    if let Some(map) = opts.as_object_mut() {
        map.remove("node-name");
    }
    format!("json:{opts}")
}

/// Writes the whole chain out as a raw disk image (a failback, a check).
pub fn to_raw(layers: &[PathBuf], out: &Path, key: &Key) -> Result<(), HostError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-q", "--object", SECRET])
        .arg(image_opts(layers))
        .args(["-O", "raw"])
        .arg(out);
    run_with_key(cmd, key, "write the replica disk out").map(drop)
}
