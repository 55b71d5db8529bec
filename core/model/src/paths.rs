//! Where Cloudkeep keeps its local state on this computer: the data home.
//!
//! The data home holds the tenant's local database, caches and the `logs/` folder. It is the
//! OS's per-user local data folder (`~/.local/share/cloudkeep` on Linux,
//! `%LOCALAPPDATA%\Cloudkeep\data` on Windows) unless `CLOUDKEEP_HOME` names another one.
//! The command line and the console resolve it the same way, so they share one state.
//! [`DataHome`] owns the name of every file in it (`state_db`, `secrets_file`, `agent_state`,
//! …): nothing else spells them.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the data home.
pub const HOME_ENV: &str = "CLOUDKEEP_HOME";

/// Errors while finding or creating the data home.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// The OS reports no home or data folder for this user.
    #[error(
        "no data folder could be found for this user; set {HOME_ENV} to a folder Cloudkeep may write to"
    )]
    NoUserDataFolder,
    /// The override is relative, which would make the state depend on the working directory.
    #[error(
        "{HOME_ENV} is set to \"{}\", which is not an absolute path; set it to a full path such as /home/me/cloudkeep",
        path.display()
    )]
    NotAbsolute {
        /// The value that was given.
        path: PathBuf,
    },
    /// A new private file could not be created.
    #[error(
        "cannot create \"{}\": {source}; choose a path that does not exist yet, in a folder you can write to",
        path.display()
    )]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A folder of the data home could not be created.
    #[error(
        "cannot create the Cloudkeep folder \"{}\": {source}; check its permissions and free space, or set {HOME_ENV} to another folder",
        path.display()
    )]
    Create {
        /// The folder that could not be created.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// The folder that holds this user's Cloudkeep state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHome {
    /// Invariant: absolute.
    root: PathBuf,
}

impl DataHome {
    /// Finds the data home: `CLOUDKEEP_HOME` when set and not empty, otherwise the OS's
    /// per-user local data folder. Creates nothing; see [`DataHome::ensure`].
    pub fn locate() -> Result<Self, PathsError> {
        Self::locate_with(std::env::var_os(HOME_ENV))
    }

    /// [`DataHome::locate`] with the override's value passed in, so that tests never have to
    /// change the process environment.
    pub fn locate_with(override_value: Option<OsString>) -> Result<Self, PathsError> {
        match override_value.filter(|v| !v.is_empty()) {
            Some(value) => Self::at(value),
            None => directories::ProjectDirs::from("", "", PRODUCT_DIR)
                .map(|dirs| Self {
                    root: dirs.data_local_dir().to_path_buf(),
                })
                .ok_or(PathsError::NoUserDataFolder),
        }
    }

    /// A data home at an explicit absolute path.
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, PathsError> {
        let root = root.into();
        if root.is_absolute() {
            Ok(Self { root })
        } else {
            Err(PathsError::NotAbsolute { path: root })
        }
    }

    /// The data home itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the rotating log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The local state database (providers, jobs, sessions, policies).
    pub fn state_db(&self) -> PathBuf {
        self.root.join("cloudkeep.db")
    }

    /// Passwords where no OS keyring answers (owner-only).
    pub fn secrets_file(&self) -> PathBuf {
        self.root.join("secrets.json")
    }

    /// The SP admin's saved session (`cloudkeep sp login`, the console's SP mode).
    pub fn sp_session(&self) -> PathBuf {
        self.root.join("sp-session.json")
    }

    /// The cache of one repository's sealed folder listings.
    pub fn listing_cache(&self, repo_id: &str) -> PathBuf {
        self.root.join("cache").join(repo_id)
    }

    /// The records of restore points published here (`points mount`, the console's Publish).
    pub fn publications(&self) -> PathBuf {
        self.root.join("publications")
    }

    /// Where restore tests restore their samples (owner-only; emptied after each test).
    pub fn restore_tests(&self) -> PathBuf {
        self.root.join("restore-tests")
    }

