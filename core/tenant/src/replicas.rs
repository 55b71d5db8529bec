//! Replicas this computer sends to its providers' cloud hosts: made on a hardware plan (the
//! key made here, kept in the secrets, handed to the provider only when the tenant lets it hold
//! it), then cycles — each disk read in 1 MiB blocks, each block's keyed fingerprint compared
//! with the last cycle's, and only blocks that changed sent (blocks that became empty as a
//! short "zeros" frame), streamed to the gateway as they are read.
//!
//! **Invariants:** the fingerprints are saved only after the host made the replica point, so
//! a cycle that fails sends the same changes again next time; a disk whose size changed is
//! refused, never cut or padded.

use std::io::Read;
use std::path::{Path, PathBuf};

use cloudkeep_api::replication::frames::{self, Frame};
use cloudkeep_api::replication::prints;
use cloudkeep_api::replication::{CycleReport, NewReplica, ReplicaDisk, ReplicaSpec, ReplicaView};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::TenantError;
use crate::context::TenantContext;
use crate::providers;
use crate::sources::file_err;

/// The block size changes are tracked in.
pub const BLOCK: usize = prints::BLOCK;

/// A replica as this computer keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaJob {
    /// The provider it is at.
    pub provider: String,
    /// The replica as made there.
    pub spec: ReplicaSpec,
    /// Where each disk is read on this computer, in the spec's order.
    pub sources: Vec<PathBuf>,
    /// When the last cycle ended.
    pub last_ms: Option<i64>,
    /// `success` or `failed`.
    pub last_result: Option<String>,
    /// What the last cycle said.
    pub last_message: String,
    /// A cycle every this many minutes while the daemon (or the console) runs; only when
    /// asked when `None`.
    #[serde(default)]
    pub every_minutes: Option<u32>,
}

/// The shortest and longest time between scheduled cycles, in minutes.
pub const EVERY_MINUTES: std::ops::RangeInclusive<u32> = 1..=7 * 24 * 60;

impl ReplicaJob {
    /// Whether a scheduled cycle is due at `now_ms`.
    pub fn is_due(&self, now_ms: i64) -> bool {
        self.every_minutes.is_some_and(|every| {
            self.last_ms
                .is_none_or(|last| now_ms - last >= i64::from(every) * 60_000)
        })
    }
}

/// A replica to make.
#[derive(Debug, Clone)]
pub struct NewReplicaJob {
    /// The provider.
    pub provider: String,
    /// Its name.
    pub name: String,
    /// The hardware plan.
    pub plan: String,
    /// The plan's pool (its only one when `None`).
    pub pool: Option<String>,
    /// Each disk: its name and where it is read.
    pub disks: Vec<(String, PathBuf)>,
    /// Virtual CPUs it starts with.
    pub cpu: u32,
    /// Memory it starts with.
    pub memory: u64,
    /// Replica points kept.
    pub keep: u32,
    /// Whether the provider may hold the key.
    pub escrow: bool,
    /// A cycle every this many minutes (`None`: only when asked).
    pub every_minutes: Option<u32>,
    /// Its network card's MAC address on a tenant network (a libvirt domain's own).
    pub mac: Option<String>,
}

fn check_every(every: Option<u32>) -> Result<(), TenantError> {
    match every {
        Some(m) if !EVERY_MINUTES.contains(&m) => Err(TenantError::Invalid(format!(
            "run cycles every 1 minute to {} days",
            EVERY_MINUTES.end() / (24 * 60)
        ))),
        _ => Ok(()),
    }
}

/// Runs cycles of `job` every `every` minutes from now on (`None`: only when asked).
pub async fn set_schedule(
    state: &crate::state::TenantState,
    job: &ReplicaJob,
    every: Option<u32>,
) -> Result<(), TenantError> {
    check_every(every)?;
    sqlx::query("UPDATE replicas SET every_minutes = ?1 WHERE provider = ?2 AND name = ?3")
        .bind(every.map(i64::from))
        .bind(&job.provider)
        .bind(&job.spec.name)
        .execute(state.pool())
        .await?;
    Ok(())
}

/// A connection to `provider` as this tenant.
async fn client_of(
    ctx: &TenantContext,
    provider: &str,
) -> Result<cloudkeep_client::tenant::TenantClient, TenantError> {
    Ok(providers::connect(ctx.state(), ctx.secrets(), provider)
        .await?
        .0)
}

