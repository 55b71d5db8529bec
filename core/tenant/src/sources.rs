//! Where a replica's disks are read on this computer: a raw disk image or a device directly,
//! a QEMU/KVM machine's qcow2 image through QEMU's own storage daemon (read-only, without
//! taking the image's lock, so a running machine's image can be read) and the NBD client.
//!
//! **Invariant:** a source is only ever read; a qcow2 image is never opened writable.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::TenantError;

/// The first bytes of a qcow2 image.
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// Maps an I/O error on `path` to the tenant's error, saying what was being done.
pub(crate) fn file_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> TenantError {
    let path = path.to_path_buf();
    move |source| TenantError::File {
        action,
        path,
        source,
    }
}

/// Whether `path` is a qcow2 image (by its first bytes).
pub fn is_qcow2(path: &Path) -> Result<bool, TenantError> {
    let mut f = std::fs::File::open(path).map_err(file_err("read", path))?;
    let mut magic = [0u8; 4];
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == QCOW2_MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(file_err("read", path)(e)),
    }
}

/// One disk, opened for reading.
pub enum Source {
    /// A raw image or a device.
    Raw(std::fs::File, u64),
    /// A qcow2 image served by `qemu-storage-daemon`.
    #[cfg(unix)]
    Qcow2(Qcow2),
}

/// A qcow2 image served read-only over NBD on a private socket; the daemon stops when dropped.
#[cfg(unix)]
pub struct Qcow2 {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    nbd: cloudkeep_client::nbd::Nbd,
}

#[cfg(unix)]
impl Drop for Qcow2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn serve_qcow2(path: &Path) -> Result<Qcow2, TenantError> {
    use std::process::{Command, Stdio};
    let failed = |what: String| {
        TenantError::Invalid(format!(
            "{} could not be read as a qcow2 image: {what}",
            path.display()
        ))
    };
    let dir = tempfile::Builder::new()
        .prefix("cloudkeep-qcow2-")
        .tempdir()
        .map_err(|e| failed(e.to_string()))?;
    let socket = dir.path().join("disk.sock");
    let absolute = std::path::absolute(path).map_err(file_err("read", path))?;
    let blockdev = serde_json::json!({
        "driver": "qcow2",
        "node-name": "disk",
        "read-only": true,
        "file": {
            "driver": "file",
            "filename": absolute.display().to_string(),
            "read-only": true,
            // A running machine holds the image's lock; reading beside it is allowed.
            "locking": "off",
        },
    });
    let mut child = Command::new("qemu-storage-daemon")
        .arg("--blockdev")
        .arg(blockdev.to_string())
        .arg("--nbd-server")
        .arg(format!("addr.type=unix,addr.path={}", socket.display()))
        .arg("--export")
        .arg("type=nbd,id=export,node-name=disk,name=disk,writable=off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("{e} (install QEMU: qemu-system-common)")))?;
    match cloudkeep_client::nbd::Nbd::connect_when_served(
        &mut child,
        &socket,
        "disk",
        std::time::Duration::from_secs(30),
    ) {
        Ok(nbd) => Ok(Qcow2 {
            child,
            _dir: dir,
            nbd,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(failed(e))
        }
    }
}

impl Source {
    /// Opens the disk at `path`: a qcow2 image by its first bytes, raw otherwise.
    pub fn open(path: &Path) -> Result<Self, TenantError> {
        if is_qcow2(path)? {
            #[cfg(unix)]
            return Ok(Self::Qcow2(serve_qcow2(path)?));
            #[cfg(not(unix))]
            return Err(TenantError::Invalid(format!(
                "{} is a qcow2 image: those are read on Linux (or convert it to raw)",
                path.display()
            )));
        }
        let mut f = std::fs::File::open(path).map_err(file_err("read", path))?;
        let size = f.seek(SeekFrom::End(0)).map_err(file_err("read", path))?;
        f.seek(SeekFrom::Start(0)).map_err(file_err("read", path))?;
        Ok(Self::Raw(f, size))
    }

    /// The disk's size (a qcow2 image's virtual size).
    pub fn size(&self) -> u64 {
        match self {
            Self::Raw(_, size) => *size,
            #[cfg(unix)]
            Self::Qcow2(q) => q.nbd.size(),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Self::Raw(f, _) => {
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(buf)
            }
            #[cfg(unix)]
            Self::Qcow2(q) => q.nbd.read_at(offset, buf),
        }
    }
}
