//! Splitting data into chunks: content-defined chunking (FastCDC) for files, so an insert
//! shifts only the chunks around it; fixed 4 MiB blocks with zero-block detection for disk
//! images, whose data does not move and whose empty space should cost nothing.
//!
//! The FastCDC gear table is seeded per repository ([`crate::crypto::RepoKeys::chunker_seed`])
//! so that chunk lengths, which the SP sees, reveal nothing about known files.

use std::io::{self, Read};

use fastcdc::v2020::{Normalization, StreamCDC};

/// Size of a disk-image block.
pub const DISK_BLOCK: usize = 4 << 20;

/// Errors of chunking parameters.
#[derive(Debug, thiserror::Error)]
pub enum ChunkerError {
    /// Sizes outside FastCDC's ranges or not ordered.
    #[error(
        "chunk sizes min {min}, average {avg}, max {max} are not valid: they must be even, ordered min < average < max, with min 64 B–1 MiB, average 256 B–4 MiB and max 1 KiB–16 MiB"
    )]
    BadSizes {
        /// Minimum.
        min: usize,
        /// Average.
        avg: usize,
        /// Maximum.
        max: usize,
    },
}

/// Minimum, average and maximum chunk size of content-defined chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdcParams {
    /// Invariant: checked by [`CdcParams::new`], so FastCDC's preconditions always hold.
    min: usize,
    avg: usize,
    max: usize,
}

impl CdcParams {
    /// File chunking: 512 KiB / 1 MiB / 8 MiB, restic's proven averages. Small enough that
    /// an edit in a large file re-uploads about a megabyte; large enough that the chunk index
    /// of a terabyte stays around a million entries.
    pub const FILES: Self = Self {
        min: 512 << 10,
        avg: 1 << 20,
        max: 8 << 20,
    };

    /// Checked parameters.
    pub fn new(min: usize, avg: usize, max: usize) -> Result<Self, ChunkerError> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min < avg
            && avg < max
            && [min, avg, max].iter().all(|s| s % 2 == 0);
        if ok {
            Ok(Self { min, avg, max })
        } else {
            Err(ChunkerError::BadSizes { min, avg, max })
        }
    }

    /// The largest chunk these parameters produce.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// The content-defined chunks of a file, in order.
pub struct FileChunks<R: Read> {
    inner: StreamCDC<R>,
}

impl<R: Read> FileChunks<R> {
    /// Chunks `reader` with `params` and the repository's gear `seed`.
    pub fn new(reader: R, params: CdcParams, seed: u64) -> Self {
        Self {
            inner: StreamCDC::with_level_and_seed(
                reader,
                params.min,
                params.avg,
                params.max,
                Normalization::Level1,
                seed,
            ),
        }
    }
}

impl<R: Read> Iterator for FileChunks<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.next()? {
            Ok(chunk) => Some(Ok(chunk.data)),
            Err(fastcdc::v2020::Error::IoError(e)) => Some(Err(e)),
            Err(fastcdc::v2020::Error::Empty) => None,
            Err(fastcdc::v2020::Error::Other(message)) => Some(Err(io::Error::other(message))),
        }
    }
}

/// One block of a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskBlock {
    /// All zero: stored as a length only.
    Zero {
        /// Length in bytes.
        len: usize,
    },
    /// Data to store.
    Data(Vec<u8>),
}

/// The fixed-size blocks of a disk image, [`DISK_BLOCK`] bytes each (the last may be short).
pub struct DiskBlocks<R: Read> {
    reader: R,
    done: bool,
}

impl<R: Read> DiskBlocks<R> {
    /// Blocks of `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            done: false,
        }
    }
}

impl<R: Read> Iterator for DiskBlocks<R> {
    type Item = io::Result<DiskBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut block = vec![0u8; DISK_BLOCK];
        let mut filled = 0;
        while filled < DISK_BLOCK {
            match self.reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        if filled < DISK_BLOCK {
            self.done = true;
            if filled == 0 {
                return None;
            }
            block.truncate(filled);
        }
        Some(Ok(if is_zero(&block) {
            DiskBlock::Zero { len: block.len() }
        } else {
            DiskBlock::Data(block)
        }))
    }
}

