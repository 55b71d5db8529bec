//! Cloud replication on the wire: the SP's **cloud hosts** (what each reports of itself:
//! CPUs, memory, KVM, QEMU, storage pools, networks), the **hardware plans** it sells on them
//! (CPU, memory, storage per pool, networks, internet access) and which tenants each plan is
//! given to, and what a tenant sees of its plans with their use.
//!
//! The one rule of limits lives here so every side applies it the same way:
//! [`PlanSpec::fits_host`] (a plan a host could never run is refused when it is made) and
//! [`PlanUse::admits`] (a replica starts only when it fits what the plan has left).

use serde::{Deserialize, Serialize};

/// The fewest bytes of memory a plan or replica may have (a guest needs some to boot).
pub const MIN_MEMORY: u64 = 64 << 20;
/// The most virtual CPUs one plan may hand out.
pub const MAX_CPUS: u32 = 256;
/// The most isolated networks one plan may hand out.
pub const MAX_NETWORKS: u32 = 16;

/// A storage pool of a cloud host: a folder where replicas' disks live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoragePool {
    /// Its name, as plans name it (`HOST/POOL`).
    pub name: String,
    /// The folder on the host.
    pub path: String,
    /// Bytes of the file system it is on.
    pub total: u64,
    /// Bytes free there.
    pub free: u64,
}

/// What a cloud host reports of itself at every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The machine's own name.
    pub hostname: String,
    /// Operating system and kernel.
    pub os: String,
    /// Cloudkeep's version on the host.
    pub version: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Bytes of memory.
    pub memory: u64,
    /// Whether `/dev/kvm` opens: replicas run at native speed; otherwise they run emulated
    /// (slowly), which is said wherever the host is shown.
    pub kvm: bool,
    /// QEMU's version, when `qemu-system-x86_64` is installed (replicas need it).
    pub qemu: Option<String>,
    /// Its storage pools.
    pub pools: Vec<StoragePool>,
    /// How many isolated tenant networks it makes at most.
    pub networks: u32,
}

impl HostFacts {
    /// What a person should know before selling plans on this host, if anything.
    pub fn warning(&self) -> Option<String> {
        match (&self.qemu, self.kvm) {
            (None, _) => Some(
                "QEMU is not installed on the host (qemu-system-x86_64): replicas cannot start there"
                    .to_owned(),
            ),
            (Some(_), false) => Some(
                "KVM is not available on the host (/dev/kvm): replicas run emulated, many times slower"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// A pool by name.
    pub fn pool(&self, name: &str) -> Option<&StoragePool> {
        self.pools.iter().find(|p| p.name == name)
    }
}

/// A cloud host as the SP sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// The host's name (its login at the gateway).
    pub name: String,
    /// When it was added.
    pub created_ms: i64,
    /// Its last heartbeat, if it ever reported.
    pub seen_ms: Option<i64>,
    /// What it reported last.
    pub facts: Option<HostFacts>,
    /// The plans on it.
    pub plans: Vec<String>,
}

impl HostView {
    /// A host that beat its heartbeat within the last two minutes.
    pub fn is_up(&self, now_ms: i64) -> bool {
        self.seen_ms.is_some_and(|seen| now_ms - seen < 120_000)
    }
}

/// `POST /v1/admin/hosts`: a cloud host to add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewHost {
    /// Its name.
    pub name: String,
}

/// The answer to adding a host: the host and the password it logs in with (shown once:
/// the gateway keeps only its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddedHost {
    /// The host.
    pub host: HostView,
    /// Its password.
    pub password: String,
}

/// Bytes of one storage pool a plan hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStorage {
    /// The pool on the plan's host.
    pub pool: String,
    /// Bytes.
    pub bytes: u64,
}

/// A hardware plan: the compute a tenant's replicas may use on one cloud host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Its name.
    pub name: String,
    /// The cloud host its replicas run on.
    pub host: String,
    /// Virtual CPUs, in all running replicas together.
    pub cpu: u32,
    /// Bytes of memory, in all running replicas together.
    pub memory: u64,
    /// Storage for the replicas' disks and their replica points, per pool of the host.
    pub storage: Vec<PlanStorage>,
    /// Isolated networks.
    pub networks: u32,
    /// Whether replicas may reach the internet (through the host's address).
    pub internet: bool,
}

