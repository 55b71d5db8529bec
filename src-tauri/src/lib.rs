//! Cloudkeep Console: the Tauri 2 shell over the Cloudkeep crates (`core/`).
//!
//! Startup resolves the data home, starts the rotating file log, opens the tenant's local
//! state and registers the state once; then the scheduler starts (and the lab, when this data
//! folder has one). Commands (in [`commands`]) are a few lines that hand the work to core.
//! Nothing here is domain logic: if a command grows past a screen, its body belongs in core.

pub mod background;
pub mod commands;
pub mod error;
pub mod state;

use std::process::ExitCode;

use cloudkeep_model::paths::DataHome;
use cloudkeep_tenant::logging::{self, LogFile, LogOptions};
use cloudkeep_tenant::state::TenantState;
use tauri::Manager;

use crate::state::ConsoleState;

/// How many daily log files the console keeps.
const KEEP_LOG_FILES: usize = 14;

/// Starts the console and blocks until its window closes.
pub fn run() -> ExitCode {
    // Answered before any window or data folder: packaging checks and support scripts ask it.
    if let Some(arg) = std::env::args().nth(1) {
        match arg.as_str() {
            "--version" | "-V" => {
                println!("cloudkeep-console {}", cloudkeep_model::VERSION);
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!(
                    "Cloudkeep Console {}: back up and restore with your service provider's cloud.\n\
                     Run it without arguments to open the console. Its data folder is \
                     CLOUDKEEP_HOME if set, else the user's data folder.\n\
                     --version  print the version",
                    cloudkeep_model::VERSION
                );
                return ExitCode::SUCCESS;
            }
            _ => {}
        }
    }
    let started = std::time::Instant::now();
    let home = match DataHome::locate().and_then(|home| home.ensure().map(|()| home)) {
        Ok(home) => home,
        Err(e) => {
            eprintln!("Cloudkeep Console cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut warnings = Vec::new();
    let _log_guard = match logging::init(&LogOptions {
        stderr_level: None,
        file: Some(LogFile {
            dir: home.logs(),
            prefix: state::LOG_PREFIX,
            keep_files: KEEP_LOG_FILES,
        }),
    }) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("Cloudkeep Console runs without a log file: {e}");
            warnings.push(format!("The console is running without a log file: {e}"));
            None
        }
    };
    tracing::info!(
        version = cloudkeep_model::VERSION,
        data_folder = %home.root().display(),
        "console starting"
    );

    let tenant = match tauri::async_runtime::block_on(TenantState::open(&home)) {
        Ok(tenant) => tenant,
        Err(e) => {
            tracing::error!(error = %e, "the local state cannot be opened");
            eprintln!(
                "Cloudkeep Console cannot open its local state in {}: {e}",
                home.root().display()
            );
            return ExitCode::FAILURE;
        }
    };

    let result = tauri::Builder::default()
        .manage(ConsoleState::new(home, tenant, warnings, started))
        .setup(|app| {
            background::start_scheduler(app.handle());
            background::start_replication(app.handle());
            let handle = app.handle().clone();
            if background::has_lab(&handle.state::<ConsoleState>()) {
                tauri::async_runtime::spawn(async move {
                    let state = handle.state::<ConsoleState>();
                    if let Err(e) = background::start_lab(&state).await {
                        tracing::warn!("the lab did not start: {e}");
                    }
                });
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::input_rules,
            commands::log_tail,
            commands::startup_warnings,
            commands::app_ready,
            commands::overview,
            commands::providers::provider_probe,
            commands::providers::provider_add,
            commands::providers::providers_list,
            commands::providers::provider_rescan,
            commands::providers::provider_trust,
            commands::providers::provider_set_credentials,
            commands::providers::provider_remove,
            commands::providers::lab_start,
            commands::providers::found_repos,
            commands::providers::found_jobs,
            commands::providers::found_adopt,
            commands::jobs::jobs_list,
            commands::jobs::job_get,
            commands::jobs::job_create,
            commands::jobs::job_update,
            commands::jobs::job_delete,
            commands::jobs::job_run,
            commands::jobs::job_compact,
            commands::jobs::job_keys,
            commands::jobs::job_key_recovery,
            commands::jobs::job_key_password,
            commands::jobs::job_watch,
            commands::jobs::job_stop,
            commands::jobs::runs_list,
            commands::jobs::sessions_list,
            commands::jobs::session_get,
            commands::points::points_list,
            commands::points::points_refresh,
            commands::points::point_list_dir,
            commands::points::point_find,
            commands::points::point_diff,
            commands::points::point_changes,
            commands::points::point_delete,
            commands::points::computer_volumes,
            commands::points::image_target,
            commands::points::image_restore_start,
            commands::policies::policies_list,
            commands::policies::policy_template,
            commands::policies::policy_create,
            commands::policies::policy_update,
            commands::policies::policy_delete,
            commands::policies::policy_add_computer,
            commands::policies::policy_remove_computer,
            commands::policies::policy_enroll_file,
            commands::policies::policy_sync,
            commands::policies::policy_computer_sessions,
            commands::points::restore_start,
            commands::subtenants::subtenants_list,
            commands::subtenants::subtenant_add,
            commands::subtenants::subtenant_set,
            commands::subtenants::subtenant_delete,
            commands::sp::sp_session,
            commands::sp::sp_connect,
            commands::sp::lab_sp_connect,
            commands::sp::sp_disconnect,
            commands::sp::sp_tenants,
            commands::sp::sp_tenant_add,
            commands::sp::sp_tenant_settings,
            commands::sp::sp_tenant_quota,
            commands::sp::sp_tenant_password,
            commands::sp::sp_tenant_delete,
            commands::sp::sp_tenant_handoff,
            commands::sp::sp_tenant_handoff_save,
            commands::replication::sp_hosts,
            commands::replication::sp_host_add,
            commands::replication::sp_host_details_save,
            commands::replication::sp_host_remove,
            commands::replication::sp_plans,
            commands::replication::sp_replicas,
            commands::replication::sp_replica_failover,
            commands::replication::sp_plan_add,
            commands::replication::sp_plan_remove,
            commands::replication::sp_plan_subscription,
            commands::replication::replication_overview,
            commands::replication::replica_create,
            commands::replication::replica_act,
            commands::replication::failover_plan_save,
            commands::replication::failover_plan_act,
            commands::sp::sp_generate_password,
            commands::sp::sp_repos,
            commands::sp::sp_repo_add,
            commands::sp::sp_repo_test,
            commands::sp::sp_gateway_drain,
            commands::sp::sp_repo_edit,
            commands::sp::sp_repo_remove,
            commands::sp::sp_move_start,
            commands::sp::sp_moves,
            commands::sp::sp_gateways,
            commands::sp::sp_cert,
            commands::sp::sp_cert_generate,
            commands::sp::sp_cert_import,
            commands::sp::sp_admins,
            commands::sp::sp_admin_add,
            commands::sp::sp_admin_remove,
            commands::sp::sp_admin_password,
            commands::sp::sp_cert_next_info,
            commands::sp::sp_cert_next,
            commands::sp::sp_cert_rollover,
            commands::points::job_restore_order,
            commands::points::job_restore_orders,
            commands::sp::sp_usage,
            commands::sp::sp_reclaim,
            commands::sp::sp_usage_export,
            commands::sp::sp_recycle_bin,
            commands::sp::sp_recycle_restore,
            commands::sp::sp_recycle_purge,
            commands::sp::sp_maintenance,
            commands::sp::sp_set_maintenance,
            commands::sp::sp_settings,
            commands::sp::sp_set_settings,
            commands::notify::notify_get,
            commands::notify::notify_set,
            commands::notify::notify_test,
            commands::notify::sp_notify_get,
            commands::notify::sp_notify_set,
            commands::notify::sp_notify_test,
            commands::sp::sp_check,
            commands::backupfiles::export_file_hint,
            commands::backupfiles::point_export_start,
            commands::backupfiles::backup_file_info,
            commands::backupfiles::backup_file_open,
            commands::recovery::recovery_media_create,
            commands::publish::publish_folder_hint,
            commands::publish::publications_list,
            commands::publish::point_publish,
            commands::publish::point_unpublish,
            commands::desktop::pick_folder,
            commands::desktop::pick_file,
            commands::desktop::save_file,
            commands::desktop::open_folder,
        ])
        .build(tauri::generate_context!());
    match result {
        Ok(app) => {
            app.run(|handle, event| {
                if let tauri::RunEvent::Exit = event {
                    // A point this console publishes is unpublished when it closes.
                    handle.state::<ConsoleState>().publications.stop_all();
                }
            });
            tracing::info!("console closed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "console failed");
            eprintln!(
                "Cloudkeep Console failed: {e}. On Linux it needs a graphical session (DISPLAY or WAYLAND_DISPLAY) and WebKitGTK 4.1."
            );
            ExitCode::FAILURE
        }
    }
}
