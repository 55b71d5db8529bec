//! A small NBD client (the network block device protocol, "fixed newstyle" handshake) over a
//! Unix socket: how Cloudkeep reads and writes disks through QEMU's own storage daemon, which
//! does the formats — the cloud host a replica's encrypted qcow2 chain, the tenant a machine's
//! qcow2 image.
//!
//! Requests are sent one at a time and each reply is read before the next request; every
//! length and offset from the server is checked before it is used.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943; // "NBDMAGIC"
const IHAVEOPT: u64 = 0x4948_4156_454f_5054; // "IHAVEOPT"
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
/// The most bytes one request moves (QEMU's server takes up to 32 MiB).
pub const MAX_REQUEST: usize = 8 << 20;

/// A connection to one NBD export.
#[derive(Debug)]
pub struct Nbd {
    stream: UnixStream,
    size: u64,
    next: u64,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Nbd {
    /// Connects to export `name` of the block server `child` is starting at `socket`, as soon
    /// as it serves it: the server counts as ready when a connection to the export succeeds,
    /// not when its socket appears, and a failed connection is tried again while the server
    /// runs, for up to `wait`. The error says why: the server's own words when it exited (a
    /// wrong key, a missing file).
    pub fn connect_when_served(
        child: &mut std::process::Child,
        socket: &Path,
        name: &str,
        wait: std::time::Duration,
    ) -> Result<Self, String> {
        let deadline = std::time::Instant::now() + wait;
        let mut last = String::from("its socket never appeared");
        loop {
            if socket.exists() {
                match Self::connect(socket, name) {
                    Ok(nbd) => return Ok(nbd),
                    Err(e) => last = e.to_string(),
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                return Err(format!("{status}: {}", err.trim()));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("no answer in {} s ({last})", wait.as_secs()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Connects to export `name` on the server at `socket`.
    pub fn connect(socket: &Path, name: &str) -> io::Result<Self> {
        let mut stream = UnixStream::connect(socket)?;
        let mut hello = [0u8; 18];
        stream.read_exact(&mut hello)?;
        let magic = u64::from_be_bytes(hello[0..8].try_into().map_err(|_| bad("short"))?);
        let opt = u64::from_be_bytes(hello[8..16].try_into().map_err(|_| bad("short"))?);
        let flags = u16::from_be_bytes([hello[16], hello[17]]);
        if magic != NBDMAGIC || opt != IHAVEOPT || flags & FLAG_FIXED_NEWSTYLE == 0 {
            return Err(bad("the block server does not speak fixed-newstyle NBD"));
        }
        let no_zeroes = flags & FLAG_NO_ZEROES != 0;
        let client_flags = u32::from(FLAG_FIXED_NEWSTYLE)
            | if no_zeroes {
                u32::from(FLAG_NO_ZEROES)
            } else {
                0
            };
        let mut msg = Vec::with_capacity(20 + name.len());
        msg.extend_from_slice(&client_flags.to_be_bytes());
        msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
        msg.extend_from_slice(&OPT_EXPORT_NAME.to_be_bytes());
        let len = u32::try_from(name.len()).map_err(|_| bad("export name too long"))?;
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(name.as_bytes());
        stream.write_all(&msg)?;
        let mut info = [0u8; 10];
        stream.read_exact(&mut info)?;
        let size = u64::from_be_bytes(info[0..8].try_into().map_err(|_| bad("short"))?);
        if !no_zeroes {
            let mut zeroes = [0u8; 124];
            stream.read_exact(&mut zeroes)?;
        }
        Ok(Self {
            stream,
            size,
            next: 1,
        })
    }

    /// The export's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn request(&mut self, kind: u16, offset: u64, len: usize) -> io::Result<u64> {
        let len32 = u32::try_from(len).map_err(|_| bad("request too long"))?;
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(bad(format!(
                "{len} bytes at {offset} lie beyond the disk's {} bytes",
                self.size
            )));
        }
        let handle = self.next;
        self.next += 1;
        let mut head = [0u8; 28];
        head[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        head[6..8].copy_from_slice(&kind.to_be_bytes());
        head[8..16].copy_from_slice(&handle.to_be_bytes());
        head[16..24].copy_from_slice(&offset.to_be_bytes());
        head[24..28].copy_from_slice(&len32.to_be_bytes());
        self.stream.write_all(&head)?;
        Ok(handle)
    }

    fn reply(&mut self, handle: u64) -> io::Result<()> {
        let mut head = [0u8; 16];
        self.stream.read_exact(&mut head)?;
        let magic = u32::from_be_bytes(head[0..4].try_into().map_err(|_| bad("short"))?);
        let error = u32::from_be_bytes(head[4..8].try_into().map_err(|_| bad("short"))?);
        let got = u64::from_be_bytes(head[8..16].try_into().map_err(|_| bad("short"))?);
        if magic != SIMPLE_REPLY_MAGIC || got != handle {
            return Err(bad("the block server answered out of turn"));
        }
        if error != 0 {
            return Err(io::Error::other(format!(
                "the block server failed the request (NBD error {error})"
            )));
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        for (i, part) in buf.chunks_mut(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            let handle = self.request(CMD_READ, at, part.len())?;
            self.reply(handle)?;
            self.stream.read_exact(part)?;
        }
        Ok(())
    }

    /// Writes `data` at `offset`.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        for (i, part) in data.chunks(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            let handle = self.request(CMD_WRITE, at, part.len())?;
            self.stream.write_all(part)?;
            self.reply(handle)?;
        }
        Ok(())
    }

    /// Asks the server to put what was written on stable storage.
    pub fn flush(&mut self) -> io::Result<()> {
        let handle = self.request(CMD_FLUSH, 0, 0)?;
        self.reply(handle)
    }

    /// Ends the connection politely.
    pub fn close(mut self) -> io::Result<()> {
        self.request(CMD_DISC, 0, 0).map(drop)
    }
}