impl PlanSpec {
    /// The plan on its own: in range, one entry per pool.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_CPUS).contains(&self.cpu) {
            return Err(format!("a plan has 1 to {MAX_CPUS} CPUs, not {}", self.cpu));
        }
        if self.memory < MIN_MEMORY {
            return Err(format!(
                "a plan needs at least {} MiB of memory",
                MIN_MEMORY >> 20
            ));
        }
        if !(1..=MAX_NETWORKS).contains(&self.networks) {
            return Err(format!(
                "a plan has 1 to {MAX_NETWORKS} networks, not {}",
                self.networks
            ));
        }
        if self.storage.is_empty() {
            return Err("give the plan storage on its host: --storage HOST:SIZE".to_owned());
        }
        for (i, s) in self.storage.iter().enumerate() {
            if s.bytes == 0 {
                return Err(format!("the storage on pool {} is 0 bytes", s.pool));
            }
            if self.storage[..i].iter().any(|t| t.pool == s.pool) {
                return Err(format!(
                    "pool {} is given twice; give each pool once",
                    s.pool
                ));
            }
        }
        Ok(())
    }

    /// Whether a host with `facts` could ever run what the plan sells: its CPUs, memory,
    /// pools and networks. CPUs and memory are not reserved on the host (replicas run only
    /// at failover), so several plans may share them; one plan alone must fit.
    pub fn fits_host(&self, facts: &HostFacts) -> Result<(), String> {
        let host = &self.host;
        if self.cpu > facts.cpus {
            return Err(format!(
                "{host} has {} CPUs; a plan of {} could never run there",
                facts.cpus, self.cpu
            ));
        }
        if self.memory > facts.memory {
            return Err(format!(
                "{host} has {} MiB of memory; a plan of {} MiB could never run there",
                facts.memory >> 20,
                self.memory >> 20
            ));
        }
        if self.networks > facts.networks {
            return Err(format!(
                "{host} makes at most {} networks; the plan asks for {}",
                facts.networks, self.networks
            ));
        }
        for s in &self.storage {
            let Some(pool) = facts.pool(&s.pool) else {
                let pools: Vec<&str> = facts.pools.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "{host} has no storage pool \"{}\" (it has: {})",
                    s.pool,
                    if pools.is_empty() {
                        "none".to_owned()
                    } else {
                        pools.join(", ")
                    }
                ));
            };
            if s.bytes > pool.total {
                return Err(format!(
                    "pool {host}/{} holds {} GiB in all; the plan asks for {} GiB of it",
                    s.pool,
                    pool.total >> 30,
                    s.bytes >> 30
                ));
            }
        }
        Ok(())
    }

    /// The bytes the plan hands out on `pool`.
    pub fn storage_on(&self, pool: &str) -> u64 {
        self.storage
            .iter()
            .filter(|s| s.pool == pool)
            .map(|s| s.bytes)
            .sum()
    }
}

/// A plan as the SP lists it: the plan and the tenants it is given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// The plan.
    pub plan: PlanSpec,
    /// When it was made.
    pub created_ms: i64,
    /// The tenants subscribed to it.
    pub tenants: Vec<String>,
}

/// What a tenant's replicas use of one plan now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUse {
    /// Virtual CPUs of the running replicas.
    pub cpu: u32,
    /// Memory of the running replicas.
    pub memory: u64,
    /// Bytes the replicas' disks and replica points take, per pool.
    pub storage: Vec<PlanStorage>,
    /// Networks made.
    pub networks: u32,
    /// Replicas running.
    pub running: u32,
}

/// What a replica about to start needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaNeeds {
    /// Virtual CPUs.
    pub cpu: u32,
    /// Bytes of memory.
    pub memory: u64,
}

