//! A disk as image-level backups read it: cut into regions (each volume of its layout, and
//! the gaps between them: boot code, partition tables, anything outside a volume) and each
//! region into fixed [`IMAGE_BLOCK`] blocks aligned on the region's start, so an unchanged
//! block of a volume is the same block in every point (and deduplicates) wherever the volume
//! sits. A block of a volume whose file system's allocation is known is read only where it
//! is in use; the rest of the block reads as zeros, and a block with nothing in use is not
//! read at all.

use std::fs::File;
use std::io;
use std::ops::Range;

use super::layout::DiskLayout;
use super::used::UsedMap;

/// Bytes per image block: small enough that a change rewrites little (2 % of a volume's
/// blocks changed is about 2 % sent), large enough that a 2 TiB disk is 2 million blocks.
pub const IMAGE_BLOCK: u64 = 1 << 20;

/// A span of a disk read one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Byte offset on the disk.
    pub start: u64,
    /// Bytes.
    pub len: u64,
    /// The partition it is (an index into [`DiskLayout::partitions`]), or `None` for a gap.
    pub partition: Option<usize>,
}

/// The regions of a disk in order, covering it exactly: partitions and the gaps around them.
/// Partitions that overlap (a damaged table) are read from where the previous one ended.
pub fn regions(layout: &DiskLayout) -> Vec<Region> {
    let mut order: Vec<usize> = (0..layout.partitions.len()).collect();
    order.sort_by_key(|&i| layout.partitions[i].start);
    let mut out = Vec::new();
    let mut at = 0u64;
    for i in order {
        let p = &layout.partitions[i];
        let end = p.start.saturating_add(p.size).min(layout.size);
        if end <= at {
            continue;
        }
        if p.start > at {
            out.push(Region {
                start: at,
                len: p.start - at,
                partition: None,
            });
        }
        let start = p.start.max(at);
        out.push(Region {
            start,
            len: end - start,
            // Read from elsewhere than its own start, its allocation does not apply.
            partition: (start == p.start).then_some(i),
        });
        at = end;
    }
    if at < layout.size {
        out.push(Region {
            start: at,
            len: layout.size - at,
            partition: None,
        });
    }
    out
}

/// One block to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSpec {
    /// Byte offset on the disk.
    pub offset: u64,
    /// Bytes (the last block of a region may be short).
    pub len: usize,
    /// The parts to read, as disk offsets inside the block; empty: nothing in use (a hole).
    pub used: Vec<Range<u64>>,
}

/// The blocks of `region`, reading only what `used` (relative to the region's start; `None`:
/// everything) marks in use.
pub fn blocks<'a>(
    region: &Region,
    used: Option<&'a UsedMap>,
) -> impl Iterator<Item = BlockSpec> + 'a {
    let (start, len) = (region.start, region.len);
    let ranges: &'a [Range<u64>] = used.map_or(&[], |u| u.ranges.as_slice());
    let whole = used.is_none();
    let mut next_range = 0usize;
    (0..len.div_ceil(IMAGE_BLOCK)).map(move |i| {
        let lo = i * IMAGE_BLOCK;
        let hi = (lo + IMAGE_BLOCK).min(len);
        let mut parts = Vec::new();
        if whole {
            parts.push(start + lo..start + hi);
        } else {
            while next_range < ranges.len() && ranges[next_range].end <= lo {
                next_range += 1;
            }
            let mut k = next_range;
            while k < ranges.len() && ranges[k].start < hi {
                let r = &ranges[k];
                parts.push(start + r.start.max(lo)..start + r.end.min(hi));
                k += 1;
            }
        }
        BlockSpec {
            offset: start + lo,
            len: (hi - lo) as usize,
            used: parts,
        }
    })
}

/// Reads `spec` from `disk` into `buf` (resized to the block): the used parts read, the rest
/// zeros.
pub fn read_block(disk: &File, spec: &BlockSpec, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(spec.len, 0);
    for part in &spec.used {
        let from = (part.start - spec.offset) as usize;
        let to = (part.end - spec.offset) as usize;
        read_exact_at(disk, &mut buf[from..to], part.start)?;
    }
    Ok(())
}

/// Alignment of direct reads: what every logical block size needs (512 or 4096).
const DIRECT_ALIGN: u64 = 4096;
/// Free gaps up to this size between used parts of a block are read over in one request.
const DIRECT_MERGE_GAP: u64 = 256 << 10;

