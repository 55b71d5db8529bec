//! Failback: what a failed-over replica wrote, brought back to the tenant's machine. The
//! machine is halted (QEMU writes out what it holds), its run layers become the newest replica
//! point (`ReplicaDir::adopt`), and the tenant's own block fingerprints — of its old disks, or
//! of new empty ones — are compared with that point's: only the blocks that differ travel back,
//! in the cycle's frame format. A failback cut half-way is simply asked again: the point is
//! made once, and the tenant's fingerprints say what it still lacks.
//!
//! **Invariant:** the machine's writes are never lost on the way — its run layers are linked
//! into the new point and the manifest written before their old names go.

use std::path::PathBuf;

use cloudkeep_api::replication::frames::{self, Frame};
use cloudkeep_api::replication::prints::{self, Print};

use crate::HostError;
use crate::chain::{Export, Key};
use crate::machine;
use crate::store::{Manifest, ReplicaDir};

/// Halts a failed-over machine and makes what it wrote the newest point (at most `keep`
/// kept); a replica whose machine was already taken over is left as it is. The manifest after.
pub fn take_over(
    dir: &ReplicaDir,
    keep: u32,
    key: &Key,
    now_ms: i64,
) -> Result<Manifest, HostError> {
    if let Some(running) = machine::halt(dir)? {
        if running.spec.test {
            return Err(HostError::Invalid(
                "a test failover is not failed back: end it (undo), its writes are thrown away"
                    .into(),
            ));
        }
        let manifest = dir
            .manifest()?
            .ok_or_else(|| HostError::NotFound(format!("replica {}", dir.path().display())))?;
        let layers: Vec<(String, PathBuf)> = manifest
            .disks
            .iter()
            .map(|d| (d.name.clone(), machine::run_layer_of(dir, &d.name)))
            .collect();
        // Every run layer there: the machine's writes are taken into a point. None there: an
        // earlier failback took them and stopped before `run.json` went.
        if layers.iter().all(|(_, l)| l.exists()) {
            dir.adopt(running.point, &layers, now_ms)?;
        } else if layers.iter().any(|(_, l)| l.exists()) {
            return Err(HostError::Invalid(format!(
                "some run layers of {} are missing: its machine's writes cannot be taken whole",
                dir.path().display()
            )));
        }
        machine::forget(dir)?;
    }
    dir.settle(keep, key)
}

/// Reads the newest point of every disk and sends (`send`, a frame's bytes at a time; `false`
/// when the receiver is gone) each block whose fingerprint is not `theirs`, then the end
/// frame. `(blocks, bytes)` sent.
pub fn differences(
    dir: &ReplicaDir,
    manifest: &Manifest,
    key: &Key,
    theirs: &[Vec<Print>],
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(u64, u64), HostError> {
    let gone = || HostError::Invalid("the tenant stopped taking the failback".into());
    let hash_key = prints::key(key.hex());
    let mut buf = vec![0u8; prints::BLOCK];
    let (mut blocks, mut bytes) = (0u64, 0u64);
    if !send(frames::MAGIC.to_vec()) {
        return Err(gone());
    }
    for (i, disk) in manifest.disks.iter().enumerate() {
        let index = u16::try_from(i).map_err(|_| HostError::Invalid("too many disks".into()))?;
        let export = Export::start(&dir.chain(manifest, &disk.name, None), false, key)?;
        let mut nbd = export.connect()?;
        for b in 0..prints::blocks(disk.size) {
            let offset = (b * prints::BLOCK) as u64;
            let len = (disk.size - offset).min(prints::BLOCK as u64) as usize;
            nbd.read_at(offset, &mut buf[..len]).map_err(|e| {
                HostError::Qemu(format!("read disk {} at {offset}: {e}", disk.name))
            })?;
            let ours = prints::of(&hash_key, &buf[..len]);
            if theirs.get(i).and_then(|d| d.get(b)) == Some(&ours) {
                continue;
            }
            let len32 = len as u32;
            let chunk = if ours == [0u8; 16] {
                Frame::Zero {
                    disk: index,
                    offset,
                    len: len32,
                }
                .encode()
                .to_vec()
            } else {
                let mut chunk = Vec::with_capacity(frames::HEAD + len);
                chunk.extend_from_slice(
                    &Frame::Data {
                        disk: index,
                        offset,
                        len: len32,
                    }
                    .encode(),
                );
                chunk.extend_from_slice(&buf[..len]);
                bytes += len as u64;
                chunk
            };
            if !send(chunk) {
                return Err(gone());
            }
            blocks += 1;
        }
    }
    if !send(Frame::End.encode().to_vec()) {
        return Err(gone());
    }
    Ok((blocks, bytes))
}