impl PlanUse {
    /// Whether a replica needing `needs` may start now: what runs plus it within the plan.
    /// The message says what is short and by how much.
    pub fn admits(&self, plan: &PlanSpec, needs: ReplicaNeeds) -> Result<(), String> {
        let cpu = self.cpu.saturating_add(needs.cpu);
        if cpu > plan.cpu {
            return Err(format!(
                "plan {} has {} CPUs and running replicas use {}; this one needs {} more: stop a replica or ask for a larger plan",
                plan.name, plan.cpu, self.cpu, needs.cpu
            ));
        }
        let memory = self.memory.saturating_add(needs.memory);
        if memory > plan.memory {
            return Err(format!(
                "plan {} has {} MiB of memory and running replicas use {} MiB; this one needs {} MiB more: stop a replica or ask for a larger plan",
                plan.name,
                plan.memory >> 20,
                self.memory >> 20,
                needs.memory >> 20
            ));
        }
        Ok(())
    }

    /// Whether `more` bytes may be written to `pool` within the plan.
    pub fn admits_storage(&self, plan: &PlanSpec, pool: &str, more: u64) -> Result<(), String> {
        let used = self
            .storage
            .iter()
            .filter(|s| s.pool == pool)
            .map(|s| s.bytes)
            .sum::<u64>();
        let allowed = plan.storage_on(pool);
        if used.saturating_add(more) > allowed {
            return Err(format!(
                "plan {} has {} MiB on pool {pool} and replicas take {} MiB; {} MiB more do not fit: remove replica points or ask for more storage",
                plan.name,
                allowed >> 20,
                used >> 20,
                more.div_ceil(1 << 20)
            ));
        }
        Ok(())
    }
}

/// `GET /v1/replication/plans`: a plan a tenant is subscribed to, with what it uses of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPlan {
    /// The plan.
    pub plan: PlanSpec,
    /// Its use now.
    pub used: PlanUse,
}

/// A disk of a replica: its name (`sda`, `disk0`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDisk {
    /// Its name.
    pub name: String,
    /// Bytes.
    pub size: u64,
}

/// `POST /v1/replicas`: a replica to make on one of the tenant's plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSpec {
    /// Its name (the machine's, usually).
    pub name: String,
    /// The hardware plan it uses.
    pub plan: String,
    /// The storage pool of the plan's host its disks live in.
    pub pool: String,
    /// Its disks.
    pub disks: Vec<ReplicaDisk>,
    /// Virtual CPUs it starts with.
    pub cpu: u32,
    /// Memory it starts with.
    pub memory: u64,
    /// Replica points kept.
    pub keep: u32,
    /// The MAC address of its network card on a tenant network (the machine's own, so its
    /// neighbours know it); one made from its names when `None`.
    #[serde(default)]
    pub mac: Option<String>,
}

/// Whether `mac` is a unicast MAC address written `xx:xx:xx:xx:xx:xx` (lower-case hex).
pub fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// The most replica points one replica keeps.
pub const MAX_KEEP: u32 = 64;
/// The most disks one replica has.
pub const MAX_DISKS: usize = 16;

impl ReplicaSpec {
    /// The replica on its own: in range.
    pub fn check(&self) -> Result<(), String> {
        if self.disks.is_empty() || self.disks.len() > MAX_DISKS {
            return Err(format!("a replica has 1 to {MAX_DISKS} disks"));
        }
        for (i, d) in self.disks.iter().enumerate() {
            if d.size == 0 || d.size % 512 != 0 {
                return Err(format!(
                    "disk {} is {} bytes; a disk is a whole number of 512-byte sectors",
                    d.name, d.size
                ));
            }
            if self.disks[..i].iter().any(|e| e.name == d.name) {
                return Err(format!("disk {} is named twice", d.name));
            }
        }
        if !(1..=MAX_KEEP).contains(&self.keep) {
            return Err(format!("a replica keeps 1 to {MAX_KEEP} replica points"));
        }
        if let Some(mac) = &self.mac
            && !is_mac(mac)
        {
            return Err(format!(
                "\"{mac}\" is not a unicast MAC address (xx:xx:xx:xx:xx:xx, the first byte even)"
            ));
        }
        if self.cpu == 0 || self.memory < MIN_MEMORY {
            return Err(format!(
                "a replica needs at least 1 CPU and {} MiB of memory",
                MIN_MEMORY >> 20
            ));
        }
        Ok(())
    }

    /// Bytes of all its disks.
    pub fn size(&self) -> u64 {
        self.disks
            .iter()
            .map(|d| d.size)
            .fold(0, u64::saturating_add)
    }
}

