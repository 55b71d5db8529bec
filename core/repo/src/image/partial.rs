//! An image file written whole or not at all. A restore or an export into a file writes under
//! a temporary name beside its target (`.NAME.cloudkeep-partial`) and renames it onto the
//! target only once every byte is on disk: a failed, cancelled or killed run never leaves a
//! half-written file under the target's name, and an older file there stays whole until the
//! new one replaces it (a full disk loses nothing). A killed run leaves its partial file
//! behind; the next run to the same target removes it first.
//!
//! A new file is owner-only (a disk image holds everything its disk held); a file that
//! replaces another takes that file's permissions and owner, which its user chose (a
//! hypervisor's account, say).
//!
//! `WriteBehind` starts writing a restore's bytes to the disk while later ones are still
//! coming (and lets the page cache drop what is on disk): the final sync waits for the last
//! stretch only, and restoring a disk larger than memory does not fill the cache with it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// A file being written for `target`.
#[derive(Debug)]
pub struct Partial {
    path: PathBuf,
    target: PathBuf,
    committed: bool,
}

/// The temporary name beside `target` that a run writing it uses.
pub fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "disk".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.cloudkeep-partial"))
}

impl Partial {
    /// Creates the partial file of `target` (replacing one a killed run left), empty.
    pub fn create(target: &Path) -> io::Result<(Self, File)> {
        let path = partial_path(target);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = cloudkeep_model::paths::private_file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let partial = Self {
            path,
            target: target.to_path_buf(),
            committed: false,
        };
        // Only a regular file's access is taken over: a symlink planted at the target lends
        // nothing (and is replaced, never followed).
        match fs::symlink_metadata(target) {
            Ok(old) if old.is_file() => partial.take_access_of(&file, &old)?,
            #[cfg(windows)]
            _ => cloudkeep_model::paths::make_file_private(&partial.path)?,
            #[cfg(not(windows))]
            _ => {}
        }
        Ok((partial, file))
    }

    /// The file's path while it is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the file (written and synced by the caller) in the target's place.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.path, &self.target)?;
        self.committed = true;
        #[cfg(unix)]
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn take_access_of(&self, file: &File, old: &fs::Metadata) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Owner first: changing it may clear set-id bits the mode then restores.
            match std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())) {
                Ok(()) => {}
                // Not root: the file stays this user's, as a new file would be.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(e),
            }
            file.set_permissions(old.permissions())
        }
        #[cfg(not(unix))]
        {
            let _ = (file, old);
            cloudkeep_model::paths::make_file_private(&self.path)
        }
    }
}

/// Bytes written between two nudges of the kernel's writeback.
const WRITE_BEHIND: u64 = 64 << 20;

/// Starts writeback of a file (or device) being written, every [`WRITE_BEHIND`] bytes.
#[derive(Debug)]
pub struct WriteBehind {
    file: Option<File>,
    since: u64,
}

impl WriteBehind {
    /// Follows `file` (a handle of the file written; nothing is written through it).
    pub fn new(file: &File) -> Self {
        Self {
            file: file.try_clone().ok(),
            since: 0,
        }
    }

    /// Counts `n` bytes written; every [`WRITE_BEHIND`] bytes, asks the kernel to write out
    /// what is dirty and to drop what is already on disk (`POSIX_FADV_DONTNEED` does both,
    /// without waiting). Best effort: an error only means the final sync does it all.
    pub fn wrote(&mut self, n: u64) {
        self.since += n;
        if self.since < WRITE_BEHIND {
            return;
        }
        self.since = 0;
        #[cfg(target_os = "linux")]
        if let Some(file) = &self.file {
            let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
        }
        // Elsewhere the final sync does it all.
        #[cfg(not(target_os = "linux"))]
        let _ = &self.file;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_changes_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("disk.img");
        std::fs::write(&target, b"old").unwrap();
        {
            let (partial, file) = Partial::create(&target).unwrap();
            io::Write::write_all(&mut &file, b"half").unwrap();
            assert!(partial.path().exists());
            // Dropped without a commit (an error, a cancel): the old file stays, whole.
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert!(!partial_path(&target).exists());
        // A partial file a killed run left is replaced, not appended to.
        std::fs::write(partial_path(&target), b"stale bytes of a killed run").unwrap();
        let (partial, file) = Partial::create(&target).unwrap();
        io::Write::write_all(&mut &file, b"new").unwrap();
        file.sync_all().unwrap();
        partial.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!partial_path(&target).exists());
    }

    /// A symlink planted where the restore writes (by another local user, say) is replaced,
    /// never followed: the file it points at keeps its bytes.
    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        std::fs::write(&precious, b"keep me").unwrap();
        std::fs::set_permissions(
            &precious,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let target = dir.path().join("disk.img");
        std::os::unix::fs::symlink(&precious, &target).unwrap();
        let (partial, file) = Partial::create(&target).unwrap();
        io::Write::write_all(&mut &file, b"restored").unwrap();
        partial.commit().unwrap();
        assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"restored");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "owner-only, not the linked file's mode");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_owner_only_and_a_replacement_keeps_the_old_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = dir.path().join("new.img");
        let (partial, _file) = Partial::create(&new).unwrap();
        partial.commit().unwrap();
        assert_eq!(mode(&new), 0o600);
        let old = dir.path().join("old.img");
        std::fs::write(&old, b"x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (partial, _file) = Partial::create(&old).unwrap();
        partial.commit().unwrap();
        assert_eq!(mode(&old), 0o640);
    }
}
