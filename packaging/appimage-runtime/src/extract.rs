//! Unpacks the AppImage's SquashFS image into a folder, refusing anything that would land
//! outside it: names with `..`, entries under a symbolic link, device nodes. Files keep their
//! permission bits (never set-user-ID or set-group-ID); folders get theirs once they are full.

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::BufReader;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use backhand::{FilesystemReader, InnerNode};

/// Why the image cannot be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot open the AppImage {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the AppImage's file system cannot be read ({0}); the file is damaged or cut short: download it again"
    )]
    Squashfs(#[from] backhand::BackhandError),
    #[error("the AppImage holds {0}, which no application image needs; it was not unpacked")]
    Refused(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Unpacks the image that starts at `offset` in `image` into `dest`, a folder that exists and
/// is empty. Returns how many files were written.
pub fn extract(image: &Path, offset: u64, dest: &Path) -> Result<usize, ExtractError> {
    let file = File::open(image).map_err(|source| ExtractError::Open {
        path: image.into(),
        source,
    })?;
    let filesystem = FilesystemReader::from_reader_with_offset(BufReader::new(file), offset)?;
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExtractError::Write { path, source }
    };
    // Folders this extraction made: the only places an entry may go.
    let mut folders: HashSet<PathBuf> = HashSet::from([PathBuf::new()]);
    let mut folder_modes = Vec::new();
    let mut files = 0;
    for node in filesystem.files() {
        let relative = relative_path(&node.fullpath)?;
        if relative.as_os_str().is_empty() {
            continue; // the root: `dest` itself
        }
        inside_unpacked_folder(&folders, &relative)?;
        let target = dest.join(&relative);
        let mode = u32::from(node.header.permissions) & 0o1777;
        match &node.inner {
            InnerNode::Dir(_) => {
                DirBuilder::new()
                    .mode(0o700)
                    .create(&target)
                    .map_err(write_error(&target))?;
                folders.insert(relative.clone());
                folder_modes.push((target, mode));
            }
            InnerNode::File(entry) => {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(write_error(&target))?;
                let mut reader = filesystem.file(entry).reader_checked()?;
                std::io::copy(&mut reader, &mut out).map_err(write_error(&target))?;
                out.set_permissions(Permissions::from_mode(mode & 0o777))
                    .map_err(write_error(&target))?;
                files += 1;
            }
            InnerNode::Symlink(link) => {
                symlink(&link.link, &target).map_err(write_error(&target))?;
            }
            _ => {
                return Err(ExtractError::Refused(format!(
                    "a device, pipe or socket ({})",
                    relative.display()
                )));
            }
        }
    }
    // Innermost first, so a read-only folder is closed only after what it holds.
    for (folder, mode) in folder_modes.into_iter().rev() {
        std::fs::set_permissions(&folder, Permissions::from_mode(mode & 0o777))
            .map_err(write_error(&folder))?;
    }
    Ok(files)
}

/// An entry goes only into a folder this extraction made: never under a link it made (which
/// could point anywhere) nor under a name it has not seen.
fn inside_unpacked_folder(folders: &HashSet<PathBuf>, relative: &Path) -> Result<(), ExtractError> {
    let parent = relative.parent().unwrap_or(Path::new(""));
    if folders.contains(parent) {
        Ok(())
    } else {
        Err(ExtractError::Refused(format!(
            "{} outside the folders it unpacked (under a link?)",
            relative.display()
        )))
    }
}

/// The entry's path below the image's root; refuses `..` and anything but plain names.
fn relative_path(full: &Path) -> Result<PathBuf, ExtractError> {
    let mut relative = PathBuf::new();
    for component in full.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => relative.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ExtractError::Refused(format!(
                    "the name {}",
                    full.display()
                )));
            }
        }
    }
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backhand::compression::Compressor;
    use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
    use std::io::Cursor;
    use std::os::unix::fs::MetadataExt;

    fn header(permissions: u16) -> NodeHeader {
        NodeHeader {
            permissions,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// An image after `prefix` bytes, as an AppImage has its runtime before it.
    fn image_with(prefix: usize, build: impl FnOnce(&mut FilesystemWriter<'_, '_, '_>)) -> Vec<u8> {
        let mut writer = FilesystemWriter::default();
        writer.set_compressor(FilesystemCompressor::new(Compressor::Gzip, None).unwrap());
        writer.set_no_padding();
        build(&mut writer);
        let mut bytes = Cursor::new(vec![0u8; prefix]);
        writer.write_with_offset(&mut bytes, prefix as u64).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn an_image_after_a_runtime_unpacks_with_its_modes_and_links() {
        let image = image_with(4096, |w| {
            w.push_dir("usr", header(0o755)).unwrap();
            w.push_dir("usr/bin", header(0o555)).unwrap();
            w.push_file(
                Cursor::new(b"#!/bin/sh\necho hi\n".to_vec()),
                "AppRun",
                header(0o4755),
            )
            .unwrap();
            w.push_file(
                Cursor::new(vec![7u8; 300_000]),
                "usr/bin/app",
                header(0o755),
            )
            .unwrap();
            w.push_symlink("usr/bin/app", "app-link", header(0o777))
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image");
        std::fs::write(&path, &image).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        assert_eq!(extract(&path, 4096, &dest).unwrap(), 2);
        assert_eq!(
            std::fs::read(dest.join("usr/bin/app")).unwrap(),
            vec![7u8; 300_000]
        );
        let apprun = std::fs::metadata(dest.join("AppRun")).unwrap();
        assert_eq!(apprun.mode() & 0o7777, 0o755, "set-user-ID is dropped");
        assert_eq!(
            std::fs::metadata(dest.join("usr/bin")).unwrap().mode() & 0o777,
            0o555
        );
        assert_eq!(
            std::fs::read_link(dest.join("app-link")).unwrap(),
            Path::new("usr/bin/app")
        );
        std::fs::set_permissions(dest.join("usr/bin"), Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn an_entry_under_a_link_or_an_unknown_folder_is_refused() {
        let folders = HashSet::from([PathBuf::new(), PathBuf::from("usr")]);
        assert!(inside_unpacked_folder(&folders, Path::new("usr/app")).is_ok());
        assert!(inside_unpacked_folder(&folders, Path::new("AppRun")).is_ok());
        // "escape" was unpacked as a link, so it is not among the folders.
        assert!(inside_unpacked_folder(&folders, Path::new("escape/passwd")).is_err());
        assert!(inside_unpacked_folder(&folders, Path::new("usr/lib/x")).is_err());
    }

    #[test]
    fn a_parent_name_is_refused() {
        assert!(relative_path(Path::new("/a/../../etc")).is_err());
        assert_eq!(relative_path(Path::new("/a/b")).unwrap(), Path::new("a/b"));
    }

    #[test]
    fn a_cut_short_image_is_an_error_not_a_panic() {
        let image = image_with(100, |w| {
            w.push_file(Cursor::new(vec![1u8; 10_000]), "f", header(0o644))
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        for cut in [100, 150, image.len() / 2, image.len() - 1] {
            let path = dir.path().join("image");
            std::fs::write(&path, &image[..cut]).unwrap();
            let dest = dir.path().join(format!("out{cut}"));
            std::fs::create_dir(&dest).unwrap();
            assert!(extract(&path, 100, &dest).is_err(), "cut at {cut}");
        }
    }
}
