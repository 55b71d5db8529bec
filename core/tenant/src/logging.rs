//! Logging for Cloudkeep's processes: `tracing` events to stderr and, for long-running
//! processes such as the console, to a daily rotating file in the data home's `logs/` folder.
//!
//! `RUST_LOG` (an `EnvFilter` directive such as `info` or `cloudkeep_repo=debug`) overrides
//! the default level of both outputs. Installing the subscriber is the binaries' choice; the
//! rules (file names, rotation, what goes where) live here so every binary follows them.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Environment variable read for filter directives.
pub const FILTER_ENV: &str = "RUST_LOG";

/// Suffix of every log file: `<prefix>.<YYYY-MM-DD>.log`.
const FILE_SUFFIX: &str = "log";

/// How much of the newest log file [`tail`] reads at most.
const TAIL_WINDOW: u64 = 256 * 1024;

/// Errors while setting up or reading logs.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `RUST_LOG` does not parse.
    #[error(
        "{FILTER_ENV}=\"{value}\" is not a valid log filter ({reason}); use a level such as {FILTER_ENV}=info or a directive such as {FILTER_ENV}=cloudkeep_repo=debug"
    )]
    BadFilter {
        /// The value found in the environment.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The rotating log file could not be opened.
    #[error(
        "cannot write logs to \"{}\": {reason}; check the folder's permissions or set CLOUDKEEP_HOME to another folder",
        dir.display()
    )]
    File {
        /// The log folder.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A logger is already installed in this process.
    #[error("logging was already set up in this process")]
    AlreadyInstalled,
    /// A log file could not be read.
    #[error("cannot read the log file \"{}\": {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// A rotating log file: one file per day, the oldest removed beyond `keep_files`.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// Folder of the files, usually [`cloudkeep_model::paths::DataHome::logs`].
    pub dir: PathBuf,
    /// File name prefix naming the process: `console`, `gateway`, `daemon`.
    pub prefix: &'static str,
    /// How many daily files to keep.
    pub keep_files: usize,
}

/// What to log where.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Level on stderr when `RUST_LOG` is not set; `None` keeps stderr silent unless it is.
    pub stderr_level: Option<LevelFilter>,
    /// The rotating file, if this process keeps one. It records `info` and above unless
    /// `RUST_LOG` says otherwise.
    pub file: Option<LogFile>,
}

/// Keeps the background file writer alive; drop it last so buffered lines are flushed.
#[derive(Debug)]
#[must_use = "dropping the guard stops the file logger"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the process-wide subscriber described by `options`.
pub fn init(options: &LogOptions) -> Result<LogGuard, LogError> {
    let env_value = std::env::var(FILTER_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter_for = |default: LevelFilter| -> Result<EnvFilter, LogError> {
        match &env_value {
            Some(value) => EnvFilter::builder()
                .parse(value)
                .map_err(|e| LogError::BadFilter {
                    value: value.clone(),
                    reason: e.to_string(),
                }),
            None => Ok(EnvFilter::default().add_directive(default.into())),
        }
    };

    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    // RUST_LOG turns stderr on even for processes that are otherwise silent there.
    let stderr_level = options
        .stderr_level
        .or(env_value.as_ref().map(|_| LevelFilter::INFO));
    if let Some(level) = stderr_level {
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal())
                .with_target(false)
                .with_filter(filter_for(level)?)
                .boxed(),
        );
    }

    let mut guard = None;
    if let Some(file) = &options.file {
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(file.prefix)
            .filename_suffix(FILE_SUFFIX)
            .max_log_files(file.keep_files.max(1))
            .build(&file.dir)
            .map_err(|e| LogError::File {
                dir: file.dir.clone(),
                reason: e.to_string(),
            })?;
        let (writer, worker) = tracing_appender::non_blocking(appender);
        guard = Some(worker);
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter_for(LevelFilter::INFO)?)
                .boxed(),
        );
    }

    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|_| LogError::AlreadyInstalled)?;
    Ok(LogGuard { _file: guard })
}

/// The last lines of the newest log file of one process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogTail {
    /// The file read, if any exists yet.
    pub file: Option<PathBuf>,
    /// Its last lines, oldest first.
    pub lines: Vec<String>,
}

/// Reads the last `max_lines` lines of the newest `<prefix>.*.log` file in `dir`.
/// A missing folder or no file yet is not an error: nothing has been logged.
pub fn tail(dir: &Path, prefix: &str, max_lines: usize) -> Result<LogTail, LogError> {
    let Some(path) = newest_file(dir, prefix)? else {
        return Ok(LogTail {
            file: None,
            lines: Vec::new(),
        });
    };
    let read_err = |source| LogError::Read {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start)).map_err(read_err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(read_err)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The window began mid-line.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(max_lines);
    Ok(LogTail {
        file: Some(path),
        lines: lines[skip..].iter().map(|l| (*l).to_owned()).collect(),
    })
}

/// The newest log file of `prefix` in `dir`; file names sort by date.
fn newest_file(dir: &Path, prefix: &str) -> Result<Option<PathBuf>, LogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let head = format!("{prefix}.");
    let tail = format!(".{FILE_SUFFIX}");
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&head) && name.ends_with(&tail))
        .max()
        .map(|name| dir.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_of_missing_folder_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let got = tail(&dir.path().join("nope"), "console", 10).unwrap();
        assert_eq!(
            got,
            LogTail {
                file: None,
                lines: vec![]
            }
        );
    }

    #[test]
    fn tail_reads_newest_file_of_the_prefix_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("console.2026-11-20.log"), "old\n").unwrap();
        std::fs::write(dir.path().join("console.2026-11-21.log"), "a\nb\nc\n").unwrap();
        std::fs::write(dir.path().join("gateway.2026-11-22.log"), "other\n").unwrap();
        std::fs::write(dir.path().join("console.notes.txt"), "x\n").unwrap();
        let got = tail(dir.path(), "console", 2).unwrap();
        assert_eq!(got.file, Some(dir.path().join("console.2026-11-21.log")));
        assert_eq!(got.lines, vec!["b", "c"]);
    }

    #[test]
    fn tail_of_a_large_file_drops_the_partial_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let line = "x".repeat(999);
        let body: String = (0..1000).map(|i| format!("{i:04} {line}\n")).collect();
        std::fs::write(dir.path().join("console.2026-11-22.log"), &body).unwrap();
        let got = tail(dir.path(), "console", 1000).unwrap();
        assert!(got.lines.len() < 1000);
        assert!(got.lines.iter().all(|l| l.len() == 1004), "no partial line");
        assert!(got.lines.last().unwrap().starts_with("0999 "));
    }
}
