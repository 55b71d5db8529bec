//! The network extension appliance (`cloudkeep nea run`): a TAP interface on this computer,
//! bridged by the tenant into its site's network, joined at layer 2 to one of its networks
//! at the provider's cloud host — Ethernet frames carried over TLS through the gateway (an
//! HTTP/1.1 upgrade on its port). Failed-over replicas on that network keep their addresses,
//! and machines still at the site reach them, and are reached by them, as before. A lost
//! tunnel is opened again (after 2 s, then up to 30 s between tries) for as long as it runs; a
//! first one refused ends it with the provider's reason.
//!
//! **Invariants:** frames are carried as they are, one length-prefixed frame at a time; a
//! frame too long for a tenant network is dropped here, never sent.

#[cfg(target_os = "linux")]
use std::time::Duration;

#[cfg(target_os = "linux")]
use cloudkeep_api::replication::MAX_FRAME;
#[cfg(target_os = "linux")]
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::TenantError;
use crate::context::TenantContext;
#[cfg(target_os = "linux")]
use crate::providers;

/// What the appliance tells the person running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeaEvent {
    /// The TAP interface is up: bridge it into the site's network.
    Ready {
        /// Its name.
        interface: String,
    },
    /// The tunnel to the provider's network is open.
    Connected,
    /// The tunnel closed or could not open; it is tried again.
    Lost {
        /// Why.
        reason: String,
    },
}

/// Where the appliance joins.
#[derive(Debug, Clone)]
pub struct NeaTarget {
    /// The provider.
    pub provider: String,
    /// The hardware plan whose network it joins.
    pub plan: String,
    /// The network of the plan (0, 1, …).
    pub network: u8,
    /// The TAP interface's name (made when missing).
    pub interface: String,
}

/// Carries frames between `tap` and `tunnel` until either ends; why it ended.
#[cfg(target_os = "linux")]
async fn pump<T>(tap: &tokio_tun::Tun, tunnel: T) -> String
where
    T: AsyncRead + AsyncWrite,
{
    let (mut from_provider, mut to_provider) = tokio::io::split(tunnel);
    let up = async {
        // The length and the frame in one write: one TLS record per frame.
        let mut buf = vec![0u8; 4 + MAX_FRAME + 4096];
        loop {
            let n = match tap.recv(&mut buf[4..]).await {
                Ok(n) => n,
                Err(e) => return format!("the interface: {e}"),
            };
            if n > MAX_FRAME {
                continue;
            }
            buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
            if let Err(e) = to_provider.write_all(&buf[..4 + n]).await {
                return format!("the tunnel: {e}");
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            let mut len = [0u8; 4];
            if let Err(e) = from_provider.read_exact(&mut len).await {
                return format!("the tunnel closed: {e}");
            }
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_FRAME {
                return "the provider sent a frame too long".into();
            }
            if let Err(e) = from_provider.read_exact(&mut buf[..len]).await {
                return format!("the tunnel closed: {e}");
            }
            // A frame the interface refuses (it is down a moment) is lost, as on a wire.
            let _ = tap.send_all(&buf[..len]).await;
        }
    };
    tokio::select! {
        why = up => why,
        why = down => why,
    }
}

/// Runs the appliance: makes (or opens) the TAP interface, then keeps the tunnel to the
/// provider's network open until the process ends. Returns only when the interface cannot be
/// made or the first tunnel is refused (a plan, network or provider that is not right).
#[cfg(target_os = "linux")]
pub async fn run(
    ctx: &TenantContext,
    target: &NeaTarget,
    events: &(dyn Fn(NeaEvent) + Sync),
) -> Result<(), TenantError> {
    cloudkeep_model::names::check("interface", &target.interface)
        .map_err(|e| TenantError::Invalid(e.to_string()))?;
    if target.interface.len() > 15 {
        return Err(TenantError::Invalid(format!(
            "interface name {} is longer than Linux allows (15 characters)",
            target.interface
        )));
    }
    let tap = tokio_tun::Tun::builder()
        .name(&target.interface)
        .tap()
        .up()
        .build()
        .map_err(|e| {
            TenantError::Invalid(format!(
                "the TAP interface {} could not be made ({e}): run as root, or with CAP_NET_ADMIN",
                target.interface
            ))
        })?
        .pop()
        .ok_or_else(|| TenantError::Invalid("no TAP interface was made".into()))?;
    events(NeaEvent::Ready {
        interface: tap.name().to_owned(),
    });
    let mut wait = Duration::from_secs(2);
    let mut first = true;
    loop {
        let opened = async {
            let (client, _) =
                providers::connect(ctx.state(), ctx.secrets(), &target.provider).await?;
            Ok::<_, TenantError>(client.join_network(&target.plan, target.network).await?)
        }
        .await;
        let reason = match opened {
            Ok(tunnel) => {
                first = false;
                events(NeaEvent::Connected);
                wait = Duration::from_secs(2);
                pump(&tap, tunnel).await
            }
            // Refused the first time: the plan, the network or the provider is wrong, and
            // trying again will not mend it.
            Err(e) if first => return Err(e),
            Err(e) => e.to_string(),
        };
        events(NeaEvent::Lost { reason });
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The appliance needs Linux's TAP interfaces.
#[cfg(not(target_os = "linux"))]
pub async fn run(
    _ctx: &TenantContext,
    _target: &NeaTarget,
    _events: &(dyn Fn(NeaEvent) + Sync),
) -> Result<(), TenantError> {
    Err(TenantError::Invalid(
        "the network extension appliance runs on Linux (it makes a TAP interface)".into(),
    ))
}