    /// The lab's gateway (its data folder, storage and accounts).
    pub fn lab(&self) -> PathBuf {
        self.root.join("lab")
    }

    /// A cloud host's folder (`cloudkeep host run`): its connection details and settings.
    pub fn cloud_host(&self) -> PathBuf {
        self.root.join("host")
    }

    /// The time `cloudkeep daemon` last said it is running (its heartbeat, ms since the epoch).
    pub fn daemon_heartbeat(&self) -> PathBuf {
        self.root.join("daemon.alive")
    }

    /// An enrolled agent's state; its presence makes this data home an agent's.
    pub fn agent_state(&self) -> PathBuf {
        self.root.join("agent.json")
    }

    /// Whether this data home is an enrolled agent's.
    pub fn is_agent(&self) -> bool {
        self.agent_state().is_file()
    }

    /// Creates the data home and its `logs/` folder if they are missing. On Unix the data
    /// home is made readable by its owner only: it will hold credentials and keys.
    pub fn ensure(&self) -> Result<(), PathsError> {
        for dir in [self.root.clone(), self.logs()] {
            create_private_dir(&dir).map_err(|source| PathsError::Create { path: dir, source })?;
        }
        Ok(())
    }
}

/// Folder name under the OS data folder (lower-cased by `directories` on Linux).
const PRODUCT_DIR: &str = "Cloudkeep";

