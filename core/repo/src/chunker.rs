//! Splitting data into chunks: content-defined chunking (FastCDC) for files, so an insert
//! shifts only the chunks around it; and zero detection for the fixed blocks of disk images
//! (`crate::image::blocks`), whose data does not move and whose empty space costs nothing.
//!
//! The FastCDC gear table is seeded per repository ([`crate::crypto::RepoKeys::chunker_seed`])
//! so that chunk lengths, which the SP sees, reveal nothing about known files.

use std::io::{self, Read};

use fastcdc::v2020::Normalization;

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

/// FastCDC with its masks and seeded gear tables computed once (they cost more than cutting
/// a small file), shared by every worker of a backup.
#[derive(Debug, Clone)]
pub struct Cutter {
    params: CdcParams,
    mask_s: u64,
    mask_l: u64,
    gear: Vec<u64>,
    gear_ls: Vec<u64>,
}

impl Cutter {
    /// A cutter for `params` and the repository's gear `seed`.
    pub fn new(params: CdcParams, seed: u64) -> Self {
        let (mask_s, mask_l) = fastcdc::v2020::select_masks(params.avg, Normalization::Level1);
        let (gear, gear_ls) = fastcdc::v2020::get_gear_with_seed(seed);
        Self {
            params,
            mask_s,
            mask_l,
            gear: gear.into_owned(),
            gear_ls: gear_ls.into_owned(),
        }
    }

    /// Length of the first chunk of `window`. The window must hold at least `max` bytes
    /// unless it is the end of the data.
    fn cut(&self, window: &[u8]) -> usize {
        let (_, len) = fastcdc::v2020::cut_gear(
            window,
            self.params.min,
            self.params.avg,
            self.params.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        len.clamp(1, window.len())
    }

    /// Size of the buffer a [`ChunkStream`] wants: two maximum chunks.
    pub fn buffer_len(&self) -> usize {
        2 * self.params.max
    }
}

/// The content-defined chunks of a stream, cut in a caller-provided buffer that is reused
/// from file to file (allocating and zeroing a fresh buffer per file cost more than chunking
/// the kernel tree's 78,000 small files).
pub struct ChunkStream<'a, R: Read> {
    reader: R,
    cutter: &'a Cutter,
    buf: &'a mut Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<'a, R: Read> ChunkStream<'a, R> {
    /// Chunks `reader`; `buf` is grown to [`Cutter::buffer_len`] once and reused.
    pub fn new(reader: R, cutter: &'a Cutter, buf: &'a mut Vec<u8>) -> Self {
        if buf.len() < cutter.buffer_len() {
            buf.resize(cutter.buffer_len(), 0);
        }
        Self {
            reader,
            cutter,
            buf,
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next chunk, or `None` at the end.
    pub fn next_chunk(&mut self) -> Option<io::Result<&[u8]>> {
        let max = self.cutter.params.max;
        if self.end - self.start < max && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            while self.end < self.buf.len() && !self.eof {
                match self.reader.read(&mut self.buf[self.end..]) {
                    Ok(0) => self.eof = true,
                    Ok(n) => {
                        self.end += n;
                        if self.end >= max {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.eof = true;
                        self.start = self.end;
                        return Some(Err(e));
                    }
                }
            }
        }
        if self.start == self.end {
            return None;
        }
        let len = self.cutter.cut(&self.buf[self.start..self.end]);
        let chunk = &self.buf[self.start..self.start + len];
        self.start += len;
        Some(Ok(chunk))
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
    use cloudkeep_tests::pseudo_random;
    use proptest::prelude::*;

    fn chunks(data: &[u8], params: CdcParams, seed: u64) -> Vec<Vec<u8>> {
        let cutter = Cutter::new(params, seed);
        let mut buf = Vec::new();
        let mut stream = ChunkStream::new(data, &cutter, &mut buf);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next_chunk() {
            out.push(chunk.unwrap().to_vec());
        }
        out
    }

    #[test]
    fn a_reused_buffer_gives_the_same_chunks() {
        let params = CdcParams::new(4096, 16384, 65536).unwrap();
        let cutter = Cutter::new(params, 11);
        let mut buf = Vec::new();
        let (a, b) = (pseudo_random(300_000, 1), pseudo_random(70_000, 2));
        let mut first = Vec::new();
        for data in [&a, &b, &a] {
            let mut stream = ChunkStream::new(data.as_slice(), &cutter, &mut buf);
            let mut lens = Vec::new();
            while let Some(chunk) = stream.next_chunk() {
                lens.push(chunk.unwrap().len());
            }
            first.push(lens);
        }
        assert_eq!(first[0], first[2]);
        assert_eq!(first[0].iter().sum::<usize>(), 300_000);
        assert_eq!(first[1].iter().sum::<usize>(), 70_000);
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
    fn read_errors_surface_once() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let cutter = Cutter::new(CdcParams::FILES, 0);
        let mut buf = Vec::new();
        let mut files = ChunkStream::new(Failing, &cutter, &mut buf);
        assert!(files.next_chunk().unwrap().is_err());
        assert!(files.next_chunk().is_none());
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