/// `POST /v1/replicas`: the replica, its key (64 hex digits: the tenant makes and keeps it),
/// and whether the SP may hold the key too (to start the replica on the tenant's behalf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReplica {
    /// The replica.
    pub spec: ReplicaSpec,
    /// Its key.
    pub key: String,
    /// Whether the SP holds the key too.
    pub escrow: bool,
}

/// `PUT /v1/replicas/{name}/escrow`: the key handed to the SP again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// The replica's key.
    pub key: String,
}

/// A public address rule: a port of the host's address forwarded to a port of the replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRule {
    /// The host's address it listens on (`0.0.0.0`: every address).
    pub address: String,
    /// The host's port.
    pub port: u16,
    /// The replica's port.
    pub to: u16,
}

/// `POST /v1/replicas/{name}/failover`: start the replica from a point (the newest when
/// `None`); a test failover is isolated and thrown away after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRequest {
    /// The replica point.
    pub point: Option<u64>,
    /// A test failover.
    pub test: bool,
    /// Public address rules.
    pub ports: Vec<PortRule>,
    /// Ports of the replica to watch (a failover plan waits until one answers).
    #[serde(default)]
    pub probes: Vec<u16>,
    /// The tenant's network (0, 1, …) its network card joins — the one a network extension
    /// appliance extends to the tenant's site — instead of the provider's NAT with public
    /// address rules. A test failover's is a copy no appliance reaches.
    #[serde(default)]
    pub network: Option<u8>,
}

/// The `Upgrade` protocol of a network extension's layer-2 tunnel (an HTTP/1.1 upgrade on the
/// gateway's TLS port, then the gateway's on to the host). After it, each Ethernet frame
/// travels as its length (4 bytes, big-endian) and its bytes.
pub const L2_UPGRADE: &str = "cloudkeep-l2";

/// The longest Ethernet frame a tenant network carries (a jumbo frame).
pub const MAX_FRAME: usize = 9216;

/// The most ports one replica may have watched.
pub const MAX_PROBES: usize = 8;

/// Whether a port of a running replica answers (`GET /v1/replicas/{name}/probe?port=N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// It took a connection and kept it open (or spoke first).
    pub answers: bool,
    /// What was found, in words.
    pub detail: String,
}

/// How the gateway asks a host to start a replica: the request with the replica's CPUs and
/// memory and whether its plan gives internet access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSpec {
    /// The replica point (the newest when `None`).
    pub point: Option<u64>,
    /// A test failover: isolated network, thrown away after.
    pub test: bool,
    /// Virtual CPUs.
    pub cpu: u32,
    /// Bytes of memory.
    pub memory: u64,
    /// Whether it may reach the internet.
    pub internet: bool,
    /// Public address rules.
    pub ports: Vec<PortRule>,
    /// Ports of the replica the host watches for a failover plan.
    #[serde(default)]
    pub probes: Vec<u16>,
    /// The tenant network it joins instead of the provider's NAT.
    #[serde(default)]
    pub network: Option<u8>,
    /// Its network card's MAC address there (the machine's own).
    #[serde(default)]
    pub mac: Option<String>,
}

/// A replica running at its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// How it was started.
    pub spec: StartSpec,
    /// The point it was started from.
    pub point: u64,
    /// The QEMU process on the host.
    pub pid: u32,
    /// When.
    pub since_ms: i64,
    /// The watched ports: each a port of the host's loopback forwarded to the replica's.
    #[serde(default)]
    pub probes: Vec<PortRule>,
}

/// The header a cycle's replica key travels in.
pub const KEY_HEADER: &str = "x-cloudkeep-replica-key";

/// Whether `key` is a replica key: 64 hex digits.
pub fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A replica point: the replica's disks as of one cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPoint {
    /// Its number (rising).
    pub id: u64,
    /// When its cycle ended.
    pub time_ms: i64,
    /// Bytes its cycle sent.
    pub bytes: u64,
}

