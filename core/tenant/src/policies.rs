//! Backup policies as the tenant manages them (DESIGN §7): a job template published at a
//! provider and applied to many computers. Each computer is a **managed subtenant**
//! (`<policy>-<computer>`, with its own quota carved from the tenant's) whose repository the
//! tenant creates with the policy's password, plus a recovery-key slot for the computer's
//! agent; the agent gets that key, the subtenant's credentials, the gateway addresses and the
//! pinned fingerprint in an **enrollment file** sealed with a one-time code. The tenant keeps a
//! job per computer (run by the agent, never here) through which it browses and restores the
//! computer's points, and reads the computers' results from the provider when it syncs.
//!
//! Blocking: these functions run their own small runtime; call them outside any async one.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::TenantContext;
use super::TenantError;
use super::jobs::{self, Job, JobSpec, Target};
use super::secrets::Secrets;
use super::state::TenantState;
use cloudkeep_api::policy::{ComputerStatus, Membership, PolicyDoc, PolicySpec};
use cloudkeep_api::{NewSubtenant, SubtenantChange};
use cloudkeep_repo::crypto::{KdfParams, RecoveryKey};
use cloudkeep_repo::repo::{NewRepo, Repository};

/// A computer of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyComputer {
    /// Its name.
    pub computer: String,
    /// Its managed subtenant's login.
    pub login: String,
    /// The tenant's job for browsing and restoring its points.
    pub job: String,
    /// When it was added, ms since the epoch.
    pub added_ms: i64,
}

/// A backup policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// Its id at the provider.
    pub id: String,
    /// The provider it is published to.
    pub provider: String,
    /// Its settings.
    pub spec: PolicySpec,
    /// The revision the provider gave it last.
    pub revision: i64,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// When its computers' status was last read from the provider.
    pub synced_ms: Option<i64>,
    /// Its computers.
    pub computers: Vec<PolicyComputer>,
    /// What the provider said at the last sync.
    pub status: Vec<ComputerStatus>,
}

impl PolicyComputer {
    /// Its subtenant's own name (the part of its login after `tenant/`).
    pub fn subtenant(&self) -> &str {
        self.login.rsplit('/').next().unwrap_or(&self.login)
    }
}

impl Policy {
    /// Its computer `name`.
    pub fn computer(&self, name: &str) -> Result<&PolicyComputer, TenantError> {
        self.computers.iter().find(|c| c.computer == name).ok_or_else(|| {
            TenantError::Invalid(format!(
                "\"{name}\" is not a computer of policy \"{}\"; add it with: cloudkeep policy add-computer {} {name}",
                self.name, self.name
            ))
        })
    }
}

/// The enrollment file's envelope (the sealed part is an [`Enrollment`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollmentFile {
    /// Always `cloudkeep-enrollment`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// The policy and computer, in the clear, so a person can tell files apart.
    pub label: String,
    /// Argon2id parameters of the one-time code.
    pub kdf: KdfParams,
    /// Salt, hex.
    pub salt: String,
    /// The sealed [`Enrollment`], hex.
    pub sealed: String,
}

/// What an agent needs to work for one computer of a policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrollment {
    /// The policy's id.
    pub policy_id: String,
    /// The policy's name.
    pub policy: String,
    /// The computer.
    pub computer: String,
    /// Gateway addresses, in failover order.
    pub addresses: Vec<String>,
    /// The pinned certificate fingerprint: the agent trusts exactly this one.
    pub fingerprint: String,
    /// The managed subtenant's login.
    pub login: String,
    /// Its password.
    pub password: String,
    /// The cloud repository (as the subtenant sees it).
    pub repo: String,
    /// The job name its restore points carry.
    pub job: String,
    /// The recovery key of the agent's slot in the repository's keyring.
    pub agent_key: String,
}

/// The `format` of an enrollment file.
pub const ENROLLMENT_FORMAT: &str = "cloudkeep-enrollment";
const ENROLLMENT_AAD: &[u8] = b"cloudkeep-enrollment-1";