/// Writes `bytes` to a new file readable by its owner only (recovery keys, enrollment files),
/// flushed to disk. Never replaces an existing file: losing an older key file is worse than
/// asking for another name.
pub fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), PathsError> {
    use std::io::Write;
    let mut options = private_file_options();
    options.write(true).create_new(true);
    let write = || -> io::Result<()> {
        let mut file = options.open(path)?;
        seal_new_file(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|source| PathsError::CreateFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` readable by its owner only (keys, configuration holding
/// credentials, sessions), replacing any older file atomically: a temporary file flushed and
/// renamed over it.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = std::path::PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut options = private_file_options();
    options.write(true).create_new(true);
    let mut file = options.open(&tmp)?;
    seal_new_file(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// A file just created empty, made owner-only before anything is written to it. On Unix
/// [`private_file_options`] did that already; on Windows its access list is replaced (the
/// handle opened before keeps its access).
fn seal_new_file(path: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        crate::winacl::set_owner_only(&verbatim(path), false)
    }
    #[cfg(not(windows))]
    {
        let _ = path;
        Ok(())
    }
}

/// Creates `dir` (and missing parents) readable by its owner only; an existing folder is
/// left as it is (see [`exposed`]). On Windows the new folder gets a protected access list
/// for this user alone, which everything later created in it inherits.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        make_dir_private(dir)
    }
}

/// Options that create a file readable and writable by its owner only: Unix mode 0600; on
/// Windows the file inherits the access list of its folder, owner-only when the folder was
/// made by [`create_private_dir`] (files elsewhere go through [`write_private_file`]).
pub fn private_file_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `path` empty and owner-only when it does not exist (an SQLite database before the
/// driver opens it: its journal files take the database's permissions).
pub fn touch_private_file(path: &Path) -> io::Result<()> {
    match private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => seal_new_file(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// How a file or folder lets other local users in, and the command that closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// What lets them in: "mode 0755", or the access list entry on Windows.
    pub what: String,
    /// The command its owner runs to make it owner-only.
    pub fix: String,
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// How other local users may read, write or enter `path`: on Unix group or other mode bits,
/// on Windows an access list entry for anyone but this user. `None` when it is owner-only
/// or missing.
pub fn exposed(path: &Path) -> Option<Exposure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| Exposure {
            what: format!("mode {mode:04o}"),
            fix: format!("chmod -R go-rwx {}", path.display()),
        })
    }
    #[cfg(windows)]
    {
        let list = crate::winacl::access_list(&verbatim(path)).ok()?;
        let me = crate::winacl::current_user_sid().ok()?;
        let what = crate::winacl::others_allowed(&list, &me)?;
        let grant = if path.is_dir() { "(OI)(CI)F" } else { "F" };
        Some(Exposure {
            what,
            fix: format!(
                "icacls \"{}\" /inheritance:r /grant:r \"%USERNAME%:{grant}\", then remove every other account icacls lists",
                shown(path).display()
            ),
        })
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        None
    }
}

/// Makes an existing file owner-only (Unix mode 0600; on Windows a protected access list
/// for this user alone).
pub fn make_file_private(file: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(windows)]
    {
        crate::winacl::set_owner_only(&verbatim(file), false)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = file;
        Ok(())
    }
}

/// Makes an existing folder owner-only (Unix mode 0700; on Windows a protected access list
/// for this user alone, inherited by what is created in it).
pub fn make_dir_private(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(windows)]
    {
        crate::winacl::set_owner_only(&verbatim(dir), true)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The folder `~` stands for: the home of the user this process runs as (the profile
/// folder on Windows, `C:\Users\ann`).
pub fn user_home() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
}

/// A path as someone typed it, with `~` and `~/…` (or `~\…`) standing for `home`; the rest
/// is joined a component at a time, so `~/Documents/Taxes` is `C:\Users\ann\Documents\Taxes`
/// on Windows. `~bob` and everything else is left as it is, as is `~` when no home is known.
pub fn expand_home(typed: &str, home: Option<&Path>) -> String {
    let rest = match typed.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '\\']) => rest,
        _ => return typed.to_owned(),
    };
    let Some(home) = home else {
        return typed.to_owned();
    };
    let mut path = home.to_path_buf();
    for part in rest.split(['/', '\\']).filter(|p| !p.is_empty()) {
        path.push(part);
    }
    path.display().to_string()
}

/// The path to hand the operating system for `path`. On Windows an absolute path in its
/// verbatim form (`\\?\C:\…`, `\\?\UNC\server\share\…`): names Windows would otherwise
/// read specially — `CON`, `NUL`, a trailing dot or space — and paths beyond 260 characters
/// are then read and written as they are. Elsewhere, `path` itself.
pub fn verbatim(path: &Path) -> std::path::PathBuf {
    #[cfg(windows)]
    {
        use std::path::{Component, Prefix};
        let mut parts = path.components();
        let Some(Component::Prefix(prefix)) = parts.next() else {
            return path.to_path_buf();
        };
        let mut out = match prefix.kind() {
            Prefix::Disk(d) => std::path::PathBuf::from(format!(r"\\?\{}:\", char::from(d))),
            Prefix::UNC(server, share) => std::path::PathBuf::from(format!(
                r"\\?\UNC\{}\{}\",
                server.to_string_lossy(),
                share.to_string_lossy()
            )),
            // Already verbatim, or a device: as it is.
            _ => return path.to_path_buf(),
        };
        for part in parts {
            match part {
                Component::Normal(name) => out.push(name),
                Component::ParentDir => {
                    out.pop();
                }
                _ => {}
            }
        }
        out
    }
    #[cfg(not(windows))]
    {
        path.to_path_buf()
    }
}

/// `path` as people write it: [`verbatim`]'s verbatim prefix taken off again.
pub fn shown(path: &Path) -> std::path::PathBuf {
    let text = path.to_string_lossy();
    if let Some(rest) = text.strip_prefix(r"\\?\UNC\") {
        return format!(r"\\{rest}").into();
    }
    match text.strip_prefix(r"\\?\") {
        Some(rest) => rest.into(),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether access lists read back as they were written: not under Wine, which keeps
    /// them as Unix modes and reports a list made from the mode (said in the test output).
    fn access_lists_kept() -> bool {
        let wine = cfg!(windows) && Path::new(r"C:\windows\system32\winecfg.exe").exists();
        if wine {
            eprintln!(
                "not checked under Wine: owner-only access lists read back (Wine keeps them as Unix modes)"
            );
        }
        !wine
    }

    #[test]
    fn override_wins_over_os_folder() {
        let dir = tempfile::tempdir().unwrap();
        let home = DataHome::locate_with(Some(dir.path().as_os_str().to_owned())).unwrap();
        assert_eq!(home.root(), dir.path());
        assert_eq!(home.logs(), dir.path().join("logs"));
    }

    #[test]
    fn empty_override_means_os_folder() {
        let home = DataHome::locate_with(Some(OsString::new())).unwrap();
        let os_default = DataHome::locate_with(None).unwrap();
        assert_eq!(home, os_default);
        assert!(home.root().is_absolute());
        assert!(
            home.root()
                .to_string_lossy()
                .to_lowercase()
                .contains("cloudkeep")
        );
    }

    #[test]
    fn relative_override_is_refused_with_a_fix() {
        let err = DataHome::locate_with(Some("relative/dir".into())).unwrap_err();
        assert!(matches!(err, PathsError::NotAbsolute { .. }));
        let message = err.to_string();
        assert!(message.contains("CLOUDKEEP_HOME"), "{message}");
        assert!(message.contains("full path"), "{message}");
    }

    #[test]
    fn ensure_creates_private_folders() {
        let dir = tempfile::tempdir().unwrap();
        let home = DataHome::at(dir.path().join("state")).unwrap();
        home.ensure().unwrap();
        assert!(home.logs().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.root()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        if access_lists_kept() {
            assert_eq!(exposed(home.root()), None);
        }
        // What is later created inside is private from its first byte, also on Windows
        // (inherited from the folder).
        let inside = home.root().join("cache.bin");
        private_file_options()
            .write(true)
            .create_new(true)
            .open(&inside)
            .unwrap();
        if access_lists_kept() {
            assert_eq!(exposed(&inside), None);
        }
        // Idempotent.
        home.ensure().unwrap();
    }

    #[test]
    fn private_files_are_new_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.txt");
        write_new_private_file(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        if access_lists_kept() {
            assert_eq!(exposed(&path), None);
        }
        let err = write_new_private_file(&path, b"other").unwrap_err();
        assert!(err.to_string().contains("does not exist yet"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret", "never replaced");
    }

    /// A folder others can enter is named with what lets them in and the command that
    /// closes it; made private, it is no longer reported, and a replaced private file stays
    /// private.
    #[test]
    fn exposure_is_found_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        #[cfg(windows)]
        crate::winacl::set_access_list(&shared, "D:P(A;OICI;FA;;;WD)").unwrap();
        let exposure = exposed(&shared).expect("a folder everyone may enter is exposed");
        assert!(!exposure.what.is_empty() && !exposure.fix.is_empty());
        #[cfg(unix)]
        assert_eq!(exposure.what, "mode 0755");
        #[cfg(windows)]
        assert!(
            exposure.what.contains("Everyone"),
            "{exposure}: {:?}",
            crate::winacl::access_list(&shared)
        );
        make_dir_private(&shared).unwrap();
        let config = shared.join("config.toml");
        write_private_file(&config, b"one").unwrap();
        write_private_file(&config, b"two").unwrap();
        assert_eq!(std::fs::read(&config).unwrap(), b"two");
        let touched = shared.join("state.db");
        touch_private_file(&touched).unwrap();
        if access_lists_kept() {
            assert_eq!(exposed(&shared), None);
            assert_eq!(exposed(&config), None);
            assert_eq!(exposed(&touched), None);
        }
    }

    #[test]
    fn ensure_reports_the_folder_it_could_not_create() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let home = DataHome::at(blocker.join("state")).unwrap();
        let err = home.ensure().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("state"), "{message}");
        assert!(message.contains("CLOUDKEEP_HOME"), "{message}");
    }
}
