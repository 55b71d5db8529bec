//! Service providers as a tenant knows them: the gateway addresses (failover order), the
//! pinned certificate, the account, and what the last scan found. Adding one goes through the
//! trust step (DESIGN §2): a certificate is pinned when it is valid for the host under the
//! system's root certificates or when the tenant confirms its fingerprint; afterwards any other certificate is refused on every call, naming both
//! fingerprints and the command that trusts the new one.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::TenantError;
use super::secrets::{Secrets, provider_key};
use super::state::TenantState;
use cloudkeep_api::RepoInfo;
use cloudkeep_client::failover::first_answering;
use cloudkeep_client::tenant::TenantClient;
use cloudkeep_client::tls::{check_presented, probe};
use cloudkeep_client::with_default_port;

/// A service provider the tenant uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// The tenant's name for it.
    pub name: String,
    /// Gateway addresses, in the order they are tried.
    pub addresses: Vec<String>,
    /// The pinned certificate's SHA-256 fingerprint.
    pub fingerprint: String,
    /// The account (`tenant` or `tenant/sub`).
    pub user: String,
    /// When it was added, ms since the epoch.
    pub added_ms: i64,
    /// Its cloud repositories at the last scan.
    pub repos: Vec<RepoInfo>,
    /// When they were scanned, ms since the epoch.
    pub scanned_ms: Option<i64>,
    /// What is known of its certificate beyond the pin.
    #[serde(default)]
    pub cert: CertState,
}

/// What this computer knows of a provider's certificate beyond its pin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertState {
    /// The next certificate the provider announced, signed with the pinned one's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// When the served certificate's validity ends (RFC 3339), as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The last change of the pin accepted without asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<CertChange>,
}

/// A change of a provider's certificate this computer accepted by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertChange {
    /// When, ms since the epoch.
    pub ms: i64,
    /// The fingerprint pinned before.
    pub previous: String,
    /// The one pinned now.
    pub now: String,
    /// Why it was accepted: announced in advance, or a CA-signed renewal.
    pub how: String,
}

impl CertChange {
    /// The change, for people (a session log, Home).
    pub fn text(&self, provider: &str) -> String {
        format!(
            "the certificate of \"{provider}\" changed on {} ({}): now {}, was {}",
            cloudkeep_model::units::date_time_text(self.ms),
            self.how,
            self.now,
            self.previous
        )
    }
}

