//! The computer's disks and volumes as the OS knows them: what the Backup mode step lists
//! (name, size, file system, mount point, used space), what "entire computer" backs up, and
//! which mounted file systems live on a disk being imaged (so they can be held consistent).
//!
//! Linux reads `/sys/class/block` (disks, partitions, loop devices with their backing file
//! and offset, device-mapper devices with their LVM names) and `/proc/self/mountinfo`. Other
//! systems list nothing yet: on Windows the same shape is filled from the volume manager
//! (`\\.\PhysicalDriveN`, volume GUID paths), and held consistent by VSS (`consistency`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a block device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A whole disk.
    Disk,
    /// A partition of a disk.
    Partition,
    /// A loop device (an image file attached as a disk or, with an offset, as a partition).
    Loop,
    /// An LVM logical volume.
    Lvm,
}

/// One block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// The kernel's name (`sda`, `sda1`, `loop0`, `dm-0`).
    pub name: String,
    /// Its device path (`/dev/sda1`, `/dev/vg/root` for a logical volume).
    pub path: PathBuf,
    /// What it is.
    pub kind: DeviceKind,
    /// Bytes.
    pub size: u64,
    /// `major:minor`.
    pub dev: (u32, u32),
    /// A partition's disk (kernel name).
    pub parent: Option<String>,
    /// A partition's byte offset on its disk; a loop device's offset into its backing file.
    pub offset: u64,
    /// A loop device's backing file.
    pub backing_file: Option<PathBuf>,
    /// An LVM logical volume as `vg/lv`.
    pub lvm_name: Option<String>,
    /// Where it is mounted (the first mount of it).
    pub mountpoint: Option<PathBuf>,
    /// The file system type the mount table names (`ext4`, `vfat`), when mounted.
    pub mount_type: Option<String>,
}

