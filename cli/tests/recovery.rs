//! Recovery media, the whole story in QEMU (plain emulation, `-accel tcg`): a small bootable
//! disk made here (MBR, ext4, extlinux, the distribution's kernel and an initramfs that prints
//! a marker) is backed up at image level through a real gateway on loopback; `recovery-media
//! create --serial` makes the ISO; a blank virtual machine boots it, reaches the gateway
//! through QEMU's user network, is restored from its serial console question by question,
//! restarts from its own disk and prints the marker — and its disk equals the original byte
//! for byte. The same ISO also boots under UEFI (OVMF) to its first question. The ISO's size
//! and the time from power-on to the first question are printed. And on this computer, through
//! a terminal: chosen volumes only, onto a typed device. Runs as root (loop devices,
//! mounts), as the test command does.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{gateway_with_tenant, tenant_with_provider};

const MARKER: &str = "CLOUDKEEP-TEST-MARKER-7F3A";
const MIB: u64 = 1 << 20;

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The distribution's kernel in /boot (the newest).
fn kernel() -> PathBuf {
    let mut all: Vec<PathBuf> = std::fs::read_dir("/boot")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    all.sort();
    all.pop()
        .expect("a kernel in /boot (linux-image-amd64; scripts/test installs it)")
}

/// An initramfs that prints the marker and powers off (BusyBox, static).
fn marker_initramfs(dir: &Path) -> PathBuf {
    let root = dir.join("marker-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let init = root.join("init");
    std::fs::write(
        &init,
        format!("#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho {MARKER}\n/bin/busybox poweroff -f\n"),
    )
    .unwrap();
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = dir.join("marker.gz");
    let script = format!(
        "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
        root.display(),
        out.display()
    );
    tool("sh", &["-c", &script]);
    out
}

/// A 64 MiB bootable disk: MBR, one ext4 partition (4 KiB blocks, no 64-bit: extlinux reads
/// it) with the kernel, the marker initramfs and extlinux; syslinux's MBR code.
fn bootable_disk(dir: &Path) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(stage.join("boot/extlinux")).unwrap();
    std::fs::copy(kernel(), stage.join("boot/vmlinuz")).unwrap();
    std::fs::copy(marker_initramfs(dir), stage.join("boot/initrd.gz")).unwrap();
    std::fs::write(
        stage.join("boot/extlinux/extlinux.conf"),
        "DEFAULT marker\nTIMEOUT 1\nSERIAL 0 115200\nLABEL marker\n  LINUX /boot/vmlinuz\n  INITRD /boot/initrd.gz\n  APPEND console=ttyS0 quiet panic=-1\n",
    )
    .unwrap();
    let disk = dir.join("boot.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    crate::support::partition(&disk, "label: dos\nstart=2048, type=83, bootable\n");
    let part = dir.join("part.img");
    std::fs::File::create(&part)
        .unwrap()
        .set_len(63 * MIB)
        .unwrap();
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-O",
            "^64bit",
            "-d",
            stage.to_str().unwrap(),
            part.to_str().unwrap(),
        ],
    );
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let dev = tool("losetup", &["-f", "--show", part.to_str().unwrap()]);
    let dev = dev.trim();
    let mounted = Command::new("mount")
        .args([dev, mnt.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    let installed = mounted
        && Command::new("extlinux")
            .args(["--install", mnt.join("boot/extlinux").to_str().unwrap()])
            .output()
            .unwrap()
            .status
            .success();
    if mounted {
        tool("umount", &[mnt.to_str().unwrap()]);
    }
    tool("losetup", &["-d", dev]);
    assert!(installed, "extlinux installed on the test disk");
    let bytes = std::fs::read(&part).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &bytes, MIB).unwrap();
    let mbr = std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").expect("syslinux-common's mbr.bin");
    std::os::unix::fs::FileExt::write_all_at(&f, &mbr[..440], 0).unwrap();
    disk
}

/// A virtual machine on the serial console: what it printed, and its keyboard.
struct Machine {
    child: Child,
    stdin: ChildStdin,
    seen: Arc<Mutex<String>>,
    from: usize,
}

