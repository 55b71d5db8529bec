//! Recovery media (Linux): a bootable ISO (BIOS and UEFI, by `grub-mkrescue`) holding the
//! distribution's own kernel, a minimal initramfs made here — BusyBox (static), the storage
//! and network drivers a computer needs to reach its provider and its disks, this `cloudkeep`
//! binary with the libraries it links, a small `/init` — and the provider's address and
//! pinned certificate. Never a password, unless asked for: then it is sealed under a one-time
//! code, like enrollment files. Booted, `/init` brings the network up (DHCP) and runs
//! `cloudkeep recovery run` on the screen or, in serial-console mode, on the first serial port.
//!
//! The initramfs is a `newc` cpio archive compressed with zstd (the kernel's own reader), made
//! here without external tools; the ISO needs `grub-mkrescue` (GRUB's BIOS and EFI images,
//! `xorriso`, `mtools`).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use cloudkeep_repo::crypto::KdfParams;
use serde::{Deserialize, Serialize};

use crate::{TenantContext, TenantError};

/// Where the media keeps the provider it was made for (inside the booted initramfs).
pub const MEDIA_PROVIDER: &str = "/etc/cloudkeep/provider.json";

/// Associated data of a sealed provider password.
const PASSWORD_AAD: &[u8] = b"cloudkeep recovery media password v1";

/// Drivers the recovery system loads when the kernel has them as modules: disks (virtual,
/// SATA, NVMe, SAS, USB) and network cards (virtual and common physical ones).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "sd_mod",
    "sr_mod",
    "ahci",
    "ata_piix",
    "nvme",
    "vmw_pvscsi",
    "mptspi",
    "megaraid_sas",
    "mpt3sas",
    "hpsa",
    "hv_storvsc",
    "usb_storage",
    "uas",
    "xhci_pci",
    "ehci_pci",
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "r8169",
    "tg3",
    "bnx2",
    "vmxnet3",
    "hv_netvsc",
];

/// Packages that provide what making the media needs (Debian names).
const PACKAGES: &str = "grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools busybox-static and a kernel (linux-image-amd64)";

/// How to make the media.
#[derive(Debug, Clone, Default)]
pub struct MediaOptions {
    /// The ISO to write (must not exist).
    pub out: PathBuf,
    /// The provider it is for (by name); the only one when not given; none at all when the
    /// tenant has none (the address is asked for at boot).
    pub provider: Option<String>,
    /// Also carry the provider's password, sealed under a one-time code.
    pub with_password: bool,
    /// Make the serial console the default boot entry (scripted recoveries, servers).
    pub serial: bool,
    /// The kernel to boot (`/boot/vmlinuz-VERSION`); the newest with its modules when not
    /// given.
    pub kernel: Option<PathBuf>,
}

/// What was made.
#[derive(Debug, Clone, Serialize)]
pub struct MediaReport {
    /// The ISO.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The kernel version it boots.
    pub kernel: String,
    /// The provider it is for.
    pub provider: Option<String>,
    /// The one-time code that opens the sealed password (only with `with_password`).
    pub code: Option<String>,
}

/// The provider as the media carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaProvider {
    /// Its name.
    pub name: String,
    /// Its gateway addresses.
    pub addresses: Vec<String>,
    /// Its pinned certificate.
    pub fingerprint: String,
    /// The login.
    pub user: String,
    /// The login's password, sealed under the media's one-time code, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<SealedPassword>,
}

/// A password sealed under a one-time code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPassword {
    /// The key derivation.
    pub kdf: KdfParams,
    /// Its salt, hex.
    pub salt: String,
    /// The sealed password, hex.
    pub sealed: String,
}

fn media_error(message: impl Into<String>) -> TenantError {
    TenantError::Invalid(message.into())
}

fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

fn seal_password(password: &str, code: &str) -> Result<SealedPassword, TenantError> {
    let mut salt = [0u8; 16];
    cloudkeep_repo::crypto::random_bytes(&mut salt)?;
    let kdf = KdfParams::default();
    let sealed = cloudkeep_repo::crypto::seal_with_password(
        &normalize_code(code),
        &salt,
        kdf,
        PASSWORD_AAD,
        password.as_bytes(),
    )?;
    Ok(SealedPassword {
        kdf,
        salt: hex::encode(salt),
        sealed: hex::encode(sealed),
    })
}

