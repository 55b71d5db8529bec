//! A job's key slots, wherever its repository is (a folder or a cloud repository): list them,
//! add a recovery key, change the encryption password the job runs with — what
//! `cloudkeep local key` does for a repository named by its path, for a job named by its name.
//!
//! Invariant: a password change never leaves the job without a working password, even if the
//! process dies half-way: the new password gets a slot of its own first, then the secrets
//! take it, and only then does the old slot go (at a provider it stays, retired and still
//! unlocking, until the insider-protection window ends). The data is not re-encrypted.

use serde::Serialize;

use super::jobs::{Job, job_key};
use super::runner::open_job_repository;
use super::{TenantContext, TenantError};
use cloudkeep_repo::crypto::{KdfParams, RecoveryKey};

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
