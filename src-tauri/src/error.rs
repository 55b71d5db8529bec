//! The one error type at the command boundary. Every command returns it; it serialises to
//! `{kind, message}` so the UI can show the message and branch on a stable kind.

use cloudkeep_core::logging::LogError;
use cloudkeep_core::paths::PathsError;
use serde::Serialize;

/// Stable error kinds the UI may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request from the page was malformed or out of range.
    BadRequest,
    /// The local data folder could not be found or used.
    DataFolder,
    /// The log files could not be read.
    Logs,
}

/// An error as the UI sees it: what happened and what to do, in one readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Stable kind.
    pub kind: ErrorKind,
    /// Readable message, with the next step where there is one.
    pub message: String,
}

impl CommandError {
    /// A malformed or out-of-range request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            message: message.into(),
        }
    }
}

impl From<PathsError> for CommandError {
    fn from(e: PathsError) -> Self {
        Self {
            kind: ErrorKind::DataFolder,
            message: e.to_string(),
        }
    }
}

impl From<LogError> for CommandError {
    fn from(e: LogError) -> Self {
        Self {
            kind: ErrorKind::Logs,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_kind_and_message() {
        let e = CommandError::from(PathsError::NotAbsolute { path: "rel".into() });
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "data_folder");
        assert!(json["message"].as_str().unwrap().contains("CLOUDKEEP_HOME"));
        assert_eq!(json.as_object().unwrap().len(), 2);
        assert_eq!(
            serde_json::to_value(CommandError::bad_request("x")).unwrap()["kind"],
            "bad_request"
        );
    }
}
