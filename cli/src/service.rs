//! `cloudkeep agent service …`: the agent as a native Windows service, registered with the
//! Service Control Manager through its own protocol (the `windows-service` crate), no
//! wrapper: it starts automatically at boot (delayed, after the services the desktop needs),
//! is restarted by the SCM after a failure, logs to the data folder's `logs/agent.*` files
//! and tells the Event Log when it starts, stops or fails.
//!
//! The SCM starts `cloudkeep.exe agent service run --home DATA`: the data folder of the user
//! who enrolled the computer (the service runs as LocalSystem, whose own data folder would
//! hold no enrollment). On Linux the same agent runs under systemd (`cloudkeep-agent.service`
//! from the `.deb`); these commands say so.

// The service's definition is used by Windows' side only; elsewhere it is unit-tested.
#![cfg_attr(not(windows), allow(dead_code))]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use cloudkeep_model::paths::DataHome;

/// The service's name in the Service Control Manager (`sc query CloudkeepAgent`).
pub const SERVICE_NAME: &str = "CloudkeepAgent";
/// Its name in the Services window and the Event Log's source.
pub const DISPLAY_NAME: &str = "Cloudkeep Agent";
/// Its description in the Services window.
pub const DESCRIPTION: &str =
    "Backs this computer up under its Cloudkeep backup policy and reports to the service provider.";
/// How long the SCM waits before restarting it after each of its first three failures.
pub const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(60),
    Duration::from_secs(300),
];
/// After a day without failure the SCM counts failures from the first again.
pub const FAILURE_RESET: Duration = Duration::from_secs(24 * 3600);

/// `cloudkeep agent service …`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the agent as a Windows service (as an administrator): starts automatically
    /// at boot (delayed), restarts after a failure.
    Install {
        /// Seconds between the agent's cycles.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        interval: u64,
    },
    /// Stop the service and remove it from the Service Control Manager.
    Uninstall,
    /// Start the service now.
    Start,
    /// Stop the service.
    Stop,
    /// Whether the service is installed, its state and how it starts.
    Status,
    /// What the Service Control Manager starts (not for people).
    #[command(hide = true)]
    Run {
        /// The data folder of the enrolled agent.
        #[arg(long, value_name = "DIR")]
        home: PathBuf,
        /// Seconds between the agent's cycles.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        interval: u64,
    },
}

impl ServiceCommand {
    /// The data folder a `run` names: the service has no `CLOUDKEEP_HOME` of its own.
    pub fn run_home(&self) -> Option<&Path> {
        match self {
            Self::Run { home, .. } => Some(home),
            _ => None,
        }
    }
}

/// The arguments the SCM starts this executable with.
pub fn launch_arguments(home: &DataHome, interval: u64) -> Vec<OsString> {
    vec![
        "agent".into(),
        "service".into(),
        "run".into(),
        "--home".into(),
        home.root().as_os_str().to_owned(),
        "--interval".into(),
        interval.to_string().into(),
    ]
}

/// Runs `cloudkeep agent service …` for the agent of `home`.
pub fn run(command: ServiceCommand, home: &DataHome, json: bool) -> anyhow::Result<ExitCode> {
    #[cfg(windows)]
    {
        scm::run(command, home, json)
    }
    #[cfg(not(windows))]
    {
        let _ = (command, home, json);
        anyhow::bail!(
            "the agent is a Windows service only on Windows; on Linux it runs under systemd: install the cloudkeep .deb and run \"systemctl enable --now cloudkeep-agent\" (or run \"cloudkeep agent run\" yourself)"
        )
    }
}

#[cfg(windows)]
mod scm {
    //! The Service Control Manager's side.
    use std::ffi::OsString;
    use std::process::ExitCode;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use cloudkeep_model::paths::DataHome;
    use cloudkeep_repo::engine::Cancel;
    use windows_service::service::{
        ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
        ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    use super::{DESCRIPTION, DISPLAY_NAME, RESTART_DELAYS, SERVICE_NAME, ServiceCommand};

    const NEEDS_ADMIN: &str = "the Service Control Manager refused: run this from a command prompt opened with \"Run as administrator\"";

    fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
        ServiceManager::local_computer(None::<&str>, access).context(NEEDS_ADMIN)
    }

    fn open(access: ServiceAccess) -> anyhow::Result<windows_service::service::Service> {
        manager(ServiceManagerAccess::CONNECT)?
            .open_service(SERVICE_NAME, access)
            .context("the Cloudkeep agent service is not installed (or you are not an administrator); install it with \"cloudkeep agent service install\"")
    }