fn key_name(provider: &str, name: &str) -> String {
    format!("replica-key:{provider}:{name}")
}

/// The size of a disk image (a qcow2 image's virtual size) or device.
fn disk_size(path: &Path) -> Result<u64, TenantError> {
    Ok(crate::sources::Source::open(path)?.size())
}

/// Makes a replica at its provider and keeps it here.
pub fn create(ctx: &TenantContext, job: NewReplicaJob) -> Result<ReplicaView, TenantError> {
    check_every(job.every_minutes)?;
    let mut disks = Vec::with_capacity(job.disks.len());
    for (name, path) in &job.disks {
        disks.push(ReplicaDisk {
            name: name.clone(),
            size: disk_size(path)?,
        });
    }
    let mut raw = [0u8; 32];
    cloudkeep_repo::crypto::random_bytes(&mut raw)?;
    let key = zeroize::Zeroizing::new(hex::encode(raw));
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        let plans = client.replication_plans().await?;
        let plan = plans
            .iter()
            .find(|p| p.plan.name == job.plan)
            .ok_or_else(|| {
                TenantError::Invalid(format!(
                    "{} has given you no hardware plan \"{}\" (cloudkeep replica plans)",
                    job.provider, job.plan
                ))
            })?;
        let pool = match (&job.pool, plan.plan.storage.as_slice()) {
            (Some(pool), _) => pool.clone(),
            (None, [one]) => one.pool.clone(),
            (None, _) => {
                return Err(TenantError::Invalid(format!(
                    "hardware plan {} has storage on several pools; name one",
                    job.plan
                )));
            }
        };
        let spec = ReplicaSpec {
            name: job.name.clone(),
            plan: job.plan.clone(),
            pool,
            disks,
            cpu: job.cpu,
            memory: job.memory,
            keep: job.keep,
            mac: job.mac.clone(),
        };
        spec.check().map_err(TenantError::Invalid)?;
        ctx.secrets()
            .set(&key_name(&job.provider, &job.name), &key)?;
        let made = client
            .add_replica(&NewReplica {
                spec: spec.clone(),
                key: key.to_string(),
                escrow: job.escrow,
            })
            .await;
        let view = match made {
            Ok(view) => view,
            Err(e) => {
                let _ = ctx.secrets().remove(&key_name(&job.provider, &job.name));
                return Err(e.into());
            }
        };
        let sources: Vec<String> = job
            .disks
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect();
        sqlx::query(
            "INSERT INTO replicas (provider, name, spec, sources, every_minutes) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (provider, name) DO UPDATE SET spec = excluded.spec, sources = excluded.sources, every_minutes = excluded.every_minutes",
        )
        .bind(&job.provider)
        .bind(&job.name)
        .bind(json(&spec)?)
        .bind(json(&sources)?)
        .bind(job.every_minutes.map(i64::from))
        .execute(ctx.state().pool())
        .await?;
        Ok(view)
    })
}

fn json<T: Serialize>(value: &T) -> Result<String, TenantError> {
    serde_json::to_string(value).map_err(|e| TenantError::Invalid(e.to_string()))
}

/// Every replica this computer sends.
pub async fn list(state: &crate::state::TenantState) -> Result<Vec<ReplicaJob>, TenantError> {
    let rows = sqlx::query(
        "SELECT provider, name, spec, sources, last_ms, last_result, last_message, every_minutes FROM replicas ORDER BY provider, name",
    )
    .fetch_all(state.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(1)?;
            let damaged = |reason: String| TenantError::Damaged {
                what: format!("replica {name}"),
                reason,
                fix: "remove it (cloudkeep replica delete) and make it again",
            };
            let spec: String = r.try_get(2)?;
            let sources: String = r.try_get(3)?;
            let sources: Vec<String> =
                serde_json::from_str(&sources).map_err(|e| damaged(e.to_string()))?;
            Ok(ReplicaJob {
                provider: r.try_get(0)?,
                spec: serde_json::from_str(&spec).map_err(|e| damaged(e.to_string()))?,
                sources: sources.into_iter().map(PathBuf::from).collect(),
                last_ms: r.try_get(4)?,
                last_result: r.try_get(5)?,
                last_message: r.try_get(6)?,
                every_minutes: r
                    .try_get::<Option<i64>, _>(7)?
                    .and_then(|m| u32::try_from(m).ok()),
            })
        })
        .collect()
}

