//! Replicas started at failover: QEMU boots a replica point without restoring it — a new
//! encrypted layer (`DISK.run.qcow2`) on top of the point's chain takes what the running
//! machine writes, so the point itself never changes. The machine's serial console goes to
//! `console.log`; its network is QEMU's user network, isolated (`restrict=on`) unless the plan
//! gives internet access, with each public address rule a port of the host forwarded to the
//! machine.
//!
//! A test failover and an undone failover end by removing the run layers; what the machine
//! wrote is gone and the points are as they were. While a machine runs, its replica's points
//! are not merged (its chain must not change under it).
//!
//! **Invariant:** `run.json` in the replica's folder exists exactly while a machine of it may
//! run; it names the QEMU process, so a restarted host can still stop it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::HostError;
use crate::chain::{self, Key};
use crate::store::ReplicaDir;

pub use cloudkeep_api::replication::{PortRule, Running, StartSpec};

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HostError {
    let path = path.to_path_buf();
    move |source| HostError::File { what, path, source }
}

fn run_file(dir: &ReplicaDir) -> PathBuf {
    dir.path().join(crate::store::RUN_FILE)
}

fn run_layer(dir: &ReplicaDir, disk: &str) -> PathBuf {
    dir.path().join(format!("{disk}.run.qcow2"))
}

