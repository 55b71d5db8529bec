//! A job's key slots, wherever its repository is (a folder or a cloud repository): list them,
//! add a recovery key, change the encryption password the job runs with — what
//! `cloudkeep local key` does for a repository named by its path, for a job named by its name.
//!
//! A new job joins the repository its target already holds (jobs on one cloud repository or
//! folder share its key and deduplicate against each other; each sees only its own points):
//! its password must open it, or get a slot of its own opened by a sibling job's password.
//!
//! Invariant: a job is never created that cannot open its repository; a password change never leaves the job without a working password, even if the
//! process dies half-way: the new password gets a slot of its own first, then the secrets
//! take it, and only then does the old slot go (at a provider it stays, retired and still
//! unlocking, until the insider-protection window ends). The data is not re-encrypted.

use serde::Serialize;

use super::jobs::{self, Job, JobSpec, job_key};
use super::runner::open_job_repository;
use super::{TenantContext, TenantError};
use cloudkeep_repo::crypto::{CryptoError, KdfParams, RecoveryKey};
use cloudkeep_repo::repo::RepoError;

/// One key slot, as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    /// Its id.
    pub id: String,
    /// `password` or `recovery key`.
    pub kind: String,
    /// Its label.
    pub label: String,
    /// When it was made, `YYYY-MM-DD`.
    pub created: String,
}

/// The job, refused when its keys are not this computer's to change.
fn own_encrypted_job(ctx: &TenantContext, name: &str) -> Result<Job, TenantError> {
    let job = ctx.block_on(ctx.state().job(name))?;
    if let Some(member) = &job.spec.agent {
        return Err(TenantError::Invalid(format!(
            "\"{name}\" is computer \"{}\" of a backup policy: its keys are the policy's; manage them with the policy",
            member.computer
        )));
    }
    if !job.spec.encrypted {
        return Err(TenantError::Invalid(format!(
            "job \"{name}\" is not encrypted: its repository has no key slots"
        )));
    }
    Ok(job)
}

/// The key slots of job `name`'s repository.
pub fn slots(ctx: &TenantContext, name: &str) -> Result<Vec<SlotView>, TenantError> {
    let job = own_encrypted_job(ctx, name)?;
    let repo = open_job_repository(ctx, &job)?;
    Ok(repo
        .keyring()
        .slots
        .iter()
        .map(|slot| SlotView {
            id: slot.id.clone(),
            kind: slot.kind.name().to_owned(),
            label: slot.label.clone(),
            created: slot.created.format("%Y-%m-%d").to_string(),
        })
        .collect())
}

/// Adds a recovery-key slot to job `name`'s repository; returns the slot's id and the key to
/// hand to whoever keeps it offline.
pub fn add_recovery_key(
    ctx: &TenantContext,
    name: &str,
    label: &str,
) -> Result<(String, RecoveryKey), TenantError> {
    let job = own_encrypted_job(ctx, name)?;
    let mut repo = open_job_repository(ctx, &job)?;
    let mut keyring = repo.keyring().clone();
    let master = keyring.unlock(&current_password(ctx, &job)?)?;
    let (id, key) = keyring.add_recovery_key(&master, label)?;
    repo.save_keyring(keyring)?;
    Ok((id, key))
}

/// Changes the encryption password job `name` runs with (see the module's invariant).
pub fn change_password(ctx: &TenantContext, name: &str, new: &str) -> Result<(), TenantError> {
    cloudkeep_model::names::check_password(new)
        .map_err(|e| TenantError::Invalid(format!("the new encryption password: {e}")))?;
    let job = own_encrypted_job(ctx, name)?;
    let old = current_password(ctx, &job)?;
    let mut repo = open_job_repository(ctx, &job)?;
    let mut keyring = repo.keyring().clone();
    let master = keyring.unlock(&old)?;
    let old_slot = keyring.slot_opened_by(&old);
    let label = old_slot
        .as_ref()
        .and_then(|id| keyring.slots.iter().find(|s| &s.id == id))
        .map_or_else(|| "password".to_owned(), |slot| slot.label.clone());
    keyring.add_password(&master, new, KdfParams::default(), &label)?;
    repo.save_keyring(keyring.clone())?;
    ctx.secrets().set(&job_key(name), new)?;
    if let Some(id) = old_slot {
        keyring.remove_slot(&id)?;
        repo.save_keyring(keyring)?;
    }
    Ok(())
}

fn current_password(ctx: &TenantContext, job: &Job) -> Result<String, TenantError> {
    ctx.secrets()
        .get(&job_key(&job.name))?
        .ok_or_else(|| TenantError::SecretMissing {
            what: format!("encryption password of job \"{}\"", job.name),
            fix: "recreate the job",
        })
}

/// Creates job `name` (see [`jobs::create`]) and makes sure it can open its repository: a
/// new one is made now (so a second job created before the first run joins it instead of
/// racing it); an existing one must open with the job's password — or with a sibling job's
/// (same target), when the new password gets a slot of its own. A password or encryption
/// that does not fit is refused and no job is left behind; storage that does not answer now
/// is left to the first run, which says so. Blocking.
pub fn create_job(
    ctx: &TenantContext,
    name: &str,
    spec: &JobSpec,
    password: Option<&str>,
) -> Result<Job, TenantError> {
    let job = ctx.block_on(jobs::create(
        ctx.state(),
        ctx.secrets(),
        name,
        spec,
        password,
    ))?;
    let refusal = match open_job_repository(ctx, &job) {
        Ok(repo) if repo.keyring().is_encrypted() != job.spec.encrypted => {
            Some(TenantError::Invalid(format!(
                "the repository at {} is not encrypted, so a job on it cannot be: choose another repository, or make the job unencrypted",
                jobs::target_text(&job.spec.target)
            )))
        }
        Ok(_) => None,
        Err(TenantError::Repo(RepoError::Crypto(CryptoError::WrongPassword))) => {
            let all = ctx.block_on(ctx.state().jobs())?;
            Some(jobs::password_not_known(&job, &all))
        }
        Err(e @ (TenantError::Invalid(_) | TenantError::Repo(RepoError::Crypto(_)))) => Some(e),
        Err(e) => {
            tracing::warn!(
                job = name,
                "the job's repository cannot be checked now (its first run will): {e}"
            );
            None
        }
    };
    match refusal {
        None => Ok(job),
        Some(e) => {
            ctx.block_on(jobs::delete(ctx.state(), ctx.secrets(), name))?;
            Err(e)
        }
    }
}
