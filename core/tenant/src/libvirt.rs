//! A libvirt domain as a replica's machine: its definition (`virsh dumpxml NAME`, or a saved
//! XML file) read for its virtual CPUs, memory, disks (files or block devices, raw or qcow2;
//! CD-ROMs and floppies left out) and its first network card's MAC address, so the replica is
//! made with the same configuration and keeps its MAC on the tenant's network.
//!
//! **Invariant:** only what is read here reaches the replica; a definition that names no disk
//! to read, or values out of range, is refused with what is wrong.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};

use crate::TenantError;

/// What a domain brings to its replica.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Domain {
    /// Its name.
    pub name: String,
    /// Virtual CPUs.
    pub cpu: u32,
    /// Memory, bytes.
    pub memory: u64,
    /// Its disks: the guest's name for each (`vda`) and where it is read.
    pub disks: Vec<(String, PathBuf)>,
    /// Its first network card's MAC address.
    pub mac: Option<String>,
}

fn bad(what: impl std::fmt::Display) -> TenantError {
    TenantError::Invalid(format!("the libvirt domain's definition: {what}"))
}

/// Bytes in a libvirt memory `unit` (KiB when none is given).
fn unit_bytes(unit: Option<&str>) -> Result<u64, TenantError> {
    Ok(match unit.unwrap_or("KiB") {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        other => {
            return Err(bad(format!(
                "memory unit \"{other}\" is not one libvirt uses"
            )));
        }
    })
}

/// The value of attribute `key` of `e`.
fn attr(e: &BytesStart<'_>, key: &[u8]) -> Result<Option<String>, TenantError> {
    for a in e.attributes() {
        let a = a.map_err(bad)?;
        if a.key.as_ref() == key {
            return Ok(Some(
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(bad)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

/// A disk element being read.
#[derive(Debug, Default)]
struct DiskXml {
    device: Option<String>,
    source: Option<String>,
    target: Option<String>,
}

/// Reads a domain's XML definition.
pub fn parse(xml: &str) -> Result<Domain, TenantError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut dom = Domain::default();
    let mut memory_unit: Option<String> = None;
    let mut disk: Option<DiskXml> = None;
    let mut macs: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().map_err(bad)?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name().as_ref().to_vec();
                let under: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match (under.as_slice(), name.as_slice()) {
                    ([b"domain"], b"memory") => memory_unit = attr(e, b"unit")?,
                    ([b"domain", b"devices"], b"disk") => {
                        disk = Some(DiskXml {
                            device: attr(e, b"device")?,
                            ..DiskXml::default()
                        });
                    }
                    ([b"domain", b"devices", b"disk"], b"source") => {
                        if let Some(d) = disk.as_mut() {
                            d.source = match attr(e, b"file")? {
                                Some(f) => Some(f),
                                None => attr(e, b"dev")?,
                            };
                        }
                    }
                    ([b"domain", b"devices", b"disk"], b"target") => {
                        if let Some(d) = disk.as_mut() {
                            d.target = attr(e, b"dev")?;
                        }
                    }
                    ([b"domain", b"devices", b"interface"], b"mac") => {
                        if let Some(mac) = attr(e, b"address")? {
                            macs.push(mac.to_ascii_lowercase());
                        }
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                } else if name == b"disk" && path.len() == 2 {
                    disk = None;
                }
            }
            Event::End(_) => {
                let ended = path.pop();
                if ended.as_deref() == Some(b"disk".as_slice())
                    && path.len() == 2
                    && let Some(d) = disk.take()
                {
                    let is_disk = d.device.as_deref().is_none_or(|k| k == "disk");
                    if let (true, Some(source), Some(target)) = (is_disk, d.source, d.target) {
                        dom.disks.push((target, PathBuf::from(source)));
                    }
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(bad)?.trim().to_owned();
                let under: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match under.as_slice() {
                    [b"domain", b"name"] => dom.name = text,
                    [b"domain", b"vcpu"] => {
                        dom.cpu = text
                            .parse()
                            .map_err(|_| bad(format!("vcpu \"{text}\" is not a number")))?;
                    }
                    [b"domain", b"memory"] => {
                        let n: u64 = text
                            .parse()
                            .map_err(|_| bad(format!("memory \"{text}\" is not a number")))?;
                        dom.memory = n
                            .checked_mul(unit_bytes(memory_unit.as_deref())?)
                            .ok_or_else(|| bad("memory is too large"))?;
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if dom.disks.is_empty() {
        return Err(bad("it has no disk read from a file or a device"));
    }
    if dom.cpu == 0 || dom.memory == 0 {
        return Err(bad("it says no vcpu or no memory"));
    }
    dom.mac = macs.into_iter().next();
    Ok(dom)
}

/// The domain `which`: an XML file when that path exists, else the domain of that name as
/// `virsh dumpxml` gives it.
pub fn read(which: &str) -> Result<Domain, TenantError> {
    let path = Path::new(which);
    let xml = if path.is_file() {
        std::fs::read_to_string(path).map_err(|source| TenantError::File {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?
    } else {
        let out = std::process::Command::new("virsh")
            .args(["dumpxml", which])
            .output()
            .map_err(|e| {
                TenantError::Invalid(format!(
                    "{which} is no file, and virsh could not be run to ask libvirt for it: {e}"
                ))
            })?;
        if !out.status.success() {
            return Err(TenantError::Invalid(format!(
                "libvirt has no domain {which}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    parse(&xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = r#"<domain type='kvm'>
  <name>web-1</name>
  <memory unit='MiB'>192</memory>
  <currentMemory unit='KiB'>196608</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web&amp;1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/iso/debian.iso'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <controller type='usb'/>
    <interface type='network'>
      <mac address='52:54:00:AB:CD:EF'/>
      <source network='default'/>
    </interface>
    <disk type='block' device='disk'>
      <source dev='/dev/vg0/data'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>"#;

    #[test]
    fn a_domain_gives_its_cpus_memory_disks_and_mac() {
        let d = parse(DOMAIN).unwrap();
        assert_eq!(d.name, "web-1");
        assert_eq!((d.cpu, d.memory), (2, 192 << 20));
        assert_eq!(
            d.disks,
            [
                (
                    "vda".to_owned(),
                    PathBuf::from("/var/lib/libvirt/images/web&1.qcow2")
                ),
                ("vdb".to_owned(), PathBuf::from("/dev/vg0/data")),
            ]
        );
        assert_eq!(d.mac.as_deref(), Some("52:54:00:ab:cd:ef"));
    }

    #[test]
    fn a_definition_without_disks_or_with_nonsense_is_refused() {
        let no_disk = DOMAIN.replace("device='disk'", "device='floppy'");
        assert!(parse(&no_disk).unwrap_err().to_string().contains("no disk"));
        let bad_unit = DOMAIN.replace("unit='MiB'", "unit='parsecs'");
        assert!(
            parse(&bad_unit)
                .unwrap_err()
                .to_string()
                .contains("parsecs")
        );
        let bad_cpu = DOMAIN.replace(">2</vcpu>", ">two</vcpu>");
        assert!(parse(&bad_cpu).unwrap_err().to_string().contains("two"));
        assert!(parse("<domain><name>x</name>").is_err());
        assert!(parse("not xml at all <<<").is_err());
    }
}
