//! Ctrl-C and SIGTERM, listened for from the moment [`Shutdown::install`] returns: a command
//! installs it before it says it is ready, so a signal sent as soon as it is (a service
//! manager's stop, a test's `kill -TERM`) ends it cleanly instead of killing it mid-way.

/// The stop signals, installed and waiting to be received.
pub struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl Shutdown {
    /// Installs the handlers; call within a Tokio runtime (`Runtime::enter` outside one).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                .ok();
            Shutdown { signals }
        }
        #[cfg(windows)]
        {
            Shutdown {
                ctrl_c: tokio::signal::windows::ctrl_c().ok(),
            }
        }
    }

    /// Completes on SIGTERM or Ctrl-C.
    pub async fn recv(self) {
        #[cfg(unix)]
        match self.signals {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(windows)]
        match self.ctrl_c {
            Some(mut c) => {
                let _ = c.recv().await;
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