/// The replica `name` (at `provider`, or the only one of that name).
pub async fn find(
    state: &crate::state::TenantState,
    provider: Option<&str>,
    name: &str,
) -> Result<ReplicaJob, TenantError> {
    let found: Vec<ReplicaJob> = list(state)
        .await?
        .into_iter()
        .filter(|r| r.spec.name == name && provider.is_none_or(|p| p == r.provider))
        .collect();
    match found.len() {
        1 => Ok(found
            .into_iter()
            .next()
            .ok_or_else(|| TenantError::NoJob(name.into()))?),
        0 => Err(TenantError::Invalid(format!(
            "there is no replica \"{name}\" on this computer (cloudkeep replica list)"
        ))),
        _ => Err(TenantError::Invalid(format!(
            "replicas named \"{name}\" are at several providers; name one with --provider"
        ))),
    }
}

/// The fingerprints of every block of each disk as the host last has them (a zero block's is
/// all zeros).
#[derive(Debug, Default)]
struct Fingerprints(Vec<Vec<prints::Print>>);

impl Fingerprints {
    fn path(ctx: &TenantContext, job: &ReplicaJob) -> PathBuf {
        ctx.home()
            .root()
            .join("replicas")
            .join(format!("{}--{}.blocks", job.provider, job.spec.name))
    }

    /// Every block zeros: what a new replica's host has.
    fn zeros(disks: &[ReplicaDisk]) -> Self {
        Self(
            disks
                .iter()
                .map(|d| vec![[0u8; 16]; prints::blocks(d.size)])
                .collect(),
        )
    }

    /// The saved fingerprints; none (every block to send but zeros) when missing or damaged.
    fn load(path: &Path, disks: &[ReplicaDisk]) -> Self {
        let sizes: Vec<u64> = disks.iter().map(|d| d.size).collect();
        std::fs::read(path)
            .ok()
            .and_then(|bytes| prints::decode(&bytes, &sizes))
            .map_or_else(|| Self::zeros(disks), Self)
    }

    fn save(&self, path: &Path) -> Result<(), TenantError> {
        if let Some(dir) = path.parent() {
            cloudkeep_model::paths::create_private_dir(dir).map_err(file_err("create", dir))?;
        }
        cloudkeep_model::paths::write_private_file(path, &prints::encode(&self.0))
            .map_err(file_err("write", path))
    }
}

fn blocks(size: u64) -> usize {
    prints::blocks(size)
}

/// Why the reading side of a cycle stopped when the request ended first.
const STOPPED_TAKING: &str = "the provider stopped taking the cycle's blocks";

/// What the reading side of a cycle found: blocks read, blocks sent, bytes sent.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    sent: u64,
}

/// Reads every disk, sends the changed blocks into `tx` as frames; the new fingerprints.
fn scan(
    job: &ReplicaJob,
    key: &[u8; 32],
    old: &Fingerprints,
    tx: &tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    progress: &dyn Fn(u64, u64),
) -> Result<(Fingerprints, Scan), TenantError> {
    let total = job.spec.size();
    let mut done = 0u64;
    let mut scan = Scan::default();
    let send = |chunk: Vec<u8>| {
        tx.blocking_send(Ok(bytes::Bytes::from(chunk)))
            .map_err(|_| TenantError::Invalid(STOPPED_TAKING.into()))
    };
    send(frames::MAGIC.to_vec())?;
    let mut new = Fingerprints::default();
    let mut buf = vec![0u8; BLOCK];
    for (i, (disk, path)) in job.spec.disks.iter().zip(&job.sources).enumerate() {
        let mut f = crate::sources::Source::open(path)?;
        let size = f.size();
        if size != disk.size {
            return Err(TenantError::Invalid(format!(
                "disk {} ({}) is {size} bytes now; the replica was made with {}: make a new replica for it",
                disk.name,
                path.display(),
                disk.size
            )));
        }
        let mut prints = Vec::with_capacity(blocks(size));
        let index = u16::try_from(i).map_err(|_| TenantError::Invalid("too many disks".into()))?;
        for b in 0..blocks(size) {
            let offset = (b * BLOCK) as u64;
            let len = (size - offset).min(BLOCK as u64) as usize;
            f.read_at(offset, &mut buf[..len])
                .map_err(file_err("read", path))?;
            let block = &buf[..len];
            let print = prints::of(key, block);
            let before = old
                .0
                .get(i)
                .and_then(|d| d.get(b))
                .copied()
                .unwrap_or([0; 16]);
            if print != before {
                let zero = print == [0u8; 16];
                send(frames::block(index, offset, block, zero))?;
                if !zero {
                    scan.sent += len as u64;
                }
            }
            prints.push(print);
            done += len as u64;
            progress(done, total);
        }
        new.0.push(prints);
    }
    send(Frame::End.encode().to_vec())?;
    Ok((new, scan))
}

