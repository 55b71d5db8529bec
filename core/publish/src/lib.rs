//! Restore points published read-only: a point's tree served as a file system the computer's
//! own tools open (`find`, `sha256sum`, a file manager, an application) without restoring
//! it. `tree` numbers the point's entries and lists folders on first use; `content` reads a
//! file's bytes at any offset, fetching only the blobs a read touches through a cache bounded
//! in bytes; `fs` is the FUSE face (Linux; WinFsp would be the Windows face of the same tree
//! and content, not built yet).

pub mod content;
#[cfg(target_os = "linux")]
pub mod fs;
pub mod tree;
