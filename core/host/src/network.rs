//! Tenant networks on the host: each a small learning Ethernet switch in the host process,
//! one per tenant and network (a test failover's network a separate copy). Its ports are the
//! network cards of the tenant's running replicas — QEMU connects to the network's Unix socket
//! in the host's owner-only folder (`-netdev stream`) — and the layer-2 tunnels of the
//! tenant's network extension appliances, relayed by a gateway. Both speak the same framing:
//! a frame's length (4 bytes, big-endian), then the frame.
//!
//! **Invariants:** a network carries only its own tenant's frames (its socket and tunnel are
//! reached only through the tenant's own replica start and session); a test failover's copy is
//! never joined by an appliance; a port that sends nonsense (a frame too short or too long) is
//! dropped, a slow one loses frames rather than stalling the others, and a network has at most
//! 64 ports (a tenant opening tunnels without end is turned away).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cloudkeep_api::replication::MAX_FRAME;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::HostError;

/// The most MAC addresses a network remembers (more: it forgets them all and learns again).
const MAX_MACS: usize = 4096;

/// The most ports (replicas and appliances) one network has; more are turned away.
const MAX_PORTS: usize = 64;

/// Frames waiting for a port before more are dropped.
const PORT_QUEUE: usize = 256;

/// The shortest Ethernet frame worth switching (destination, source, type).
const MIN_FRAME: usize = 14;

/// The shortest frame on a wire (without its checksum): shorter ones are padded to it.
const MIN_WIRE_FRAME: usize = 60;

/// One tenant network: its ports and the MAC addresses learned on them.
#[derive(Debug, Default)]
struct Segment {
    ports: Mutex<HashMap<u64, mpsc::Sender<Bytes>>>,
    macs: Mutex<HashMap<[u8; 6], u64>>,
    next: AtomicU64,
}

