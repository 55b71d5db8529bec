//! Gathers a stream of pieces (increasing offsets) into fixed-size format blocks: a block is
//! handed on, whole, when the stream moves past it; blocks never touched are never handed on.

use std::io;

/// One block at a time of `block` bytes.
pub struct Gather {
    block: u64,
    current: Option<(u64, Vec<u8>)>,
    /// The last block's buffer, zeroed and used again (a fresh large buffer per block costs
    /// the kernel a page fault and a zeroing per page).
    spare: Option<Vec<u8>>,
}

impl Gather {
    pub fn new(block: u64) -> Self {
        Self {
            block,
            current: None,
            spare: None,
        }
    }

    /// Adds `data` at `offset`; `emit(index, bytes)` gets every block the stream has left.
    pub fn write(
        &mut self,
        mut offset: u64,
        mut data: &[u8],
        emit: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        // A whole block, aligned: handed on as it is, without a copy.
        if self.current.is_none()
            && offset.is_multiple_of(self.block)
            && data.len() as u64 == self.block
        {
            return emit(offset / self.block, data);
        }
        while !data.is_empty() {
            let index = offset / self.block;
            if self.current.as_ref().is_some_and(|(i, _)| *i != index) {
                self.flush(emit)?;
            }
            if self.current.is_none() {
                let buf = self
                    .spare
                    .take()
                    .unwrap_or_else(|| vec![0u8; self.block as usize]);
                self.current = Some((index, buf));
            }
            let Some((_, buf)) = self.current.as_mut() else {
                continue;
            };
            let within = (offset % self.block) as usize;
            let n = data.len().min(self.block as usize - within);
            buf[within..within + n].copy_from_slice(&data[..n]);
            offset += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Hands on the block being filled, if any.
    pub fn flush(&mut self, emit: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>) -> io::Result<()> {
        match self.current.take() {
            Some((index, mut buf)) => {
                let done = emit(index, &buf);
                buf.fill(0);
                self.spare = Some(buf);
                done
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_become_whole_blocks_in_order() {
        let mut g = Gather::new(4);
        let mut got = Vec::new();
        let mut emit = |i: u64, b: &[u8]| {
            got.push((i, b.to_vec()));
            Ok(())
        };
        g.write(1, &[1, 2], &mut emit).unwrap();
        g.write(3, &[3, 4, 5], &mut emit).unwrap();
        g.write(13, &[9], &mut emit).unwrap();
        g.flush(&mut emit).unwrap();
        assert_eq!(
            got,
            vec![
                (0, vec![0, 1, 2, 3]),
                (1, vec![4, 5, 0, 0]),
                (3, vec![0, 9, 0, 0])
            ]
        );
    }
}
