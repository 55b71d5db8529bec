//! Replicas on the host's disk: one folder per tenant and replica in a storage pool
//! (`POOL/replicas/TENANT/REPLICA/`), holding each disk's chain of encrypted qcow2 layers
//! (`DISK.base.qcow2`, then `DISK.pN.qcow2` per replica point) and `manifest.json` (the disks,
//! the points kept, the next point's number).
//!
//! A cycle writes the changed blocks it receives into new layers on top of the newest point
//! (`apply_cycle`); only a complete stream (its end frame read) makes them a replica point, by
//! renaming them into place and then writing the manifest. A cut stream, a bad frame or a full
//! disk removes the new layers: earlier points never change. Beyond the points kept, the
//! oldest is merged into the base (`chain::commit`), the next one re-parented onto it, and the
//! manifest written before the merged layer's file goes.
//!
//! **Invariants:** the manifest names only complete layers; a point's chain is the base and
//! every kept point up to it; files the manifest does not name are leftovers, removed when the
//! replica is next written.

use std::io::Read;
use std::path::{Path, PathBuf};

use cloudkeep_api::replication::frames::{self, Frame};
use cloudkeep_api::replication::{CycleReport, ReplicaDisk, ReplicaPoint};
use serde::{Deserialize, Serialize};

use crate::HostError;
use crate::chain::{self, Export, Key};

/// The file that says a machine of the replica runs (`machine`).
pub const RUN_FILE: &str = "run.json";

/// What a replica's folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its disks.
    pub disks: Vec<ReplicaDisk>,
    /// The points kept, oldest first.
    pub points: Vec<ReplicaPoint>,
    /// The next point's number.
    pub next: u64,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HostError {
    let path = path.to_path_buf();
    move |source| HostError::File { what, path, source }
}

/// A replica's folder in a pool.
#[derive(Debug, Clone)]
pub struct ReplicaDir {
    dir: PathBuf,
}