/// A replica as the tenant and the SP see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    /// What it is.
    pub spec: ReplicaSpec,
    /// The tenant it belongs to.
    pub tenant: String,
    /// The plan's host.
    pub host: String,
    /// Its replica points, oldest first.
    pub points: Vec<ReplicaPoint>,
    /// Bytes its disks and points take on the host.
    pub stored: u64,
    /// Whether the SP holds its key (and may start it on the tenant's behalf).
    pub key_escrowed: bool,
    /// What runs of it at failover, when something does.
    #[serde(default)]
    pub state: Option<FailoverState>,
    /// The tenant networks its plan has (a failover may join one instead of the NAT).
    #[serde(default)]
    pub networks: u32,
}

/// A replica that runs at its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverState {
    /// `test` (isolated, replication goes on), `failover` (replication paused until failback
    /// or undo) or `permanent` (the replica is the machine now; replication has ended).
    pub mode: String,
    /// How it runs.
    pub running: Running,
}

/// What one replication cycle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// The replica point it made.
    pub point: ReplicaPoint,
    /// Blocks written (changed since the last cycle).
    pub blocks: u64,
    /// Bytes the replica takes on the host now.
    pub stored: u64,
}

/// How a cloud host is reached by the gateways for replica data: its HTTPS address, its
/// certificate's fingerprint and the key gateways present to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEndpoint {
    /// `host:port`.
    pub address: String,
    /// SHA-256 fingerprint of its certificate.
    pub fingerprint: String,
    /// The bearer key gateways present (sealed before the database keeps it).
    pub key: String,
}

/// The block stream of one replication cycle: a magic, then frames, then an end frame. Each
/// frame is a kind (data, zeros, end), a disk index, an offset and a length, then for data the
/// bytes. Every frame is checked against the replica's disks before it is written.
pub mod frames {
    /// The stream's first bytes.
    pub const MAGIC: &[u8; 8] = b"CKREPL01";
    /// Bytes of a frame's head.
    pub const HEAD: usize = 15;
    /// The most bytes one frame carries.
    pub const MAX_LEN: u32 = 4 << 20;

    /// What a frame says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Frame {
        /// `len` bytes follow, for disk `disk` at `offset`.
        Data {
            /// Disk index.
            disk: u16,
            /// Where.
            offset: u64,
            /// How many bytes follow.
            len: u32,
        },
        /// `len` bytes of disk `disk` at `offset` are zeros now.
        Zero {
            /// Disk index.
            disk: u16,
            /// Where.
            offset: u64,
            /// How many.
            len: u32,
        },
        /// The cycle is complete.
        End,
    }

    /// Block `block` of disk `disk` at `offset` as its frame, ready to send: a data frame
    /// with the bytes, or — when `zero` — a short zeros frame.
    pub fn block(disk: u16, offset: u64, block: &[u8], zero: bool) -> Vec<u8> {
        let len = block.len() as u32;
        if zero {
            return Frame::Zero { disk, offset, len }.encode().to_vec();
        }
        let mut out = Vec::with_capacity(HEAD + block.len());
        out.extend_from_slice(&Frame::Data { disk, offset, len }.encode());
        out.extend_from_slice(block);
        out
    }

    impl Frame {
        /// The head as sent.
        pub fn encode(&self) -> [u8; HEAD] {
            let mut out = [0u8; HEAD];
            let (kind, disk, offset, len) = match *self {
                Self::End => (0u8, 0u16, 0u64, 0u32),
                Self::Data { disk, offset, len } => (1, disk, offset, len),
                Self::Zero { disk, offset, len } => (2, disk, offset, len),
            };
            out[0] = kind;
            out[1..3].copy_from_slice(&disk.to_be_bytes());
            out[3..11].copy_from_slice(&offset.to_be_bytes());
            out[11..15].copy_from_slice(&len.to_be_bytes());
            out
        }

        /// A head read back; `None` for a kind or length no sender makes.
        pub fn decode(head: &[u8; HEAD]) -> Option<Self> {
            let disk = u16::from_be_bytes([head[1], head[2]]);
            let mut offset = [0u8; 8];
            offset.copy_from_slice(&head[3..11]);
            let offset = u64::from_be_bytes(offset);
            let len = u32::from_be_bytes([head[11], head[12], head[13], head[14]]);
            match head[0] {
                0 if disk == 0 && offset == 0 && len == 0 => Some(Self::End),
                1 if (1..=MAX_LEN).contains(&len) => Some(Self::Data { disk, offset, len }),
                2 if (1..=MAX_LEN).contains(&len) => Some(Self::Zero { disk, offset, len }),
                _ => None,
            }
        }
    }
}

