//! What a backup job or policy protects: the **entire computer** (every disk: partition
//! tables and all partitions), chosen **volumes** (disks, partitions, LVM logical volumes,
//! imaged block by block), or **files** and folders (the default). One type for the job,
//! the policy, the wire, the CLI and the console's Backup mode step.

use serde::{Deserialize, Serialize};

/// The backup mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupMode {
    /// Files and folders (the sources).
    #[default]
    Files,
    /// Chosen disks and volumes, imaged.
    Volumes,
    /// Every disk of the computer, imaged.
    Entire,
}

impl BackupMode {
    /// Its written form (`files`, `volumes`, `entire`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::Volumes => "volumes",
            Self::Entire => "entire",
        }
    }

    /// How people call it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Files => "file level",
            Self::Volumes => "volume level",
            Self::Entire => "entire computer",
        }
    }

    /// Whether it images disks (its points are image-level).
    pub fn is_image(self) -> bool {
        self != Self::Files
    }
}

impl std::fmt::Display for BackupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "files" | "file" => Ok(Self::Files),
            "volumes" | "volume" => Ok(Self::Volumes),
            "entire" | "computer" => Ok(Self::Entire),
            other => Err(format!(
                "backup mode \"{other}\" is not known; use entire (every disk), volumes (chosen disks and volumes) or files"
            )),
        }
    }
}

/// Checks that a job or policy's mode and lists agree: files need sources, volumes need
/// volumes, and neither names the other's.
pub fn check(mode: BackupMode, sources: &[String], volumes: &[String]) -> Result<(), String> {
    match mode {
        BackupMode::Files if sources.is_empty() => {
            Err("a file-level backup needs at least one file or folder".into())
        }
        BackupMode::Files if !volumes.is_empty() => {
            Err("volumes are backed up at volume level: choose the volumes backup mode".into())
        }
        BackupMode::Volumes if volumes.is_empty() => {
            Err("a volume-level backup needs at least one disk or volume".into())
        }
        BackupMode::Volumes | BackupMode::Entire if !sources.is_empty() => Err(format!(
            "an {} backup images disks; files and folders are backed up at file level",
            mode.label()
        )),
        BackupMode::Entire if !volumes.is_empty() => Err(
            "an entire-computer backup takes every disk; choose volume level to name some".into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_lists_must_agree() {
        assert_eq!(
            "Volumes".parse::<BackupMode>().unwrap(),
            BackupMode::Volumes
        );
        assert!("disk".parse::<BackupMode>().unwrap_err().contains("entire"));
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        check(BackupMode::Files, &v(&["/home"]), &[]).unwrap();
        check(BackupMode::Volumes, &[], &v(&["/dev/sdb"])).unwrap();
        check(BackupMode::Entire, &[], &[]).unwrap();
        assert!(check(BackupMode::Files, &[], &[]).is_err());
        assert!(check(BackupMode::Volumes, &[], &[]).is_err());
        assert!(check(BackupMode::Entire, &v(&["/home"]), &[]).is_err());
        assert!(check(BackupMode::Files, &v(&["/home"]), &v(&["/dev/sdb"])).is_err());
    }
}