impl ReplicaDir {
    /// The folder of `tenant`'s replica `name` in the pool at `pool`; both names follow the
    /// name rule, so they are single safe path components.
    pub fn new(pool: &Path, tenant: &str, name: &str) -> Result<Self, HostError> {
        for (what, n) in [("tenant", tenant), ("replica", name)] {
            cloudkeep_model::names::check(what, n)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
        }
        Ok(Self {
            dir: pool.join("replicas").join(tenant).join(name),
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    fn base(&self, disk: &str) -> PathBuf {
        self.dir.join(format!("{disk}.base.qcow2"))
    }

    fn layer(&self, disk: &str, point: u64) -> PathBuf {
        self.dir.join(format!("{disk}.p{point}.qcow2"))
    }

    /// The manifest, if the replica exists.
    pub fn manifest(&self) -> Result<Option<Manifest>, HostError> {
        let path = self.manifest_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| HostError::Invalid(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), HostError> {
        let path = self.manifest_path();
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| HostError::Invalid(format!("a replica manifest: {e}")))?;
        cloudkeep_model::paths::write_private_file(&path, &bytes).map_err(io_err("write", &path))
    }

    /// Makes the replica: its folder (owner-only), an empty encrypted base per disk, the
    /// manifest last. Making one that exists with the same disks does nothing.
    pub fn create(&self, disks: &[ReplicaDisk], key: &Key) -> Result<(), HostError> {
        if let Some(found) = self.manifest()? {
            if found.disks == disks {
                return Ok(());
            }
            return Err(HostError::Invalid(format!(
                "replica {} exists with other disks",
                self.dir.display()
            )));
        }
        cloudkeep_model::paths::create_private_dir(&self.dir)
            .map_err(io_err("create", &self.dir))?;
        for disk in disks {
            cloudkeep_model::names::check("disk", &disk.name)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
            let base = self.base(&disk.name);
            let _ = std::fs::remove_file(&base);
            chain::create_layer(&base, disk.size, None, key)?;
        }
        self.write_manifest(&Manifest {
            disks: disks.to_vec(),
            points: Vec::new(),
            next: 1,
        })
    }

    /// The layers of point `id` of `disk`, base first; the newest point's when `None`.
    pub fn chain(&self, manifest: &Manifest, disk: &str, id: Option<u64>) -> Vec<PathBuf> {
        let mut layers = vec![self.base(disk)];
        for p in &manifest.points {
            if id.is_some_and(|id| p.id > id) {
                break;
            }
            layers.push(self.layer(disk, p.id));
        }
        layers
    }

    /// Bytes the replica's files take on disk.
    pub fn stored(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| allocated(&m))
            .sum()
    }

    /// Removes layers the manifest does not name (those of a cycle that was cut, a point
    /// whose merge was cut before its file went).
    fn remove_leftovers(&self, manifest: &Manifest) {
        let mut keep: Vec<PathBuf> = Vec::new();
        for d in &manifest.disks {
            keep.extend(self.chain(manifest, &d.name, None));
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let layer = name.ends_with(".partial")
                    || (name.ends_with(".qcow2")
                        && !name.ends_with(".run.qcow2")
                        && !name.ends_with(".base.qcow2"));
                if layer && !keep.contains(&path) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    /// Whether a machine of this replica may run (its chain must not change under it).
    pub fn runs(&self) -> bool {
        self.dir.join(RUN_FILE).exists()
    }

    /// Writes one cycle's block stream as a new replica point, keeps at most `keep` points,
    /// refuses a stream carrying more than `limit` bytes of data.
    pub fn apply_cycle(
        &self,
        key: &Key,
        stream: &mut dyn Read,
        limit: u64,
        keep: u32,
        now_ms: i64,
    ) -> Result<CycleReport, HostError> {
        let mut manifest = self
            .manifest()?
            .ok_or_else(|| HostError::NotFound(format!("replica {}", self.dir.display())))?;
        self.remove_leftovers(&manifest);
        let id = manifest.next;
        let mut fresh: Vec<(PathBuf, PathBuf)> = Vec::new();
        let written = self.write_layers(&manifest, id, key, stream, limit, &mut fresh);
        let (blocks, bytes) = match written {
            Ok(done) => done,
            Err(e) => {
                for (partial, _) in &fresh {
                    let _ = std::fs::remove_file(partial);
                }
                return Err(e);
            }
        };
        for (partial, done) in &fresh {
            std::fs::rename(partial, done).map_err(io_err("rename", partial))?;
        }
        let point = ReplicaPoint {
            id,
            time_ms: now_ms,
            bytes,
        };
        manifest.points.push(point.clone());
        manifest.next = id + 1;
        self.write_manifest(&manifest)?;
        // Merged later: a running machine reads these layers.
        if !self.runs() {
            self.prune(&mut manifest, keep, key)?;
        }
        Ok(CycleReport {
            point,
            blocks,
            stored: self.stored(),
        })
    }

    /// New layers over the newest point, filled from the stream; `(blocks, bytes)` written.
    fn write_layers(
        &self,
        manifest: &Manifest,
        id: u64,
        key: &Key,
        stream: &mut dyn Read,
        limit: u64,
        fresh: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(u64, u64), HostError> {
        let cut = |e: std::io::Error| {
            HostError::Invalid(format!("the cycle's block stream was cut: {e}"))
        };
        let mut magic = [0u8; 8];
        stream.read_exact(&mut magic).map_err(cut)?;
        if &magic != frames::MAGIC {
            return Err(HostError::Invalid(
                "this is not a replication block stream".into(),
            ));
        }
        let mut exports = Vec::with_capacity(manifest.disks.len());
        for disk in &manifest.disks {
            let mut layers = self.chain(manifest, &disk.name, None);
            let done = self.layer(&disk.name, id);
            let partial = done.with_extension("qcow2.partial");
            let _ = std::fs::remove_file(&partial);
            chain::create_layer(
                &partial,
                disk.size,
                layers.last().map(PathBuf::as_path),
                key,
            )?;
            fresh.push((partial.clone(), done));
            layers.push(partial);
            let export = Export::start(&layers, true, key)?;
            let nbd = export.connect()?;
            exports.push((export, nbd));
        }
        let (mut blocks, mut bytes, mut written) = (0u64, 0u64, 0u64);
        let mut data = vec![0u8; frames::MAX_LEN as usize];
        let zeros = vec![0u8; frames::MAX_LEN as usize];
        loop {
            let mut head = [0u8; frames::HEAD];
            stream.read_exact(&mut head).map_err(cut)?;
            let frame = Frame::decode(&head).ok_or_else(|| {
                HostError::Invalid("a malformed frame in the block stream".into())
            })?;
            let (disk, offset, len, zero) = match frame {
                Frame::End => break,
                Frame::Data { disk, offset, len } => (disk, offset, len, false),
                Frame::Zero { disk, offset, len } => (disk, offset, len, true),
            };
            let (Some(d), Some((_, nbd))) = (
                manifest.disks.get(usize::from(disk)),
                exports.get_mut(usize::from(disk)),
            ) else {
                return Err(HostError::Invalid(format!(
                    "the block stream names disk {disk}; the replica has {}",
                    manifest.disks.len()
                )));
            };
            if offset
                .checked_add(u64::from(len))
                .is_none_or(|end| end > d.size)
            {
                return Err(HostError::Invalid(format!(
                    "the block stream writes past the end of disk {}",
                    d.name
                )));
            }
            let len = len as usize;
            let at = |e: std::io::Error| {
                HostError::Qemu(format!("write disk {} at {offset}: {e}", d.name))
            };
            // Zeros take room in a layer as data does: both count against what is left.
            written += len as u64;
            if written > limit {
                return Err(HostError::Full(format!(
                    "the cycle writes more than the {limit} bytes the plan's storage has left"
                )));
            }
            if zero {
                nbd.write_at(offset, &zeros[..len]).map_err(at)?;
            } else {
                bytes += len as u64;
                stream.read_exact(&mut data[..len]).map_err(cut)?;
                nbd.write_at(offset, &data[..len]).map_err(at)?;
            }
            blocks += 1;
        }
        for (_, nbd) in &mut exports {
            nbd.flush()
                .map_err(|e| HostError::Qemu(format!("flush a replica disk: {e}")))?;
        }
        drop(exports);
        Ok((blocks, bytes))
    }

    /// Merges the oldest points into the base until at most `keep` are left.
    fn prune(&self, manifest: &mut Manifest, keep: u32, key: &Key) -> Result<(), HostError> {
        while manifest.points.len() > keep.max(1) as usize {
            let oldest = manifest.points[0].id;
            let next = manifest.points.get(1).map(|p| p.id);
            for disk in &manifest.disks {
                let base = self.base(&disk.name);
                chain::commit(&base, &self.layer(&disk.name, oldest), key)?;
                if let Some(next) = next {
                    chain::rebase(&self.layer(&disk.name, next), &base, key)?;
                }
            }
            manifest.points.remove(0);
            self.write_manifest(manifest)?;
            for disk in &manifest.disks {
                let _ = std::fs::remove_file(self.layer(&disk.name, oldest));
            }
        }
        Ok(())
    }

    /// Makes what a failed-over machine wrote the newest replica point: each disk's run layer
    /// (`layers`, over point `from`) becomes the new point's by a hard link, and points after
    /// `from` are dropped (the machine's history went on from `from`). The manifest is
    /// written only once every link is made; the caller then removes the run layers' names.
    pub fn adopt(
        &self,
        from: u64,
        layers: &[(String, PathBuf)],
        now_ms: i64,
    ) -> Result<ReplicaPoint, HostError> {
        let mut manifest = self
            .manifest()?
            .ok_or_else(|| HostError::NotFound(format!("replica {}", self.dir.display())))?;
        if !manifest.points.iter().any(|p| p.id == from) {
            return Err(HostError::Invalid(format!(
                "replica point {from} the machine started from is gone"
            )));
        }
        let id = manifest.next;
        for (disk, run) in layers {
            let to = self.layer(disk, id);
            let _ = std::fs::remove_file(&to);
            std::fs::hard_link(run, &to).map_err(io_err("link", run))?;
        }
        manifest.points.retain(|p| p.id <= from);
        let point = ReplicaPoint {
            id,
            time_ms: now_ms,
            bytes: 0,
        };
        manifest.points.push(point.clone());
        manifest.next = id + 1;
        self.write_manifest(&manifest)?;
        Ok(point)
    }

    /// Removes what the manifest does not name and, when no machine runs, merges points
    /// beyond `keep`.
    pub fn settle(&self, keep: u32, key: &Key) -> Result<Manifest, HostError> {
        let mut manifest = self
            .manifest()?
            .ok_or_else(|| HostError::NotFound(format!("replica {}", self.dir.display())))?;
        self.remove_leftovers(&manifest);
        if !self.runs() {
            self.prune(&mut manifest, keep, key)?;
        }
        Ok(manifest)
    }

    /// Removes the replica and everything in its folder.
    pub fn remove(&self) -> Result<(), HostError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.dir)(e)),
        }
    }
}

/// Bytes a file takes on disk (its allocated blocks where the OS says).
fn allocated(m: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        m.blocks() * 512
    }
    #[cfg(not(unix))]
    {
        m.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: Frame, data: &[u8]) -> Vec<u8> {
        let mut out = f.encode().to_vec();
        out.extend_from_slice(data);
        out
    }