/// Opens a block device for direct reads (`O_DIRECT`, Linux): past the page cache, whose
/// copy of a loop device or a disk under a mounted volume may be stale and is slow to fill;
/// reading a loop device directly here is about ten times as fast. `None` where the system
/// or the device refuses.
pub fn open_direct(path: &std::path::Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::DIRECT.bits();
        File::options()
            .read(true)
            .custom_flags(i32::try_from(flags).ok()?)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Reads `spec` through a handle from [`open_direct`] into `scratch` (an aligned window,
/// kept between calls) and returns where in it the block lies: each used part is read widened
/// to 4 KiB boundaries (direct I/O reads whole aligned sectors), parts less than 256 KiB apart
/// in one request, straight into place; every byte of the block outside the used parts is
/// zero. No copy: the caller hashes and
/// seals the block where it was read.
pub fn read_block_direct(
    disk: &File,
    spec: &BlockSpec,
    scratch: &mut Vec<u8>,
) -> io::Result<Range<usize>> {
    let lo = spec.offset / DIRECT_ALIGN * DIRECT_ALIGN;
    let hi = (spec.offset + spec.len as u64).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let span_len = (hi - lo) as usize;
    if scratch.len() < span_len + DIRECT_ALIGN as usize {
        scratch.resize(span_len + DIRECT_ALIGN as usize, 0);
    }
    let base = scratch.as_ptr().align_offset(DIRECT_ALIGN as usize);
    let window = &mut scratch[base..base + span_len];
    // Used parts close together are read in one request (the free bytes between them are
    // zeroed below, never kept): a block of a volume full of small files is otherwise dozens
    // of tiny reads.
    let mut spans: Vec<Range<u64>> = Vec::new();
    for part in &spec.used {
        let start = part.start / DIRECT_ALIGN * DIRECT_ALIGN;
        let end = part.end.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        match spans.last_mut() {
            Some(last) if start <= last.end + DIRECT_MERGE_GAP => last.end = last.end.max(end),
            _ => spans.push(start..end),
        }
    }
    for span in &spans {
        let at = (span.start - lo) as usize;
        let len = (span.end - span.start) as usize;
        let got = read_up_to_at(disk, &mut window[at..at + len], span.start)?;
        let needed = spec
            .used
            .iter()
            .filter(|p| p.start >= span.start && p.end <= span.end)
            .map(|p| (p.end - span.start) as usize)
            .max()
            .unwrap_or(0);
        if got < needed {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the disk ended before its recorded size",
            ));
        }
    }
    // Zeros wherever the block is not in use (what was never read, and the widened edges).
    let block_at = (spec.offset - lo) as usize;
    let mut cursor = 0usize;
    for part in &spec.used {
        let from = (part.start - spec.offset) as usize;
        window[block_at + cursor..block_at + from].fill(0);
        cursor = (part.end - spec.offset) as usize;
    }
    window[block_at + cursor..block_at + spec.len].fill(0);
    Ok(base + block_at..base + block_at + spec.len)
}

/// Reads into `buf` at `offset` until it is full or the disk ends; the bytes read.
fn read_up_to_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[got..], offset + got as u64);
        #[cfg(windows)]
        let n =
            std::os::windows::fs::FileExt::seek_read(file, &mut buf[got..], offset + got as u64);
        match n {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads exactly `buf.len()` bytes at `offset` without moving a shared cursor (blocks are
/// read in parallel from one handle).
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, buf, offset);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset);
        match n {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the disk ended before its recorded size",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layout::{Partition, PartitionTable};

    fn part(start: u64, size: u64) -> Partition {
        Partition {
            number: 1,
            start,
            size,
            type_id: "83".into(),
            uuid: None,
            name: None,
            bootable: false,
            filesystem: None,
        }
    }

    #[test]
    fn regions_cover_the_disk_with_gaps_and_overlaps_handled() {
        let layout = DiskLayout {
            size: 100,
            sector_size: 512,
            table: PartitionTable::None,
            partitions: vec![part(50, 30), part(10, 20), part(20, 5)],
        };
        let r = regions(&layout);
        let spans: Vec<(u64, u64, Option<usize>)> =
            r.iter().map(|r| (r.start, r.len, r.partition)).collect();
        // The third partition lies inside the second: already read, skipped.
        assert_eq!(
            spans,
            vec![
                (0, 10, None),
                (10, 20, Some(1)),
                (30, 20, None),
                (50, 30, Some(0)),
                (80, 20, None)
            ]
        );
    }

    #[test]
    fn blocks_read_only_used_parts() {
        let region = Region {
            start: 1000,
            len: 3 * IMAGE_BLOCK + 10,
            partition: Some(0),
        };
        let used = UsedMap {
            ranges: vec![
                0..10,
                IMAGE_BLOCK - 5..IMAGE_BLOCK + 5,
                3 * IMAGE_BLOCK..3 * IMAGE_BLOCK + 10,
            ],
        };
        let specs: Vec<BlockSpec> = blocks(&region, Some(&used)).collect();
        assert_eq!(specs.len(), 4);
        assert_eq!(
            specs[0].used,
            vec![1000..1010, 1000 + IMAGE_BLOCK - 5..1000 + IMAGE_BLOCK]
        );
        assert_eq!(
            specs[1].used,
            vec![1000 + IMAGE_BLOCK..1000 + IMAGE_BLOCK + 5]
        );
        assert!(specs[2].used.is_empty(), "nothing used: not read");
        assert_eq!(specs[3].len, 10);
        let whole: Vec<BlockSpec> = blocks(&region, None).collect();
        // Direct reads widen to 4 KiB but copy only what is used (here from a plain file).
        let mut disk = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..3 * IMAGE_BLOCK + 1010)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        std::io::Write::write_all(&mut disk, &bytes).unwrap();
        let mut scratch = vec![0xEEu8; 3 << 20];
        let at = read_block_direct(&disk, &specs[0], &mut scratch).unwrap();
        let buf = &scratch[at];
        let mut plain = Vec::new();
        read_block(&disk, &specs[0], &mut plain).unwrap();
        assert_eq!(buf, plain.as_slice());
        assert_eq!(&buf[..10], &bytes[1000..1010]);
        assert!(buf[10..IMAGE_BLOCK as usize - 5].iter().all(|&b| b == 0));
        assert_eq!(
            whole[3].used,
            vec![1000 + 3 * IMAGE_BLOCK..1010 + 3 * IMAGE_BLOCK]
        );
    }
}
