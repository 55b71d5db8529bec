//! The rotating log file end to end: install the subscriber, log, flush, read it back.
//! Its own test binary because a process has one global subscriber.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cloudkeep_tenant::logging::{self, LogFile, LogOptions};

#[test]
fn file_logger_writes_what_tail_reads() {
    let dir = tempfile::tempdir().unwrap();
    let guard = logging::init(&LogOptions {
        stderr_level: None,
        file: Some(LogFile {
            dir: dir.path().to_path_buf(),
            prefix: "console",
            keep_files: 3,
        }),
    })
    .unwrap();
    tracing::info!(answer = 42, "console started");
    tracing::debug!("below the default file level");
    drop(guard); // flushes the background writer

    let tail = logging::tail(dir.path(), "console", 50).unwrap();
    let file = tail.file.expect("a log file was created");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("console.") && name.ends_with(".log"),
        "{name}"
    );
    let started = tail
        .lines
        .iter()
        .find(|l| l.contains("console started"))
        .unwrap_or_else(|| panic!("no start line in {:?}", tail.lines));
    assert!(started.contains("answer=42"));
    assert!(started.contains("INFO"));
    assert!(!started.contains('\u{1b}'), "no colour codes in files");
    if std::env::var_os("RUST_LOG").is_none() {
        assert_eq!(
            tail.lines.len(),
            1,
            "debug stays out by default: {:?}",
            tail.lines
        );
    }

    // A second logger in the same process is refused, not silently ignored.
    let again = logging::init(&LogOptions {
        stderr_level: None,
        file: None,
    });
    assert!(matches!(again, Err(logging::LogError::AlreadyInstalled)));
}
