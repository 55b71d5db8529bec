//! Keys and authenticated encryption for everything a repository stores.
//!
//! Every repository has a random 256-bit **master key**. It is never stored in clear: a
//! [`Keyring`] holds it wrapped in one or more **key slots** — a password slot wraps it with a
//! key derived by Argon2id from an encryption password, a recovery slot with a key derived
//! from a random [`RecoveryKey`] the admin keeps in a file. Adding a password, changing one
//! or adding a recovery key only rewraps the master key: no data is re-encrypted.
//!
//! From the master key, [`RepoKeys`] derives (BLAKE3 `derive_key`, one context per use)
//! the key of chunk ids (keyed BLAKE3 of the plaintext, so the SP learns nothing from ids),
//! the XChaCha20-Poly1305 data key, and the seed of the content-defined chunker (so chunk
//! sizes do not reveal contents either). XChaCha20's 192-bit random nonces make nonce reuse
//! a non-issue for the lifetime of a repository.
//!
//! A repository may be created unencrypted, explicitly: its keyring then holds the master key
//! in clear (ids stay keyed) and blobs are stored without encryption.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use cloudkeep_model::failure::{Failure, FailureKind};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Length of every symmetric key.
pub const KEY_LEN: usize = 32;
/// Length of an XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Derivation contexts (BLAKE3 `derive_key`): frozen, changing one orphans every repository.
mod context {
    pub const CHUNK_ID: &str = "cloudkeep 2026-11-22 chunk id key";
    pub const DATA: &str = "cloudkeep 2026-11-22 data encryption key";
    pub const CHUNKER_SEED: &str = "cloudkeep 2026-11-22 chunker seed";
    pub const RECOVERY_WRAP: &str = "cloudkeep 2026-11-22 recovery key wrap";
    pub const KEYRING_AAD: &[u8] = b"cloudkeep keyring slot v1";
}

/// Errors of key handling and decryption.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// No password slot opens with the password given.
    #[error(
        "the encryption password is wrong: no password or recovery key of this repository opens with it; check the password, or unlock with a recovery key file"
    )]
    WrongPassword,
    /// The recovery key does not open any recovery slot.
    #[error(
        "this recovery key does not belong to this repository (no recovery slot opens with it); check that you picked the right recovery key file"
    )]
    WrongRecoveryKey,
    /// The text is not a recovery key.
    #[error(
        "this is not a Cloudkeep recovery key ({reason}); it looks like CKRK1-xxxx-xxxx-…, copy it again from the recovery key file"
    )]
    BadRecoveryKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A keyring could not be parsed or is inconsistent.
    #[error("the repository keyring is damaged or not a keyring: {reason}")]
    BadKeyring {
        /// What is wrong.
        reason: String,
    },
    /// Argon2 parameters outside what Cloudkeep accepts.
    #[error(
        "key derivation parameters out of range ({reason}); memory must be 8 MiB to 2 GiB, iterations 1 to 64, lanes 1 to 64"
    )]
    BadKdfParams {
        /// What is out of range.
        reason: String,
    },
    /// A slot operation that would lock everyone out.
    #[error(
        "refusing to remove the last key slot that can unlock the repository: add another password or a recovery key first"
    )]
    LastSlot,
    /// The slot id does not exist.
    #[error("no key slot \"{id}\" in this repository; list the slots to see their ids")]
    NoSuchSlot {
        /// The id asked for.
        id: String,
    },
    /// The operation needs an encrypted repository.
    #[error("the repository is not encrypted, so it has no passwords or recovery keys")]
    NotEncrypted,
    /// A sealed message failed authentication: damaged or forged.
    #[error("authentication failed: the data was damaged or changed")]
    Inauthentic,
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

impl Failure for CryptoError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::WrongPassword | Self::WrongRecoveryKey => Some(FailureKind::Auth),
            _ => None,
        }
    }
}

/// A random password for accounts made without one (a tenant the SP creates, a managed
/// subtenant): 20 characters from an alphabet without look-alikes (about 116 bits).
pub fn generate_password() -> Result<String, CryptoError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut raw = [0u8; 20];
    random_bytes(&mut raw)?;
    Ok(raw
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Fills `buf` from the OS's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// A repository's master key. Zeroed when dropped; never serialised in clear except in the
/// keyring of an unencrypted repository.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(key.as_mut())?;
        Ok(Self(key))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// The working keys of the repository.
    pub fn repo_keys(&self, encrypted: bool) -> RepoKeys {
        let id_key = blake3::derive_key(context::CHUNK_ID, self.0.as_ref());
        let mut seed = blake3::derive_key(context::CHUNKER_SEED, self.0.as_ref());
        let chunker_seed = u64::from_le_bytes([
            seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
        ]);
        seed.zeroize();
        let aead = encrypted.then(|| {
            let mut data_key = blake3::derive_key(context::DATA, self.0.as_ref());
            let cipher = XChaCha20Poly1305::new(&Key::from(data_key));
            data_key.zeroize();
            cipher
        });
        RepoKeys {
            id_key: Zeroizing::new(id_key),
            aead,
            chunker_seed,
        }
    }
}