/// What runs of this replica, if anything.
pub fn running(dir: &ReplicaDir) -> Result<Option<Running>, HostError> {
    let path = run_file(dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HostError::Invalid(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// The QEMU accelerator: `kvm:tcg` (KVM when it works, plain emulation otherwise) unless the
/// host is told otherwise.
pub fn accelerator(configured: Option<&str>) -> String {
    configured.unwrap_or("kvm:tcg").to_owned()
}

/// A network card on one of the tenant's networks (`network`): the network's socket and the
/// card's MAC address.
#[derive(Debug, Clone)]
pub struct NetworkCard {
    /// The tenant network's Unix socket.
    pub socket: PathBuf,
    /// The card's MAC address.
    pub mac: String,
}

/// Starts the replica: run layers over the point, then QEMU — its network card on `card`
/// (a tenant network) when given, QEMU's user network otherwise. Refused while one runs.
pub fn start(
    dir: &ReplicaDir,
    spec: &StartSpec,
    key: &Key,
    accel: &str,
    card: Option<&NetworkCard>,
) -> Result<Running, HostError> {
    if let Some(r) = running(dir)? {
        return Err(HostError::Invalid(format!(
            "the replica already runs (since point {}); stop it first",
            r.point
        )));
    }
    let manifest = dir
        .manifest()?
        .ok_or_else(|| HostError::NotFound(format!("replica {}", dir.path().display())))?;
    let point = match spec.point {
        Some(id) if manifest.points.iter().any(|p| p.id == id) => id,
        Some(id) => {
            return Err(HostError::NotFound(format!("replica point {id}")));
        }
        None => manifest.points.last().map(|p| p.id).ok_or_else(|| {
            HostError::Invalid("the replica has no replica point yet: run a cycle first".into())
        })?,
    };
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", accel])
        .args(["-m", &format!("{}M", (spec.memory >> 20).max(64))])
        .args(["-smp", &spec.cpu.max(1).to_string()])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-nodefaults",
            "-vga",
            "none",
        ])
        .args(["-object", "secret,id=key,file=/dev/stdin"])
        // Its monitor, for the host alone (the replica's folder is owner-only).
        .arg("-qmp")
        .arg(format!(
            "unix:{},server=on,wait=off",
            dir.path().join(QMP_SOCKET).display()
        ))
        .arg("-serial")
        .arg(format!("file:{}", dir.path().join("console.log").display()));
    for (i, disk) in manifest.disks.iter().enumerate() {
        let mut layers = dir.chain(&manifest, &disk.name, Some(point));
        let run = run_layer(dir, &disk.name);
        let _ = std::fs::remove_file(&run);
        chain::create_layer(&run, disk.size, layers.last().map(PathBuf::as_path), key)?;
        layers.push(run);
        let node = format!("disk{i}");
        cmd.arg("-blockdev")
            .arg(chain::chain_options(&layers, &node).to_string())
            .arg("-device")
            .arg(format!(
                "ide-hd,drive={node},bus=ide.{},unit={}{}",
                i / 2,
                i % 2,
                if i == 0 { ",bootindex=0" } else { "" }
            ));
    }
    if let Some(card) = card {
        if !spec.ports.is_empty() || !spec.probes.is_empty() {
            return Err(HostError::Invalid(
                "a replica on a tenant network has no public address rules or watched ports".into(),
            ));
        }
        cmd.arg("-netdev")
            .arg(format!(
                "stream,id=net0,server=off,addr.type=unix,addr.path={}",
                card.socket.display()
            ))
            .arg("-device")
            .arg(format!("e1000,netdev=net0,mac={}", card.mac));
    }
    let mut nic = String::from("user,model=e1000");
    if spec.test || !spec.internet {
        nic.push_str(",restrict=on");
    }
    for rule in &spec.ports {
        nic.push_str(&format!(
            ",hostfwd=tcp:{}:{}-:{}",
            rule.address, rule.port, rule.to
        ));
    }
    // Watched ports: each reached through a free port of the host's loopback.
    let mut probes = Vec::with_capacity(spec.probes.len());
    for &to in spec
        .probes
        .iter()
        .take(cloudkeep_api::replication::MAX_PROBES)
    {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| HostError::Qemu(format!("find a loopback port to watch port {to}: {e}")))?
            .port();
        nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:{to}"));
        probes.push(PortRule {
            address: "127.0.0.1".into(),
            port,
            to,
        });
    }
    if card.is_none() {
        cmd.arg("-nic").arg(nic);
    }
    // What the machine prints, and QEMU's own messages, are the tenant's: owner-only (QEMU
    // keeps the mode of a file that exists).
    let console = dir.path().join("console.log");
    let _ = std::fs::remove_file(&console);
    cloudkeep_model::paths::touch_private_file(&console).map_err(io_err("create", &console))?;
    let log = dir.path().join("qemu.log");
    let log_file = cloudkeep_model::paths::private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&log)
        .map_err(io_err("create", &log))?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| {
            HostError::Qemu(format!(
                "start the replica: {e} (is qemu-system-x86 installed?)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(key_text(key).as_bytes())
            .map_err(|e| HostError::Qemu(format!("hand the key to the replica: {e}")))?;
    }
    // A QEMU that refuses its options ends at once: say why, leave nothing behind.
    std::thread::sleep(std::time::Duration::from_millis(500));
    if let Ok(Some(status)) = child.try_wait() {
        let why = std::fs::read_to_string(&log).unwrap_or_default();
        for disk in &manifest.disks {
            let _ = std::fs::remove_file(run_layer(dir, &disk.name));
        }
        return Err(HostError::Qemu(format!(
            "start the replica ({status}): {}",
            why.trim()
        )));
    }
    let running = Running {
        spec: spec.clone(),
        point,
        pid: child.id(),
        since_ms: cloudkeep_model::clock::now_ms(),
        probes,
    };
    let bytes = serde_json::to_vec_pretty(&running)
        .map_err(|e| HostError::Invalid(format!("run.json: {e}")))?;
    let path = run_file(dir);
    cloudkeep_model::paths::write_private_file(&path, &bytes).map_err(io_err("write", &path))?;
    // Reap the process when it ends so it leaves no zombie; its pid stays in run.json.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(running)
}

fn key_text(key: &Key) -> String {
    key.hex().to_owned()
}

/// Ends the replica's QEMU (it writes out what it holds) but keeps what the machine wrote:
/// its run layers and `run.json` stay, for a failback to take.
pub fn halt(dir: &ReplicaDir) -> Result<Option<Running>, HostError> {
    let r = running(dir)?;
    if let Some(r) = &r {
        kill(r.pid);
    }
    Ok(r)
}

/// The run layer of `disk`: what the running machine wrote over its point.
pub fn run_layer_of(dir: &ReplicaDir, disk: &str) -> PathBuf {
    run_layer(dir, disk)
}

/// Stops what runs of the replica and removes its run layers (what the machine wrote).
pub fn stop(dir: &ReplicaDir) -> Result<Option<Running>, HostError> {
    let Some(r) = halt(dir)? else {
        return Ok(None);
    };
    forget(dir)?;
    Ok(Some(r))
}

/// Removes the run layers, then `run.json`: nothing of a machine is left.
pub fn forget(dir: &ReplicaDir) -> Result<(), HostError> {
    let manifest = dir.manifest()?.unwrap_or(crate::store::Manifest {
        disks: Vec::new(),
        points: Vec::new(),
        next: 1,
    });
    for disk in &manifest.disks {
        let _ = std::fs::remove_file(run_layer(dir, &disk.name));
    }
    let _ = std::fs::remove_file(dir.path().join(QMP_SOCKET));
    let path = run_file(dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &path)(e)),
    }
}

