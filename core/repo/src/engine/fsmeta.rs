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

/// Owner, mode and device number. Windows has no Unix mode: a read-only entry is 0444 and
/// any other 0644 (folders 0555 and 0755, so that a point made on Windows restores into
/// folders Unix can enter), and the file attributes kept ([`KEPT_ATTRIBUTES`]) ride in the
/// mode's upper half ([`Owner::windows_attributes`]).
#[cfg(not(unix))]
pub fn owner_of(meta: &Metadata) -> (Owner, u64) {
    let read_only = meta.permissions().readonly();
    let mode = match (meta.is_dir(), read_only) {
        (true, true) => 0o555,
        (true, false) => 0o755,
        (false, true) => 0o444,
        (false, false) => 0o644,
    };
    #[cfg(windows)]
    let mode = {
        use std::os::windows::fs::MetadataExt;
        Owner::with_windows_attributes(mode, meta.file_attributes() & KEPT_ATTRIBUTES)
    };
    (
        Owner {
            mode,
            ..Owner::default()
        },
        0,
    )
}

/// The Windows file attributes a point keeps and a restore puts back: read-only (1), hidden
/// (2), system (4), archive (0x20) and not content indexed (0x2000).
pub const KEPT_ATTRIBUTES: u32 = 0x1 | 0x2 | 0x4 | 0x20 | 0x2000;

/// The Windows file attributes to give a restored entry: those recorded, or for a point
/// made elsewhere, read-only when no one could write it.
pub fn attributes_for(owner: &Owner) -> u32 {
    match owner.windows_attributes() {
        0 if owner.mode != 0 && owner.mode & 0o222 == 0 => 0x1,
        recorded => recorded & KEPT_ATTRIBUTES,
    }
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

/// A catalog name as exactly one component of a destination path on this platform. A point
/// made on Windows has each drive (`C:`) or share as a top-level entry; joined as it is, such
/// a name would replace the destination on Windows (`D:\target` joined with `C:` is `C:`,
/// the current folder of drive C). Here a drive becomes a folder named by its letter (`C`)
/// and any other name that is not one plain component has its `:` and `\` made `_`, so a
/// restore never leaves the folder it was given.
pub fn dest_component(name: &[u8]) -> std::ffi::OsString {
    let os = name_os(name);
    let mut parts = Path::new(&os).components();
    if let (Some(std::path::Component::Normal(one)), None) = (parts.next(), parts.next())
        && one == os.as_os_str()
    {
        return os;
    }
    let text = String::from_utf8_lossy(name);
    if let [letter, b':'] = name
        && letter.is_ascii_alphabetic()
    {
        return char::from(*letter).to_string().into();
    }
    let clean: String = text
        .trim_start_matches(['\\', '/', '?', '.'])
        .chars()
        .map(|c| {
            if matches!(c, ':' | '\\' | '/') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if clean.is_empty() {
        "_".into()
    } else {
        clean.into()
    }
}

pub use cloudkeep_model::paths::{shown, verbatim as io_path};

/// Where a top-level entry of a point goes when restored to where it came from: a drive or
/// share (`C:`) is its root (`C:\`), anything else a name below `root`.
pub fn original_top(root: &Path, name: &[u8]) -> std::path::PathBuf {
    let os = name_os(name);
    match Path::new(&os).components().next() {
        Some(std::path::Component::Prefix(_)) => {
            let mut top = std::path::PathBuf::from(&os);
            top.push(std::path::MAIN_SEPARATOR_STR);
            top
        }
        _ => root.join(dest_component(name)),
    }
}

/// Makes a symbolic link at `at` to `link` (the target as recorded). A link made on Unix
/// names its target with `/`, which Windows links do not follow: turned into `\` there.
pub fn make_symlink(link: &[u8], at: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(name_os(link), at)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::symlink_file(name_os(link).to_string_lossy().replace('/', "\\"), at)
    }
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
    // Attributes last: a read-only file's times could no longer be set.
    #[cfg(windows)]
    if kind != NodeKind::Symlink
        && let Err(e) = win::set_attributes(path, attributes_for(owner))
    {
        problems.push(format!("attributes: {e}"));
    }
    #[cfg(not(unix))]
    let _ = owner;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Makes an existing file replaceable by a rename: Windows refuses to replace a read-only
/// file, whose attributes the restored file brings back anyway. Nothing to do elsewhere.
pub fn prepare_replace(target: &Path) -> std::io::Result<()> {
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
        let attributes = std::fs::symlink_metadata(target)?.file_attributes();
        if attributes & 0x1 != 0 {
            return win::set_attributes(target, attributes & KEPT_ATTRIBUTES & !0x1);
        }
    }
    let _ = target;
    Ok(())
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod win {
    //! The one Windows call std has no safe form of.
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Storage::FileSystem::{FILE_ATTRIBUTE_NORMAL, SetFileAttributesW};

    /// Sets the attributes of `path` (none: "normal").
    pub fn set_attributes(path: &Path, attributes: u32) -> std::io::Result<()> {
        let name: Vec<u16> = super::io_path(path)
            .as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect();
        let value = if attributes == 0 {
            FILE_ATTRIBUTE_NORMAL
        } else {
            attributes
        };
        // SAFETY: `name` is a NUL-terminated UTF-16 path that outlives the call.
        if unsafe { SetFileAttributesW(name.as_ptr(), value) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On every platform, a destination built from catalog names stays below its folder; a
    /// Windows drive restored where it came from is its root.
    #[test]
    fn catalog_names_never_leave_the_destination() {
        let base = Path::new("target-folder");
        for name in [
            &b"C:"[..],
            b"\\\\server\\share",
            b"a:b",
            b"plain",
            b"with space",
        ] {
            let joined = base.join(dest_component(name));
            assert!(joined.starts_with(base), "{name:?} left it: {joined:?}");
            assert_eq!(joined.components().count(), 2, "{name:?}: {joined:?}");
        }
        assert_eq!(dest_component(b"plain"), "plain");
        #[cfg(windows)]
        {
            assert_eq!(dest_component(b"C:"), "C");
            assert_eq!(dest_component(b"a:b"), "a_b");
            assert_eq!(original_top(Path::new("\\"), b"C:"), Path::new("C:\\"));
        }
        #[cfg(unix)]
        {
            // `C:` and `a\b` are plain names here: kept as they are.
            assert_eq!(dest_component(b"C:"), "C:");
            assert_eq!(original_top(Path::new("/"), b"home"), Path::new("/home"));
        }
    }
}