/// True when every byte is zero (eight bytes at a time; the compiler vectorises it).
pub fn is_zero(data: &[u8]) -> bool {
    let mut words = data.chunks_exact(8);
    words
        .by_ref()
        .all(|w| w.iter().fold(0u8, |acc, &b| acc | b) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    fn chunks(data: &[u8], params: CdcParams, seed: u64) -> Vec<Vec<u8>> {
        FileChunks::new(data, params, seed)
            .collect::<io::Result<_>>()
            .unwrap()
    }

    #[test]
    fn file_chunks_cover_the_file_within_bounds() {
        let data = pseudo_random(20 << 20, 7);
        let parts = chunks(&data, CdcParams::FILES, 42);
        assert_eq!(parts.concat(), data);
        let (last, body) = parts.split_last().unwrap();
        assert!(
            body.iter()
                .all(|c| c.len() >= 512 << 10 && c.len() <= 8 << 20)
        );
        assert!(last.len() <= 8 << 20);
        let avg = data.len() / parts.len();
        assert!((512 << 10..=3 << 20).contains(&avg), "average {avg}");
    }

    #[test]
    fn an_insert_changes_only_nearby_chunks() {
        let params = CdcParams::new(4096, 16384, 65536).unwrap();
        let data = pseudo_random(4 << 20, 3);
        let mut edited = data[..1_000_000].to_vec();
        edited.extend_from_slice(b"a new line in the middle\n");
        edited.extend_from_slice(&data[1_000_000..]);
        let before: std::collections::HashSet<_> = chunks(&data, params, 1).into_iter().collect();
        let after = chunks(&edited, params, 1);
        let new = after.iter().filter(|c| !before.contains(*c)).count();
        assert!(new <= 3, "{new} of {} chunks changed", after.len());
    }

    #[test]
    fn the_seed_moves_the_boundaries() {
        let params = CdcParams::new(4096, 16384, 65536).unwrap();
        let data = pseudo_random(2 << 20, 5);
        let a: Vec<usize> = chunks(&data, params, 1).iter().map(Vec::len).collect();
        let b: Vec<usize> = chunks(&data, params, 2).iter().map(Vec::len).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn bad_sizes_are_refused_with_the_rules() {
        for (min, avg, max) in [
            (0, 1024, 4096),
            (8192, 4096, 65536),
            (4096, 16385, 65536),
            (4096, 16384, 1 << 30),
        ] {
            let err = CdcParams::new(min, avg, max).unwrap_err();
            assert!(err.to_string().contains("must be even, ordered"));
        }
    }

    #[test]
    fn disk_blocks_detect_zero_blocks_and_keep_the_tail() {
        let mut image = vec![0u8; DISK_BLOCK];
        image.extend(pseudo_random(DISK_BLOCK, 9));
        image.extend(vec![0u8; 100]);
        image.extend([1u8; 10]);
        let blocks: Vec<DiskBlock> = DiskBlocks::new(image.as_slice())
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0], DiskBlock::Zero { len: DISK_BLOCK });
        assert!(matches!(&blocks[1], DiskBlock::Data(d) if d.len() == DISK_BLOCK));
        assert!(matches!(&blocks[2], DiskBlock::Data(d) if d.len() == 110));
        assert_eq!(DiskBlocks::new(&[][..]).count(), 0);
    }

    #[test]
    fn read_errors_surface_once() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let mut blocks = DiskBlocks::new(Failing);
        assert!(blocks.next().unwrap().is_err());
        assert!(blocks.next().is_none());
        let mut files = FileChunks::new(Failing, CdcParams::FILES, 0);
        assert!(files.next().unwrap().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn chunks_concatenate_to_the_input(len in 0usize..300_000, seed in any::<u64>()) {
            let params = CdcParams::new(1024, 4096, 16384).unwrap();
            let data = pseudo_random(len, seed);
            let parts = chunks(&data, params, seed);
            prop_assert!(parts.iter().all(|c| !c.is_empty() && c.len() <= 16384));
            prop_assert_eq!(parts.concat(), data);
        }

        #[test]
        fn zero_detection_matches_the_naive_check(data in proptest::collection::vec(0u8..2, 0..100)) {
            prop_assert_eq!(is_zero(&data), data.iter().all(|&b| b == 0));
        }
    }
}