/// A chunk or metadata blob id: keyed BLAKE3 of the plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(pub [u8; 32]);

hex_id!(ChunkId);

/// The working keys of an unlocked repository.
#[derive(Clone)]
pub struct RepoKeys {
    id_key: Zeroizing<[u8; KEY_LEN]>,
    /// `None` for an unencrypted repository.
    aead: Option<XChaCha20Poly1305>,
    chunker_seed: u64,
}

impl std::fmt::Debug for RepoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoKeys")
            .field("encrypted", &self.aead.is_some())
            .finish_non_exhaustive()
    }
}

impl RepoKeys {
    /// The id of a plaintext: keyed BLAKE3.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Seed of the content-defined chunker's gear table.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// Whether blobs are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.aead.is_some()
    }

    /// Encrypts `plaintext` bound to `aad`: `nonce ‖ ciphertext ‖ tag`. Unencrypted
    /// repositories return the plaintext unchanged.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some(aead) = &self.aead else {
            return Ok(plaintext.to_vec());
        };
        seal_with(aead, aad, plaintext)
    }

    /// Reverses [`RepoKeys::seal`], failing unless the data and `aad` are authentic.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some(aead) = &self.aead else {
            return Ok(sealed.to_vec());
        };
        open_with(aead, aad, sealed)
    }

    /// Bytes [`RepoKeys::seal`] adds to a plaintext.
    pub fn overhead(&self) -> usize {
        if self.aead.is_some() {
            NONCE_LEN + TAG_LEN
        } else {
            0
        }
    }
}

fn seal_with(
    aead: &XChaCha20Poly1305,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let body = aead
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Inauthentic)?;
    let mut out = Vec::with_capacity(NONCE_LEN + body.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

fn open_with(aead: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Inauthentic);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Inauthentic)?;
    aead.decrypt(&XNonce::from(nonce), Payload { msg: body, aad })
        .map_err(|_| CryptoError::Inauthentic)
}

/// Seals `plaintext` under a raw 32-byte `key` (`nonce ‖ ciphertext ‖ tag`), bound to `aad`:
/// secrets a service keeps under a key of its own configuration (a gateway's object-store
/// credentials in its database).
pub fn seal_with_key(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal_with(&XChaCha20Poly1305::new(&Key::from(*key)), aad, plaintext)
}

/// Opens what [`seal_with_key`] sealed; anything else, or another key or `aad`, is
/// [`CryptoError::Inauthentic`].
pub fn open_with_key(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with(&XChaCha20Poly1305::new(&Key::from(*key)), aad, sealed).map(Zeroizing::new)
}

/// Seals `plaintext` under a key derived with Argon2id (`kdf`, `salt`) from `password`, for a
/// file handed from one computer to another under a one-time code (an agent's enrollment).
pub fn seal_with_password(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = kdf.derive(password.as_bytes(), salt)?;
    seal_with(&XChaCha20Poly1305::new(&Key::from(*key)), aad, plaintext)
}

/// Opens what [`seal_with_password`] sealed; a wrong password is
/// [`CryptoError::WrongPassword`].
pub fn open_with_password(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = kdf.derive(password.as_bytes(), salt)?;
    open_with(&XChaCha20Poly1305::new(&Key::from(*key)), aad, sealed)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::WrongPassword)
}

/// Argon2id cost parameters of a password slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 iterations, 1 lane: about half a second on a desktop core, far above
    /// OWASP's minimum for Argon2id (19 MiB, 2 iterations).
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    const MIN_M_KIB: u32 = 8 * 1024;
    const MAX_M_KIB: u32 = 2 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 64;

    /// The cheapest parameters accepted (8 MiB, 1 iteration): for tests and benchmarks
    /// only; real repositories use [`KdfParams::default`].
    pub fn minimum() -> Self {
        Self {
            m_cost_kib: Self::MIN_M_KIB,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Parameters for account passwords (SP admins, tenants) checked at every login: the
    /// OWASP minimum for Argon2id (19 MiB, 2 iterations), about 30 ms here, so that a gateway
    /// can take many logins a second while a stolen hash stays expensive to attack.
    pub fn accounts() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }

    /// Checks the bounds. A keyring comes from the SP: its parameters must not be able to
    /// make a client allocate unbounded memory or spin forever.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let bad = |reason: String| Err(CryptoError::BadKdfParams { reason });
        if !(Self::MIN_M_KIB..=Self::MAX_M_KIB).contains(&self.m_cost_kib) {
            return bad(format!("memory {} KiB", self.m_cost_kib));
        }
        if !(1..=Self::MAX_T).contains(&self.t_cost) {
            return bad(format!("{} iterations", self.t_cost));
        }
        if !(1..=Self::MAX_P).contains(&self.p_cost) {
            return bad(format!("{} lanes", self.p_cost));
        }
        Ok(())
    }

    fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
        self.validate()?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| CryptoError::BadKdfParams {
                reason: e.to_string(),
            })?;
        let blocks = params.block_count();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        let mut memory = argon_memory::take(blocks);
        let done = argon.hash_password_into_with_memory(
            password,
            salt,
            out.as_mut(),
            &mut memory[..blocks],
        );
        argon_memory::give_back(memory);
        done.map_err(|e| CryptoError::BadKdfParams {
            reason: e.to_string(),
        })?;
        Ok(out)
    }
}