impl Segment {
    /// A new port; `None` when the network has all it may.
    fn add(&self) -> Option<(u64, mpsc::Receiver<Bytes>)> {
        let mut ports = self.ports.lock().ok()?;
        if ports.len() >= MAX_PORTS {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(PORT_QUEUE);
        ports.insert(id, tx);
        Some((id, rx))
    }

    fn remove(&self, id: u64) {
        if let Ok(mut ports) = self.ports.lock() {
            ports.remove(&id);
        }
        if let Ok(mut macs) = self.macs.lock() {
            macs.retain(|_, port| *port != id);
        }
    }

    /// Learns the frame's source on port `from` and sends it where its destination is (to
    /// every other port when that is unknown, a broadcast or a multicast).
    fn forward(&self, from: u64, frame: Bytes) {
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        src.copy_from_slice(&frame[6..12]);
        let to = match self.macs.lock() {
            Ok(mut macs) => {
                if src[0] & 1 == 0 {
                    if macs.len() >= MAX_MACS && !macs.contains_key(&src) {
                        macs.clear();
                    }
                    macs.insert(src, from);
                }
                if dst[0] & 1 == 0 {
                    macs.get(&dst).copied()
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        let Ok(ports) = self.ports.lock() else { return };
        match to {
            Some(port) if port == from => {}
            Some(port) => {
                if let Some(tx) = ports.get(&port) {
                    let _ = tx.try_send(frame);
                }
            }
            None => {
                for (id, tx) in ports.iter() {
                    if *id != from {
                        let _ = tx.try_send(frame.clone());
                    }
                }
            }
        }
    }
}

/// Runs one port of `segment` over `stream` until either side ends.
async fn serve_port<S>(segment: Arc<Segment>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some((id, mut rx)) = segment.add() else {
        tracing::warn!("a tenant network has {MAX_PORTS} ports: another was turned away");
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sending = tokio::spawn(async move {
        // Each frame with its length in one write (one TLS record on a tunnel), and every
        // frame already waiting in the same one.
        let mut out = Vec::with_capacity(64 << 10);
        while let Some(frame) = rx.recv().await {
            out.clear();
            let mut next = Some(frame);
            while let Some(frame) = next {
                out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                out.extend_from_slice(&frame);
                next = if out.len() < 60 << 10 {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if writer.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            tracing::debug!(len, "a tenant network's port sent no frame; dropped");
            break;
        }
        if reader.read_exact(&mut buf[..len]).await.is_err() {
            break;
        }
        // Padded to Ethernet's minimum, as a wire would: a TAP interface hands over frames as
        // short as 42 bytes (an ARP request), and an emulated card drops those.
        let padded = len.max(MIN_WIRE_FRAME);
        buf[len..padded].fill(0);
        segment.forward(id, Bytes::copy_from_slice(&buf[..padded]));
    }
    segment.remove(id);
    sending.abort();
}

/// Every tenant network of this host, made when a replica first joins one.
#[derive(Debug)]
pub struct Switches {
    dir: PathBuf,
    segments: Mutex<HashMap<String, Arc<Segment>>>,
    listening: tokio::sync::Mutex<HashMap<String, PathBuf>>,
}

impl Switches {
    /// Networks whose sockets live in `dir` (made owner-only).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segments: Mutex::new(HashMap::new()),
            listening: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn key(tenant: &str, network: u8, test: bool) -> Result<String, HostError> {
        cloudkeep_model::names::check("tenant", tenant)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        Ok(format!(
            "{tenant}-{network}{}",
            if test { "-test" } else { "" }
        ))
    }

    fn segment(&self, key: &str) -> Arc<Segment> {
        match self.segments.lock() {
            Ok(mut all) => all.entry(key.to_owned()).or_default().clone(),
            Err(_) => Arc::new(Segment::default()),
        }
    }

    /// The Unix socket a replica's QEMU connects its network card to, for `tenant`'s network
    /// `network` (its test copy when `test`); listened on from the first call.
    pub async fn socket_for(
        &self,
        tenant: &str,
        network: u8,
        test: bool,
    ) -> Result<PathBuf, HostError> {
        let key = Self::key(tenant, network, test)?;
        let mut listening = self.listening.lock().await;
        if let Some(path) = listening.get(&key) {
            return Ok(path.clone());
        }
        cloudkeep_model::paths::create_private_dir(&self.dir).map_err(|source| {
            HostError::File {
                what: "create",
                path: self.dir.clone(),
                source,
            }
        })?;
        let path = self.dir.join(format!("{key}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).map_err(|source| HostError::File {
            what: "listen on",
            path: path.clone(),
            source,
        })?;
        let segment = self.segment(&key);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_port(segment.clone(), stream));
            }
        });
        listening.insert(key, path.clone());
        Ok(path)
    }

    /// Joins `stream` (an appliance's tunnel) to `tenant`'s network `network` until it ends.
    pub async fn join<S>(&self, tenant: &str, network: u8, stream: S) -> Result<(), HostError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let segment = self.segment(&Self::key(tenant, network, false)?);
        serve_port(segment, stream).await;
        Ok(())
    }
}

/// The MAC address of a replica's network card: the same at every start (its machine's
/// network settings and its neighbours' caches stay right), locally administered.
pub fn mac_of(tenant: &str, replica: &str) -> String {
    let h = blake3::hash(format!("{tenant}/{replica}").as_bytes());
    let b = h.as_bytes();
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(b"payload");
        f.resize(64, 0);
        f
    }

    async fn send(s: &mut (impl AsyncWrite + Unpin), f: &[u8]) {
        s.write_all(&(f.len() as u32).to_be_bytes()).await.unwrap();
        s.write_all(f).await.unwrap();
    }

    async fn recv(s: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        tokio::time::timeout(
            std::time::Duration::from_millis(300),
            s.read_exact(&mut len),
        )
        .await
        .ok()?
        .ok()?;
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut f).await.ok()?;
        Some(f)
    }

    /// Three ports: a broadcast reaches the other two; once learned, a unicast only its
    /// owner; the test copy and another tenant's network hear nothing; a port sending a
    /// frame too long is dropped.
    #[tokio::test]
    async fn frames_go_where_their_macs_are_and_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let switches = Arc::new(Switches::new(&dir.path().join("net")));
        let sock = switches.socket_for("acme", 0, false).await.unwrap();
        let test_sock = switches.socket_for("acme", 0, true).await.unwrap();
        let other = switches.socket_for("globex", 0, false).await.unwrap();
        assert_ne!(sock, test_sock);
        let mut a = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let mut b = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let (mut c, tunnel) = tokio::io::duplex(1 << 16);
        let joined = switches.clone();
        tokio::spawn(async move { joined.join("acme", 0, tunnel).await });
        let mut t = tokio::net::UnixStream::connect(&test_sock).await.unwrap();
        let mut g = tokio::net::UnixStream::connect(&other).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;

        let (ma, mb) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        let hello = frame([0xff; 6], ma);
        send(&mut a, &hello).await;
        assert_eq!(recv(&mut b).await.as_deref(), Some(hello.as_slice()));
        assert_eq!(recv(&mut c).await.as_deref(), Some(hello.as_slice()));
        assert_eq!(recv(&mut t).await, None, "the test copy hears nothing");
        assert_eq!(recv(&mut g).await, None, "another tenant hears nothing");
        // A frame shorter than a wire allows arrives padded (an ARP request from a TAP).
        let short = frame([0xff; 6], ma)[..42].to_vec();
        send(&mut a, &short).await;
        let got = recv(&mut b).await.unwrap();
        assert_eq!((got.len(), &got[..42]), (60, short.as_slice()));
        assert!(got[42..].iter().all(|&x| x == 0));
        assert!(recv(&mut c).await.is_some());
        // b answers a: only a hears it (a's MAC was learned).
        let answer = frame(ma, mb);
        send(&mut b, &answer).await;
        assert_eq!(recv(&mut a).await.as_deref(), Some(answer.as_slice()));
        assert_eq!(recv(&mut c).await, None);

        // A network has at most MAX_PORTS ports: one more is turned away.
        let mut more = Vec::new();
        for _ in 0..MAX_PORTS - 3 {
            more.push(tokio::net::UnixStream::connect(&sock).await.unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut extra = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let mut byte = [0u8; 1];
        let turned = tokio::time::timeout(std::time::Duration::from_secs(2), extra.read(&mut byte))
            .await
            .unwrap();
        assert!(matches!(turned, Ok(0) | Err(_)), "{turned:?}");
        drop(more);

        // A frame too long: the port is dropped, the others go on.
        a.write_all(&((MAX_FRAME + 1) as u32).to_be_bytes())
            .await
            .unwrap();
        let mut rest = [0u8; 1];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(2), a.read(&mut rest))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        send(&mut c, &frame(mb, [2, 0, 0, 0, 0, 0xc])).await;
        assert!(recv(&mut b).await.is_some());
        assert_eq!(mac_of("acme", "web"), mac_of("acme", "web"));
        assert_ne!(mac_of("acme", "web"), mac_of("acme", "db"));
    }
}