/// Opens the password sealed on the media with its one-time code.
pub fn open_password(sealed: &SealedPassword, code: &str) -> Result<String, TenantError> {
    let wrong = || {
        media_error(
            "this one-time code does not open the password on this recovery media; type it as it was shown when the media was made (dashes may be left out)",
        )
    };
    let salt = hex::decode(&sealed.salt).map_err(|_| wrong())?;
    let bytes = hex::decode(&sealed.sealed).map_err(|_| wrong())?;
    let plain = cloudkeep_repo::crypto::open_with_password(
        &normalize_code(code),
        &salt,
        sealed.kdf,
        PASSWORD_AAD,
        &bytes,
    )
    .map_err(|_| wrong())?;
    String::from_utf8(plain.to_vec()).map_err(|_| wrong())
}

/// The provider of the recovery media this system booted from, if any.
pub fn media_provider() -> Option<MediaProvider> {
    let text = std::fs::read(MEDIA_PROVIDER).ok()?;
    serde_json::from_slice(&text).ok()
}

/// A program on `PATH`, or why the media cannot be made.
fn tool(name: &str) -> Result<PathBuf, TenantError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            media_error(format!(
                "making recovery media needs {name}, which is not installed; install {PACKAGES}"
            ))
        })
}

/// The kernel to boot and its version: the one asked for, or the newest in `/boot` whose
/// modules are installed.
fn kernel(asked: Option<&Path>) -> Result<(PathBuf, String), TenantError> {
    let version_of = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .map(str::to_owned)
    };
    let has_modules = |v: &str| {
        Path::new("/lib/modules")
            .join(v)
            .join("modules.dep")
            .is_file()
    };
    if let Some(path) = asked {
        let version = version_of(path).filter(|v| has_modules(v)).ok_or_else(|| {
            media_error(format!(
                "{} is not a kernel of this system with its modules (/boot/vmlinuz-VERSION and /lib/modules/VERSION)",
                path.display()
            ))
        })?;
        return Ok((path.to_path_buf(), version));
    }
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| version_of(&p).map(|v| (p, v)))
        .filter(|(_, v)| has_modules(v))
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.pop().ok_or_else(|| {
        media_error(format!(
            "no kernel with its modules was found in /boot; install the distribution's kernel ({PACKAGES})"
        ))
    })
}

/// The modules of `MODULES` the kernel `version` has, with what they need, in load order
/// (paths relative to `/lib/modules/VERSION`).
fn modules(version: &str) -> Result<Vec<String>, TenantError> {
    let dep = Path::new("/lib/modules").join(version).join("modules.dep");
    let text = std::fs::read_to_string(&dep)
        .map_err(|e| media_error(format!("cannot read {}: {e}", dep.display())))?;
    let name_of = |path: &str| {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = file.split(".ko").next().unwrap_or(file);
        stem.replace('-', "_")
    };
    let mut table: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in text.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        let deps = deps.split_whitespace().map(str::to_owned).collect();
        table.insert(name_of(path), (path.to_owned(), deps));
    }
    let by_path: HashMap<String, Vec<String>> = table.values().cloned().collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    // Dependencies first (an explicit stack: a module's list is short, but hostile input is
    // not assumed well-formed).
    fn visit(
        path: &str,
        by_path: &HashMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 || !seen.insert(path.to_owned()) {
            return;
        }
        for dep in by_path.get(path).into_iter().flatten() {
            visit(dep, by_path, seen, order, depth + 1);
        }
        order.push(path.to_owned());
    }
    for wanted in MODULES {
        if let Some((path, _)) = table.get(&wanted.replace('-', "_")) {
            visit(path, &by_path, &mut seen, &mut order, 0);
        }
    }
    Ok(order)
}

/// The shared libraries `binary` loads (and its loader), from `ldd`.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, TenantError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| media_error(format!("cannot run ldd: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// A `newc` cpio archive written entry by entry.
struct Cpio<W: Write> {
    out: W,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    fn header(
        &mut self,
        name: &str,
        mode: u32,
        size: usize,
        rdev: (u32, u32),
    ) -> std::io::Result<()> {
        self.ino += 1;
        let namesize = name.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, mode, 0, 0, 1, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0
        );
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + namesize)
    }

    fn pad(&mut self, len: usize) -> std::io::Result<()> {
        let pad = (4 - len % 4) % 4;
        self.out.write_all(&[0u8; 3][..pad])
    }

    fn dir(&mut self, name: &str) -> std::io::Result<()> {
        self.header(name, 0o040755, 0, (0, 0))
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.header(name, 0o100000 | (mode & 0o7777), data.len(), (0, 0))?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn symlink(&mut self, name: &str, target: &str) -> std::io::Result<()> {
        self.header(name, 0o120777, target.len(), (0, 0))?;
        self.out.write_all(target.as_bytes())?;
        self.pad(target.len())
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) -> std::io::Result<()> {
        self.header(name, 0o020600, 0, (major, minor))
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        Ok(self.out)
    }
}

