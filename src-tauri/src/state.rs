//! The console's state, registered once with `.manage()` at startup.

use cloudkeep_core::paths::DataHome;

/// File name prefix of the console's rotating log files.
pub const LOG_PREFIX: &str = "console";

/// What every command may read.
#[derive(Debug)]
pub struct ConsoleState {
    /// The data home resolved at startup; created and writable.
    pub home: DataHome,
    /// Problems found at startup that the user should see (shown as a banner).
    pub startup_warnings: Vec<String>,
}

impl ConsoleState {
    /// State for a resolved data home.
    pub fn new(home: DataHome, startup_warnings: Vec<String>) -> Self {
        Self {
            home,
            startup_warnings,
        }
    }
}
