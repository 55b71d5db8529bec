//! Build script: embeds the UI and configuration, and declares the app's own commands so
//! that Tauri generates `allow-<command>` permissions for them. With an app manifest every
//! command is permission-checked: a window may only call what its capability grants.

/// Every `#[tauri::command]` the console registers; keep in step with `generate_handler!`.
const COMMANDS: &[&str] = &["app_info", "log_tail", "startup_warnings"];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        // A build script reports failure by exiting non-zero with the reason on stderr.
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