impl Machine {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new("qemu-system-x86_64")
            .args([
                "-accel", "tcg", "-m", "1024", "-display", "none", "-monitor", "none",
            ])
            .args(["-serial", "stdio"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-x86_64 (scripts/test installs qemu-system-x86)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if std::env::var_os("CLOUDKEEP_TEST_SERIAL").is_some() {
                    eprint!("{text}");
                }
                sink.lock().unwrap().push_str(&text);
            }
        });
        Self {
            child,
            stdin,
            seen,
            from: 0,
        }
    }

    /// Waits until the console shows `text` (after what was already matched).
    fn expect(&mut self, text: &str, secs: u64) {
        let started = Instant::now();
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if let Some(at) = seen[self.from..].find(text) {
                    self.from += at + text.len();
                    return;
                }
            }
            if started.elapsed() > Duration::from_secs(secs)
                || matches!(self.child.try_wait(), Ok(Some(_)))
            {
                let seen = self.seen.lock().unwrap();
                let tail: String = seen
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("the console did not show {text:?} within {secs} s; it ends with:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types a line.
    fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
    }

    fn wait(mut self, secs: u64) {
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "the machine did not power off"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_blank_machine_boots_the_recovery_media_and_is_restored_from_the_provider() {
    assert_eq!(
        tool("id", &["-u"]).trim(),
        "0",
        "recovery media tests need root (loop devices): run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = bootable_disk(d);

    // The machine as it was: it boots and prints the marker.
    let mut original = Machine::start(&[
        "-no-reboot",
        "-drive",
        &format!("file={},format=raw,if=virtio,snapshot=on", disk.display()),
    ]);
    original.expect(MARKER, 180);
    original.wait(60);

    // Backed up at image level through a real gateway.
    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop = tenant_with_provider(d, &gw, &fp);
    crate::support::image_job(&laptop, "machine", &disk);

    // The media: serial console by default, the provider's address and certificate.
    let iso = d.join("recovery.iso");
    let made = laptop.ok(
        &[
            "recovery-media",
            "create",
            "--out",
            iso.to_str().unwrap(),
            "--serial",
        ],
        None,
    );
    assert!(made.contains("for provider \"acme-sp\""), "{made}");
    let iso_bytes = std::fs::metadata(&iso).unwrap().len();

    // A blank machine: boots the media once, then its own disk.
    let blank = d.join("blank.img");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    let port = gw.addr.rsplit(':').next().unwrap().to_owned();
    let started = Instant::now();
    let mut vm = Machine::start(&[
        "-boot",
        "once=d",
        "-cdrom",
        iso.to_str().unwrap(),
        "-drive",
        &format!("file={},format=raw,if=virtio", blank.display()),
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-pci,netdev=n0",
    ]);
    vm.expect("Provider address", 600);
    let to_prompt = started.elapsed();
    // The gateway listens on the host's loopback: QEMU's user network reaches it at 10.0.2.2.
    vm.send(&format!("10.0.2.2:{port}"));
    vm.expect("Login", 60);
    vm.send("");
    vm.expect("Password:", 60);
    vm.send("tenant-password");
    vm.expect("Connected to acme-sp", 300);
    vm.expect("Which backup", 600);
    vm.send("");
    vm.expect("Which restore point", 300);
    vm.send("");
    vm.expect("Restore [1]", 60);
    vm.send("");
    vm.expect("Disk (a number, or a device path) [1]", 60);
    vm.send("");
    vm.expect("to overwrite it:", 120);
    vm.send("/dev/vda");
    vm.expect("restored", 1200);
    vm.expect("Restart the computer now?", 60);
    vm.send("");
    vm.expect(MARKER, 300);
    vm.wait(60);
    let restored = std::fs::read(&blank).unwrap();
    assert!(
        restored == std::fs::read(&disk).unwrap(),
        "the blank disk is now the original, byte for byte"
    );

    // The same media boots under UEFI too, to its first question.
    let vars = d.join("OVMF_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
        .expect("ovmf (scripts/test installs it)");
    let mut uefi = Machine::start(&[
        "-drive",
        "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        "-drive",
        &format!("if=pflash,format=raw,file={}", vars.display()),
        "-cdrom",
        iso.to_str().unwrap(),
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-pci,netdev=n0",
    ]);
    uefi.expect("Provider address", 600);
    drop(uefi);
    eprintln!(
        "recovery media: ISO {:.1} MiB; power-on to the first question {:.1} s (QEMU, plain emulation)",
        iso_bytes as f64 / MIB as f64,
        to_prompt.as_secs_f64()
    );
    drop(gw);
}

/// The recovery's other way, on this computer (no media: the provider's address and
/// fingerprint are asked for): chosen volumes only, each onto a device typed by the person
/// (here a loop device standing for a partition), confirmed by typing its path — through a
/// terminal, as on a console (`script` gives it one).
#[test]
fn the_recovery_restores_a_chosen_volume_onto_a_typed_device() {
    assert_eq!(
        tool("id", &["-u"]).trim(),
        "0",
        "recovery tests need root (loop devices): run scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("data.bin"),
        cloudkeep_tests::pseudo_random(2 << 20, 5),
    )
    .unwrap();
    let (disk, volume) = crate::support::ext4_disk(d, "two.img", 24, 20480, &tree);
    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop = tenant_with_provider(d, &gw, &fp);
    crate::support::image_job(&laptop, "machine", &disk);

    // "A partition of this computer": a loop device over an empty file.
    let target_file = d.join("target.img");
    std::fs::File::create(&target_file)
        .unwrap()
        .set_len(20480 * 512)
        .unwrap();
    let device = tool("losetup", &["-f", "--show", target_file.to_str().unwrap()]);
    let device = device.trim().to_owned();
    let answers = format!(
        "{addr}\n{fp}\nacme\ntenant-password\n\n\n2\ny\n{device}\n{device}\n",
        addr = gw.addr
    );
    let home = d.join("recovery-home");
    let command = format!(
        "{} -q recovery run --no-restart",
        env!("CARGO_BIN_EXE_cloudkeep")
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("CLOUDKEEP_HOME", &home)
        .env("CLOUDKEEP_SECRETS", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("losetup").args(["-d", &device]).status();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Restore volume two.img1"), "{said}");
    assert!(said.contains("Recovery done."), "{said}");
    assert!(
        std::fs::read(&target_file).unwrap() == std::fs::read(&volume).unwrap(),
        "the chosen volume, byte for byte, onto the typed device"
    );
    drop(gw);
}