    /// Hostile and cut block streams with QEMU's real tools: each refused, no point made,
    /// nothing left behind, the earlier point intact.
    #[test]
    fn a_bad_cut_or_oversized_stream_makes_no_point_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Key::from_hex(&"ab".repeat(32)).unwrap();
        let dir = ReplicaDir::new(tmp.path(), "acme", "web").unwrap();
        let disks = [ReplicaDisk {
            name: "sda".into(),
            size: 4 << 20,
        }];
        dir.create(&disks, &key).unwrap();
        let block = vec![7u8; 1 << 20];
        let good = [
            frames::MAGIC.to_vec(),
            frame(
                Frame::Data {
                    disk: 0,
                    offset: 0,
                    len: 1 << 20,
                },
                &block,
            ),
            frame(Frame::End, &[]),
        ]
        .concat();
        let first = dir
            .apply_cycle(&key, &mut good.as_slice(), 8 << 20, 3, 1)
            .unwrap();
        assert_eq!((first.point.id, first.blocks), (1, 1));
        let files = |d: &ReplicaDir| {
            let mut names: Vec<String> = std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let before = files(&dir);
        let zeros = |n: u64| {
            let mut s = frames::MAGIC.to_vec();
            for i in 0..n {
                s.extend(frame(
                    Frame::Zero {
                        disk: 0,
                        offset: (i % 4) << 20,
                        len: 1 << 20,
                    },
                    &[],
                ));
            }
            s.extend(frame(Frame::End, &[]));
            s
        };
        let past_end = [
            frames::MAGIC.to_vec(),
            frame(
                Frame::Data {
                    disk: 0,
                    offset: 4 << 20,
                    len: 1,
                },
                &[1],
            ),
        ]
        .concat();
        let other_disk = [
            frames::MAGIC.to_vec(),
            frame(
                Frame::Zero {
                    disk: 3,
                    offset: 0,
                    len: 1,
                },
                &[],
            ),
        ]
        .concat();
        let cut = good[..good.len() / 2].to_vec();
        for (what, stream) in [
            ("zeros beyond the plan's storage", zeros(9)),
            ("a write past the disk's end", past_end),
            ("a disk the replica lacks", other_disk),
            ("a stream cut half-way", cut),
            ("not a block stream", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ] {
            let refused = dir.apply_cycle(&key, &mut stream.as_slice(), 8 << 20, 3, 2);
            assert!(refused.is_err(), "{what} was taken");
            assert_eq!(files(&dir), before, "{what} left something behind");
            assert_eq!(dir.manifest().unwrap().unwrap().points.len(), 1, "{what}");
        }
        // The first point still reads as written.
        let out = tmp.path().join("out.raw");
        let manifest = dir.manifest().unwrap().unwrap();
        chain::to_raw(&dir.chain(&manifest, "sda", None), &out, &key).unwrap();
        let disk = std::fs::read(&out).unwrap();
        assert_eq!(&disk[..1 << 20], block.as_slice());
        assert!(disk[1 << 20..].iter().all(|&b| b == 0));
    }
}