    /// Waits up to 30 s for the service to reach `state`.
    fn wait_for(
        service: &windows_service::service::Service,
        state: ServiceState,
    ) -> anyhow::Result<ServiceState> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let now = service.query_status()?.current_state;
            if now == state || Instant::now() > until {
                return Ok(now);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn state_name(state: ServiceState) -> &'static str {
        match state {
            ServiceState::Stopped => "stopped",
            ServiceState::StartPending => "starting",
            ServiceState::StopPending => "stopping",
            ServiceState::Running => "running",
            ServiceState::ContinuePending => "resuming",
            ServiceState::PausePending => "pausing",
            ServiceState::Paused => "paused",
        }
    }

    pub fn run(command: ServiceCommand, home: &DataHome, json: bool) -> anyhow::Result<ExitCode> {
        match command {
            ServiceCommand::Install { interval } => install(home, interval)?,
            ServiceCommand::Uninstall => {
                let service = open(
                    ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
                )?;
                if service.query_status()?.current_state != ServiceState::Stopped {
                    let _ = service.stop();
                    wait_for(&service, ServiceState::Stopped)?;
                }
                service.delete()?;
                println!("the Cloudkeep agent service is removed");
            }
            ServiceCommand::Start => {
                let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::START)?;
                if service.query_status()?.current_state == ServiceState::Running {
                    println!("the Cloudkeep agent service is running already");
                    return Ok(ExitCode::SUCCESS);
                }
                service.start::<OsString>(&[])?;
                let state = wait_for(&service, ServiceState::Running)?;
                if state != ServiceState::Running {
                    anyhow::bail!(
                        "the Cloudkeep agent service is {} after 30 s; its log is in {}",
                        state_name(state),
                        home.logs().display()
                    );
                }
                println!("the Cloudkeep agent service is running");
            }
            ServiceCommand::Stop => {
                let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)?;
                service.stop()?;
                let state = wait_for(&service, ServiceState::Stopped)?;
                println!("the Cloudkeep agent service is {}", state_name(state));
            }
            ServiceCommand::Status => status(json)?,
            ServiceCommand::Run { home, interval } => {
                let home = DataHome::at(home)?;
                dispatch(home, Duration::from_secs(interval.max(1)))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The service runs its program as LocalSystem: anyone who may change the program, or add
    /// a library beside it, could run their code as the system. Refused, with the fix.
    fn refuse_a_program_others_may_change(exe: &std::path::Path) -> anyhow::Result<()> {
        use cloudkeep_model::{paths, winacl};
        let user = winacl::current_user_sid().context("cannot read this account's identity")?;
        for path in [Some(exe), exe.parent()].into_iter().flatten() {
            let sddl = winacl::access_list(&paths::verbatim(path))
                .with_context(|| format!("cannot read who may change {}", path.display()))?;
            if let Some(why) = winacl::others_may_change(&sddl, &user) {
                anyhow::bail!(
                    "{} cannot be the service's program: {why}, and the service runs it as LocalSystem, so whoever may change it could run their code as the system; install Cloudkeep with its installer (into Program Files) or move cloudkeep.exe into a folder only administrators may change, then install the service from there",
                    paths::shown(path).display()
                );
            }
        }
        Ok(())
    }

    fn install(home: &DataHome, interval: u64) -> anyhow::Result<()> {
        let executable_path = std::env::current_exe()?;
        refuse_a_program_others_may_change(&executable_path)?;
        if !home.is_agent() {
            anyhow::bail!(
                "this computer is not enrolled in {}; run \"cloudkeep agent enroll FILE\" first",
                home.root().display()
            );
        }
        // The service runs as LocalSystem, whose keyring holds none of the enrolling user's
        // secrets: they go to the data folder's owner-only file too.
        let ctx = cloudkeep_tenant::TenantContext::open(home.clone())?;
        cloudkeep_tenant::agent::keep_secrets_for_service(&ctx)?;
        drop(ctx);
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path,
            launch_arguments: super::launch_arguments(home, interval),
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?
            .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
            .context("cannot register the service (is it installed already? \"cloudkeep agent service status\" says)")?;
        service.set_description(DESCRIPTION)?;
        let mut unsupported = Vec::new();
        supported(
            service.set_delayed_auto_start(true),
            "a delayed automatic start (it starts automatically at boot)",
            &mut unsupported,
        )?;
        supported(
            service.update_failure_actions(ServiceFailureActions {
                reset_period: ServiceFailureResetPeriod::After(super::FAILURE_RESET),
                reboot_msg: None,
                command: None,
                actions: Some(
                    RESTART_DELAYS
                        .iter()
                        .map(|&delay| ServiceAction {
                            action_type: ServiceActionType::Restart,
                            delay,
                        })
                        .collect(),
                ),
            }),
            "restarts after a failure",
            &mut unsupported,
        )?;
        // A run that ends with an error counts as a failure too, not only a crash.
        supported(
            service.set_failure_actions_on_non_crash_failures(true),
            "restarts after a run that ends with an error (only after a crash)",
            &mut unsupported,
        )?;
        for what in &unsupported {
            println!("note: this Service Control Manager does not support {what}");
        }
        println!(
            "the Cloudkeep agent service is installed: it starts automatically at boot (delayed) and restarts after a failure; start it now with \"cloudkeep agent service start\""
        );
        Ok(())
    }

    /// A setting an older or partial Service Control Manager (Wine's) does not know: noted,
    /// not fatal. Windows itself knows every one the install makes.
    fn supported(
        result: windows_service::Result<()>,
        what: &'static str,
        unsupported: &mut Vec<&'static str>,
    ) -> anyhow::Result<()> {
        const ERROR_INVALID_LEVEL: i32 = 124;
        const ERROR_CALL_NOT_IMPLEMENTED: i32 = 120;
        match result {
            Err(windows_service::Error::Winapi(e))
                if matches!(
                    e.raw_os_error(),
                    Some(ERROR_INVALID_LEVEL | ERROR_CALL_NOT_IMPLEMENTED)
                ) =>
            {
                unsupported.push(what);
                Ok(())
            }
            other => Ok(other?),
        }
    }

    fn status(json: bool) -> anyhow::Result<()> {
        let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)?;
        let state = service.query_status()?.current_state;
        let config = service.query_config()?;
        let delayed = super::query::delayed_auto_start(&service).unwrap_or(false);
        let restarts = service
            .get_failure_actions()
            .ok()
            .and_then(|f| f.actions)
            .map(|actions| {
                actions
                    .iter()
                    .filter(|a| a.action_type == ServiceActionType::Restart)
                    .count()
            })
            .unwrap_or(0);
        let starts = match (config.start_type, delayed) {
            (ServiceStartType::AutoStart, true) => "automatically (delayed)",
            (ServiceStartType::AutoStart, false) => "automatically",
            (ServiceStartType::OnDemand, _) => "when started",
            _ => "never (disabled)",
        };
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "installed": true,
                    "state": state_name(state),
                    "starts": starts,
                    "restarts_after_failure": restarts,
                    "command": config.executable_path.to_string_lossy(),
                })
            );
        } else {
            println!(
                "installed; {}; starts {starts}; restarted after a failure ({restarts} times, then not until a day passes)",
                state_name(state)
            );
            println!("command: {}", config.executable_path.to_string_lossy());
        }
        Ok(())
    }

    /// What the service thread needs, set before the dispatcher starts.
    static SERVICE: OnceLock<(DataHome, Duration)> = OnceLock::new();

    fn dispatch(home: DataHome, interval: Duration) -> anyhow::Result<()> {
        let _ = SERVICE.set((home, interval));
        service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
            "this is what the Service Control Manager starts; to run the agent yourself use \"cloudkeep agent run\"",
        )?;
        Ok(())
    }

    define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<OsString>) {
        let Some((home, interval)) = SERVICE.get() else {
            return;
        };
        if let Err(e) = serve(home, *interval) {
            tracing::error!("the Cloudkeep agent service stopped: {e:#}");
            super::event_log::error(&format!("The Cloudkeep agent stopped: {e:#}"));
        }
    }

    fn serve(home: &DataHome, interval: Duration) -> anyhow::Result<()> {
        let stop = Cancel::default();
        let on_stop = stop.clone();
        let handle =
            service_control_handler::register(SERVICE_NAME, move |control| match control {
                ServiceControl::Stop | ServiceControl::Shutdown => {
                    on_stop.cancel();
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            })?;
        let status = |state, exit| ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: exit,
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        };
        handle.set_service_status(status(ServiceState::Running, ServiceExitCode::Win32(0)))?;
        let started = format!(
            "The Cloudkeep agent started (data folder {}, a cycle every {} s).",
            home.root().display(),
            interval.as_secs()
        );
        tracing::info!("{started}");
        super::event_log::info(&started);
        let result = cloudkeep_tenant::TenantContext::open(home.clone())
            .map_err(anyhow::Error::from)
            .and_then(|ctx| {
                cloudkeep_tenant::agent::run(&ctx, interval, &stop, &|outcome| match outcome {
                    Ok(cycle) => tracing::info!(
                        "policy revision {}; {}",
                        cycle.revision,
                        cycle
                            .ran
                            .as_ref()
                            .map_or("nothing due".to_owned(), |s| format!("backup {}", s.result))
                    ),
                    Err(e) => super::event_log::warning(&format!(
                        "A Cloudkeep agent cycle failed; it tries again at the next: {e}"
                    )),
                })
                .map_err(anyhow::Error::from)
            });
        // A failed run ends with a service-specific code, so the SCM's restart applies.
        let exit = match &result {
            Ok(()) => ServiceExitCode::Win32(0),
            Err(_) => ServiceExitCode::ServiceSpecific(1),
        };
        if result.is_ok() {
            tracing::info!("the Cloudkeep agent service stopped");
            super::event_log::info("The Cloudkeep agent stopped.");
        }
        handle.set_service_status(status(ServiceState::Stopped, exit))?;
        result
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod query {
    //! What `windows-service` can set but not read back.
    use windows_sys::Win32::System::Services::{
        QueryServiceConfig2W, SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
        SERVICE_DELAYED_AUTO_START_INFO,
    };

    /// Whether an automatic service starts delayed.
    pub fn delayed_auto_start(
        service: &windows_service::service::Service,
    ) -> std::io::Result<bool> {
        let mut info = SERVICE_DELAYED_AUTO_START_INFO {
            fDelayedAutostart: 0,
        };
        let mut needed = 0u32;
        // SAFETY: the handle is the open service's; the buffer is the structure this info
        // level fills, with its size.
        let ok = unsafe {
            QueryServiceConfig2W(
                service.raw_handle(),
                SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
                (&raw mut info).cast(),
                std::mem::size_of::<SERVICE_DELAYED_AUTO_START_INFO>() as u32,
                &mut needed,
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(info.fDelayedAutostart != 0)
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod event_log {
    //! Messages to the Windows Event Log (Application log, source "Cloudkeep Agent"). No
    //! message file is registered: Event Viewer shows the text after its note that the
    //! description is missing, as it does for most services without one.
    use std::os::windows::ffi::OsStrExt;

    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE,
        EVENTLOG_WARNING_TYPE, REPORT_EVENT_TYPE, RegisterEventSourceW, ReportEventW,
    };

    fn wide(text: &str) -> Vec<u16> {
        std::ffi::OsStr::new(text)
            .encode_wide()
            .chain(std::iter::once(0))
            .collect()
    }

    fn report(kind: REPORT_EVENT_TYPE, message: &str) {
        let source = wide(super::DISPLAY_NAME);
        // SAFETY: `source` is NUL-terminated and outlives the call; no server name.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
        if handle.is_null() {
            return;
        }
        let text = wide(message);
        let strings = [text.as_ptr()];
        // SAFETY: one NUL-terminated string, alive for the call; no SID, no raw data.
        unsafe {
            ReportEventW(
                handle,
                kind,
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
            DeregisterEventSource(handle);
        }
    }

    pub fn info(message: &str) {
        report(EVENTLOG_INFORMATION_TYPE, message);
    }

    pub fn warning(message: &str) {
        report(EVENTLOG_WARNING_TYPE, message);
    }

    pub fn error(message: &str) {
        report(EVENTLOG_ERROR_TYPE, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCM starts the agent of the folder that was enrolled, and the failure policy is
    /// what the install promises.
    #[test]
    fn the_service_runs_the_enrolled_agent() {
        let root = std::env::temp_dir().join("ck-agent");
        let home = DataHome::at(&root).unwrap();
        let args = launch_arguments(&home, 90);
        assert_eq!(args[..3], ["agent", "service", "run"].map(OsString::from));
        assert_eq!(args[4], root.as_os_str());
        assert_eq!(args[6], "90");
        assert_eq!(RESTART_DELAYS.len(), 3);
        assert!(FAILURE_RESET >= Duration::from_secs(3600));
    }
}
