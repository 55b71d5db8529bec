//! Where an image-level restore writes: a device or an image file, looked at before a byte is
//! written — what it is, how large, what it holds now (its layout: shown to the person before
//! they confirm) and whether anything has it mounted. A restore refuses a target that is
//! mounted, too small, or a device path that is not there.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::devices;
use super::layout::{DiskLayout, read_layout};

/// Why a target cannot take a restore.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A device path with no device behind it.
    #[error("there is no device {}; list the disks with `lsblk` and name one that exists", .0.display())]
    NoDevice(PathBuf),
    /// The folder of a new image file is not there.
    #[error("cannot create {}: its folder does not exist", .0.display())]
    NoFolder(PathBuf),
    /// It, or a device over the same bytes, is mounted.
    #[error("{} is in use: mounted at {}; unmount it first (nothing was written)", path.display(), mounts.join(", "))]
    Mounted {
        /// The target.
        path: PathBuf,
        /// Where it (or a device over it) is mounted.
        mounts: Vec<String>,
    },
    /// It holds fewer bytes than the restore writes.
    #[error("{} is too small: it holds {have} bytes and the restore needs {need}; choose a target of at least that size (nothing was written)", path.display())]
    TooSmall {
        /// The target.
        path: PathBuf,
        /// Its size.
        have: u64,
        /// What the restore writes.
        need: u64,
    },
    /// It could not be looked at.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        /// The target.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A target as found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// Its path.
    pub path: PathBuf,
    /// A block device (written in place), or an image file (created or replaced).
    pub is_device: bool,
    /// Whether it exists already.
    pub exists: bool,
    /// Its size now (0 for a new file).
    pub size: u64,
    /// What it holds now, when it holds a table or a file system.
    pub contents: Option<DiskLayout>,
    /// Where it, or a device over the same bytes, is mounted.
    pub mounts: Vec<String>,
}

/// Looks at `path` as a restore target.
pub fn inspect(path: &Path) -> Result<Target, TargetError> {
    let io_err = |source| TargetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let Some(meta) = meta else {
        if looks_like_device(path) {
            return Err(TargetError::NoDevice(path.to_path_buf()));
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        if folder.is_some_and(|f| !f.is_dir()) {
            return Err(TargetError::NoFolder(path.to_path_buf()));
        }
        return Ok(Target {
            path: path.to_path_buf(),
            is_device: false,
            exists: false,
            size: 0,
            contents: None,
            mounts: Vec::new(),
        });
    };
    let is_device = !meta.is_file();
    if is_device && !is_block_device(&meta) {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is neither a disk nor an image file",
        )));
    }
    let mut file = File::open(path).map_err(io_err)?;
    let size = io::Seek::seek(&mut file, io::SeekFrom::End(0)).map_err(io_err)?;
    let contents = read_layout(&mut file)
        .ok()
        .filter(|l| !l.partitions.is_empty() || l.table != super::PartitionTable::None);
    let mounts = devices::volumes_on(path)
        .into_iter()
        .filter_map(|(d, _)| {
            d.mountpoint
                .map(|m| format!("{} ({})", m.display(), d.path.display()))
        })
        .collect();
    Ok(Target {
        path: path.to_path_buf(),
        is_device,
        exists: true,
        size,
        contents,
        mounts,
    })
}

impl Target {
    /// Refuses a mounted target, and one smaller than `need` bytes (a device, or an image
    /// file that is not replaced: an image file is sized to what it receives).
    pub fn check(&self, need: u64) -> Result<(), TargetError> {
        if !self.mounts.is_empty() {
            return Err(TargetError::Mounted {
                path: self.path.clone(),
                mounts: self.mounts.clone(),
            });
        }
        if self.is_device && self.size < need {
            return Err(TargetError::TooSmall {
                path: self.path.clone(),
                have: self.size,
                need,
            });
        }
        Ok(())
    }
}

fn looks_like_device(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.starts_with("/dev/") || text.starts_with(r"\\.\")
}

#[cfg(unix)]
fn is_block_device(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_block_device()
}

#[cfg(not(unix))]
fn is_block_device(_meta: &fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_or_folder_is_refused_and_a_new_file_is_fine() {
        assert!(matches!(
            inspect(Path::new("/dev/cloudkeep-no-such-disk")),
            Err(TargetError::NoDevice(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            inspect(&dir.path().join("nope/disk.img")),
            Err(TargetError::NoFolder(_))
        ));
        let new = inspect(&dir.path().join("disk.img")).unwrap();
        assert!(!new.exists && !new.is_device);
        new.check(1 << 30).unwrap();
    }
}