/// Argon2 working memory kept between hashes: a gateway verifies passwords all day, and a
/// fresh 19 MiB allocation each time leaves every allocator arena holding its own copy (the
/// gateway stood at 400 MiB after a hundred logins). A few buffers are kept, wiped on return.
mod argon_memory {
    use std::sync::Mutex;

    use argon2::Block;
    use zeroize::Zeroize;

    /// Buffers kept (a gateway hashes at most one per core at a time).
    const KEPT: usize = 4;
    /// Largest buffer kept, in blocks of 1 KiB: account passwords (19 MiB) are; a repository
    /// keyring's 64 MiB, needed once per unlock, is given back to the system.
    const KEPT_BLOCKS: usize = 24 * 1024;

    static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

    /// A buffer of at least `blocks` blocks.
    pub(super) fn take(blocks: usize) -> Vec<Block> {
        let found = POOL.lock().ok().and_then(|mut pool| {
            let i = pool.iter().position(|b| b.len() >= blocks)?;
            Some(pool.swap_remove(i))
        });
        found.unwrap_or_else(|| vec![Block::default(); blocks])
    }

    /// Wipes `memory` and keeps it for the next hash (or frees it when enough are kept).
    pub(super) fn give_back(mut memory: Vec<Block>) {
        memory.iter_mut().for_each(Zeroize::zeroize);
        if memory.len() > KEPT_BLOCKS {
            return;
        }
        if let Ok(mut pool) = POOL.lock()
            && pool.len() < KEPT
        {
            pool.push(memory);
        }
    }
}

/// Hashes an account password for storage:
/// `argon2id$m=<KiB>,t=<iterations>,p=<lanes>$<salt hex>$<hash hex>`.
pub fn hash_password(password: &str, kdf: KdfParams) -> Result<String, CryptoError> {
    kdf.validate()?;
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    let hash = kdf.derive(password.as_bytes(), &salt)?;
    Ok(format!(
        "argon2id$m={},t={},p={}${}${}",
        kdf.m_cost_kib,
        kdf.t_cost,
        kdf.p_cost,
        hex::encode(salt),
        hex::encode(hash.as_ref())
    ))
}

/// True when `password` matches a hash made by [`hash_password`]. A malformed stored hash
/// (or parameters out of bounds) never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("argon2id"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let mut kdf = KdfParams {
        m_cost_kib: 0,
        t_cost: 0,
        p_cost: 0,
    };
    for kv in params.split(',') {
        match kv.split_once('=').map(|(k, v)| (k, v.parse::<u32>())) {
            Some(("m", Ok(v))) => kdf.m_cost_kib = v,
            Some(("t", Ok(v))) => kdf.t_cost = v,
            Some(("p", Ok(v))) => kdf.p_cost = v,
            _ => return false,
        }
    }
    let (Ok(salt), Ok(expected)) = (hex::decode(salt), hex::decode(hash)) else {
        return false;
    };
    if kdf.validate().is_err() || expected.len() != KEY_LEN {
        return false;
    }
    match kdf.derive(password.as_bytes(), &salt) {
        // Compared as BLAKE3 hashes, whose equality is constant-time.
        Ok(got) => blake3::hash(got.as_ref()) == blake3::hash(&expected),
        Err(_) => false,
    }
}

/// A random recovery key: 32 bytes, written as `CKRK1-` and 17 groups of 4 hex digits (the
/// key and a 2-byte checksum that catches typos).
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

const RECOVERY_PREFIX: &str = "CKRK1-";

impl RecoveryKey {
    fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(key.as_mut())?;
        Ok(Self(key))
    }

    fn checksum(key: &[u8; KEY_LEN]) -> [u8; 2] {
        let hash = blake3::hash(key);
        [hash.as_bytes()[0], hash.as_bytes()[1]]
    }

    /// The text to keep in the recovery key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 2));
        bytes.extend_from_slice(self.0.as_ref());
        bytes.extend_from_slice(&Self::checksum(&self.0));
        let digits = Zeroizing::new(hex::encode_upper(bytes.as_slice()));
        let groups: Vec<&str> = digits
            .as_bytes()
            .chunks(4)
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        Zeroizing::new(format!("{RECOVERY_PREFIX}{}", groups.join("-")))
    }

    /// Parses the text of a recovery key file (white space and case do not matter).
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let compact: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect::<String>()
                .to_uppercase(),
        );
        let prefix = RECOVERY_PREFIX.trim_end_matches('-');
        let Some(digits) = compact.strip_prefix(prefix) else {
            return Err(CryptoError::BadRecoveryKey {
                reason: "it does not start with CKRK1",
            });
        };
        let mut bytes = Zeroizing::new([0u8; KEY_LEN + 2]);
        hex::decode_to_slice(digits, bytes.as_mut()).map_err(|_| CryptoError::BadRecoveryKey {
            reason: "it should have 68 hexadecimal digits after the prefix",
        })?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes[..KEY_LEN]);
        if Self::checksum(&key) != bytes[KEY_LEN..] {
            return Err(CryptoError::BadRecoveryKey {
                reason: "its checksum does not match, so a digit was mistyped",
            });
        }
        Ok(Self(key))
    }

    fn wrapping_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(blake3::derive_key(context::RECOVERY_WRAP, self.0.as_ref()))
    }
}

