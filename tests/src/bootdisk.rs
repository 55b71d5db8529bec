//! A small bootable test machine's disk, for replication and failover tests: the
//! distribution's kernel, static BusyBox, the e1000 network driver and the IDE disk drivers in
//! an initramfs whose `/init` prints a marker on the serial console and serves it over HTTP on
//! port 80 (10.0.2.15, QEMU's user network), made into a hybrid image by `grub-mkrescue` — an
//! ISO that boots from a hard disk as well (BIOS). The same tools the recovery media test uses.
//!
//! The machine writes to its own disk: `GET /cgi-bin/write?TEXT` puts `TEXT` at
//! [`DATA_OFFSET`] (synced), and every boot prints what is there as `CLOUDKEEP-TEST-DATA TEXT`
//! — a change made while a replica runs, seen again where it is brought back.

// Test support: a panic with a message is how a set-up failure reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest kernel in `/boot` and its version.
fn kernel() -> (PathBuf, String) {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .expect("/boot")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    let path = found
        .pop()
        .expect("a kernel in /boot (scripts/test installs linux-image-amd64)");
    let version = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap()
        .to_owned();
    (path, version)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where on its disk the test machine keeps the text it is given (past the boot image).
pub const DATA_OFFSET: u64 = 48 << 20;

/// The disk's size: a whole number of MiB past [`DATA_OFFSET`].
pub const SIZE: u64 = 64 << 20;

/// Kernel modules the machine loads, in order: the network card, then the IDE disk and what
/// the SCSI disk driver needs.
const MODULES: &[&str] = &[
    "e1000",
    "scsi_common",
    "scsi_mod",
    "libata",
    "ata_piix",
    "crct10dif_common",
    "crct10dif_generic",
    "crc-t10dif",
    "crc64",
    "crc64_rocksoft_generic",
    "crc64-rocksoft",
    "t10-pi",
    "sd_mod",
];

/// The `/init` of the test machine: `marker` on the serial console once its web server runs.
fn init(marker: &str) -> String {
    let sector = DATA_OFFSET / 512;
    let modules: Vec<String> = MODULES
        .iter()
        .map(|m| format!("insmod /lib/{m}.ko 2>/dev/null"))
        .collect();
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
{modules}
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/sda ] && break; sleep 1; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
DATA=$(dd if=/dev/sda bs=512 skip={sector} count=1 2>/dev/null | tr -d '\000' | head -n 1)
echo "CLOUDKEEP-TEST-DATA $DATA" > /dev/ttyS0
mkdir -p /www/cgi-bin
echo "{marker}" > /www/index.html
cat > /www/cgi-bin/write <<'CGI'
#!/bin/sh
{{ printf '%s\n' "$QUERY_STRING"; head -c 512 /dev/zero; }} | head -c 512 | dd of=/dev/sda bs=512 seek={sector} conv=notrunc 2>/dev/null
sync
printf 'Content-Type: text/plain\r\n\r\nwritten %s\n' "$QUERY_STRING"
CGI
chmod 755 /www/cgi-bin/write
httpd -p 80 -h /www
echo "CLOUDKEEP-TEST-MACHINE {marker}" > /dev/ttyS0
while true; do sleep 3600; done
"#,
        modules = modules.join("\n")
    )
}

/// Builds the disk image at `out` (a whole number of MiB); its machine prints and serves
/// `marker`.
pub fn build(out: &Path, marker: &str) {
    let work = tempfile::tempdir().unwrap();
    let (vmlinuz, version) = kernel();
    let root = work.path().join("initrd");
    for dir in ["bin", "lib", "proc", "sys", "dev", "www"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for m in MODULES {
        let found = Command::new("modinfo")
            .args(["-k", &version, "-n", m])
            .output()
            .unwrap_or_else(|e| panic!("modinfo: {e} (kmod)"));
        let module = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        std::fs::copy(&module, root.join("lib").join(format!("{m}.ko")))
            .unwrap_or_else(|e| panic!("module {m} ({}): {e}", module.display()));
    }
    std::fs::write(root.join("init"), init(marker)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("init"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let iso = work.path().join("iso");
    std::fs::create_dir_all(iso.join("boot/grub")).unwrap();
    std::fs::copy(&vmlinuz, iso.join("boot/vmlinuz")).unwrap();
    let initrd = iso.join("boot/initrd.gz");
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
        root.display(),
        initrd.display()
    )));
    std::fs::write(
        iso.join("boot/grub/grub.cfg"),
        "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\nset timeout=0\nmenuentry test {\n  linux /boot/vmlinuz console=ttyS0,115200 quiet\n  initrd /boot/initrd.gz\n}\n",
    )
    .unwrap();
    run(Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(&iso)
        .arg("--")
        .args(["-volid", "CKTEST"]));
    // The disk: the boot image, then room for the machine's text ([`SIZE`], a whole number
    // of MiB: replicas track 1 MiB blocks).
    let len = std::fs::metadata(out).unwrap().len();
    assert!(
        len <= DATA_OFFSET,
        "the boot image ({len} bytes) reaches the data"
    );
    let f = std::fs::OpenOptions::new().write(true).open(out).unwrap();
    f.set_len(SIZE).unwrap();
}
