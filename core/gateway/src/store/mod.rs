//! The gateway's metadata database: SQLite (a file, the default) or PostgreSQL, through sqlx's
//! `Any` driver so that one set of queries serves both; one migrations folder per engine
//! (`core/gateway/migrations/sqlite`, `core/gateway/migrations/postgres`), kept in step.
//!
//! Conventions that keep the queries portable: `$1` placeholders (both engines accept them),
//! times as i64 milliseconds since the epoch, flags as 0/1 integers, ids as 64-bit integers,
//! `RETURNING` for new ids, `ON CONFLICT` for upserts. Counters that enforce limits (quotas)
//! change only through single conditional `UPDATE`s, which both engines run atomically.
//!
//! Each table group has its own module; they share [`Db`] and [`DbError`].

pub mod accounts;
pub mod audit;
pub mod data;
pub mod gateways;
pub mod health;
pub mod moves;
pub mod object_lock;
pub mod policies;
pub mod replication;
pub mod repos;
pub mod reservations;
pub mod restores;
pub mod settings;
pub mod shared;
pub mod space;
pub mod tasks;
pub mod tenants;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};

/// Errors of the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database URL is not one Cloudkeep can use.
    #[error(
        "\"{0}\" is not a database Cloudkeep can use; give a SQLite file path, sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB"
    )]
    BadUrl(String),
    /// Connecting failed.
    #[error(
        "cannot open the metadata database {url}: {source}; check that it runs and the credentials are right"
    )]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// The SQLite file cannot be created.
    #[error("cannot create the metadata database {}: {source}", path.display())]
    Create {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bringing the schema up to date failed.
    #[error("cannot update the metadata database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("metadata database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A name that must be unique is taken.
    #[error("{0} already exists; choose another name")]
    Conflict(String),
    /// No such object.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A change that does not fit a quota.
    #[error("{0}")]
    QuotaFull(String),
    /// A value the database holds or is given is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The quota is frozen for a moment (a move's switch): the same write succeeds soon.
    #[error("{0}")]
    Busy(String),
}

impl DbError {
    /// Whether the database refused a write because its disk is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's class 53 "insufficient resources").
    pub fn is_storage_full(&self) -> bool {
        let Self::Query(sqlx::Error::Database(db)) = self else {
            return false;
        };
        let code = db.code().unwrap_or_default();
        code == "13" || code.starts_with("53") || db.message().contains("disk is full")
    }
}

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An SQLite file (WAL).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// An open, migrated metadata database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

pub use cloudkeep_model::clock::now_ms;

/// A URL for messages: the password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The URL the database driver opens `file` with. The driver parses it as a URL first, so
/// the path is percent-encoded whole: a Windows path (`C:\data\gateway.db`) or one with `?`,
/// `#` or `%` in it reaches SQLite as it is instead of being read as a host and a port.
pub fn sqlite_url(file: &std::path::Path) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    let path = file.to_string_lossy();
    format!(
        "sqlite:{}?mode=rwc",
        percent_encoding::utf8_percent_encode(&path, KEEP)
    )
}

/// The file of an SQLite database URL (a path or `sqlite://PATH`); `None` for PostgreSQL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    (!path.is_empty() && !path.contains('?')).then(|| std::path::PathBuf::from(path))
}

impl Db {
    /// Opens (creating an SQLite file if needed) and migrates the database at `url`: a path or
    /// `sqlite://PATH` for SQLite, `postgres://…` for PostgreSQL.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Engine::Postgres, url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if path.is_empty() || path.contains('?') {
                return Err(DbError::BadUrl(url.to_owned()));
            }
            // Created owner-only before the driver opens it: it holds password hashes and
            // sessions, and SQLite gives its journal files the database's permissions.
            let file = std::path::Path::new(path);
            if file
                .parent()
                .is_some_and(|p| p.as_os_str().is_empty() || p.is_dir())
            {
                cloudkeep_model::paths::touch_private_file(file).map_err(|source| {
                    DbError::Create {
                        path: file.to_path_buf(),
                        source,
                    }
                })?;
            }
            (Engine::Sqlite, sqlite_url(file))
        };
        let connect_err = |source| DbError::Connect {
            url: redact_url(&url),
            source,
        };
        let options = AnyConnectOptions::from_str(&url).map_err(connect_err)?;
        // One direct connection first: a wrong address or password fails at once with the
        // driver's reason, instead of after the pool's acquire timeout.
        sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(connect_err)?
            .close()
            .await
            .map_err(connect_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 8,
                Engine::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // 16 MiB of pages per connection (the default is 2 MiB): a large
                        // backup registers hundreds of thousands of chunk ids.
                        conn.execute("PRAGMA cache_size = -16384").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        match engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, engine })
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection pool, for the table modules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a unique-constraint violation to [`DbError::Conflict`] naming `what`.
pub(crate) fn conflict(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict(what.into()),
        _ => DbError::Query(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://ck:secret@127.0.0.1:5433/postgres"),
            "postgres://ck:***@127.0.0.1:5433/postgres"
        );
        assert_eq!(redact_url("/var/lib/ck/meta.db"), "/var/lib/ck/meta.db");
    }

    /// The driver reads back exactly the file it was given, whatever the path looks like.
    #[test]
    fn any_database_path_reaches_the_driver_as_it_is() {
        use sqlx::ConnectOptions;
        for path in [
            "/var/lib/cloudkeep/gateway.db",
            "C:\\ProgramData\\Cloudkeep\\gateway.db",
            "/tmp/odd ?#% name/gateway.db",
            "relative/gateway.db",
        ] {
            let url = sqlite_url(std::path::Path::new(path));
            let any = AnyConnectOptions::from_str(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let opened = sqlx::sqlite::SqliteConnectOptions::from_url(&any.database_url)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(opened.get_filename(), std::path::Path::new(path), "{url}");
        }
    }
}