impl TenantState {
    /// A provider by name.
    pub async fn provider(&self, name: &str) -> Result<Provider, TenantError> {
        let row = sqlx::query(
            "SELECT name, addresses, fingerprint, user, added_ms, repos, scanned_ms, cert FROM providers WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| TenantError::NoProvider(name.to_owned()))?;
        provider_of(&row)
    }

    /// Every provider, by name.
    pub async fn providers(&self) -> Result<Vec<Provider>, TenantError> {
        let rows = sqlx::query(
            "SELECT name, addresses, fingerprint, user, added_ms, repos, scanned_ms, cert FROM providers ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(provider_of).collect()
    }

    pub(crate) async fn save_provider(&self, p: &Provider) -> Result<(), TenantError> {
        sqlx::query(
            "INSERT INTO providers (name, addresses, fingerprint, user, added_ms, repos, scanned_ms, cert) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name) DO UPDATE SET addresses = excluded.addresses, \
             user = excluded.user, repos = excluded.repos, scanned_ms = excluded.scanned_ms",
        )
        .bind(&p.name)
        .bind(json(&p.addresses))
        .bind(&p.fingerprint)
        .bind(&p.user)
        .bind(p.added_ms)
        .bind(json(&p.repos))
        .bind(p.scanned_ms)
        .bind(json(&p.cert))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Pins `fingerprint` for provider `name` and sets what is known of its certificate — the
    /// only writes of the pin after a provider is added, so that another process saving a
    /// provider it read earlier (a rescan) never puts an old pin back.
    pub(crate) async fn set_pin(
        &self,
        name: &str,
        fingerprint: &str,
        cert: &CertState,
    ) -> Result<(), TenantError> {
        sqlx::query("UPDATE providers SET fingerprint = $1, cert = $2 WHERE name = $3")
            .bind(fingerprint)
            .bind(json(cert))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Changes what is known of provider `name`'s certificate, read and written in one
    /// transaction (a rescan's save does not touch it).
    pub(crate) async fn update_cert(
        &self,
        name: &str,
        change: impl FnOnce(&mut CertState),
    ) -> Result<CertState, TenantError> {
        let mut tx = self.pool().begin().await?;
        let text: Option<String> = sqlx::query("SELECT cert FROM providers WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let mut cert: CertState = match text {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| TenantError::damaged("the stored provider", e))?,
            None => return Err(TenantError::NoProvider(name.to_owned())),
        };
        change(&mut cert);
        sqlx::query("UPDATE providers SET cert = $1 WHERE name = $2")
            .bind(json(&cert))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(cert)
    }

    async fn delete_provider(&self, name: &str) -> Result<(), TenantError> {
        sqlx::query("DELETE FROM providers WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// The lists stored as JSON text (serialising plain data cannot fail).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn provider_of(r: &sqlx::sqlite::SqliteRow) -> Result<Provider, TenantError> {
    let bad = |e: serde_json::Error| TenantError::damaged("the stored provider", e);
    Ok(Provider {
        name: r.try_get(0)?,
        addresses: serde_json::from_str(&r.try_get::<String, _>(1)?).map_err(bad)?,
        fingerprint: r.try_get(2)?,
        user: r.try_get(3)?,
        added_ms: r.try_get(4)?,
        repos: serde_json::from_str(&r.try_get::<String, _>(5)?).map_err(bad)?,
        scanned_ms: r.try_get(6)?,
        cert: serde_json::from_str(&r.try_get::<String, _>(7)?).map_err(bad)?,
    })
}

/// What `provider add` needs.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// The tenant's name for it.
    pub name: String,
    /// `host` or `host:port`.
    pub host: String,
    /// Account.
    pub user: String,
    /// Password.
    pub password: String,
    /// The fingerprint the SP gave, confirming the certificate.
    pub trust: Option<String>,
}

/// Adds a provider: the trust step, a login, the gateway list and the repositories.
pub async fn add(
    state: &TenantState,
    secrets: &Secrets,
    req: &NewProvider,
) -> Result<Provider, TenantError> {
    if state.provider(&req.name).await.is_ok() {
        return Err(TenantError::ProviderExists(req.name.clone()));
    }
    let address = with_default_port(&req.host);
    let presented = probe(&address).await?;
    let pin = check_presented(&address, &presented, req.trust.as_deref(), None)?;
    let mut client = TenantClient::new(&address, &pin)?;
    client.login(&req.user, &req.password).await?;
    let hello = client.hello().await?;
    let mut addresses = vec![address.clone()];
    for g in hello.gateways {
        if !addresses.contains(&g.address) {
            addresses.push(g.address);
        }
    }
    let provider = Provider {
        name: req.name.clone(),
        addresses,
        fingerprint: pin,
        user: req.user.clone(),
        added_ms: cloudkeep_model::clock::now_ms(),
        repos: client.repos().await?,
        scanned_ms: Some(cloudkeep_model::clock::now_ms()),
        cert: CertState {
            not_after: Some(presented.cert.not_after.clone()),
            ..CertState::default()
        },
    };
    secrets.set(&provider_key(&req.name), &req.password)?;
    state.save_provider(&provider).await?;
    Ok(provider)
}

/// Logs in to a provider, trying its gateways in order while they do not answer. A changed
/// certificate is refused at once (never "failed over" to).
pub async fn connect(
    state: &TenantState,
    secrets: &Secrets,
    name: &str,
) -> Result<(TenantClient, Provider), TenantError> {
    let mut provider = state.provider(name).await?;
    let password = secrets
        .get(&provider_key(name))?
        .ok_or_else(|| TenantError::SecretMissing {
            what: format!("password of \"{name}\""),
            fix: "remove the provider and add it again",
        })?;
    let client = match log_in(&provider, &provider.user, &password).await {
        Err(e @ TenantError::CertificateChanged { .. }) => {
            match follow_change(state, name).await? {
                Some(changed) => {
                    provider = changed;
                    log_in(&provider, &provider.user, &password).await?
                }
                None => return Err(e),
            }
        }
        other => other?,
    };
    learn_next(state, &mut provider, &client).await;
    Ok((client, provider))
}

/// Keeps the next certificate the provider announces (checked against the pinned one), so
/// that its rollover is followed without asking anyone. Best effort: a gateway that
/// announces nothing, or cannot be asked, changes nothing — an answer "none announced" never
/// forgets one learnt before (it may come over a connection opened just before the rollover,
/// which would then leave this computer refusing the certificate it was told of).
async fn learn_next(state: &TenantState, provider: &mut Provider, client: &TenantClient) {
    match client.next_cert().await {
        Ok(Some(next))
            if provider.cert.next.as_deref() != Some(next.as_str())
                && next != provider.fingerprint =>
        {
            tracing::info!(provider = %provider.name, next = %next, "the provider announced its next certificate");
            match state
                .update_cert(&provider.name, |c| c.next = Some(next))
                .await
            {
                Ok(cert) => provider.cert = cert,
                Err(e) => {
                    tracing::warn!(provider = %provider.name, "the announced certificate was not kept: {e}");
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(provider = %provider.name, "no certificate announcement: {e}"),
    }
}

/// After a gateway presented another certificate than the pinned one: accepts it by itself
/// when the provider announced it in advance (signed with the pinned certificate's key) or
/// when its chain is valid for the gateway's host name under the system's roots (a CA-signed
/// renewal); records the change (Home and the next session log show it). `Some` too when the
/// stored pin already is what the gateway presents (followed meanwhile). `None`: not one of
/// those — the change stays refused, with both fingerprints.
pub async fn follow_change(
    state: &TenantState,
    name: &str,
) -> Result<Option<Provider>, TenantError> {
    let mut provider = state.provider(name).await?;
    let answer = first_answering(&provider.addresses, |address| async move {
        probe(&address).await.map(|presented| (address, presented))
    })
    .await;
    let Some(Ok((_, presented))) = answer else {
        return Ok(None);
    };
    let now = presented.cert.fingerprint.clone();
    if now == provider.fingerprint {
        // Followed already (by another run or a rescan of this computer since the caller
        // read the provider): the caller tries again with this pin.
        return Ok(Some(provider));
    }
    let how = if provider.cert.next.as_deref() == Some(now.as_str()) {
        "announced in advance, signed by the certificate it replaces"
    } else if presented.ca_valid {
        "a CA-signed renewal for the gateway's host name"
    } else {
        return Ok(None);
    };
    let change = CertChange {
        ms: cloudkeep_model::clock::now_ms(),
        previous: provider.fingerprint.clone(),
        now: now.clone(),
        how: how.into(),
    };
    tracing::warn!(provider = %name, "{}", change.text(name));
    provider.fingerprint = now;
    provider.cert = CertState {
        next: None,
        not_after: Some(presented.cert.not_after.clone()),
        changed: Some(change),
    };
    state
        .set_pin(name, &provider.fingerprint, &provider.cert)
        .await?;
    Ok(Some(provider))
}

/// Logs in to `provider` as `user`, trying its gateways in order while they do not answer.
async fn log_in(
    provider: &Provider,
    user: &str,
    password: &str,
) -> Result<TenantClient, TenantError> {
    let fingerprint = &provider.fingerprint;
    let answer = first_answering(&provider.addresses, |address| async move {
        let mut client = TenantClient::new(&address, fingerprint)?;
        client.login(user, password).await?;
        Ok(client)
    })
    .await;
    match answer {
        Some(Ok(client)) => Ok(client),
        Some(Err(e)) => Err(TenantError::from_client(&provider.name, e)),
        None => Err(TenantError::NoProvider(provider.name.clone())),
    }
}

/// Changes the account (`user`, or the one it has) and the password a provider is reached
/// with — after the SP changed them — once the provider accepts them: nothing changes when
/// the login is refused. Returns the provider with its repositories rescanned.
pub async fn set_credentials(
    state: &TenantState,
    secrets: &Secrets,
    name: &str,
    user: Option<&str>,
    password: &str,
) -> Result<Provider, TenantError> {
    let mut provider = state.provider(name).await?;
    let user = user.unwrap_or(&provider.user).to_owned();
    let client = log_in(&provider, &user, password).await?;
    provider.repos = client.repos().await?;
    provider.scanned_ms = Some(cloudkeep_model::clock::now_ms());
    provider.user = user;
    secrets.set(&provider_key(name), password)?;
    state.save_provider(&provider).await?;
    Ok(provider)
}

/// Logs in again and refreshes the gateway list and the repositories.
pub async fn rescan(
    state: &TenantState,
    secrets: &Secrets,
    name: &str,
) -> Result<Provider, TenantError> {
    let (client, mut provider) = connect(state, secrets, name).await?;
    let hello = client.hello().await?;
    for g in hello.gateways {
        if !provider.addresses.contains(&g.address) {
            provider.addresses.push(g.address);
        }
    }
    provider.repos = client.repos().await?;
    provider.scanned_ms = Some(cloudkeep_model::clock::now_ms());
    state.save_provider(&provider).await?;
    if let Some(address) = provider.addresses.first()
        && let Ok(presented) = probe(address).await
        && presented.cert.fingerprint == provider.fingerprint
    {
        let not_after = presented.cert.not_after;
        provider.cert = state
            .update_cert(name, |c| c.not_after = Some(not_after))
            .await?;
    }
    Ok(provider)
}

/// Trusts the certificate a provider presents now, when it has `fingerprint` (after the SP
/// renewed or replaced it).
pub async fn trust(
    state: &TenantState,
    name: &str,
    fingerprint: &str,
) -> Result<Provider, TenantError> {
    let mut provider = state.provider(name).await?;
    let answer = first_answering(&provider.addresses, |address| async move {
        probe(&address).await.map(|presented| (address, presented))
    })
    .await;
    match answer {
        Some(Ok((address, presented))) => {
            provider.fingerprint = check_presented(&address, &presented, Some(fingerprint), None)?;
            provider.cert = CertState {
                not_after: Some(presented.cert.not_after.clone()),
                ..CertState::default()
            };
            state
                .set_pin(name, &provider.fingerprint, &provider.cert)
                .await?;
            Ok(provider)
        }
        Some(Err(e)) => Err(e.into()),
        None => Err(TenantError::NoProvider(name.to_owned())),
    }
}

/// Forgets a provider and its password (its restore points stay at the SP).
pub async fn remove(state: &TenantState, secrets: &Secrets, name: &str) -> Result<(), TenantError> {
    state.provider(name).await?;
    state.delete_provider(name).await?;
    secrets.remove(&provider_key(name))
}