/// The secret key of a policy's encryption password.
pub fn policy_key(name: &str) -> String {
    format!("policy:{name}")
}

/// The secret key of a computer's agent key (kept to write its enrollment file again).
fn computer_key(policy: &str, computer: &str) -> String {
    format!("policy-agent:{policy}/{computer}")
}

fn no_policy(name: &str) -> TenantError {
    TenantError::Invalid(format!(
        "there is no backup policy \"{name}\"; list them with \"cloudkeep policy list\""
    ))
}

fn damaged(e: serde_json::Error) -> TenantError {
    TenantError::damaged("the stored policy", e)
}

impl TenantState {
    /// Every policy, by name, with its computers.
    pub async fn policies(&self) -> Result<Vec<Policy>, TenantError> {
        let rows = sqlx::query("SELECT name FROM policies ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.policy(&r.try_get::<String, _>(0)?).await?);
        }
        Ok(out)
    }

    /// A policy by name.
    pub async fn policy(&self, name: &str) -> Result<Policy, TenantError> {
        let r = sqlx::query(
            "SELECT name, id, provider, spec, revision, created_ms, synced_ms, status FROM policies WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| no_policy(name))?;
        let rows = sqlx::query(
            "SELECT computer, login, job, added_ms FROM policy_computers WHERE policy = $1 ORDER BY computer",
        )
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        let computers = rows
            .iter()
            .map(|c| {
                Ok(PolicyComputer {
                    computer: c.try_get(0)?,
                    login: c.try_get(1)?,
                    job: c.try_get(2)?,
                    added_ms: c.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Policy {
            name: r.try_get(0)?,
            id: r.try_get(1)?,
            provider: r.try_get(2)?,
            spec: serde_json::from_str(&r.try_get::<String, _>(3)?).map_err(damaged)?,
            revision: r.try_get(4)?,
            created_ms: r.try_get(5)?,
            synced_ms: r.try_get(6)?,
            computers,
            status: serde_json::from_str(&r.try_get::<String, _>(7)?).map_err(damaged)?,
        })
    }

    async fn save_policy(&self, p: &Policy) -> Result<(), TenantError> {
        let spec = serde_json::to_string(&p.spec).map_err(damaged)?;
        let status = serde_json::to_string(&p.status).map_err(damaged)?;
        sqlx::query(
            "INSERT INTO policies (name, id, provider, spec, revision, created_ms, synced_ms, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET \
             spec = excluded.spec, revision = excluded.revision, synced_ms = excluded.synced_ms, status = excluded.status",
        )
        .bind(&p.name)
        .bind(&p.id)
        .bind(&p.provider)
        .bind(spec)
        .bind(p.revision)
        .bind(p.created_ms)
        .bind(p.synced_ms)
        .bind(status)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn add_policy_computer(
        &self,
        policy: &str,
        c: &PolicyComputer,
    ) -> Result<(), TenantError> {
        sqlx::query(
            "INSERT INTO policy_computers (policy, computer, login, job, added_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(policy)
        .bind(&c.computer)
        .bind(&c.login)
        .bind(&c.job)
        .bind(c.added_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn remove_policy_computer(
        &self,
        policy: &str,
        computer: &str,
    ) -> Result<(), TenantError> {
        sqlx::query("DELETE FROM policy_computers WHERE policy = $1 AND computer = $2")
            .bind(policy)
            .bind(computer)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_policy_row(&self, name: &str) -> Result<(), TenantError> {
        sqlx::query("DELETE FROM policies WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), TenantError> {
    cloudkeep_model::names::check(what, name).map_err(|e| TenantError::Invalid(e.to_string()))
}

fn check_spec(spec: &PolicySpec) -> Result<(), TenantError> {
    cloudkeep_model::mode::check(spec.mode, &spec.sources, &spec.volumes).map_err(|e| {
        TenantError::Invalid(format!(
            "{e} (files: ~ is each user's home; volumes: device paths such as /dev/sda)"
        ))
    })?;
    if spec.computer_quota_bytes == cloudkeep_model::units::Limit::Bytes(0) {
        return Err(TenantError::Invalid(
            "give each computer a quota above 0, or unlimited".into(),
        ));
    }
    spec.compression
        .parse::<cloudkeep_repo::compress::Compression>()
        .map_err(TenantError::Invalid)?;
    Ok(())
}

/// Creates policy `name` at `provider` (publishing it there) with its encryption password,
/// which goes to the secrets and never to the provider or the agents.
pub fn create(
    ctx: &TenantContext,
    name: &str,
    provider: &str,
    spec: PolicySpec,
    password: &str,
) -> Result<Policy, TenantError> {
    check_name("policy", name)?;
    check_spec(&spec)?;
    cloudkeep_model::names::check_password(password).map_err(|e| {
        TenantError::Invalid(format!(
            "the encryption password: {e}; without it no computer's points can be restored"
        ))
    })?;
    let state = ctx.state();
    let secrets = ctx.secrets();
    if ctx.block_on(state.policy(name)).is_ok() {
        return Err(TenantError::Invalid(format!(
            "a policy \"{name}\" already exists; choose another name"
        )));
    }
    let p = ctx.block_on(state.provider(provider))?;
    if !p.repos.iter().any(|r| r.name == spec.repo) {
        return Err(TenantError::Invalid(format!(
            "\"{provider}\" has no cloud repository \"{}\" (it has: {}); rescan the provider if it was just given one",
            spec.repo,
            p.repos
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // The gateway takes 1 to 64 letters, digits or dashes: the name (shortened) and 16 hex.
    let mut raw = [0u8; 8];
    cloudkeep_repo::crypto::random_bytes(&mut raw)?;
    let stem: String = name
        .chars()
        .take(47)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = format!("{stem}-{}", hex::encode(raw));
    let mut policy = Policy {
        name: name.to_owned(),
        id,
        provider: provider.to_owned(),
        spec,
        revision: 0,
        created_ms: cloudkeep_model::clock::now_ms(),
        synced_ms: None,
        computers: Vec::new(),
        status: Vec::new(),
    };
    policy.revision = ctx.block_on(publish(state, secrets, &policy))?;
    secrets.set(&policy_key(name), password)?;
    ctx.block_on(state.save_policy(&policy))?;
    Ok(policy)
}

async fn publish(state: &TenantState, secrets: &Secrets, p: &Policy) -> Result<i64, TenantError> {
    let (client, _) = super::providers::connect(state, secrets, &p.provider).await?;
    let doc = client
        .put_policy(&PolicyDoc {
            id: p.id.clone(),
            name: p.name.clone(),
            revision: p.revision,
            spec: p.spec.clone(),
        })
        .await?;
    Ok(doc.revision)
}

/// Replaces a policy's settings and publishes them: each agent applies them on its next cycle;
/// a new quota per computer applies to every computer's subtenant at once. Its cloud
/// repository cannot change (the computers' repositories are there).
pub fn edit(ctx: &TenantContext, name: &str, spec: PolicySpec) -> Result<Policy, TenantError> {
    check_spec(&spec)?;
    let state = ctx.state();
    let secrets = ctx.secrets();
    let mut policy = ctx.block_on(state.policy(name))?;
    if spec.repo != policy.spec.repo {
        return Err(TenantError::Invalid(format!(
            "the computers of \"{name}\" store in \"{}\"; create another policy for another cloud repository",
            policy.spec.repo
        )));
    }
    if spec.computer_quota_bytes != policy.spec.computer_quota_bytes && !policy.computers.is_empty()
    {
        let (client, _) =
            ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
        for (done, c) in policy.computers.iter().enumerate() {
            ctx.block_on(client.set_subtenant(
                c.subtenant(),
                &SubtenantChange {
                    quota_bytes: Some(spec.computer_quota_bytes),
                    ..SubtenantChange::default()
                },
            ))
            .map_err(|e| {
                TenantError::Invalid(format!(
                    "the quota of \"{}\" cannot change to that: {e}; {done} computer(s) before it have the new quota, the policy's settings are not published: choose a quota that fits and edit again",
                    c.computer
                ))
            })?;
        }
    }
    policy.spec = spec;
    policy.revision = ctx.block_on(publish(state, secrets, &policy))?;
    ctx.block_on(state.save_policy(&policy))?;
    Ok(policy)
}

/// Adds computer `computer` to policy `name`: its managed subtenant with the policy's quota,
/// its repository (the policy's password, plus the agent's own key slot), and the tenant's
/// job for its points. Nothing is left behind when a step fails.
pub fn add_computer(
    ctx: &TenantContext,
    name: &str,
    computer: &str,
) -> Result<PolicyComputer, TenantError> {
    check_name("computer", computer)?;
    let sub = format!("{name}-{computer}");
    check_name("subtenant", &sub)?;
    let state = ctx.state();
    let secrets = ctx.secrets();
    let policy = ctx.block_on(state.policy(name))?;
    if policy.computers.iter().any(|c| c.computer == computer) {
        return Err(TenantError::Invalid(format!(
            "\"{computer}\" is in policy \"{name}\" already"
        )));
    }
    if ctx.block_on(state.job(&sub)).is_ok() {
        return Err(TenantError::JobExists(sub));
    }
    let password = secrets
        .get(&policy_key(name))?
        .ok_or_else(|| TenantError::SecretMissing {
            what: format!("encryption password of policy \"{name}\""),
            fix: "create the policy again",
        })?;
    let account_password = cloudkeep_repo::crypto::generate_password()?;
    let (client, provider) =
        ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    let membership = Membership {
        policy_id: policy.id.clone(),
        computer: computer.to_owned(),
    };
    let view = ctx.block_on(client.add_subtenant(&NewSubtenant {
        name: sub.clone(),
        password: account_password.clone(),
        repo: policy.spec.repo.clone(),
        quota_bytes: policy.spec.computer_quota_bytes,
        policy: Some(membership.clone()),
    }))?;
    let login = view.tenant.login;
    let job = Job {
        name: sub.clone(),
        spec: JobSpec {
            mode: policy.spec.mode,
            volumes: policy.spec.volumes.clone(),
            sources: policy.spec.sources.clone(),
            excludes: policy.spec.excludes.clone(),
            target: Target::Provider {
                provider: policy.provider.clone(),
                repo: policy.spec.repo.clone(),
                account: Some(login.clone()),
            },
            schedule: jobs::Schedule::Manual,
            retention: policy.spec.retention,
            encrypted: true,
            compression: policy.spec.compression.clone(),
            retries: policy.spec.retries,
            retry_wait_s: policy.spec.retry_wait_s,
            health_check: jobs::Schedule::Manual,
            restore_test: jobs::Schedule::Manual,
            restore_test_sample: jobs::RESTORE_TEST_SAMPLE,
            agent: Some(membership),
        },
        created_ms: cloudkeep_model::clock::now_ms(),
    };
    let made = (|| -> Result<PolicyComputer, TenantError> {
        secrets.set(
            &jobs::account_key(&policy.provider, &login),
            &account_password,
        )?;
        secrets.set(&jobs::job_key(&sub), &password)?;
        ctx.block_on(state.create_job(&sub, &job.spec))?;
        let agent_key = init_repository(&job, &provider, secrets, &password, computer)?;
        secrets.set(&computer_key(name, computer), agent_key.to_text().as_str())?;
        let c = PolicyComputer {
            computer: computer.to_owned(),
            login: login.clone(),
            job: sub.clone(),
            added_ms: cloudkeep_model::clock::now_ms(),
        };
        ctx.block_on(state.add_policy_computer(name, &c))?;
        Ok(c)
    })();
    if made.is_err() {
        let _ = ctx.block_on(client.delete_subtenant(&sub));
        let _ = ctx.block_on(state.delete_job(&sub));
        for key in [
            jobs::account_key(&policy.provider, &login),
            jobs::job_key(&sub),
            computer_key(name, computer),
        ] {
            let _ = secrets.remove(&key);
        }
    }
    made
}

/// Creates the computer's repository with the policy's password and adds the agent's key slot.
fn init_repository(
    job: &Job,
    provider: &super::providers::Provider,
    secrets: &Secrets,
    password: &str,
    computer: &str,
) -> Result<RecoveryKey, TenantError> {
    let backend = jobs::open_backend(job, Some(provider), secrets)?;
    let mut repo = Repository::init(
        backend,
        NewRepo::Encrypted {
            password,
            kdf: KdfParams::default(),
        },
    )?;
    let mut keyring = repo.keyring().clone();
    let master = keyring
        .unlock(password)
        .map_err(cloudkeep_repo::repo::RepoError::from)?;
    let (_, key) = keyring
        .add_recovery_key(&master, &format!("agent of {computer}"))
        .map_err(cloudkeep_repo::repo::RepoError::from)?;
    repo.save_keyring(keyring)?;
    Ok(key)
}

/// Takes `computer` out of policy `name`: its subtenant is disabled (its points stay, and the
/// tenant can still browse them once it enables it again) or, with `delete`, deleted with
/// everything it stored.
pub fn remove_computer(
    ctx: &TenantContext,
    name: &str,
    computer: &str,
    delete: bool,
) -> Result<(), TenantError> {
    let state = ctx.state();
    let secrets = ctx.secrets();
    let policy = ctx.block_on(state.policy(name))?;
    let c = policy.computer(computer)?;
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    let sub = c.subtenant().to_owned();
    if delete {
        ctx.block_on(client.delete_subtenant(&sub))?;
        ctx.block_on(state.remove_policy_computer(name, computer))?;
        let _ = ctx.block_on(state.delete_job(&c.job));
        for key in [
            jobs::account_key(&policy.provider, &c.login),
            jobs::job_key(&c.job),
            computer_key(name, computer),
        ] {
            secrets.remove(&key)?;
        }
    } else {
        ctx.block_on(client.set_subtenant(
            &sub,
            &SubtenantChange {
                enabled: Some(false),
                ..SubtenantChange::default()
            },
        ))?;
    }
    Ok(())
}

/// Deletes policy `name` at the provider and here; its computers are removed as
/// [`remove_computer`] does (`delete_computers`: with their data).
pub fn delete(ctx: &TenantContext, name: &str, delete_computers: bool) -> Result<(), TenantError> {
    let state = ctx.state();
    let policy = ctx.block_on(state.policy(name))?;
    for c in &policy.computers {
        remove_computer(ctx, name, &c.computer, delete_computers)?;
    }
    let secrets = ctx.secrets();
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    match ctx.block_on(client.delete_policy(&policy.id)) {
        Ok(())
        | Err(cloudkeep_client::ClientError::Api {
            code: cloudkeep_api::ErrorCode::NotFound,
            ..
        }) => {}
        Err(e) => return Err(e.into()),
    }
    ctx.block_on(state.delete_policy_row(name))?;
    secrets.remove(&policy_key(name))
}

/// Writes the enrollment file of `computer` of policy `name` to `out` (owner-only, never
/// over an existing file), sealed with a one-time code that is returned to show the admin.
pub fn enroll_file(
    ctx: &TenantContext,
    name: &str,
    computer: &str,
    out: &std::path::Path,
) -> Result<String, TenantError> {
    let state = ctx.state();
    let secrets = ctx.secrets();
    let policy = ctx.block_on(state.policy(name))?;
    let c = policy.computer(computer)?;
    let provider = ctx.block_on(state.provider(&policy.provider))?;
    let missing = |what: &str| TenantError::SecretMissing {
        what: format!("{what} of \"{computer}\""),
        fix: "remove the computer and add it again",
    };
    let enrollment = Enrollment {
        policy_id: policy.id.clone(),
        policy: policy.name.clone(),
        computer: computer.to_owned(),
        addresses: provider.addresses.clone(),
        fingerprint: provider.fingerprint.clone(),
        login: c.login.clone(),
        password: secrets
            .get(&jobs::account_key(&policy.provider, &c.login))?
            .ok_or_else(|| missing("account password"))?,
        repo: policy.spec.repo.clone(),
        job: c.job.clone(),
        agent_key: secrets
            .get(&computer_key(name, computer))?
            .ok_or_else(|| missing("agent key"))?,
    };
    let code = one_time_code()?;
    let file = seal_enrollment(&enrollment, &code)?;
    cloudkeep_model::paths::write_new_private_file(out, file.as_bytes())?;
    Ok(code)
}

/// A one-time code people can read out: four groups of five characters.
pub(crate) fn one_time_code() -> Result<String, TenantError> {
    let raw = cloudkeep_repo::crypto::generate_password()?;
    let chars: Vec<char> = raw.chars().collect();
    Ok(chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The code as typed: without dashes and spaces.
fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// The enrollment file's text.
pub fn seal_enrollment(e: &Enrollment, code: &str) -> Result<String, TenantError> {
    let mut salt = [0u8; 16];
    cloudkeep_repo::crypto::random_bytes(&mut salt)?;
    let kdf = KdfParams::default();
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(e).map_err(damaged)?);
    let sealed = cloudkeep_repo::crypto::seal_with_password(
        &normalize_code(code),
        &salt,
        kdf,
        ENROLLMENT_AAD,
        &plain,
    )?;
    let file = EnrollmentFile {
        format: ENROLLMENT_FORMAT.into(),
        version: 1,
        label: format!("computer {} of backup policy {}", e.computer, e.policy),
        kdf,
        salt: hex::encode(salt),
        sealed: hex::encode(sealed),
    };
    serde_json::to_string_pretty(&file).map_err(damaged)
}

/// Opens an enrollment file's text with its one-time code.
pub fn open_enrollment(text: &str, code: &str) -> Result<Enrollment, TenantError> {
    let not_one = |why: &str| {
        TenantError::Invalid(format!(
            "this is not a Cloudkeep enrollment file ({why}); use the file \"cloudkeep policy enroll-file\" wrote"
        ))
    };
    let file: EnrollmentFile = serde_json::from_str(text).map_err(|_| not_one("not its JSON"))?;
    if file.format != ENROLLMENT_FORMAT || file.version != 1 {
        return Err(not_one("another format or version"));
    }
    let salt = hex::decode(&file.salt).map_err(|_| not_one("a damaged salt"))?;
    let sealed = hex::decode(&file.sealed).map_err(|_| not_one("damaged contents"))?;
    let plain = cloudkeep_repo::crypto::open_with_password(&normalize_code(code), &salt, file.kdf, ENROLLMENT_AAD, &sealed)
        .map_err(|_| {
            TenantError::Invalid(
                "the one-time code does not open this enrollment file; type it exactly as it was shown (dashes may be left out)".into(),
            )
        })?;
    serde_json::from_slice(&plain).map_err(|_| not_one("damaged contents"))
}

/// The sessions `computer`'s agent reported to the provider, newest first.
pub fn computer_sessions(
    ctx: &TenantContext,
    name: &str,
    computer: &str,
) -> Result<Vec<cloudkeep_api::policy::AgentReport>, TenantError> {
    let state = ctx.state();
    let secrets = ctx.secrets();
    let policy = ctx.block_on(state.policy(name))?;
    policy.computer(computer)?;
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    Ok(ctx.block_on(client.computer_sessions(&policy.id, computer))?)
}

/// Orders a restore on the policy's computer `computer` itself: its agent carries it out on
/// its next cycle, from that computer's own restore points ("where it came from" is that
/// computer's paths, never this one's). Returns the queued order.
pub fn order_restore(
    ctx: &TenantContext,
    name: &str,
    order: &cloudkeep_api::policy::RestoreOrderRequest,
) -> Result<cloudkeep_api::policy::RestoreOrder, TenantError> {
    let (state, secrets) = (ctx.state(), ctx.secrets());
    let policy = ctx.block_on(state.policy(name))?;
    policy.computer(&order.computer)?;
    if let Some(to) = &order.to
        && !(to.starts_with('/') || to.get(1..3) == Some(":\\"))
    {
        return Err(TenantError::Invalid(format!(
            "\"{to}\" is not an absolute path on the computer; give the full path of the folder to restore into"
        )));
    }
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    Ok(ctx.block_on(client.order_restore(&policy.id, order))?)
}

/// The policy and computer a job of a policy's computer belongs to (the tenant's view of it).
pub fn policy_of_job(ctx: &TenantContext, job: &str) -> Result<(Policy, String), TenantError> {
    let state = ctx.state();
    let record = ctx.block_on(state.job(job))?;
    let member = record.spec.agent.ok_or_else(|| {
        TenantError::Invalid(format!(
            "\"{job}\" is not a computer of a backup policy: restore it here"
        ))
    })?;
    let policy = ctx
        .block_on(state.policies())?
        .into_iter()
        .find(|p| p.id == member.policy_id)
        .ok_or_else(|| {
            TenantError::Invalid(format!(
                "the policy of \"{job}\" is no longer on this computer"
            ))
        })?;
    Ok((policy, member.computer))
}

/// The restores ordered for the policy's computers and how far their agents got, newest
/// first.
pub fn restore_orders(
    ctx: &TenantContext,
    name: &str,
) -> Result<Vec<cloudkeep_api::policy::RestoreOrder>, TenantError> {
    let (state, secrets) = (ctx.state(), ctx.secrets());
    let policy = ctx.block_on(state.policy(name))?;
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    Ok(ctx.block_on(client.restore_orders(&policy.id))?)
}

/// Reads the status of the policy's computers from the provider and keeps it.
pub fn sync(ctx: &TenantContext, name: &str) -> Result<Policy, TenantError> {
    let state = ctx.state();
    let secrets = ctx.secrets();
    let mut policy = ctx.block_on(state.policy(name))?;
    let (client, _) = ctx.block_on(super::providers::connect(state, secrets, &policy.provider))?;
    policy.status = ctx.block_on(client.policy_status(&policy.id))?;
    policy.synced_ms = Some(cloudkeep_model::clock::now_ms());
    ctx.block_on(state.save_policy(&policy))?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Enrollment {
        Enrollment {
            policy_id: "p-1".into(),
            policy: "laptops".into(),
            computer: "pc1".into(),
            addresses: vec!["127.0.0.1:6180".into()],
            fingerprint: "AA:BB".into(),
            login: "acme/laptops-pc1".into(),
            password: "secret-password".into(),
            repo: "main".into(),
            job: "laptops-pc1".into(),
            agent_key: "CKRK1-xxxx".into(),
        }
    }

    #[test]
    fn enrollment_opens_only_with_its_code() {
        let code = one_time_code().unwrap();
        let text = seal_enrollment(&sample(), &code).unwrap();
        assert!(
            !text.contains("secret-password"),
            "the file hides the credentials"
        );
        let opened = open_enrollment(&text, &code.replace('-', "")).unwrap();
        assert_eq!(opened.login, "acme/laptops-pc1");
        let wrong = open_enrollment(&text, "aaaaa-bbbbb-ccccc-ddddd").unwrap_err();
        assert!(wrong.to_string().contains("does not open"), "{wrong}");
        let junk = open_enrollment("{}", &code).unwrap_err();
        assert!(
            junk.to_string().contains("not a Cloudkeep enrollment file"),
            "{junk}"
        );
    }
}