/// Runs one cycle of `job`: its changed blocks sent, the replica point made at the host, the
/// fingerprints kept, the result recorded.
pub fn run_cycle(
    ctx: &TenantContext,
    job: &ReplicaJob,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<CycleReport, TenantError> {
    if job.sources.len() != job.spec.disks.len() {
        return Err(TenantError::Invalid(format!(
            "replica {} has no disks on this computer yet: fail it back onto this computer's disks first (cloudkeep replica failback {} --onto DISK…)",
            job.spec.name, job.spec.name
        )));
    }
    let key_hex = key_of(ctx, job)?;
    let hash_key = prints::key(&key_hex);
    let state_path = Fingerprints::path(ctx, job);
    let old = Fingerprints::load(&state_path, &job.spec.disks);
    let outcome = std::thread::scope(|scope| {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let reader = scope.spawn(|| {
            let tx = tx;
            scan(job, &hash_key, &old, &tx, progress)
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let sent = ctx.block_on(async {
            let client = client_of(ctx, &job.provider).await?;
            client
                .replica_cycle(&job.spec.name, &key_hex, stream)
                .await
                .map_err(TenantError::from)
        });
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(TenantError::Invalid("reading the disks failed".into())));
        match (read, sent) {
            // The provider refused or broke off: its answer says why (the reader only saw
            // its blocks no longer taken).
            (Err(TenantError::Invalid(m)), Err(e)) if m == STOPPED_TAKING => Err(e),
            // A disk that could not be read explains a refused stream best.
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok((prints, _)), Ok(report)) => Ok((prints, report)),
        }
    });
    let (result, message) = match &outcome {
        Ok((_, report)) => (
            "success",
            format!(
                "replica point {}: {} blocks, {} sent",
                report.point.id,
                report.blocks,
                cloudkeep_model::units::human_bytes(report.point.bytes)
            ),
        ),
        Err(e) => ("failed", e.to_string()),
    };
    ctx.block_on(async {
        sqlx::query(
            "UPDATE replicas SET last_ms = ?1, last_result = ?2, last_message = ?3 WHERE provider = ?4 AND name = ?5",
        )
        .bind(cloudkeep_model::clock::now_ms())
        .bind(result)
        .bind(&message)
        .bind(&job.provider)
        .bind(&job.spec.name)
        .execute(ctx.state().pool())
        .await
    })?;
    let (prints, report) = outcome?;
    prints.save(&state_path)?;
    Ok(report)
}

fn key_of(
    ctx: &TenantContext,
    job: &ReplicaJob,
) -> Result<zeroize::Zeroizing<String>, TenantError> {
    Ok(zeroize::Zeroizing::new(
        ctx.secrets()
            .get(&key_name(&job.provider, &job.spec.name))?
            .ok_or_else(|| TenantError::SecretMissing {
                what: format!("key of replica {}", job.spec.name),
                fix: "remove the replica (cloudkeep replica delete) and make it again",
            })?,
    ))
}

/// Starts the replica at its host from a point: a test failover (isolated, thrown away after)
/// or a failover (replication paused).
pub fn failover(
    ctx: &TenantContext,
    job: &ReplicaJob,
    req: &cloudkeep_api::replication::FailoverRequest,
) -> Result<ReplicaView, TenantError> {
    let key = key_of(ctx, job)?;
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        Ok(client.replica_failover(&job.spec.name, &key, req).await?)
    })
}

/// What a failback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailbackReport {
    /// Blocks written onto the disks.
    pub blocks: u64,
    /// Bytes of data received (blocks that became zeros travel as a short frame).
    pub bytes: u64,
    /// Where each disk went.
    pub disks: Vec<PathBuf>,
    /// The replica point replication resumes from (what the machine wrote at failover).
    pub point: u64,
}

