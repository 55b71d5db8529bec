//! Signs of ransomware in what a backup run sees, and the judgement of a run against the
//! job's own history.
//!
//! A run counts, against its parent point: files changed, added and deleted; **encrypted
//! rewrites** — files whose content went from compressible (their parent version stored at
//! most [`COMPRESSIBLE`] of its size) to random-looking (a sample of at least
//! [`MIN_SAMPLE`] bytes with [`RANDOM_BITS`] bits of entropy per byte or more), in place or
//! under a renamed name; and **renamed extensions** — a file gone from a folder while one
//! named like it with another or an added extension appeared (`report.docx` →
//! `report.docx.locked`, `photo.jpg` → `photo.enc`).
//!
//! [`assess`] marks a run suspicious when encrypted rewrites, renamed extensions or deletions
//! pass both an absolute floor (a few files are never an attack) and a share of the parent's
//! files, and stand far above the job's own history (a job whose files are rewritten as
//! archives every night is not flagged for it). A high change rate alone never flags a run:
//! an ordinary edit of many files is not an attack; it is named among the reasons when it
//! comes with one.

use serde::{Deserialize, Serialize};

/// A parent version stored at most this share of its size was compressible.
pub const COMPRESSIBLE: f64 = 0.9;
/// Bits of entropy per byte from which a sample looks random (encrypted or compressed).
pub const RANDOM_BITS: f64 = 7.5;
/// The smallest sample judged: shorter files tell nothing.
pub const MIN_SAMPLE: usize = 512;
/// The longest sample read for the judgement (the start of a file's first chunk).
pub const MAX_SAMPLE: usize = 64 << 10;

/// What one backup run saw change, file by file, against its parent point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSignals {
    /// Files in the parent point's folders the run looked at.
    pub parent_files: u64,
    /// Files whose content changed.
    pub changed: u64,
    /// Files that were not there.
    pub added: u64,
    /// Files of the parent that are gone.
    pub deleted: u64,
    /// Changed (or renamed) files whose compressible content became random-looking.
    pub encrypted_rewrites: u64,
    /// Files gone whose name came back with another or an added extension.
    pub renamed_extensions: u64,
    /// CPU time the check itself took, summed over the run's threads, in microseconds
    /// (what it costs a run: `scripts/bench-signals`).
    #[serde(default)]
    pub check_us: u64,
}

impl ChangeSignals {
    /// Adds another folder's counts.
    pub fn add(&mut self, other: &Self) {
        self.parent_files += other.parent_files;
        self.changed += other.changed;
        self.added += other.added;
        self.deleted += other.deleted;
        self.encrypted_rewrites += other.encrypted_rewrites;
        self.renamed_extensions += other.renamed_extensions;
        self.check_us += other.check_us;
    }

