//! `cloudkeep local …`: backup to and restore from a repository in a local folder (a backup
//! target of its own, and the way to try and benchmark the engine without a gateway).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::retention::RetentionPolicy;
use cloudkeep_model::units::human_bytes;
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::{KdfParams, Keyring, MasterKey, RecoveryKey};
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::engine::forget::{ForgetFilter, forget};
use cloudkeep_repo::engine::gc::gc;
use cloudkeep_repo::engine::restore::Conflict;
use cloudkeep_repo::repo::{NewRepo, RepoError, Repository, Unlock};
use serde_json::json;

use crate::progress::ProgressLine;
use crate::show;

/// `cloudkeep local`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, ClapArgs)]
struct RepoArgs {
    /// The repository folder.
    #[arg(long, short = 'r', value_name = "DIR")]
    repo: PathBuf,
    /// Read the encryption password from the first line of standard input.
    #[arg(long, conflicts_with = "password_file")]
    password_stdin: bool,
    /// Read the encryption password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Unlock with a recovery key file instead of a password.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["password_stdin", "password_file"])]
    recovery_key_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a repository in a folder.
    Init {
        #[command(flatten)]
        repo: RepoArgs,
        /// Store data unencrypted (explicit: the default is encrypted).
        #[arg(long)]
        no_encryption: bool,
    },
    /// Back up files and folders into a new restore point.
    Backup {
        #[command(flatten)]
        repo: RepoArgs,
        /// Files and folders to back up.
        #[arg(required_unless_present = "disk", value_name = "SOURCE")]
        sources: Vec<PathBuf>,
        /// A disk (block device such as /dev/sdb) or disk image file to back up whole, block by
        /// block (repeatable); it restores as a raw image file.
        #[arg(long, value_name = "DEVICE|IMAGE")]
        disk: Vec<PathBuf>,
        /// Leave out paths matching this glob (repeatable), e.g. "*.tmp" or "**/node_modules".
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Do not descend into other file systems (mounts) below a source.
        #[arg(long)]
        one_file_system: bool,
        /// Compression: off, fast, default or max.
        #[arg(long, default_value = "default")]
        compression: Compression,
        /// Job name recorded in the restore point; the latest point of the same job and
        /// computer is the base for skipping unchanged files.
        #[arg(long, default_value = "local")]
        job: String,
    },
    /// List restore points.
    Points {
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// List a folder of a restore point without restoring anything.
    Browse {
        #[command(flatten)]
        repo: RepoArgs,
        /// Restore point id (or a unique prefix of at least 4 characters, or "latest").
        point: String,
        /// Folder inside the point, as backed up (default: the top).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Manage the repository's key slots: passwords and recovery keys.
    Key {
        #[command(flatten)]
        repo: RepoArgs,
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Remove restore points by a retention policy, per job and computer.
    Forget {
        #[command(flatten)]
        repo: RepoArgs,
        /// Keep the newest N points.
        #[arg(long, value_name = "N")]
        keep_last: Option<u32>,
        /// Keep every point younger than N days.
        #[arg(long, value_name = "N")]
        keep_days: Option<u32>,
        /// Also keep the newest point of each of the newest weeks, months and years.
        #[arg(long, value_name = "weekly=W,monthly=M,yearly=Y")]
        gfs: Option<String>,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Only this computer.
        #[arg(long)]
        host: Option<String>,
        /// Show what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Garbage collection: delete data no restore point references, compact sparse packs.
    Gc {
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Check the repository: re-read packs and authenticate every blob; name what damage affects.
    Verify {
        #[command(flatten)]
        repo: RepoArgs,
        /// Check this percentage of the packs (a random sample); 100 checks everything.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
        sample: u8,
    },
    /// Find entries of a restore point by name (a glob such as "*.pdf").
    Find {
        #[command(flatten)]
        repo: RepoArgs,
        /// Restore point id (or a unique prefix, or "latest").
        point: String,
        /// Name pattern.
        pattern: String,
    },
    /// List what changed between two restore points.
    Diff {
        #[command(flatten)]
        repo: RepoArgs,
        /// The older point.
        from: String,
        /// The newer point.
        to: String,
    },
    /// Restore a whole restore point or selected paths.
    Restore {
        #[command(flatten)]
        repo: RepoArgs,
        /// Restore point id (or a unique prefix, or "latest").
        point: String,
        /// Restore into this folder.
        #[arg(
            long,
            value_name = "DIR",
            required_unless_present = "original",
            conflicts_with = "original"
        )]
        to: Option<PathBuf>,
        /// Restore to where the items were backed up from.
        #[arg(long)]
        original: bool,
        /// Restore only this path of the point (repeatable).
        #[arg(long, value_name = "PATH")]
        path: Vec<String>,
        /// When a file exists: overwrite, skip or keep-both.
        #[arg(long, default_value = "skip")]
        conflict: Conflict,
    },
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// List the key slots.
    List,
    /// Add another password (the current one keeps working).
    AddPassword {
        /// File whose first line is the new password.
        #[arg(long, value_name = "FILE")]
        new_password_file: PathBuf,
        /// A name for the slot.
        #[arg(long, default_value = "password")]
        label: String,
    },
    /// Replace the password used to unlock with a new one; data is not re-encrypted.
    ChangePassword {
        /// File whose first line is the new password.
        #[arg(long, value_name = "FILE")]
        new_password_file: PathBuf,
    },
    /// Create a recovery key and write it to a new file readable by its owner only.
    RecoveryKey {
        /// Where to write the recovery key (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A name for the slot.
        #[arg(long, default_value = "recovery key")]
        label: String,
    },
    /// Remove a key slot (never the last one).
    Remove {
        /// Slot id, as listed.
        slot: String,
    },
}

/// First line of a secret file, refusing an empty one.
fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading \"{}\"", path.display()))?;
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_owned();
    if line.is_empty() {
        bail!(
            "\"{}\" holds an empty password; put the password on its first line",
            path.display()
        );
    }
    Ok(line)
}