/// Opens (or makes, at the disk's size) each disk a failback writes onto.
fn failback_targets(job: &ReplicaJob, onto: &[PathBuf]) -> Result<Vec<std::fs::File>, TenantError> {
    let mut files = Vec::with_capacity(onto.len());
    for (disk, path) in job.spec.disks.iter().zip(onto) {
        let exists = std::fs::metadata(path).is_ok();
        if exists && crate::sources::is_qcow2(path)? {
            return Err(TenantError::Invalid(format!(
                "{} is a qcow2 image: failback writes raw disks — give --onto a new raw image or a device (qemu-img convert makes qcow2 of it after)",
                path.display()
            )));
        }
        // A new machine's disk holds all it had: made owner-only (one that exists keeps its
        // own permissions).
        let f = cloudkeep_model::paths::private_file_options()
            .read(true)
            .write(true)
            .create(!exists)
            .truncate(false)
            .open(path)
            .map_err(file_err("open", path))?;
        if !exists {
            f.set_len(disk.size).map_err(file_err("size", path))?;
        }
        let size = disk_size(path)?;
        if size != disk.size {
            return Err(TenantError::Invalid(format!(
                "{} is {size} bytes; disk {} of replica {} is {}: give a disk of exactly that size, or a new file's name (it is made at that size)",
                path.display(),
                disk.name,
                job.spec.name,
                disk.size
            )));
        }
        files.push(f);
    }
    Ok(files)
}

/// The fingerprints of what `files` hold now.
fn fingerprints_of(
    job: &ReplicaJob,
    files: &mut [std::fs::File],
    key: &[u8; 32],
    progress: &dyn Fn(u64, u64),
) -> Result<Fingerprints, TenantError> {
    let total = job.spec.size();
    let (mut done, mut buf) = (0u64, vec![0u8; BLOCK]);
    let mut out = Fingerprints::default();
    for ((disk, f), path) in job.spec.disks.iter().zip(files).zip(&job.sources) {
        let mut list = Vec::with_capacity(blocks(disk.size));
        for b in 0..blocks(disk.size) {
            let len = (disk.size - (b * BLOCK) as u64).min(BLOCK as u64) as usize;
            f.read_exact(&mut buf[..len])
                .map_err(file_err("read", path))?;
            list.push(prints::of(key, &buf[..len]));
            done += len as u64;
            progress(done, total);
        }
        out.0.push(list);
    }
    Ok(out)
}

/// Writes a failback's frame stream (`chunks` as they arrive) onto `files`, keeping `prints`
/// true to what they hold; `(blocks, bytes)` written once its end frame came.
async fn apply_failback<S>(
    job: &ReplicaJob,
    files: &mut [std::fs::File],
    prints_now: &mut Fingerprints,
    key: &[u8; 32],
    mut chunks: S,
) -> Result<(u64, u64), TenantError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, cloudkeep_client::ClientError>> + Unpin,
{
    use futures_util::StreamExt;
    use std::io::{Seek, SeekFrom, Write};
    let cut = |why: String| {
        TenantError::Invalid(format!(
            "the failback was cut off ({why}): run it again (what was written stays; the rest comes then)"
        ))
    };
    let bad = |what: &str| TenantError::Invalid(format!("the provider's failback stream {what}"));
    let mut buf: Vec<u8> = Vec::new();
    let mut started = false;
    let (mut blocks_done, mut bytes) = (0u64, 0u64);
    let zeros = vec![0u8; BLOCK];
    loop {
        // Take every whole frame the buffer holds.
        let mut used = 0;
        if !started && buf.len() >= frames::MAGIC.len() {
            if &buf[..frames::MAGIC.len()] != frames::MAGIC {
                return Err(bad("is not a block stream"));
            }
            started = true;
            used = frames::MAGIC.len();
        }
        while started && buf.len() - used >= frames::HEAD {
            let mut head = [0u8; frames::HEAD];
            head.copy_from_slice(&buf[used..used + frames::HEAD]);
            let frame = Frame::decode(&head).ok_or_else(|| bad("has a malformed frame"))?;
            let (disk, offset, len, zero) = match frame {
                Frame::End => {
                    for f in files.iter() {
                        f.sync_all()
                            .map_err(|e| TenantError::Invalid(format!("write a disk out: {e}")))?;
                    }
                    return Ok((blocks_done, bytes));
                }
                Frame::Data { disk, offset, len } => (disk, offset, len as usize, false),
                Frame::Zero { disk, offset, len } => (disk, offset, len as usize, true),
            };
            let need = frames::HEAD + if zero { 0 } else { len };
            if buf.len() - used < need {
                break;
            }
            let d = usize::from(disk);
            let (Some(spec), Some(f)) = (job.spec.disks.get(d), files.get(d)) else {
                return Err(bad("names a disk the replica lacks"));
            };
            // A whole block, where blocks start: what the host sends, and what keeps the
            // fingerprints true.
            let whole = offset % BLOCK as u64 == 0
                && offset < spec.size
                && len as u64 == (spec.size - offset).min(BLOCK as u64);
            if !whole {
                return Err(bad("has a frame that is not one whole block"));
            }
            let data = if zero {
                &zeros[..len]
            } else {
                &buf[used + frames::HEAD..used + need]
            };
            let path = job.sources.get(d).cloned().unwrap_or_default();
            let mut f = f;
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.write_all(data))
                .map_err(file_err("write", &path))?;
            let slot = prints_now
                .0
                .get_mut(d)
                .and_then(|l| l.get_mut((offset / BLOCK as u64) as usize))
                .ok_or_else(|| bad("names a block the disk lacks"))?;
            *slot = prints::of(key, data);
            blocks_done += 1;
            if !zero {
                bytes += len as u64;
            }
            used += need;
        }
        buf.drain(..used);
        match chunks.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(cut(e.to_string())),
            None => return Err(cut("the stream ended before its last frame".into())),
        }
    }
}