/// An initramfs being written: its archive and the folders already in it.
struct Initramfs<W: Write> {
    cpio: Cpio<W>,
    dirs: BTreeSet<String>,
}

impl<W: Write> Initramfs<W> {
    /// Folder `path` and its parents, once each.
    fn dir(&mut self, path: &str) -> std::io::Result<()> {
        let mut all = parents(path);
        all.push(path.to_owned());
        for d in all {
            if self.dirs.insert(d.clone()) {
                self.cpio.dir(&d)?;
            }
        }
        Ok(())
    }

    /// File `name` with its folders.
    fn put(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        let folders = parents(name);
        if let Some(parent) = folders.last() {
            self.dir(parent)?;
        }
        self.cpio.file(name, mode, data)
    }
}

/// The parent folders of `path` (relative, no leading `/`), outermost first.
fn parents(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    (1..parts.len()).map(|i| parts[..i].join("/")).collect()
}

const INIT: &str = r#"#!/bin/busybox sh
# Cloudkeep recovery: drivers, network, then the recovery on the chosen console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "Cloudkeep recovery: loading drivers"
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done < /etc/cloudkeep/modules
sleep 2
ip link set lo up
for dev in /sys/class/net/*; do
  n=${dev##*/}
  [ "$n" = lo ] && continue
  ip link set "$n" up
  if udhcpc -i "$n" -n -q -t 8 -T 2 -s /etc/cloudkeep/udhcpc.sh >/dev/null 2>&1; then
    echo "network: $n $(ip -4 -o addr show dev "$n" | awk '{print $4}')"
  fi
done
console=tty1
for arg in $(cat /proc/cmdline); do
  case "$arg" in cloudkeep.console=*) console=${arg#cloudkeep.console=} ;; esac
done
export CLOUDKEEP_HOME=/run/cloudkeep CLOUDKEEP_SECRETS=file HOME=/run/home
mkdir -p /run/home
while true; do
  setsid -c /bin/cloudkeep -q recovery run <>"/dev/$console" >&0 2>&1
  echo "The recovery ended. Type exit to start it again, or reboot -f to restart." <>"/dev/$console" >&0 2>&1
  setsid -c /bin/sh <>"/dev/$console" >&0 2>&1
done
"#;

const UDHCPC: &str = r#"#!/bin/sh
# BusyBox udhcpc's events: the address, the default route and the name servers.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
"#;

fn grub_cfg(serial_default: bool) -> String {
    format!(
        r#"serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=3
set default={}
menuentry "Cloudkeep recovery" {{
  linux /boot/vmlinuz console=ttyS0,115200 console=tty0 quiet cloudkeep.console=tty1
  initrd /boot/initrd.zst
}}
menuentry "Cloudkeep recovery (serial console)" {{
  linux /boot/vmlinuz console=tty0 console=ttyS0,115200 quiet cloudkeep.console=ttyS0
  initrd /boot/initrd.zst
}}
"#,
        u8::from(serial_default)
    )
}

/// This binary, without debug sections when `objcopy` can take them off (smaller media).
fn this_binary(work: &Path) -> Result<PathBuf, TenantError> {
    let exe = std::env::current_exe()
        .map_err(|e| media_error(format!("cannot find the cloudkeep binary: {e}")))?;
    let stripped = work.join("cloudkeep");
    let done = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&exe)
        .arg(&stripped)
        .status()
        .is_ok_and(|s| s.success());
    if done {
        return Ok(stripped);
    }
    std::fs::copy(&exe, &stripped)
        .map_err(|e| media_error(format!("cannot copy {}: {e}", exe.display())))?;
    Ok(stripped)
}