/// Ends QEMU process `pid` (and waits for it to go, up to ten seconds). A pid that is not a
/// QEMU's any more (the machine ended, the host restarted and the number went to another
/// process) is left alone.
fn kill(pid: u32) {
    let is_qemu =
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"qemu-system"));
    if !is_qemu {
        return;
    }
    let Ok(pid) = i32::try_from(pid) else { return };
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    for _ in 0..100 {
        if rustix::process::test_kill_process(pid).is_err() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// The machine's QMP socket in the replica's folder.
const QMP_SOCKET: &str = "qmp.sock";

/// Asks the machine's monitor `command` (a human monitor command); its answer.
fn monitor(dir: &ReplicaDir, command: &str) -> Result<String, HostError> {
    use std::io::{BufRead, BufReader, Write};
    let failed = |e: std::io::Error| HostError::Qemu(format!("ask the replica's monitor: {e}"));
    let socket =
        std::os::unix::net::UnixStream::connect(dir.path().join(QMP_SOCKET)).map_err(failed)?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(failed)?;
    let mut reader = BufReader::new(socket.try_clone().map_err(failed)?);
    let mut writer = socket;
    let mut line = String::new();
    // The greeting, then capabilities, then the command; events may come between.
    reader.read_line(&mut line).map_err(failed)?;
    let mut ask = |json: serde_json::Value| -> Result<serde_json::Value, HostError> {
        writer
            .write_all(format!("{json}\n").as_bytes())
            .map_err(failed)?;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(failed)? == 0 {
                return Err(HostError::Qemu("the replica's monitor closed".into()));
            }
            let answer: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| HostError::Qemu(format!("the replica's monitor: {e}")))?;
            if answer.get("event").is_none() {
                return Ok(answer);
            }
        }
    };
    ask(serde_json::json!({"execute": "qmp_capabilities"}))?;
    let answer = ask(serde_json::json!({
        "execute": "human-monitor-command",
        "arguments": {"command-line": command},
    }))?;
    Ok(answer["return"].as_str().unwrap_or_default().to_owned())
}

/// The states of the user network's connections from host port `port` to machine port `to`
/// (`info usernet`: `TCP[STATE] FD SRC-ADDR SRC-PORT DST-ADDR DST-PORT …`).
fn connection_states(usernet: &str, port: u16, to: u16) -> Vec<String> {
    usernet
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let state = cols.first()?.strip_prefix("TCP[")?.strip_suffix(']')?;
            (cols.get(3)? == &port.to_string() && cols.get(5)? == &to.to_string())
                .then(|| state.to_owned())
        })
        .filter(|s| s != "HOST_FORWARD")
        .collect()
}

