//! What this build of Cloudkeep is and where it keeps its things: the one answer behind
//! `cloudkeep about` and the console's About panel, so the two never disagree.

use serde::{Deserialize, Serialize};

use crate::paths::DataHome;

/// Facts about this build and this computer's Cloudkeep folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AboutInfo {
    /// Product name.
    pub product: String,
    /// Product version ([`crate::VERSION`]).
    pub version: String,
    /// Gateway protocol versions this build speaks.
    pub protocol_versions: Vec<u32>,
    /// Operating system this build runs on (`linux`, `windows`, …).
    pub os: String,
    /// CPU architecture (`x86_64`, `aarch64`, …).
    pub arch: String,
    /// The data home (local database, caches).
    pub data_folder: String,
    /// Where the rotating log files are.
    pub log_folder: String,
}

impl AboutInfo {
    /// The facts for a given data home.
    pub fn for_home(home: &DataHome) -> Self {
        Self {
            product: crate::PRODUCT.to_owned(),
            version: crate::VERSION.to_owned(),
            protocol_versions: crate::PROTOCOL_VERSIONS.to_vec(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            data_folder: home.root().display().to_string(),
            log_folder: home.logs().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_stable() {
        let root = std::env::temp_dir().join("ck");
        let home = DataHome::at(&root).unwrap();
        let value = serde_json::to_value(AboutInfo::for_home(&home)).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "arch",
                "data_folder",
                "log_folder",
                "os",
                "product",
                "protocol_versions",
                "version"
            ]
        );
        assert_eq!(value["version"], crate::VERSION);
        assert_eq!(value["data_folder"], root.display().to_string());
        assert_eq!(value["protocol_versions"], serde_json::json!([1]));
    }
}
