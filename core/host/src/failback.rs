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
    let manifest = dir
        .manifest()?
        .ok_or_else(|| HostError::NotFound(format!("replica {}", dir.path().display())))?;
    // A test failover is refused while it runs on: nothing is stopped for a request that is
    // not right.
    if machine::running(dir)?.is_some_and(|r| r.spec.test) {
        return Err(HostError::Invalid(
            "a test failover is not failed back: end it (undo), its writes are thrown away".into(),
        ));
    }
    if let Some(running) = machine::halt(dir)? {
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
            let zero = ours == [0u8; 16];
            if !zero {
                bytes += len as u64;
            }
            let chunk = frames::block(index, offset, &buf[..len], zero);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain;
    use cloudkeep_api::replication::{ReplicaDisk, Running, StartSpec};

    /// With QEMU's real tools: a failed-over machine's writes (a run layer over point 1)
    /// become point 2, asked again it is left as it is, and only the block that differs from
    /// the tenant's fingerprints is sent back.
    #[test]
    fn a_machines_writes_become_the_newest_point_and_only_differences_go_back() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Key::from_hex(&"cd".repeat(32)).unwrap();
        let dir = ReplicaDir::new(tmp.path(), "acme", "app").unwrap();
        let disks = [ReplicaDisk {
            name: "sda".into(),
            size: 3 << 20,
        }];
        dir.create(&disks, &key).unwrap();
        let mut stream = frames::MAGIC.to_vec();
        stream.extend_from_slice(
            &Frame::Data {
                disk: 0,
                offset: 0,
                len: 1 << 20,
            }
            .encode(),
        );
        stream.extend(vec![7u8; 1 << 20]);
        stream.extend_from_slice(&Frame::End.encode());
        dir.apply_cycle(&key, &mut stream.as_slice(), 8 << 20, 3, 1)
            .unwrap();
        // The machine ran from point 1 and wrote block 1.
        let manifest = dir.manifest().unwrap().unwrap();
        let mut layers = dir.chain(&manifest, "sda", Some(1));
        let run = machine::run_layer_of(&dir, "sda");
        chain::create_layer(&run, 3 << 20, layers.last().map(PathBuf::as_path), &key).unwrap();
        layers.push(run.clone());
        {
            let export = Export::start(&layers, true, &key).unwrap();
            let mut nbd = export.connect().unwrap();
            nbd.write_at(1 << 20, &vec![9u8; 1 << 20]).unwrap();
            nbd.flush().unwrap();
        }
        let running = Running {
            spec: StartSpec {
                point: Some(1),
                test: false,
                cpu: 1,
                memory: 64 << 20,
                internet: false,
                ports: Vec::new(),
                probes: Vec::new(),
                network: None,
                mac: None,
            },
            point: 1,
            // No such process: nothing is signalled.
            pid: u32::MAX,
            since_ms: 1,
            probes: Vec::new(),
        };
        cloudkeep_model::paths::write_private_file(
            &dir.path().join(crate::store::RUN_FILE),
            &serde_json::to_vec(&running).unwrap(),
        )
        .unwrap();

        // A test failover is refused, and left running as it was.
        let mut test = running.clone();
        test.spec.test = true;
        let run_file = dir.path().join(crate::store::RUN_FILE);
        cloudkeep_model::paths::write_private_file(&run_file, &serde_json::to_vec(&test).unwrap())
            .unwrap();
        assert!(take_over(&dir, 3, &key, 2).is_err());
        assert!(run.exists() && dir.runs());
        cloudkeep_model::paths::write_private_file(
            &run_file,
            &serde_json::to_vec(&running).unwrap(),
        )
        .unwrap();

        let after = take_over(&dir, 3, &key, 2).unwrap();
        let ids: Vec<u64> = after.points.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2]);
        assert!(!run.exists() && !dir.runs());
        assert_eq!(take_over(&dir, 3, &key, 3).unwrap(), after, "asked again");

        // The tenant still has point 1's disk: only block 1 differs.
        let hash = prints::key(key.hex());
        let theirs = vec![vec![
            prints::of(&hash, &[7u8; 1 << 20]),
            [0u8; 16],
            [0u8; 16],
        ]];
        let mut sent: Vec<u8> = Vec::new();
        let (blocks, bytes) = differences(&dir, &after, &key, &theirs, &mut |c| {
            sent.extend(c);
            true
        })
        .unwrap();
        assert_eq!((blocks, bytes), (1, 1 << 20));
        let mut head = [0u8; frames::HEAD];
        head.copy_from_slice(&sent[8..8 + frames::HEAD]);
        assert_eq!(
            Frame::decode(&head),
            Some(Frame::Data {
                disk: 0,
                offset: 1 << 20,
                len: 1 << 20
            })
        );
        assert!(sent[8 + frames::HEAD..][..1 << 20].iter().all(|&b| b == 9));
        // A tenant that stopped taking ends it.
        assert!(differences(&dir, &after, &key, &[], &mut |_| false).is_err());
    }
}