/// What a failback's answer carries in its head: the replica's points once the machine's
/// writes became the newest, and what it takes on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackHead {
    /// The points kept, oldest first; the last holds what the machine wrote at failover.
    pub points: Vec<ReplicaPoint>,
    /// Bytes the replica takes on the host.
    pub stored: u64,
}

/// The header [`FailbackHead`] travels in (JSON).
pub const FAILBACK_HEADER: &str = "x-cloudkeep-failback";

/// Block fingerprints, as both ends of replication compute them: each disk in 1 MiB blocks,
/// a block's fingerprint the first 16 bytes of its BLAKE3 hash keyed by the replica's key (a
/// block of zeros: all zeros). A cycle compares them with the last cycle's; a failback sends
/// the tenant's so the host sends back only the blocks that differ.
pub mod prints {
    /// The block size changes are tracked in.
    pub const BLOCK: usize = 1 << 20;
    /// The first bytes of a list of fingerprints.
    pub const MAGIC: &[u8; 8] = b"CKRFP001";

    /// One block's fingerprint.
    pub type Print = [u8; 16];

    /// The hashing key of a replica whose key is `key_hex`.
    pub fn key(key_hex: &str) -> [u8; 32] {
        blake3::derive_key("cloudkeep replica block fingerprints", key_hex.as_bytes())
    }

    /// The fingerprint of `block`.
    pub fn of(key: &[u8; 32], block: &[u8]) -> Print {
        let mut p = [0u8; 16];
        if block.iter().any(|&b| b != 0) {
            p.copy_from_slice(&blake3::keyed_hash(key, block).as_bytes()[..16]);
        }
        p
    }

    /// Blocks of a disk of `size` bytes.
    pub fn blocks(size: u64) -> usize {
        size.div_ceil(BLOCK as u64) as usize
    }

    /// Each disk's fingerprints as one list (what a failback sends, what a tenant keeps).
    pub fn encode(disks: &[Vec<Print>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for d in disks {
            for p in d {
                out.extend_from_slice(p);
            }
        }
        out
    }

    /// A list read back for disks of `sizes`; `None` when it is not one for them.
    pub fn decode(bytes: &[u8], sizes: &[u64]) -> Option<Vec<Vec<Print>>> {
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut out = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let want = blocks(size).checked_mul(16)?;
            if rest.len() < want {
                return None;
            }
            let (these, more) = rest.split_at(want);
            out.push(
                these
                    .chunks_exact(16)
                    .map(|c| {
                        let mut p = [0u8; 16];
                        p.copy_from_slice(c);
                        p
                    })
                    .collect(),
            );
            rest = more;
        }
        rest.is_empty().then_some(out)
    }