/// Makes recovery media as `options` say (see the module doc). Blocking.
pub fn create_media(
    ctx: &TenantContext,
    options: &MediaOptions,
) -> Result<MediaReport, TenantError> {
    if !cfg!(target_os = "linux") {
        return Err(media_error(
            "recovery media are made on Linux for now; make them on a Linux computer",
        ));
    }
    if options.out.exists() {
        return Err(media_error(format!(
            "{} already exists; choose another file name",
            options.out.display()
        )));
    }
    let grub = tool("grub-mkrescue")?;
    tool("xorriso")?;
    tool("mformat")?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            media_error(format!(
                "making recovery media needs BusyBox; install {PACKAGES}"
            ))
        })?;
    if !libraries(&busybox)?.is_empty() {
        return Err(media_error(format!(
            "{} is linked dynamically; install busybox-static",
            busybox.display()
        )));
    }
    let (vmlinuz, version) = kernel(options.kernel.as_deref())?;

    // The provider: the one named, or the only one.
    let state = ctx.state();
    let providers = ctx.block_on(state.providers())?;
    let provider = match &options.provider {
        Some(name) => Some(ctx.block_on(state.provider(name))?),
        None if providers.len() == 1 => providers.first().cloned(),
        None => None,
    };
    let mut code = None;
    let media_provider = match &provider {
        Some(p) => {
            let sealed_password = if options.with_password {
                let password = ctx
                    .secrets()
                    .get(&crate::secrets::provider_key(&p.name))?
                    .ok_or_else(|| {
                        media_error(format!(
                            "the password of \"{}\" is not stored on this computer",
                            p.name
                        ))
                    })?;
                let one_time = crate::policies::one_time_code()?;
                let sealed = seal_password(&password, &one_time)?;
                code = Some(one_time);
                Some(sealed)
            } else {
                None
            };
            Some(MediaProvider {
                name: p.name.clone(),
                addresses: p.addresses.clone(),
                fingerprint: p.fingerprint.clone(),
                user: p.user.clone(),
                sealed_password,
            })
        }
        None if options.with_password => {
            return Err(media_error(
                "--with-password needs a provider: name it with --provider",
            ));
        }
        None => None,
    };

    let work =
        tempfile::tempdir().map_err(|e| media_error(format!("cannot make a work folder: {e}")))?;
    let iso = work.path().join("iso");
    std::fs::create_dir_all(iso.join("boot/grub"))
        .map_err(|e| media_error(format!("cannot make a work folder: {e}")))?;
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| media_error(format!("{what}: {e}"))
    };
    std::fs::copy(&vmlinuz, iso.join("boot/vmlinuz")).map_err(io("copying the kernel"))?;
    std::fs::write(iso.join("boot/grub/grub.cfg"), grub_cfg(options.serial))
        .map_err(io("writing the boot menu"))?;

    // The initramfs.
    let binary = this_binary(work.path())?;
    let file =
        std::fs::File::create(iso.join("boot/initrd.zst")).map_err(io("writing the initramfs"))?;
    let encoder = zstd::Encoder::new(file, 3).map_err(io("compressing the initramfs"))?;
    let mut initramfs = Initramfs {
        cpio: Cpio {
            out: encoder,
            ino: 0,
        },
        dirs: BTreeSet::new(),
    };
    let contents =
        |fs: &mut Initramfs<zstd::Encoder<'static, std::fs::File>>| -> std::io::Result<()> {
            for d in ["dev", "proc", "sys", "run", "tmp", "root", "etc/cloudkeep"] {
                fs.dir(d)?;
            }
            fs.cpio.char_device("dev/console", 5, 1)?;
            fs.put("init", 0o755, INIT.as_bytes())?;
            fs.put("etc/cloudkeep/udhcpc.sh", 0o755, UDHCPC.as_bytes())?;
            fs.put("etc/hosts", 0o644, b"127.0.0.1 localhost recovery\n")?;
            fs.put("bin/busybox", 0o755, &std::fs::read(&busybox)?)?;
            fs.cpio.symlink("bin/sh", "busybox")?;
            fs.put("bin/cloudkeep", 0o755, &std::fs::read(&binary)?)?;
            for lib in libraries(&binary).map_err(|e| std::io::Error::other(e.to_string()))? {
                let name = lib.to_string_lossy().trim_start_matches('/').to_owned();
                fs.put(&name, 0o755, &std::fs::read(&lib)?)?;
            }
            let root = Path::new("/lib/modules").join(&version);
            let mut list = String::new();
            for m in modules(&version).map_err(|e| std::io::Error::other(e.to_string()))? {
                fs.put(
                    &format!("lib/modules/{version}/{m}"),
                    0o644,
                    &std::fs::read(root.join(&m))?,
                )?;
                list.push_str(&format!("{version}/{m}\n"));
            }
            fs.put("etc/cloudkeep/modules", 0o644, list.as_bytes())?;
            if let Some(p) = &media_provider {
                let json = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
                fs.put(MEDIA_PROVIDER.trim_start_matches('/'), 0o600, &json)?;
            }
            Ok(())
        };
    contents(&mut initramfs).map_err(io("writing the initramfs"))?;
    initramfs
        .cpio
        .finish()
        .and_then(|encoder| encoder.finish())
        .and_then(|file| file.sync_all())
        .map_err(io("writing the initramfs"))?;

    // The ISO, beside its final name, then renamed.
    let partial = {
        let mut n = options.out.as_os_str().to_owned();
        n.push(".partial");
        PathBuf::from(n)
    };
    // Whatever stands at the temporary name (a leftover, a planted link) goes first.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(media_error(format!(
                "cannot replace {}: {e}",
                partial.display()
            )));
        }
        _ => {}
    }
    let out = Command::new(&grub)
        .arg("-o")
        .arg(&partial)
        .arg(&iso)
        .output()
        .map_err(io("running grub-mkrescue"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(media_error(format!(
            "grub-mkrescue failed: {}; install {PACKAGES}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    std::fs::rename(&partial, &options.out).map_err(io("naming the ISO"))?;
    let bytes = std::fs::metadata(&options.out)
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(MediaReport {
        path: options.out.clone(),
        bytes,
        kernel: version,
        provider: media_provider.map(|p| p.name),
        code,
    })
}

/// Writes the recovery ISO at `iso` onto the USB stick (or any disk) `device`, after the
/// same checks as a disk restore: a device, not mounted, large enough. The face has shown
/// its contents and had the person type its path (`confirmed` must be that path). Synced
/// before it returns. Blocking.
pub fn write_to_device(iso: &Path, device: &Path, confirmed: &str) -> Result<u64, TenantError> {
    if confirmed.trim() != device.to_string_lossy() {
        return Err(media_error(format!(
            "type {} exactly to confirm; nothing was written",
            device.display()
        )));
    }
    let target =
        cloudkeep_repo::image::target::inspect(device).map_err(|e| media_error(e.to_string()))?;
    if !target.is_device {
        return Err(media_error(format!(
            "{} is not a disk; choose the USB stick's device (such as /dev/sdb)",
            device.display()
        )));
    }
    let size = std::fs::metadata(iso)
        .map_err(|e| media_error(format!("{}: {e}", iso.display())))?
        .len();
    target.check(size).map_err(|e| media_error(e.to_string()))?;
    let mut from =
        std::fs::File::open(iso).map_err(|e| media_error(format!("{}: {e}", iso.display())))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(|e| media_error(format!("cannot write {}: {e}", device.display())))?;
    let written = std::io::copy(&mut from, &mut to)
        .and_then(|n| to.sync_all().map(|()| n))
        .map_err(|e| media_error(format!("writing {}: {e}", device.display())))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_with_its_code_only() {
        let sealed = seal_password("s3cret", "ABCDE-FGHIJ").unwrap();
        assert_eq!(
            open_password(&sealed, "abcde fghij".to_uppercase().as_str()).unwrap(),
            "s3cret"
        );
        assert_eq!(open_password(&sealed, "ABCDEFGHIJ").unwrap(), "s3cret");
        assert!(open_password(&sealed, "ABCDE-FGHIK").is_err());
    }

    #[test]
    fn a_cpio_archive_has_aligned_entries_and_a_trailer() {
        let mut c = Cpio {
            out: Vec::new(),
            ino: 0,
        };
        c.dir("etc").unwrap();
        c.file("etc/x", 0o644, b"hello").unwrap();
        c.symlink("bin/sh", "busybox").unwrap();
        let out = c.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("etc/x") && text.contains("hello") && text.contains("TRAILER!!!"));
    }

    #[test]
    fn parents_are_listed_outermost_first() {
        assert_eq!(parents("a/b/c"), vec!["a".to_owned(), "a/b".to_owned()]);
        assert!(parents("init").is_empty());
    }
}