    /// Changed, added and deleted files as a share of the parent's files.
    pub fn change_rate(&self) -> f64 {
        share(self.changed + self.added + self.deleted, self.parent_files)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// Shannon entropy of `sample`, in bits per byte (0 to 8).
pub fn byte_entropy(sample: &[u8]) -> f64 {
    if sample.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in sample {
        counts[usize::from(*b)] += 1;
    }
    let n = sample.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether the start of a file's content looks random (encrypted, or compressed).
pub fn looks_random(sample: &[u8]) -> bool {
    let sample = &sample[..sample.len().min(MAX_SAMPLE)];
    sample.len() >= MIN_SAMPLE && byte_entropy(sample) >= RANDOM_BITS
}

/// Whether a version stored `stored` bytes for `plain` bytes of content was compressible.
pub fn was_compressible(stored: u64, plain: u64) -> bool {
    plain >= MIN_SAMPLE as u64 && (stored as f64) <= COMPRESSIBLE * plain as f64
}

/// Whether `new` is `old` with another or an added extension (`a.txt` → `a.txt.locked`,
/// `a.txt` → `a.crypt`), not merely another name.
pub fn renamed_extension(old: &[u8], new: &[u8]) -> bool {
    if old == new || old.is_empty() {
        return false;
    }
    // An extension added: "a.txt" → "a.txt.locked" (a short suffix after a dot).
    if let Some(rest) = new.strip_prefix(old)
        && let Some(ext) = rest.strip_prefix(b".")
    {
        return is_extension(ext);
    }
    // The extension replaced: "a.txt" → "a.crypt".
    let stem = |name: &[u8]| -> Option<(usize, usize)> {
        let dot = name.iter().rposition(|b| *b == b'.')?;
        (dot > 0).then_some((dot, name.len()))
    };
    match (stem(old), stem(new)) {
        (Some((a, _)), Some((b, _))) => {
            old[..a] == new[..b] && old[a..] != new[b..] && is_extension(&new[b + 1..])
        }
        _ => false,
    }
}

fn is_extension(ext: &[u8]) -> bool {
    !ext.is_empty()
        && ext.len() <= 16
        && ext
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// The judgement of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Whether the run looks like ransomware at work.
    pub suspicious: bool,
    /// Why, for people (empty when not suspicious).
    pub reasons: Vec<String>,
}

/// Encrypted rewrites or renamed extensions below this count never flag a run.
pub const MIN_FILES: u64 = 20;
/// Nor below this share of the parent's files.
pub const MIN_SHARE: f64 = 0.05;
/// Deletions flag a run from this count …
pub const MIN_DELETED: u64 = 100;
/// … and this share of the parent's files.
pub const DELETED_SHARE: f64 = 0.3;
/// A signal flags only when it is more than this many times the job's highest before.
pub const ABOVE_HISTORY: f64 = 3.0;

/// Judges `run` against `history` (the job's earlier runs, any order).
pub fn assess(run: &ChangeSignals, history: &[ChangeSignals]) -> Assessment {
    let highest = |f: &dyn Fn(&ChangeSignals) -> f64| history.iter().map(f).fold(0.0f64, f64::max);
    let mut reasons = Vec::new();
    let mut check = |count: u64,
                     floor: u64,
                     min_share: f64,
                     of: &dyn Fn(&ChangeSignals) -> f64,
                     what: &str| {
        let now = share(count, run.parent_files);
        if count >= floor && now >= min_share && now > ABOVE_HISTORY * highest(of) {
            reasons.push(format!(
                "{count} files ({:.0} %) {what}, against at most {:.0} % in the job's {} earlier runs",
                now * 100.0,
                highest(of) * 100.0,
                history.len()
            ));
        }
    };
    check(
        run.encrypted_rewrites,
        MIN_FILES,
        MIN_SHARE,
        &|s| share(s.encrypted_rewrites, s.parent_files),
        "rewritten with random-looking (encrypted) content",
    );
    check(
        run.renamed_extensions,
        MIN_FILES,
        MIN_SHARE,
        &|s| share(s.renamed_extensions, s.parent_files),
        "renamed to another extension",
    );
    check(
        run.deleted,
        MIN_DELETED,
        DELETED_SHARE,
        &|s| share(s.deleted, s.parent_files),
        "deleted",
    );
    let suspicious = !reasons.is_empty();
    if suspicious {
        let usual = history
            .iter()
            .map(ChangeSignals::change_rate)
            .fold(0.0f64, f64::max);
        reasons.push(format!(
            "{:.0} % of the files changed, added or deleted, against at most {:.0} % before",
            run.change_rate() * 100.0,
            usual * 100.0
        ));
    }
    Assessment {
        suspicious,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_look_random_and_text_does_not() {
        let mut random = vec![0u8; 64 << 10];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in &mut random {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        assert!(looks_random(&random));
        assert!(byte_entropy(&random) > 7.9);
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(1500);
        assert!(!looks_random(text.as_bytes()));
        assert!(!looks_random(&random[..100]), "too short to tell");
        assert!(!looks_random(&[]));
        assert_eq!(byte_entropy(&[7; 4096]), 0.0);
    }

    #[test]
    fn compressible_is_judged_from_the_stored_share() {
        assert!(was_compressible(300, 1000));
        assert!(!was_compressible(1040, 1000), "sealed random bytes grow");
        assert!(!was_compressible(10, 100), "too short to tell");
    }

    #[test]
    fn renamed_extensions_are_told_from_other_renames() {
        for (old, new) in [
            ("report.docx", "report.docx.locked"),
            ("photo.jpg", "photo.enc"),
            ("notes.txt", "notes.txt.WNCRY"),
            ("Makefile", "Makefile.crypt"),
        ] {
            assert!(
                renamed_extension(old.as_bytes(), new.as_bytes()),
                "{old} → {new}"
            );
        }
        for (old, new) in [
            ("report.docx", "report.docx"),
            ("report.docx", "summary.docx"),
            ("report.docx", "report-v2.docx"),
            ("a.txt", "a.txt."),
            ("a.txt", "a.txt.a very long suffix with spaces"),
            ("Makefile", "Makefile2"),
            (".bashrc", ".profile"),
            ("", ".x"),
        ] {
            assert!(
                !renamed_extension(old.as_bytes(), new.as_bytes()),
                "{old} → {new}"
            );
        }
    }

    fn run(parent_files: u64, f: impl FnOnce(&mut ChangeSignals)) -> ChangeSignals {
        let mut s = ChangeSignals {
            parent_files,
            ..ChangeSignals::default()
        };
        f(&mut s);
        s
    }

    #[test]
    fn an_attack_is_suspicious_and_an_edit_of_the_same_size_is_not() {
        let quiet: Vec<ChangeSignals> = (0..5).map(|i| run(1000, |s| s.changed = 5 + i)).collect();
        let attack = run(1000, |s| {
            s.changed = 150;
            s.added = 150;
            s.deleted = 150;
            s.encrypted_rewrites = 300;
            s.renamed_extensions = 150;
        });
        let verdict = assess(&attack, &quiet);
        assert!(verdict.suspicious);
        assert!(
            verdict.reasons.iter().any(|r| r.contains("encrypted")),
            "{verdict:?}"
        );
        assert!(
            verdict.reasons.iter().any(|r| r.contains("renamed")),
            "{verdict:?}"
        );
        let edit = run(1000, |s| s.changed = 300);
        assert_eq!(
            assess(&edit, &quiet),
            Assessment::default(),
            "an ordinary edit"
        );
        // With no history at all, the absolute floors still decide.
        assert!(assess(&attack, &[]).suspicious);
        assert!(!assess(&edit, &[]).suspicious);
    }

    #[test]
    fn a_job_that_always_rewrites_archives_is_not_flagged_for_it() {
        let nightly: Vec<ChangeSignals> = (0..5)
            .map(|_| {
                run(1000, |s| {
                    s.changed = 200;
                    s.encrypted_rewrites = 200;
                })
            })
            .collect();
        let tonight = run(1000, |s| {
            s.changed = 220;
            s.encrypted_rewrites = 220;
        });
        assert!(!assess(&tonight, &nightly).suspicious);
    }

    #[test]
    fn few_files_never_flag_and_mass_deletion_does() {
        let small = run(30, |s| {
            s.encrypted_rewrites = 10;
            s.renamed_extensions = 10;
        });
        assert!(!assess(&small, &[]).suspicious, "below the floor");
        let wiped = run(1000, |s| s.deleted = 900);
        let verdict = assess(&wiped, &[run(1000, |s| s.deleted = 3)]);
        assert!(verdict.suspicious);
        assert!(
            verdict.reasons[0].starts_with("900 files (90 %) deleted"),
            "{verdict:?}"
        );
    }

    #[test]
    fn counts_add_up_folder_by_folder() {
        let mut total = ChangeSignals::default();
        total.add(&run(10, |s| s.changed = 2));
        total.add(&run(30, |s| s.deleted = 6));
        assert_eq!(
            (total.parent_files, total.changed, total.deleted),
            (40, 2, 6)
        );
        assert!((total.change_rate() - 0.2).abs() < 1e-9);
    }
}