/// Every block device worth imaging: disks, partitions, attached loop devices and logical
/// volumes (RAM disks, compressed swap and empty loop devices are left out).
pub fn list() -> Vec<BlockDevice> {
    #[cfg(target_os = "linux")]
    {
        linux::list()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// The devices whose bytes are part of `disk` (a device path or an image file), each with
/// its byte offset on the disk: the disk itself (offset 0), its partitions, and loop devices
/// attached over the same image file or device (at their offset).
pub fn volumes_on(disk: &Path) -> Vec<(BlockDevice, u64)> {
    let all = list();
    let disk = fs::canonicalize(disk).unwrap_or_else(|_| disk.to_path_buf());
    let me = all.iter().find(|d| d.path == disk).cloned();
    let mut out = Vec::new();
    for d in &all {
        if d.path == disk {
            out.push((d.clone(), 0));
        } else if let (Some(me), Some(parent)) = (&me, &d.parent)
            && *parent == me.name
        {
            out.push((d.clone(), d.offset));
        } else if let Some(backing) = &d.backing_file {
            // A loop device over this disk: directly (image file or device), or over the
            // same image file as the disk's own loop device.
            let base = me
                .as_ref()
                .and_then(|m| m.backing_file.as_ref().map(|b| (b, m.offset)));
            if *backing == disk {
                out.push((d.clone(), d.offset));
            } else if let Some((b, off)) = base
                && b == backing
                && d.offset >= off
            {
                out.push((d.clone(), d.offset - off));
            }
        }
    }
    out
}

/// Where `dev` (`major:minor`) is mounted, from a mount table in `/proc/self/mountinfo` form.
pub fn mountpoint_in(mountinfo: &str, dev: (u32, u32)) -> Option<PathBuf> {
    mount_in(mountinfo, dev).map(|(point, _)| point)
}

/// Where `dev` is mounted and the file system type the table names.
pub fn mount_in(mountinfo: &str, dev: (u32, u32)) -> Option<(PathBuf, String)> {
    let want = format!("{}:{}", dev.0, dev.1);
    mountinfo.lines().find_map(|line| {
        let mut f = line.split(' ');
        let (_, _, devno, _, point) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        if devno != want {
            return None;
        }
        // Optional fields end at "-"; the type follows it.
        let kind = line.split(" - ").nth(1)?.split(' ').next()?.to_owned();
        Some((PathBuf::from(unescape_mount(point)), kind))
    })
}

/// Undoes the octal escapes (`\040` for a space) of a mount table field.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    fn read(path: &Path) -> Option<String> {
        fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
    }

    fn number(path: &Path) -> Option<u64> {
        read(path)?.parse().ok()
    }

    pub(super) fn list() -> Vec<BlockDevice> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Ok(entries) = fs::read_dir("/sys/class/block") else {
            return Vec::new();
        };
        let mut out: Vec<BlockDevice> = entries
            .flatten()
            .filter_map(|e| device(&e.file_name().to_string_lossy(), &mountinfo))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn device(name: &str, mountinfo: &str) -> Option<BlockDevice> {
        if ["ram", "zram", "sr", "fd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            return None;
        }
        let sys = Path::new("/sys/class/block").join(name);
        // Sizes are in 512-byte sectors whatever the device's own sector size.
        let size = number(&sys.join("size"))? * 512;
        if size == 0 {
            return None;
        }
        let devno = read(&sys.join("dev"))?;
        let (major, minor) = devno.split_once(':')?;
        let dev = (major.parse().ok()?, minor.parse().ok()?);
        let is_partition = sys.join("partition").exists();
        let parent = is_partition
            .then(|| {
                fs::canonicalize(&sys)
                    .ok()?
                    .parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .flatten();
        let backing_file = read(&sys.join("loop/backing_file")).map(PathBuf::from);
        let dm_uuid = read(&sys.join("dm/uuid")).unwrap_or_default();
        let dm_name = read(&sys.join("dm/name"));
        let (kind, offset, lvm_name) = if is_partition {
            let start = number(&sys.join("start")).unwrap_or(0) * 512;
            (DeviceKind::Partition, start, None)
        } else if backing_file.is_some() {
            let off = number(&sys.join("loop/offset")).unwrap_or(0);
            (DeviceKind::Loop, off, None)
        } else if dm_uuid.starts_with("LVM-") {
            // dm names double the dashes inside VG and LV names: "vg--a-root" is vg-a/root.
            let lvm = dm_name.as_deref().and_then(split_dm_name);
            (DeviceKind::Lvm, 0, lvm)
        } else if name.starts_with("loop") {
            return None; // an unattached loop device
        } else {
            (DeviceKind::Disk, 0, None)
        };
        let path = match &lvm_name {
            Some(vg_lv) => PathBuf::from("/dev").join(vg_lv),
            None => PathBuf::from("/dev").join(name),
        };
        let mount = mount_in(mountinfo, dev);
        Some(BlockDevice {
            name: name.to_owned(),
            mountpoint: mount.as_ref().map(|(p, _)| p.clone()),
            mount_type: mount.map(|(_, t)| t),
            path,
            kind,
            size,
            dev,
            parent,
            offset,
            backing_file,
            lvm_name,
        })
    }

    /// `vg--a-root` → `vg-a/root`.
    fn split_dm_name(name: &str) -> Option<String> {
        let b = name.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'-' {
                if b.get(i + 1) == Some(&b'-') {
                    i += 2;
                    continue;
                }
                let (vg, lv) = (&name[..i], &name[i + 1..]);
                return Some(format!(
                    "{}/{}",
                    vg.replace("--", "-"),
                    lv.replace("--", "-")
                ));
            }
            i += 1;
        }
        None
    }

    #[cfg(test)]
    #[test]
    fn dm_names_split_into_vg_and_lv() {
        assert_eq!(split_dm_name("vg--a-root").as_deref(), Some("vg-a/root"));
        assert_eq!(
            split_dm_name("data-home--old").as_deref(),
            Some("data/home-old")
        );
        assert_eq!(split_dm_name("nodash"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_found_by_device_number_and_unescaped() {
        let table = "22 1 7:0 / /mnt/with\\040space rw,relatime shared:1 - ext4 /dev/loop0 rw\n\
                     23 1 254:0 / / rw - ext4 /dev/vda rw\n";
        assert_eq!(
            mountpoint_in(table, (7, 0)),
            Some(PathBuf::from("/mnt/with space"))
        );
        assert_eq!(mountpoint_in(table, (254, 0)), Some(PathBuf::from("/")));
        assert_eq!(
            mount_in(table, (7, 0)).map(|(_, t)| t).as_deref(),
            Some("ext4")
        );
        assert_eq!(mountpoint_in(table, (8, 0)), None);
    }
}

/// A device as the Backup mode step shows it: what it is, and, where it can be read, its file
/// system and the space in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// The device.
    #[serde(flatten)]
    pub device: BlockDevice,
    /// Its file system, when one this code knows is on it (read from the device: needs the
    /// right to read it).
    pub filesystem: Option<super::probe::FileSystem>,
    /// Bytes its file system uses (from its allocation map, or for a mounted one the OS's
    /// count), when known.
    pub used: Option<u64>,
    /// A disk's partition table and volumes, when it has a table.
    pub layout: Option<super::layout::DiskLayout>,
}

/// Every device of [`list`] with its file system and use, where readable.
pub fn inventory() -> Vec<VolumeInfo> {
    list()
        .into_iter()
        .map(|device| {
            let mut filesystem = None;
            let mut used = None;
            let mut layout = None;
            if let Ok(mut f) = fs::File::open(&device.path) {
                filesystem = super::probe::probe(&mut f, 0, device.size);
                if let Some(fsys) = &filesystem {
                    used = super::used::used_map(&mut f, 0, device.size, fsys)
                        .ok()
                        .flatten()
                        .map(|m| m.bytes());
                } else {
                    layout = super::layout::read_layout(&mut f)
                        .ok()
                        .filter(|l| l.table != super::layout::PartitionTable::None);
                }
            }
            if used.is_none()
                && let Some(mount) = &device.mountpoint
            {
                used = mounted_use(mount);
            }
            VolumeInfo {
                device,
                filesystem,
                used,
                layout,
            }
        })
        .collect()
}

/// The bytes a mounted file system uses, as the OS counts them (`df`'s "used").
fn mounted_use(mount: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(mount).ok()?;
        Some(st.f_blocks.saturating_sub(st.f_bfree) * st.f_frsize)
    }
    #[cfg(not(unix))]
    {
        let _ = mount;
        None
    }
}