impl RepoArgs {
    fn backend(&self) -> anyhow::Result<Arc<FolderStore>> {
        Ok(Arc::new(FolderStore::open(&self.repo).with_context(
            || {
                format!(
                    "cannot use \"{}\" as a repository folder",
                    self.repo.display()
                )
            },
        )?))
    }

    fn password(&self) -> anyhow::Result<Option<String>> {
        if self.password_stdin {
            return Ok(Some(crate::secrets::stdin_line("encryption password")?));
        }
        self.password_file
            .as_deref()
            .map(read_secret_file)
            .transpose()
    }

    fn open(&self) -> anyhow::Result<Repository> {
        let backend = self.backend()?;
        if let Some(file) = &self.recovery_key_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the recovery key file \"{}\"", file.display()))?;
            let key = RecoveryKey::parse(&text)?;
            return Ok(Repository::open(backend, Unlock::RecoveryKey(&key))?);
        }
        let password = self.password()?;
        let unlock = match &password {
            Some(p) => Unlock::Password(p),
            None => Unlock::Unencrypted,
        };
        Repository::open(backend, unlock).map_err(|e| match e {
            RepoError::PasswordRequired => anyhow::Error::new(e)
                .context("give the encryption password with --password-stdin or --password-file"),
            e => e.into(),
        })
    }
}