/// Whether port `to` of the running machine answers. QEMU's user network takes every
/// connection to a forwarded port at once and only then connects to the machine, so its
/// monitor is asked how that second connection stands: established (the machine took it), or
/// gone (the machine refused).
pub fn probe(
    dir: &ReplicaDir,
    to: u16,
) -> Result<cloudkeep_api::replication::ProbeAnswer, HostError> {
    use cloudkeep_api::replication::ProbeAnswer;
    use std::io::Read;
    let answer = |answers: bool, detail: String| Ok(ProbeAnswer { answers, detail });
    let Some(r) = running(dir)? else {
        return answer(false, "the replica does not run".into());
    };
    let Some(rule) = r.probes.iter().find(|p| p.to == to) else {
        return Err(HostError::Invalid(format!(
            "port {to} of the replica is not watched: start it with a wait for that port"
        )));
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], rule.port));
    let wait = std::time::Duration::from_secs(2);
    let mut stream = match std::net::TcpStream::connect_timeout(&addr, wait) {
        Ok(s) => s,
        Err(e) => return answer(false, format!("no connection: {e}")),
    };
    let _ = stream.set_nonblocking(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => return answer(false, format!("port {to} refused the connection")),
            Ok(_) => return answer(true, format!("port {to} answered")),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return answer(false, format!("port {to}: {e}")),
        }
        let last = connection_states(&monitor(dir, "info usernet")?, rule.port, to);
        if last.iter().any(|s| s != "SYN_SENT" && s != "CLOSED") {
            return answer(true, format!("port {to} took the connection"));
        }
        if std::time::Instant::now() >= deadline {
            return answer(
                false,
                format!(
                    "port {to} does not answer yet ({})",
                    if last.is_empty() {
                        "no connection".to_owned()
                    } else {
                        last.join(", ").to_lowercase()
                    }
                ),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The last `max` bytes of the machine's serial console, as text: terminal control sequences
/// (a boot loader's screen painting) and other control characters taken out.
pub fn console(dir: &ReplicaDir, max: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    // Only the end is read: a machine may print without end.
    let mut text = Vec::new();
    if let Ok(mut f) = std::fs::File::open(dir.path().join("console.log")) {
        let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
        if f.seek(SeekFrom::Start(len.saturating_sub(max as u64)))
            .is_ok()
        {
            let _ = f.take(max as u64).read_to_end(&mut text);
        }
    }
    plain(&String::from_utf8_lossy(&text))
}

/// `text` without ANSI escape sequences and control characters (but new lines and tabs).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters… final byte (@ to ~); other escapes: one more char (two for
                // a character set).
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for f in chars.by_ref() {
                        if ('@'..='~').contains(&f) {
                            break;
                        }
                    }
                } else if matches!(chars.next(), Some('(' | ')' | '*' | '+')) {
                    // A character set chosen: ESC ( B.
                    chars.next();
                }
            }
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_user_networks_connections_are_read_from_its_table() {
        let table = "Hub -1 (#net068):\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n  TCP[SYN_SENT]      17       127.0.0.1 18082       10.0.2.15    22     0     0\n  TCP[ESTABLISHED]   18       127.0.0.1 18081       10.0.2.15    80     0     0\n  TCP[HOST_FORWARD]  12       127.0.0.1 18081       10.0.2.15    80     0     0\n";
        assert_eq!(super::connection_states(table, 18081, 80), ["ESTABLISHED"]);
        assert_eq!(super::connection_states(table, 18082, 22), ["SYN_SENT"]);
        assert!(super::connection_states(table, 18082, 80).is_empty());
    }

    #[test]
    fn a_console_reads_as_plain_text() {
        let raw = "\u{1b}[H\u{1b}[J\u{1b}[1;1H  Booting `test'\r\n\u{1b}(Bmarker\u{7}\n";
        assert_eq!(super::plain(raw), "  Booting `test'\nmarker\n");
    }
}
