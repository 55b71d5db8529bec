//! zstd compression of blobs: four levels, and raw storage when compression does not shrink
//! the data (already-compressed media, archives, encrypted files).

use serde::{Deserialize, Serialize};

/// Compression level of a job or repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Store everything raw.
    Off,
    /// zstd level 1: fastest, for slow CPUs or fast links.
    Fast,
    /// zstd level 3: zstd's own default, the best speed/size balance for backups.
    #[default]
    Default,
    /// zstd level 19: smallest, for slow uplinks; several times slower.
    Max,
}

impl Compression {
    /// The zstd level, or `None` for [`Compression::Off`].
    pub fn zstd_level(self) -> Option<i32> {
        match self {
            Self::Off => None,
            Self::Fast => Some(1),
            Self::Default => Some(3),
            Self::Max => Some(19),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Fast => "fast",
            Self::Default => "default",
            Self::Max => "max",
        })
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "fast" => Ok(Self::Fast),
            "default" => Ok(Self::Default),
            "max" => Ok(Self::Max),
            other => Err(format!(
                "unknown compression \"{other}\"; use off, fast, default or max"
            )),
        }
    }
}

/// Errors of decompression.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// The compressed data is damaged or would expand past the limit.
    #[error("compressed data is damaged or larger than {limit} bytes once expanded: {reason}")]
    Corrupt {
        /// The most the data may expand to.
        limit: usize,
        /// What zstd said.
        reason: String,
    },
}

thread_local! {
    /// One zstd context per thread and level: creating a context per blob cost as much as
    /// compressing a small file.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// One zstd decompression context per thread, for the same reason (a restore opens one
    /// blob per small file).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses `data` at `level`. `None` means "store raw": compression is off, failed, or
/// did not make the data smaller.
pub fn compress(level: Compression, data: &[u8]) -> Option<Vec<u8>> {
    let level = level.zstd_level()?;
    let packed = COMPRESSOR
        .with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
            }
            slot.as_mut()?.1.compress(data).ok()
        })
        .or_else(|| zstd::bulk::compress(data, level).ok())?;
    (packed.len() < data.len()).then_some(packed)
}

/// Expands zstd data that must not exceed `limit` bytes (a bound on what a damaged or
/// hostile input can make us allocate).
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, CompressError> {
    // A zstd frame is never empty; zstd itself reads no bytes as no data, which would let a
    // damaged encoding byte pass for an empty blob.
    if data.is_empty() {
        return Err(CompressError::Corrupt {
            limit,
            reason: "there is no compressed frame".into(),
        });
    }
    DECOMPRESSOR
        .with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().ok()?);
            }
            Some(slot.as_mut()?.decompress(data, limit))
        })
        .unwrap_or_else(|| zstd::bulk::decompress(data, limit))
        .map_err(|e| CompressError::Corrupt {
            limit,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_shrinks_and_random_stays_raw() {
        let text = b"backup ".repeat(10_000);
        let packed = compress(Compression::Default, &text).unwrap();
        assert!(packed.len() < text.len() / 10);
        assert_eq!(decompress(&packed, text.len()).unwrap(), text);

        let mut noise = vec![0u8; 64 * 1024];
        crate::crypto::random_bytes(&mut noise).unwrap();
        assert_eq!(compress(Compression::Default, &noise), None);
        assert_eq!(compress(Compression::Off, &text), None);
    }

    #[test]
    fn a_bomb_is_refused_by_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let packed = compress(Compression::Fast, &zeros).unwrap();
        assert!(decompress(&packed, 1 << 20).is_err());
        assert!(decompress(b"not zstd at all", 1 << 20).is_err());
    }

    #[test]
    fn levels_parse_with_a_helpful_error() {
        assert_eq!("max".parse::<Compression>().unwrap(), Compression::Max);
        let err = "ultra".parse::<Compression>().unwrap_err();
        assert!(err.contains("off, fast, default or max"));
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), level in 0usize..4) {
            let level = [Compression::Off, Compression::Fast, Compression::Default, Compression::Max][level];
            if let Some(packed) = compress(level, &data) {
                prop_assert!(packed.len() < data.len());
                prop_assert_eq!(decompress(&packed, data.len()).unwrap(), data);
            }
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decompress(&data, 1 << 16);
        }
    }
}