/// Runs `cloudkeep local …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Init {
            repo,
            no_encryption,
        } => {
            let backend = repo.backend()?;
            let new_repo = if no_encryption {
                NewRepo::Unencrypted
            } else {
                let Some(password) = repo.password()? else {
                    bail!(
                        "give an encryption password with --password-stdin or --password-file, or choose --no-encryption"
                    );
                };
                let created = Repository::init(
                    backend,
                    NewRepo::Encrypted {
                        password: &password,
                        kdf: KdfParams::default(),
                    },
                )?;
                return report_init(&repo, &created);
            };
            let created = Repository::init(backend, new_repo)?;
            report_init(&repo, &created)
        }
        Command::Backup {
            repo,
            sources,
            disk,
            exclude,
            one_file_system,
            compression,
            job,
        } => {
            let opened = repo.open()?;
            let host = cloudkeep_repo::lock::hostname();
            let parent = opened.latest_point(&job, &host)?;
            let options = BackupOptions {
                sources,
                disks: disk,
                excludes: exclude,
                one_file_system,
                compression,
                host,
                job,
                parent,
                cancel: Default::default(),
            };
            let show = ProgressLine::new(repo.json);
            let report = backup(&opened, &options, &|p| show.update(p))?;
            show.finish();
            let stats = report.point.manifest.stats;
            let result = if report.warnings.is_empty() {
                "success"
            } else {
                "warning"
            };
            if repo.json {
                println!(
                    "{}",
                    json!({"event": "done", "result": result, "point": report.point.id, "stats": stats, "warnings": report.warnings})
                );
            } else {
                for w in &report.warnings {
                    eprintln!("warning: {}: {}", w.path.display(), w.message);
                }
                println!(
                    "restore point {} saved ({result}): {} files, {} read, {} new, {} stored",
                    report.point.short_id(),
                    stats.files,
                    human_bytes(stats.bytes_read),
                    stats.new_blobs,
                    human_bytes(stats.new_stored_bytes)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Points { repo } => {
            show::points(&repo.open()?, None, &Default::default(), repo.json)
        }
        Command::Browse { repo, point, path } => {
            show::browse(&repo.open()?, None, &point, &path, repo.json)
        }
        Command::Key { repo, action } => key_command(&repo, action),
        Command::Gc { repo } => {
            let report = gc(&repo.open()?)?;
            if repo.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} live and {} unreferenced blobs; {} packs deleted, {} compacted, {} left over from interrupted runs removed",
                    report.live_blobs,
                    report.dead_blobs,
                    report.packs_deleted,
                    report.packs_repacked,
                    report.orphan_packs
                );
                println!(
                    "packs: {} before, {} after",
                    human_bytes(report.bytes_before),
                    human_bytes(report.bytes_after)
                );
                if report.damaged_blobs > 0 {
                    println!(
                        "{} damaged blobs were left in place; run verify",
                        report.damaged_blobs
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Find {
            repo,
            point,
            pattern,
        } => show::find(&repo.open()?, None, &point, &pattern, repo.json),
        Command::Diff { repo, from, to } => show::diff(&repo.open()?, None, &from, &to, repo.json),
        Command::Forget {
            repo,
            keep_last,
            keep_days,
            gfs,
            job,
            host,
            dry_run,
        } => {
            let mut policy = RetentionPolicy {
                keep_last,
                keep_days,
                ..RetentionPolicy::default()
            };
            if let Some(gfs) = gfs {
                policy.set_gfs(&gfs).map_err(anyhow::Error::msg)?;
            }
            let groups = forget(
                &repo.open()?,
                &policy,
                &ForgetFilter {
                    job,
                    host,
                    ..ForgetFilter::default()
                },
                chrono::Utc::now(),
                dry_run,
            )?;
            if repo.json {
                println!("{}", serde_json::to_string_pretty(&groups)?);
                return Ok(ExitCode::SUCCESS);
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for g in &groups {
                let removed = g.decisions.iter().filter(|d| d.remove()).count();
                println!(
                    "{} / {}: keep {}, {verb} {removed}",
                    g.host,
                    g.job,
                    g.decisions.len() - removed
                );
                for d in &g.decisions {
                    let why: Vec<String> = d
                        .keep
                        .iter()
                        .map(|k| format!("{k:?}").to_lowercase())
                        .collect();
                    let label = if d.remove() {
                        verb.to_owned()
                    } else {
                        format!("keep ({})", why.join(", "))
                    };
                    println!(
                        "  {}  {}  {label}",
                        &d.id[..12],
                        d.time.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
            if !dry_run {
                println!(
                    "the data of removed points stays in the repository until garbage collection removes it"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { repo, sample } => show::verify(&repo.open()?, sample, repo.json),
        Command::Restore {
            repo,
            point,
            to,
            original: _,
            path,
            conflict,
        } => show::restore(&repo.open()?, &point, to, path, conflict, repo.json),
    }
}

fn key_command(args: &RepoArgs, action: KeyAction) -> anyhow::Result<ExitCode> {
    let mut repo = args.open()?;
    let mut keyring = repo.keyring().clone();
    match action {
        KeyAction::List => {
            if args.json {
                let rows: Vec<_> = keyring
                    .slots
                    .iter()
                    .map(|slot| json!({"id": slot.id, "label": slot.label, "created": slot.created, "kind": slot.kind.name()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if !keyring.is_encrypted() {
                println!("this repository is not encrypted: it has no key slots");
            } else {
                for slot in &keyring.slots {
                    let kind = slot.kind.name();
                    println!(
                        "{:<8}  {:<13} {}  {}",
                        slot.id,
                        kind,
                        slot.created.format("%Y-%m-%d"),
                        slot.label
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        KeyAction::AddPassword {
            new_password_file,
            label,
        } => {
            let new = read_secret_file(&new_password_file)?;
            let master = unlock_master(args, &keyring)?;
            let id = keyring.add_password(&master, &new, KdfParams::default(), &label)?;
            repo.save_keyring(keyring)?;
            println!("added password slot {id}");
        }
        KeyAction::ChangePassword { new_password_file } => {
            let Some(old) = args.password()? else {
                bail!("give the current password with --password-stdin or --password-file");
            };
            let new = read_secret_file(&new_password_file)?;
            keyring.change_password(&old, &new, KdfParams::default())?;
            repo.save_keyring(keyring)?;
            println!("password changed; the data was not re-encrypted and other slots still work");
        }
        KeyAction::RecoveryKey { out, label } => {
            let master = unlock_master(args, &keyring)?;
            let (id, key) = keyring.add_recovery_key(&master, &label)?;
            cloudkeep_model::paths::write_new_private_file(
                &out,
                format!("{}\n", key.to_text().as_str()).as_bytes(),
            )?;
            repo.save_keyring(keyring)?;
            println!(
                "recovery key slot {id} written to {}; store it offline: it opens the repository without a password",
                out.display()
            );
        }
        KeyAction::Remove { slot } => {
            keyring.remove_slot(&slot)?;
            repo.save_keyring(keyring)?;
            println!("removed key slot {slot}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The master key, unlocked again with the secret the user gave.
fn unlock_master(args: &RepoArgs, keyring: &Keyring) -> anyhow::Result<MasterKey> {
    if let Some(file) = &args.recovery_key_file {
        let key = RecoveryKey::parse(&std::fs::read_to_string(file)?)?;
        return Ok(keyring.unlock_with_recovery_key(&key)?);
    }
    let Some(password) = args.password()? else {
        bail!("give the current password with --password-stdin or --password-file");
    };
    Ok(keyring.unlock(&password)?)
}

fn report_init(args: &RepoArgs, repo: &Repository) -> anyhow::Result<ExitCode> {
    let encrypted = repo.keys().is_encrypted();
    if args.json {
        println!(
            "{}",
            json!({"repo": args.repo, "repo_id": repo.keyring().repo_id, "encrypted": encrypted})
        );
    } else if encrypted {
        println!(
            "created an encrypted repository in {}; keep the password safe: without it the data cannot be read",
            args.repo.display()
        );
    } else {
        println!(
            "created an UNENCRYPTED repository in {}",
            args.repo.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
