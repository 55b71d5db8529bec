//! Reading and applying file-system metadata (owner, mode, times, file identity) on each
//! platform. The one place with `cfg(unix)` / `cfg(windows)` branches of the engine.

use std::fs::Metadata;
use std::path::Path;

use crate::catalog::{FileId, NodeKind, Owner, Times};

/// Nanoseconds since the epoch of a system time (negative before 1970).
fn nanos(time: std::io::Result<std::time::SystemTime>) -> i64 {
    match time {
        Ok(t) => match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        },
        Err(_) => 0,
    }
}

/// The kind of an entry from its metadata.
pub fn kind_of(meta: &Metadata) -> NodeKind {
    let t = meta.file_type();
    if t.is_symlink() {
        return NodeKind::Symlink;
    }
    if t.is_dir() {
        return NodeKind::Dir;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return NodeKind::Fifo;
        }
        if t.is_char_device() {
            return NodeKind::CharDevice;
        }
        if t.is_block_device() {
            return NodeKind::BlockDevice;
        }
        if t.is_socket() {
            return NodeKind::Socket;
        }
    }
    NodeKind::File
}

/// Owner, mode and device number.
#[cfg(unix)]
pub fn owner_of(meta: &Metadata) -> (Owner, u64) {
    use std::os::unix::fs::MetadataExt;
    (
        Owner {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            user: None,
            group: None,
        },
        meta.rdev(),
    )
}

/// Owner, mode and device number.
#[cfg(not(unix))]
pub fn owner_of(meta: &Metadata) -> (Owner, u64) {
    let mode = if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    };
    (
        Owner {
            mode,
            ..Owner::default()
        },
        0,
    )
}

/// Times of an entry.
pub fn times_of(meta: &Metadata) -> Times {
    #[cfg(unix)]
    let ctime_ns = {
        use std::os::unix::fs::MetadataExt;
        meta.ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec())
    };
    #[cfg(not(unix))]
    let ctime_ns = nanos(meta.created());
    Times {
        mtime_ns: nanos(meta.modified()),
        atime_ns: nanos(meta.accessed()),
        ctime_ns,
    }
}

/// Identity of an entry on its file system.
#[cfg(unix)]
pub fn file_id_of(meta: &Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId {
        dev: meta.dev(),
        ino: meta.ino(),
        nlink: meta.nlink(),
    }
}

/// Identity of an entry on its file system.
#[cfg(not(unix))]
pub fn file_id_of(_meta: &Metadata) -> FileId {
    FileId::default()
}

/// A path component as catalog bytes.
#[cfg(unix)]
pub fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

/// A path component as catalog bytes.
#[cfg(not(unix))]
pub fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

/// Catalog bytes as a path component.
#[cfg(unix)]
pub fn name_os(name: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(name).to_owned()
}

/// Catalog bytes as a path component.
#[cfg(not(unix))]
pub fn name_os(name: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(name).into_owned().into()
}

/// Applies mode, owner (when permitted) and times after an entry's content is in place.
/// Returns a message for what could not be applied.
pub fn apply(path: &Path, kind: NodeKind, owner: &Owner, times: &Times) -> Result<(), String> {
    let mut problems = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Owner first: chown clears set-id bits, which the mode then restores.
        if let Err(e) = std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
            && e.kind() != std::io::ErrorKind::PermissionDenied
            && e.raw_os_error() != Some(1)
        {
            problems.push(format!("owner: {e}"));
        }
        if kind != NodeKind::Symlink {
            let mode = std::fs::Permissions::from_mode(owner.mode & 0o7777);
            if let Err(e) = std::fs::set_permissions(path, mode) {
                problems.push(format!("permissions: {e}"));
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = owner;
    }
    let to_ft = |ns: i64| {
        filetime::FileTime::from_unix_time(
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000) as u32,
        )
    };
    let (atime, mtime) = (to_ft(times.atime_ns), to_ft(times.mtime_ns));
    let result = if kind == NodeKind::Symlink {
        filetime::set_symlink_file_times(path, atime, mtime)
    } else {
        filetime::set_file_times(path, atime, mtime)
    };
    if let Err(e) = result {
        problems.push(format!("times: {e}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