    /// Bytes of the list for disks of `sizes`.
    pub fn encoded_len(sizes: &[u64]) -> usize {
        MAGIC.len() + sizes.iter().map(|&s| blocks(s) * 16).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanSpec {
        PlanSpec {
            name: "small".into(),
            host: "kvm1".into(),
            cpu: 4,
            memory: 4 << 30,
            storage: vec![PlanStorage {
                pool: "main".into(),
                bytes: 100 << 30,
            }],
            networks: 2,
            internet: false,
        }
    }

    fn facts() -> HostFacts {
        HostFacts {
            hostname: "kvm1".into(),
            os: "Linux".into(),
            version: "0".into(),
            cpus: 8,
            memory: 16 << 30,
            kvm: true,
            qemu: Some("8.2".into()),
            pools: vec![StoragePool {
                name: "main".into(),
                path: "/srv/replicas".into(),
                total: 500 << 30,
                free: 400 << 30,
            }],
            networks: 64,
        }
    }

    #[test]
    fn a_plan_is_checked_alone_and_against_its_host() {
        assert_eq!(plan().check(), Ok(()));
        assert_eq!(plan().fits_host(&facts()), Ok(()));
        let mut p = plan();
        p.cpu = 0;
        assert!(p.check().unwrap_err().contains("1 to 256 CPUs"));
        let mut p = plan();
        p.storage.push(p.storage[0].clone());
        assert!(p.check().unwrap_err().contains("given twice"));
        let mut p = plan();
        p.memory = 32 << 30;
        assert!(p.fits_host(&facts()).unwrap_err().contains("16384 MiB"));
        let mut p = plan();
        p.storage[0].pool = "fast".into();
        assert!(
            p.fits_host(&facts())
                .unwrap_err()
                .contains("no storage pool \"fast\" (it has: main)")
        );
        let mut p = plan();
        p.storage[0].bytes = 600 << 30;
        assert!(p.fits_host(&facts()).unwrap_err().contains("500 GiB"));
    }

    #[test]
    fn only_unicast_mac_addresses_are_taken() {
        assert!(is_mac("52:54:00:ab:cd:ef"));
        for bad in [
            "52:54:00:AB:CD:EF",
            "53:54:00:ab:cd:ef",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef,id=x",
            "52-54-00-ab-cd-ef",
            "",
        ] {
            assert!(!is_mac(bad), "{bad}");
        }
    }

    #[test]
    fn fingerprint_lists_read_back_and_others_are_refused() {
        let key = prints::key(&"ab".repeat(32));
        let a = prints::of(&key, &[1u8; 10]);
        assert_ne!(a, [0u8; 16]);
        assert_eq!(prints::of(&key, &[0u8; 10]), [0u8; 16]);
        let disks = vec![vec![a, [0u8; 16]], vec![a]];
        let bytes = prints::encode(&disks);
        let sizes = [(1 << 20) + 1, 5];
        assert_eq!(bytes.len(), prints::encoded_len(&sizes));
        assert_eq!(prints::decode(&bytes, &sizes), Some(disks));
        assert_eq!(prints::decode(&bytes, &[1 << 20, 5]), None);
        assert_eq!(prints::decode(&bytes[..bytes.len() - 1], &sizes), None);
        assert_eq!(prints::decode(b"nonsense", &sizes), None);
    }

    #[test]
    fn frames_read_back_and_nonsense_is_refused() {
        use frames::Frame;
        for f in [
            Frame::End,
            Frame::Data {
                disk: 3,
                offset: u64::MAX - 5,
                len: frames::MAX_LEN,
            },
            Frame::Zero {
                disk: 0,
                offset: 1 << 20,
                len: 1 << 20,
            },
        ] {
            assert_eq!(Frame::decode(&f.encode()), Some(f));
        }
        let mut head = Frame::Data {
            disk: 0,
            offset: 0,
            len: 1,
        }
        .encode();
        head[0] = 9;
        assert_eq!(Frame::decode(&head), None, "unknown kind");
        head[0] = 1;
        head[11..15].copy_from_slice(&(frames::MAX_LEN + 1).to_be_bytes());
        assert_eq!(Frame::decode(&head), None, "too long");
        head[11..15].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Frame::decode(&head), None, "empty");
    }

    #[test]
    fn a_replica_starts_only_within_what_the_plan_has_left() {
        let p = plan();
        let mut used = PlanUse::default();
        let vm = ReplicaNeeds {
            cpu: 2,
            memory: 2 << 30,
        };
        assert_eq!(used.admits(&p, vm), Ok(()));
        used.cpu = 2;
        used.memory = 2 << 30;
        assert_eq!(used.admits(&p, vm), Ok(()), "exactly the plan");
        used.cpu = 3;
        let err = used.admits(&p, vm).unwrap_err();
        assert!(err.contains("4 CPUs") && err.contains("use 3"), "{err}");
        used.cpu = 0;
        used.memory = 3 << 30;
        let err = used.admits(&p, vm).unwrap_err();
        assert!(err.contains("4096 MiB"), "{err}");
        let huge = ReplicaNeeds {
            cpu: u32::MAX,
            memory: u64::MAX,
        };
        assert!(PlanUse::default().admits(&p, huge).is_err(), "no overflow");
        used.storage = vec![PlanStorage {
            pool: "main".into(),
            bytes: 99 << 30,
        }];
        assert_eq!(used.admits_storage(&p, "main", 1 << 30), Ok(()));
        assert!(used.admits_storage(&p, "main", (1 << 30) + 1).is_err());
        assert!(used.admits_storage(&p, "other", 1).is_err(), "no such pool");
    }
}