/// What opens a key slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotKind {
    /// An encryption password through Argon2id.
    Password {
        /// Argon2id parameters.
        kdf: KdfParams,
        /// Argon2 salt, hex.
        salt: String,
    },
    /// A recovery key file.
    Recovery,
}

impl SlotKind {
    /// Stable short name: `password` or `recovery`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Password { .. } => "password",
            Self::Recovery => "recovery",
        }
    }
}

/// One wrapped copy of the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// Stable id within the keyring (`slot-1`, `slot-2`, …).
    pub id: String,
    /// A name for people ("admin password", "recovery key 2026").
    pub label: String,
    /// When the slot was added.
    pub created: chrono::DateTime<chrono::Utc>,
    /// What opens it.
    #[serde(flatten)]
    pub kind: SlotKind,
    /// `nonce ‖ encrypted master key ‖ tag`, hex.
    pub wrapped: String,
}

/// Encryption of a repository's blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// XChaCha20-Poly1305 with the derived data key.
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
    /// None, chosen explicitly at creation.
    None,
}

/// A repository's key slots: what the SP stores so that the tenant can unlock on any machine
/// with only a password (or a recovery key file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyring {
    /// Always [`Keyring::FORMAT`].
    pub format: String,
    /// Format version, [`Keyring::VERSION`].
    pub version: u32,
    /// Random id of the repository, hex; bound into every slot.
    pub repo_id: String,
    /// How blobs are encrypted.
    pub encryption: Encryption,
    /// The master key in clear, hex: only for [`Encryption::None`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_key: Option<String>,
    /// Wrapped copies of the master key.
    #[serde(default)]
    pub slots: Vec<KeySlot>,
    /// Slots removed or replaced while the SP's insider protection was on: the gateway keeps
    /// them until the protection window ends, so a tenant (or whoever has its account's
    /// password) can never make protected data unreadable. They still unlock; the gateway,
    /// not the tenant, decides this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredSlot>,
}

/// A slot kept after its removal (see [`Keyring::retired`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSlot {
    /// The slot as it was.
    pub slot: KeySlot,
    /// When it was removed.
    pub retired: chrono::DateTime<chrono::Utc>,
    /// When the gateway drops it.
    pub kept_until: chrono::DateTime<chrono::Utc>,
}

impl Keyring {
    /// Value of the `format` field.
    pub const FORMAT: &'static str = "cloudkeep-keyring";
    /// Current version.
    pub const VERSION: u32 = 1;
    /// Largest keyring accepted from storage or a peer.
    pub const MAX_JSON_LEN: usize = 64 * 1024;

    /// A new encrypted repository's keyring with one password slot, and its master key.
    pub fn create_encrypted(
        password: &str,
        kdf: KdfParams,
        label: &str,
    ) -> Result<(Self, MasterKey), CryptoError> {
        kdf.validate()?;
        let master = MasterKey::generate()?;
        let mut ring = Self::empty(Encryption::XChaCha20Poly1305)?;
        ring.add_password(&master, password, kdf, label)?;
        Ok((ring, master))
    }

    /// A new unencrypted repository's keyring (chosen explicitly), and its master key.
    pub fn create_unencrypted() -> Result<(Self, MasterKey), CryptoError> {
        let master = MasterKey::generate()?;
        let mut ring = Self::empty(Encryption::None)?;
        ring.plain_key = Some(hex::encode(master.0.as_ref()));
        Ok((ring, master))
    }

    fn empty(encryption: Encryption) -> Result<Self, CryptoError> {
        let mut repo_id = [0u8; 16];
        random_bytes(&mut repo_id)?;
        Ok(Self {
            format: Self::FORMAT.to_owned(),
            version: Self::VERSION,
            repo_id: hex::encode(repo_id),
            encryption,
            plain_key: None,
            slots: Vec::new(),
            retired: Vec::new(),
        })
    }

