//! Entry point of the Cloudkeep Console binary; everything lives in the library.

// No console window next to the GUI on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    cloudkeep_console::run()
}
