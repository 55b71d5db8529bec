//! A published volume attached for the OS's own file-system driver (Linux, root): its raw
//! image in the publication is attached read-only as a loop device (`mount -o ro,loop`, so
//! the device goes away by itself when unmounted) and mounted over the volume's folder in
//! the publication; applications then open its files through the kernel. Unpublishing
//! unmounts these first (also after the publishing process was killed: the mounts are found
//! in the mount table under the publication's folder) and detaches any loop device still
//! backed by a file of the publication.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cloudkeep_repo::image::FsKind;

use crate::volumes::VolumeSource;

/// A volume attached and mounted.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Its name (`sda1`).
    pub volume: String,
    /// Where the OS mounted it.
    pub at: PathBuf,
    /// Its loop device (`/dev/loop3`).
    pub device: String,
}

/// Why a volume was not attached.
#[derive(Debug, Clone)]
pub struct NotAttached {
    /// Its name.
    pub volume: String,
    /// Why, in words.
    pub reason: String,
}

/// Attaches every volume of `sources` with a file system the OS can mount, published at
/// `mountpoint`, read-only. Volumes that cannot be attached are reported, not fatal.
pub fn attach(mountpoint: &Path, sources: &[VolumeSource]) -> (Vec<Attached>, Vec<NotAttached>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for source in sources {
        let folder = mountpoint.join(&source.disk).join(&source.name);
        let raw = mountpoint
            .join(&source.disk)
            .join(format!("{}.raw", source.name));
        let options = match source.kind {
            // `noload`: a journal left to replay is not replayed (the device is read-only).
            Some(FsKind::Ext3 | FsKind::Ext4) => "ro,loop,noload,nodev,nosuid",
            Some(_) => "ro,loop,nodev,nosuid",
            None => {
                failed.push(NotAttached {
                    volume: source.name.clone(),
                    reason: "it holds no file system the backup recognised".into(),
                });
                continue;
            }
        };
        let out = Command::new("mount")
            .args([OsStr::new("-o"), OsStr::new(options)])
            .arg(&raw)
            .arg(&folder)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => match mounted_device(&folder) {
                Some(device) => done.push(Attached {
                    volume: source.name.clone(),
                    at: folder,
                    device,
                }),
                None => failed.push(NotAttached {
                    volume: source.name.clone(),
                    reason: "mounted, but not found in the mount table".into(),
                }),
            },
            Ok(o) => failed.push(NotAttached {
                volume: source.name.clone(),
                reason: String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .trim_end_matches('.')
                    .to_owned(),
            }),
            Err(e) => failed.push(NotAttached {
                volume: source.name.clone(),
                reason: format!("cannot run mount: {e}"),
            }),
        }
    }
    (done, failed)
}

/// One line of the mount table: where, what type, from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point.
    pub at: Vec<u8>,
    /// Its type (`ext4`, `fuse.cloudkeep`).
    pub fstype: String,
    /// Its source (`/dev/loop3`).
    pub source: String,
}

/// This process's mount table.
pub fn mounts() -> std::io::Result<Vec<Mount>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table.lines().filter_map(parse_mountinfo).collect())
}

fn parse_mountinfo(line: &str) -> Option<Mount> {
    let at = unescape(line.split(' ').nth(4)?);
    let mut after = line.split(" - ").nth(1)?.split(' ');
    let fstype = after.next()?.to_owned();
    let source = String::from_utf8_lossy(&unescape(after.next()?)).into_owned();
    Some(Mount { at, fstype, source })
}

/// A mount-table path with its octal escapes (`\040` for a space) undone.
pub fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn mounted_device(at: &Path) -> Option<String> {
    mounts()
        .ok()?
        .into_iter()
        .rev()
        .find(|m| m.at == at.as_os_str().as_bytes())
        .map(|m| m.source)
        .filter(|s| s.starts_with("/dev/loop"))
}

/// The file a loop device reads (`/sys/block/loopN/loop/backing_file`), when it is one.
fn backing_file(device: &str) -> Option<Vec<u8>> {
    let name = device.strip_prefix("/dev/")?;
    let mut bytes =
        std::fs::read(Path::new("/sys/block").join(name).join("loop/backing_file")).ok()?;
    while bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    Some(bytes)
}

/// Whether `backing` is a raw image of the publication whose folder is `prefix` (`…/`):
/// only what [`attach`] attached is ever undone, never another mount below the folder.
fn ours(backing: &[u8], prefix: &[u8]) -> bool {
    backing.starts_with(prefix) && backing.ends_with(b".raw")
}

/// Unmounts the volumes attached below the publication at `mountpoint` (mounts from a loop
/// device over one of its raw images; deepest first, lazily when busy) and detaches loop
/// devices still backed by one. Nothing else is touched. What could not be undone, in words.
pub fn detach_below(mountpoint: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut prefix = mountpoint.as_os_str().as_bytes().to_vec();
    prefix.push(b'/');
    let mut below: Vec<Mount> = match mounts() {
        Ok(m) => m
            .into_iter()
            .filter(|m| m.at.starts_with(&prefix))
            .filter(|m| backing_file(&m.source).is_some_and(|b| ours(&b, &prefix)))
            .collect(),
        Err(e) => return vec![format!("cannot read the mount table: {e}")],
    };
    below.sort_by_key(|m| std::cmp::Reverse(m.at.len()));
    for m in &below {
        let at = OsStr::from_bytes(&m.at);
        if !run("umount", &[at]) && !run("umount", &[OsStr::new("-l"), at]) {
            problems.push(format!(
                "{} could not be unmounted; close what is using it and unpublish again",
                Path::new(at).display()
            ));
        }
    }
    // `mount -o loop` detaches its device on unmount; one attached otherwise is detached here.
    if let Ok(devices) = std::fs::read_dir("/sys/block") {
        for dev in devices.flatten() {
            let device = Path::new("/dev").join(dev.file_name());
            if backing_file(&device.to_string_lossy()).is_some_and(|b| ours(&b, &prefix))
                && !run("losetup", &[OsStr::new("-d"), device.as_os_str()])
            {
                problems.push(format!(
                    "{} could not be detached; detach it with losetup -d",
                    device.display()
                ));
            }
        }
    }
    problems
}

/// Runs `program` quietly; whether it succeeded.
pub(crate) fn run(program: &str, args: &[&OsStr]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_lines_are_read_with_their_escapes() {
        let line = "36 35 0:30 / /tmp/a\\040b/sda/sda1 ro,relatime shared:1 - ext4 /dev/loop3 ro";
        assert_eq!(
            parse_mountinfo(line),
            Some(Mount {
                at: b"/tmp/a b/sda/sda1".to_vec(),
                fstype: "ext4".into(),
                source: "/dev/loop3".into(),
            })
        );
        assert_eq!(parse_mountinfo("garbage"), None);
        assert_eq!(unescape("a\\134b\\0"), b"a\\b\\0");
    }

    #[test]
    fn only_the_publications_own_raw_images_are_its_attachments() {
        assert!(ours(b"/mnt/p/sda/sda1.raw", b"/mnt/p/"));
        assert!(!ours(b"/mnt/p/sda/sda1.raw", b"/mnt/q/"));
        assert!(!ours(b"/mnt/p/home.img", b"/mnt/p/"));
        assert!(!ours(b"/mnt/pp/sda1.raw", b"/mnt/p/"));
    }
}