/// Fails a replica back: its machine at the provider halted, what it wrote there made the
/// newest point, and the blocks that differ written onto this computer's disks — the
/// replica's own (`onto` empty) or new ones (an image file is made at the disk's size), which
/// replication then reads from. The disks must not be in use while it runs. A failback cut
/// off is run again: only what is still missing comes.
pub fn failback(
    ctx: &TenantContext,
    job: &ReplicaJob,
    onto: &[PathBuf],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<FailbackReport, TenantError> {
    if !onto.is_empty() && onto.len() != job.spec.disks.len() {
        return Err(TenantError::Invalid(format!(
            "replica {} has {} disks: give a place for each, or none to write onto its own",
            job.spec.name,
            job.spec.disks.len()
        )));
    }
    if onto.is_empty() && job.sources.len() != job.spec.disks.len() {
        return Err(TenantError::Invalid(format!(
            "replica {} has no disks on this computer yet: give --onto for each of its {} disks",
            job.spec.name,
            job.spec.disks.len()
        )));
    }
    let onto: Vec<PathBuf> = if onto.is_empty() {
        job.sources.clone()
    } else {
        onto.to_vec()
    };
    let target = ReplicaJob {
        sources: onto.clone(),
        ..job.clone()
    };
    let key_hex = key_of(ctx, job)?;
    let hash_key = prints::key(&key_hex);
    let mut files = failback_targets(&target, &onto)?;
    let mut now = fingerprints_of(&target, &mut files, &hash_key, progress)?;
    let (blocks_done, bytes, point) = ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        let (head, stream) = client
            .replica_failback(&job.spec.name, &key_hex, prints::encode(&now.0))
            .await?;
        let point = head.points.last().map_or(0, |p| p.id);
        let (b, n) = apply_failback(&target, &mut files, &mut now, &hash_key, stream).await?;
        Ok::<_, TenantError>((b, n, point))
    })?;
    // What the disks hold is what the host's newest point holds: the next cycle starts there.
    now.save(&Fingerprints::path(ctx, job))?;
    let sources: Vec<String> = onto.iter().map(|p| p.display().to_string()).collect();
    let message = format!(
        "failed back from replica point {point}: {blocks_done} blocks, {} received",
        cloudkeep_model::units::human_bytes(bytes)
    );
    ctx.block_on(async {
        sqlx::query(
            "UPDATE replicas SET sources = ?1, last_ms = ?2, last_result = 'success', last_message = ?3 WHERE provider = ?4 AND name = ?5",
        )
        .bind(json(&sources)?)
        .bind(cloudkeep_model::clock::now_ms())
        .bind(&message)
        .bind(&job.provider)
        .bind(&job.spec.name)
        .execute(ctx.state().pool())
        .await?;
        let client = client_of(ctx, &job.provider).await?;
        client.replica_failback_done(&job.spec.name).await?;
        Ok::<_, TenantError>(())
    })?;
    Ok(FailbackReport {
        blocks: blocks_done,
        bytes,
        disks: onto,
        point,
    })
}

