//! Restore points published read-only: a point's tree served as a file system the computer's
//! own tools open (`find`, `sha256sum`, a file manager, an application) without restoring
//! it. `tree` numbers the point's entries and lists folders on first use; `content` reads a
//! file's bytes at any offset, fetching only the blobs a read touches through a cache bounded
//! in bytes; `volumes` keeps an image-level point's volumes' file systems open on a reader
//! thread of their own; `attach` hands volumes to the OS's own drivers (loop devices);
//! `registry` records what is published where (shared by the CLI and the console); `fs` is
//! the FUSE face (Linux; WinFsp would be the Windows face of the same tree and content, not
//! built yet); `publication` runs one publication start to end; `watchdog` takes a killed
//! publication's dead mount away.

#[cfg(target_os = "linux")]
pub mod attach;
pub mod content;
#[cfg(target_os = "linux")]
pub mod fs;
#[cfg(target_os = "linux")]
pub mod publication;
pub mod registry;
pub mod tree;
pub mod volumes;
#[cfg(target_os = "linux")]
pub mod watchdog;
