//! Build script: embeds the UI and configuration, and declares the app's own commands so
//! that Tauri generates `allow-<command>` permissions for them. With an app manifest every
//! command is permission-checked: a window may only call what its capability grants.

/// Every `#[tauri::command]` the console registers; keep in step with `generate_handler!`.
const COMMANDS: &[&str] = &[
    "app_info",
    "log_tail",
    "startup_warnings",
    "app_ready",
    "overview",
    "provider_probe",
    "provider_add",
    "providers_list",
    "provider_rescan",
    "provider_trust",
    "provider_remove",
    "lab_start",
    "jobs_list",
    "job_get",
    "job_create",
    "job_update",
    "job_delete",
    "job_run",
    "job_watch",
    "job_stop",
    "runs_list",
    "sessions_list",
    "session_get",
    "points_list",
    "points_refresh",
    "point_list_dir",
    "point_find",
    "point_diff",
    "point_delete",
    "policies_list",
    "policy_template",
    "policy_create",
    "policy_update",
    "policy_delete",
    "policy_add_computer",
    "policy_remove_computer",
    "policy_enroll_file",
    "policy_sync",
    "policy_computer_sessions",
    "restore_start",
    "subtenants_list",
    "subtenant_add",
    "subtenant_set",
    "subtenant_delete",
    "sp_session",
    "sp_connect",
    "sp_disconnect",
    "sp_tenants",
    "sp_tenant_add",
    "sp_tenant_settings",
    "sp_tenant_quota",
    "sp_tenant_password",
    "sp_tenant_delete",
    "sp_generate_password",
    "sp_repos",
    "sp_repo_add",
    "sp_gateways",
    "sp_cert",
    "sp_cert_generate",
    "sp_cert_import",
    "sp_usage",
    "sp_usage_export",
    "sp_recycle_bin",
    "sp_recycle_restore",
    "sp_recycle_purge",
    "sp_maintenance",
    "sp_set_maintenance",
    "sp_check",
    "pick_folder",
    "pick_file",
    "save_file",
    "open_folder",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        // A build script reports failure by exiting non-zero with the reason on stderr.
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