    /// Whether blobs are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encryption == Encryption::XChaCha20Poly1305
    }

    /// The master key of an unencrypted repository.
    pub fn unlock_unencrypted(&self) -> Result<MasterKey, CryptoError> {
        let text = self.plain_key.as_deref().ok_or(CryptoError::BadKeyring {
            reason: "an unencrypted keyring without its key".into(),
        })?;
        let bytes = Zeroizing::new(hex::decode(text).map_err(|_| CryptoError::BadKeyring {
            reason: "the plain key is not hex".into(),
        })?);
        MasterKey::from_bytes(&bytes).ok_or(CryptoError::BadKeyring {
            reason: "the plain key has the wrong length".into(),
        })
    }

    /// The master key, opened with an encryption password.
    pub fn unlock(&self, password: &str) -> Result<MasterKey, CryptoError> {
        self.unlock_noting_retired(password)
            .map(|(master, _)| master)
    }

    /// [`Keyring::unlock`], and the retired slot that opened it when no live slot did: the
    /// keyring was changed under this password's user, who should be told (the slot goes
    /// when its protection window ends).
    pub fn unlock_noting_retired(
        &self,
        password: &str,
    ) -> Result<(MasterKey, Option<RetiredSlot>), CryptoError> {
        if !self.is_encrypted() {
            return Ok((self.unlock_unencrypted()?, None));
        }
        let retired = self.retired.iter().map(|r| (&r.slot, Some(r)));
        for (slot, retired) in self.slots.iter().map(|s| (s, None)).chain(retired) {
            if let SlotKind::Password { kdf, salt } = &slot.kind {
                let salt = hex::decode(salt).map_err(|_| CryptoError::BadKeyring {
                    reason: format!("slot {} has a salt that is not hex", slot.id),
                })?;
                let key = kdf.derive(password.as_bytes(), &salt)?;
                if let Some(master) = self.open_slot(slot, &key)? {
                    return Ok((master, retired.cloned()));
                }
            }
        }
        Err(CryptoError::WrongPassword)
    }

    /// The master key, opened with a recovery key.
    pub fn unlock_with_recovery_key(
        &self,
        recovery: &RecoveryKey,
    ) -> Result<MasterKey, CryptoError> {
        if !self.is_encrypted() {
            return Err(CryptoError::NotEncrypted);
        }
        let key = recovery.wrapping_key();
        for slot in self.all_slots().filter(|s| s.kind == SlotKind::Recovery) {
            if let Some(master) = self.open_slot(slot, &key)? {
                return Ok(master);
            }
        }
        Err(CryptoError::WrongRecoveryKey)
    }

    /// Adds a password slot for `master`; returns its id.
    pub fn add_password(
        &mut self,
        master: &MasterKey,
        password: &str,
        kdf: KdfParams,
        label: &str,
    ) -> Result<String, CryptoError> {
        self.require_encrypted()?;
        let mut salt = [0u8; 16];
        random_bytes(&mut salt)?;
        let key = kdf.derive(password.as_bytes(), &salt)?;
        let kind = SlotKind::Password {
            kdf,
            salt: hex::encode(salt),
        };
        self.push_slot(master, kind, label, &key)
    }

    /// Adds a recovery slot; returns its id and the recovery key to hand to the admin.
    pub fn add_recovery_key(
        &mut self,
        master: &MasterKey,
        label: &str,
    ) -> Result<(String, RecoveryKey), CryptoError> {
        self.require_encrypted()?;
        let recovery = RecoveryKey::generate()?;
        let id = self.push_slot(master, SlotKind::Recovery, label, &recovery.wrapping_key())?;
        Ok((id, recovery))
    }

    /// Replaces the password slot that `old` opens with one for `new`, keeping its id and
    /// label. The master key, and so all data, stays the same.
    pub fn change_password(
        &mut self,
        old: &str,
        new: &str,
        kdf: KdfParams,
    ) -> Result<(), CryptoError> {
        self.require_encrypted()?;
        kdf.validate()?;
        let index = self
            .slots
            .iter()
            .position(|slot| self.password_opens(slot, old).unwrap_or(false))
            .ok_or(CryptoError::WrongPassword)?;
        let master = self.unlock(old)?;
        let mut salt = [0u8; 16];
        random_bytes(&mut salt)?;
        let key = kdf.derive(new.as_bytes(), &salt)?;
        let old_slot = self.slots[index].clone();
        let kind = SlotKind::Password {
            kdf,
            salt: hex::encode(salt),
        };
        let wrapped = self.wrap(&master, &old_slot.id, &kind, &key)?;
        self.slots[index] = KeySlot {
            kind,
            wrapped,
            created: chrono::Utc::now(),
            ..old_slot
        };
        Ok(())
    }

    /// The id of the live password slot `password` opens, if any.
    pub fn slot_opened_by(&self, password: &str) -> Option<String> {
        self.slots
            .iter()
            .find(|slot| self.password_opens(slot, password).unwrap_or(false))
            .map(|slot| slot.id.clone())
    }

    /// Removes a slot, unless it is the last one.
    pub fn remove_slot(&mut self, id: &str) -> Result<(), CryptoError> {
        let index = self
            .slots
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| CryptoError::NoSuchSlot { id: id.to_owned() })?;
        if self.slots.len() == 1 {
            return Err(CryptoError::LastSlot);
        }
        self.slots.remove(index);
        Ok(())
    }

    /// Serialises for storage.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a stored keyring (it comes from the SP: treat it as untrusted).
    pub fn from_json(text: &str) -> Result<Self, CryptoError> {
        let bad = |reason: String| CryptoError::BadKeyring { reason };
        if text.len() > Self::MAX_JSON_LEN {
            return Err(bad(format!(
                "{} bytes is too large for a keyring",
                text.len()
            )));
        }
        let ring: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if ring.format != Self::FORMAT {
            return Err(bad(format!(
                "format is {:?}, not {:?}",
                ring.format,
                Self::FORMAT
            )));
        }
        if ring.version != Self::VERSION {
            return Err(bad(format!(
                "version {} is not supported by this Cloudkeep (it reads version {}); update Cloudkeep",
                ring.version,
                Self::VERSION
            )));
        }
        if hex::decode(&ring.repo_id).map(|b| b.len()) != Ok(16) {
            return Err(bad("the repository id is not 16 bytes of hex".into()));
        }
        match ring.encryption {
            Encryption::None => {
                ring.unlock_unencrypted()?;
            }
            Encryption::XChaCha20Poly1305 => {
                if ring.slots.is_empty() {
                    return Err(bad("an encrypted keyring without key slots".into()));
                }
                if ring.plain_key.is_some() {
                    return Err(bad("an encrypted keyring must not hold a plain key".into()));
                }
                for slot in ring.all_slots() {
                    if let SlotKind::Password { kdf, .. } = &slot.kind {
                        kdf.validate()?;
                    }
                }
            }
        }
        Ok(ring)
    }

    fn require_encrypted(&self) -> Result<(), CryptoError> {
        if self.is_encrypted() {
            Ok(())
        } else {
            Err(CryptoError::NotEncrypted)
        }
    }

    fn password_opens(&self, slot: &KeySlot, password: &str) -> Result<bool, CryptoError> {
        let SlotKind::Password { kdf, salt } = &slot.kind else {
            return Ok(false);
        };
        let salt = hex::decode(salt).map_err(|_| CryptoError::BadKeyring {
            reason: format!("slot {} has a salt that is not hex", slot.id),
        })?;
        let key = kdf.derive(password.as_bytes(), &salt)?;
        Ok(self.open_slot(slot, &key)?.is_some())
    }

    /// The live slots, then the retired ones.
    fn all_slots(&self) -> impl Iterator<Item = &KeySlot> {
        self.slots
            .iter()
            .chain(self.retired.iter().map(|r| &r.slot))
    }

    /// The keyring that replaces `old` when the tenant stores `self` under insider
    /// protection of `protection_days`: the same repository and key (else an error saying
    /// why), `old`'s retired slots still inside their window, and every slot `self` drops
    /// or changes retired until `now` + the window. Whatever `self` says about retired slots
    /// is ignored.
    pub fn merged_over(
        mut self,
        old: &Keyring,
        protection_days: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Keyring, CryptoError> {
        if self.repo_id != old.repo_id
            || self.encryption != old.encryption
            || self.plain_key != old.plain_key
        {
            return Err(CryptoError::BadKeyring {
                reason: "a repository's keyring may gain or lose key slots, never change the repository or its key".into(),
            });
        }
        let mut retired: Vec<RetiredSlot> = old
            .retired
            .iter()
            .filter(|r| r.kept_until > now)
            .cloned()
            .collect();
        if protection_days > 0 {
            let kept_until = now + chrono::Duration::days(protection_days);
            for slot in old.slots.iter().filter(|s| !self.slots.contains(s)) {
                retired.push(RetiredSlot {
                    slot: slot.clone(),
                    retired: now,
                    kept_until,
                });
            }
        }
        self.retired = retired;
        if self.to_json().len() > Self::MAX_JSON_LEN {
            return Err(CryptoError::BadKeyring {
                reason: format!(
                    "the keyring would exceed {} bytes with the slots insider protection keeps; remove fewer slots until the protection window ends",
                    Self::MAX_JSON_LEN
                ),
            });
        }
        Ok(self)
    }

    fn next_slot_id(&self) -> String {
        let highest = self
            .all_slots()
            .filter_map(|s| s.id.strip_prefix("slot-")?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        format!("slot-{}", highest + 1)
    }

    fn push_slot(
        &mut self,
        master: &MasterKey,
        kind: SlotKind,
        label: &str,
        key: &[u8; KEY_LEN],
    ) -> Result<String, CryptoError> {
        let id = self.next_slot_id();
        let wrapped = self.wrap(master, &id, &kind, key)?;
        self.slots.push(KeySlot {
            id: id.clone(),
            label: label.to_owned(),
            created: chrono::Utc::now(),
            kind,
            wrapped,
        });
        Ok(id)
    }

    /// Associated data of a slot: the repository and the slot's identity, so a wrapped key
    /// cannot be moved to another repository or slot.
    fn slot_aad(&self, slot_id: &str, kind: &SlotKind) -> Vec<u8> {
        let kind_tag = match kind {
            SlotKind::Password { .. } => "password",
            SlotKind::Recovery => "recovery",
        };
        let mut aad = context::KEYRING_AAD.to_vec();
        for part in [self.repo_id.as_str(), slot_id, kind_tag] {
            aad.push(0);
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    fn wrap(
        &self,
        master: &MasterKey,
        slot_id: &str,
        kind: &SlotKind,
        key: &[u8; KEY_LEN],
    ) -> Result<String, CryptoError> {
        let aead = XChaCha20Poly1305::new(&Key::from(*key));
        let sealed = seal_with(&aead, &self.slot_aad(slot_id, kind), master.0.as_ref())?;
        Ok(hex::encode(sealed))
    }

    /// `Ok(None)` when the key does not open the slot.
    fn open_slot(
        &self,
        slot: &KeySlot,
        key: &[u8; KEY_LEN],
    ) -> Result<Option<MasterKey>, CryptoError> {
        let sealed = hex::decode(&slot.wrapped).map_err(|_| CryptoError::BadKeyring {
            reason: format!("slot {} is not hex", slot.id),
        })?;
        let aead = XChaCha20Poly1305::new(&Key::from(*key));
        match open_with(&aead, &self.slot_aad(&slot.id, &slot.kind), &sealed) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                MasterKey::from_bytes(&bytes)
                    .map(Some)
                    .ok_or(CryptoError::BadKeyring {
                        reason: format!("slot {} holds a key of the wrong length", slot.id),
                    })
            }
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams::minimum()
    }

    #[test]
    fn password_unlocks_and_wrong_password_is_refused() {
        let (ring, master) = Keyring::create_encrypted("correct horse", fast(), "admin").unwrap();
        assert_eq!(ring.unlock("correct horse").unwrap(), master);
        let err = ring.unlock("battery staple").unwrap_err();
        assert!(matches!(err, CryptoError::WrongPassword));
        assert!(err.to_string().contains("recovery key"), "{err}");
    }

    #[test]
    fn keyring_round_trips_through_json_and_holds_no_clear_key() {
        let (ring, master) = Keyring::create_encrypted("pw", fast(), "admin").unwrap();
        let json = ring.to_json();
        assert!(
            json.contains(r#""encryption": "xchacha20-poly1305""#),
            "{json}"
        );
        assert!(json.contains(r#""kind": "password""#), "{json}");
        assert!(!json.contains(&hex::encode(master.0.as_ref())));
        let back = Keyring::from_json(&json).unwrap();
        assert_eq!(back, ring);
        assert_eq!(back.unlock("pw").unwrap(), master);
    }

    #[test]
    fn second_password_and_change_keep_the_same_master_key() {
        let (mut ring, master) = Keyring::create_encrypted("first", fast(), "admin").unwrap();
        let id = ring
            .add_password(&master, "second", fast(), "helpdesk")
            .unwrap();
        assert_eq!(id, "slot-2");
        assert_eq!(ring.unlock("second").unwrap(), master);

        ring.change_password("first", "renewed", fast()).unwrap();
        assert!(matches!(
            ring.unlock("first"),
            Err(CryptoError::WrongPassword)
        ));
        assert_eq!(ring.unlock("renewed").unwrap(), master);
        assert_eq!(ring.unlock("second").unwrap(), master);
        assert_eq!(ring.slots[0].id, "slot-1");
        assert_eq!(ring.slots[0].label, "admin");
        assert!(matches!(
            ring.change_password("nope", "x", fast()),
            Err(CryptoError::WrongPassword)
        ));
    }

    #[test]
    fn recovery_key_text_round_trips_and_unlocks() {
        let (mut ring, master) = Keyring::create_encrypted("pw", fast(), "admin").unwrap();
        let (_, recovery) = ring.add_recovery_key(&master, "vault").unwrap();
        let text = recovery.to_text();
        assert!(text.starts_with("CKRK1-"));
        assert_eq!(text.len(), 6 + 17 * 4 + 16);
        let parsed = RecoveryKey::parse(&format!("  {}\n", text.to_lowercase())).unwrap();
        assert_eq!(ring.unlock_with_recovery_key(&parsed).unwrap(), master);

        let (other_ring, _) = Keyring::create_encrypted("pw", fast(), "x").unwrap();
        assert!(matches!(
            other_ring.unlock_with_recovery_key(&parsed),
            Err(CryptoError::WrongRecoveryKey)
        ));
    }

    #[test]
    fn mistyped_recovery_key_is_caught_by_its_checksum() {
        let (mut ring, master) = Keyring::create_encrypted("pw", fast(), "admin").unwrap();
        let (_, recovery) = ring.add_recovery_key(&master, "vault").unwrap();
        let mut text: Vec<char> = recovery.to_text().chars().collect();
        let i = 7; // a digit of the first group
        text[i] = if text[i] == '0' { '1' } else { '0' };
        let typo: String = text.into_iter().collect();
        let err = RecoveryKey::parse(&typo).unwrap_err();
        assert!(err.to_string().contains("mistyped"), "{err}");
        assert!(RecoveryKey::parse("hello").is_err());
        assert!(RecoveryKey::parse("CKRK1-12").is_err());
    }

    #[test]
    fn a_slot_moved_to_another_repository_does_not_open() {
        let (ring_a, _) = Keyring::create_encrypted("pw", fast(), "a").unwrap();
        let (mut ring_b, _) = Keyring::create_encrypted("other", fast(), "b").unwrap();
        ring_b.slots.push(KeySlot {
            id: "slot-9".into(),
            ..ring_a.slots[0].clone()
        });
        assert!(matches!(
            ring_b.unlock("pw"),
            Err(CryptoError::WrongPassword)
        ));
    }

    #[test]
    fn last_slot_cannot_be_removed() {
        let (mut ring, master) = Keyring::create_encrypted("pw", fast(), "admin").unwrap();
        assert!(matches!(
            ring.remove_slot("slot-1"),
            Err(CryptoError::LastSlot)
        ));
        ring.add_password(&master, "pw2", fast(), "2").unwrap();
        ring.remove_slot("slot-1").unwrap();
        assert!(matches!(ring.unlock("pw"), Err(CryptoError::WrongPassword)));
        assert_eq!(ring.unlock("pw2").unwrap(), master);
        assert!(matches!(
            ring.remove_slot("slot-7"),
            Err(CryptoError::NoSuchSlot { .. })
        ));
    }

    #[test]
    fn hostile_keyrings_are_refused_not_obeyed() {
        let (ring, _) = Keyring::create_encrypted("pw", fast(), "admin").unwrap();
        let mut greedy = ring.clone();
        if let SlotKind::Password { kdf, .. } = &mut greedy.slots[0].kind {
            kdf.m_cost_kib = u32::MAX;
        }
        assert!(matches!(
            Keyring::from_json(&greedy.to_json()),
            Err(CryptoError::BadKdfParams { .. })
        ));
        let mut future = ring.clone();
        future.version = 99;
        let err = Keyring::from_json(&future.to_json()).unwrap_err();
        assert!(err.to_string().contains("update Cloudkeep"), "{err}");
        assert!(Keyring::from_json("{").is_err());
        assert!(Keyring::from_json(&" ".repeat(Keyring::MAX_JSON_LEN + 1)).is_err());
        let mut empty = ring;
        empty.slots.clear();
        assert!(Keyring::from_json(&empty.to_json()).is_err());
    }

    #[test]
    fn unencrypted_repository_is_explicit_and_keeps_keyed_ids() {
        let (ring, master) = Keyring::create_unencrypted().unwrap();
        assert!(!ring.is_encrypted());
        let back = Keyring::from_json(&ring.to_json()).unwrap();
        assert_eq!(back.unlock("ignored").unwrap(), master);
        let keys = master.repo_keys(false);
        assert!(!keys.is_encrypted());
        assert_eq!(keys.seal(b"aad", b"data").unwrap(), b"data");
        let mut ring = back;
        assert!(matches!(
            ring.add_password(&master, "pw", fast(), "x"),
            Err(CryptoError::NotEncrypted)
        ));
        // Ids are keyed even without encryption: another repository gets other ids.
        let (_, other) = Keyring::create_unencrypted().unwrap();
        assert_ne!(
            keys.chunk_id(b"same"),
            other.repo_keys(false).chunk_id(b"same")
        );
    }

    #[test]
    fn seal_binds_the_associated_data_and_detects_any_flip() {
        let keys = MasterKey::generate().unwrap().repo_keys(true);
        let sealed = keys.seal(b"id-1", b"some plaintext").unwrap();
        assert_eq!(sealed.len(), 14 + keys.overhead());
        assert_eq!(keys.open(b"id-1", &sealed).unwrap(), b"some plaintext");
        assert!(matches!(
            keys.open(b"id-2", &sealed),
            Err(CryptoError::Inauthentic)
        ));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(keys.open(b"id-1", &bad).is_err(), "flip at {i} detected");
        }
        assert!(keys.open(b"id-1", &sealed[..10]).is_err());
    }

    #[test]
    fn account_passwords_verify_and_malformed_hashes_never_match() {
        let stored = hash_password("s3cret", KdfParams::minimum()).unwrap();
        assert!(stored.starts_with("argon2id$m=8192,t=1,p=1$"));
        assert!(verify_password("s3cret", &stored));
        assert!(!verify_password("S3cret", &stored));
        assert_ne!(
            stored,
            hash_password("s3cret", KdfParams::minimum()).unwrap(),
            "salted"
        );
        for bad in [
            "",
            "argon2id$m=8192,t=1,p=1$00$00",
            "argon2id$m=1,t=1,p=1$00$",
            "x$y$z$w",
        ] {
            assert!(!verify_password("s3cret", bad), "{bad}");
        }
    }

    #[test]
    fn derived_keys_are_stable_per_master_and_distinct_across() {
        let master = MasterKey::generate().unwrap();
        let a = master.repo_keys(true);
        let b = master.repo_keys(true);
        assert_eq!(a.chunk_id(b"x"), b.chunk_id(b"x"));
        assert_eq!(a.chunker_seed(), b.chunker_seed());
        let other = MasterKey::generate().unwrap().repo_keys(true);
        assert_ne!(a.chunk_id(b"x"), other.chunk_id(b"x"));
        let id = a.chunk_id(b"x");
        assert_eq!(ChunkId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ChunkId::from_hex("zz"), None);
    }
}
