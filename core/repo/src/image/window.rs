//! A window onto part of a disk: `Read + Seek` over the bytes `offset..offset + size` of a
//! larger reader, so that readers of one file system (the `ntfs` crate, the file-system
//! browsers) see a volume as if it were the whole device. Reads never leave the window.

use std::io::{self, Read, Seek, SeekFrom};

/// `size` bytes of `inner` from `offset`, seen as a reader of its own. `R` may be a reader
/// (owned) or `&mut` one (borrowed).
pub struct Window<R> {
    inner: R,
    offset: u64,
    size: u64,
    pos: u64,
}

impl<R: Read + Seek> Window<R> {
    /// The window `offset..offset + size` of `inner`, positioned at its start.
    pub fn new(inner: R, offset: u64, size: u64) -> Self {
        Self {
            inner,
            offset,
            size,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for Window<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let at = self
            .offset
            .checked_add(self.pos)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflows"))?;
        self.inner.seek(SeekFrom::Start(at))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Window<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the volume's start",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_stay_inside_the_window() {
        let mut disk = Cursor::new((0u8..100).collect::<Vec<u8>>());
        let mut w = Window::new(&mut disk, 10, 20);
        let mut all = Vec::new();
        w.read_to_end(&mut all).unwrap();
        assert_eq!(all, (10u8..30).collect::<Vec<u8>>());
        assert_eq!(w.seek(SeekFrom::End(-5)).unwrap(), 15);
        let mut b = [0u8; 10];
        assert_eq!(w.read(&mut b).unwrap(), 5);
        assert_eq!(&b[..5], &[25, 26, 27, 28, 29]);
        assert!(w.seek(SeekFrom::Current(-100)).is_err());
        w.seek(SeekFrom::Start(1000)).unwrap();
        assert_eq!(w.read(&mut b).unwrap(), 0);
    }
}