/// Ends a test failover or undoes a failover (`permanent`: makes a failover permanent).
pub fn end_failover(
    ctx: &TenantContext,
    job: &ReplicaJob,
    permanent: bool,
) -> Result<ReplicaView, TenantError> {
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        Ok(client.replica_end(&job.spec.name, permanent).await?)
    })
}

/// Whether watched port `port` of the running replica answers.
pub fn probe(
    ctx: &TenantContext,
    job: &ReplicaJob,
    port: u16,
) -> Result<cloudkeep_api::replication::ProbeAnswer, TenantError> {
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        Ok(client.replica_probe(&job.spec.name, port).await?)
    })
}

/// The end of the running replica's serial console.
pub fn console(ctx: &TenantContext, job: &ReplicaJob) -> Result<String, TenantError> {
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        let answer = client.replica_console(&job.spec.name).await?;
        Ok(answer["console"].as_str().unwrap_or_default().to_owned())
    })
}

/// The replica as the provider sees it now (its points, its size at the host).
pub fn status(ctx: &TenantContext, job: &ReplicaJob) -> Result<ReplicaView, TenantError> {
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        Ok(client.replica(&job.spec.name).await?)
    })
}

/// Removes the replica at its provider (its disks at the host too), then here.
pub fn delete(ctx: &TenantContext, job: &ReplicaJob) -> Result<(), TenantError> {
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        client.remove_replica(&job.spec.name).await?;
        sqlx::query("DELETE FROM replicas WHERE provider = ?1 AND name = ?2")
            .bind(&job.provider)
            .bind(&job.spec.name)
            .execute(ctx.state().pool())
            .await?;
        Ok::<_, TenantError>(())
    })?;
    let _ = std::fs::remove_file(Fingerprints::path(ctx, job));
    ctx.secrets()
        .remove(&key_name(&job.provider, &job.spec.name))
}

/// The replica's key (64 hex digits), to keep somewhere safe: a bare machine booted from
/// recovery media adopts the replica with it ([`adopt`]) to fail it back.
pub fn export_key(
    ctx: &TenantContext,
    job: &ReplicaJob,
) -> Result<zeroize::Zeroizing<String>, TenantError> {
    key_of(ctx, job)
}

/// Adopts replica `name` at `provider` on this computer — a bare machine booted from recovery
/// media, or a new computer — with its key (`key_hex`, from [`export_key`]): its record from
/// the provider, its key in this computer's secrets, no disks to read yet (a failback onto
/// this computer's disks gives them, and replication goes on from there).
pub fn adopt(
    ctx: &TenantContext,
    provider: &str,
    name: &str,
    key_hex: &str,
) -> Result<ReplicaView, TenantError> {
    let key_hex = key_hex.trim();
    if !cloudkeep_api::replication::is_key(key_hex) {
        return Err(TenantError::Invalid(
            "that is not a replica key (64 hex digits, as cloudkeep replica export-key wrote it)"
                .into(),
        ));
    }
    ctx.block_on(async {
        let here = list(ctx.state()).await?;
        if here
            .iter()
            .any(|r| r.provider == provider && r.spec.name == name)
        {
            return Err(TenantError::Invalid(format!(
                "replica {name} is on this computer already"
            )));
        }
        let client = client_of(ctx, provider).await?;
        let view = client.replica(name).await?;
        ctx.secrets().set(&key_name(provider, name), key_hex)?;
        sqlx::query("INSERT INTO replicas (provider, name, spec, sources) VALUES (?1, ?2, ?3, ?4)")
            .bind(provider)
            .bind(name)
            .bind(json(&view.spec)?)
            .bind(json(&Vec::<String>::new())?)
            .execute(ctx.state().pool())
            .await?;
        Ok(view)
    })
}

/// Lets the provider hold the replica's key again (`true`), or revokes it (`false`).
pub fn set_escrow(
    ctx: &TenantContext,
    job: &ReplicaJob,
    escrow: bool,
) -> Result<ReplicaView, TenantError> {
    let key = if escrow {
        Some(key_of(ctx, job)?)
    } else {
        None
    };
    ctx.block_on(async {
        let client = client_of(ctx, &job.provider).await?;
        Ok(client
            .set_escrow(&job.spec.name, key.as_ref().map(|k| k.as_str()))
            .await?)
    })
}
