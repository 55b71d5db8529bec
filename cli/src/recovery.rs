//! `cloudkeep recovery-media create` (a bootable ISO, `cloudkeep_tenant::recovery`) and
//! `cloudkeep recovery run`: what booted recovery media run on the screen or the serial
//! console — connect to the provider (the media's address and pinned certificate, the login's
//! password typed or opened with the media's one-time code), find the backups of whole
//! computers there, choose one and its restore point, restore the entire computer (each disk
//! onto a disk of this one) or chosen volumes, each target shown and confirmed by typing its
//! path, then offer to restart. Every question is one line, so a serial console can be
//! scripted.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_model::units::human_bytes;
use cloudkeep_repo::engine::disk::ImageRestore;
use cloudkeep_repo::image::export::Format;
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::recovery::{self, MediaOptions};

/// Arguments of `cloudkeep recovery-media`.
#[derive(Debug, ClapArgs)]
pub struct MediaArgs {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: MediaCommand,
}

#[derive(Debug, Subcommand)]
enum MediaCommand {
    /// Make a bootable recovery ISO (BIOS and UEFI; Linux, with GRUB and BusyBox installed):
    /// this computer's kernel, Cloudkeep and the provider's address and certificate.
    Create {
        /// The ISO to write (it must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The provider it restores from (the only one when not given).
        #[arg(long)]
        provider: Option<String>,
        /// Also carry the provider's password, sealed under a one-time code shown now.
        #[arg(long)]
        with_password: bool,
        /// Start on the first serial port by default (servers, scripted recoveries).
        #[arg(long)]
        serial: bool,
        /// The kernel to boot (/boot/vmlinuz-VERSION; the newest by default).
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
    },
}

/// Arguments of `cloudkeep recovery`.
#[derive(Debug, ClapArgs)]
pub struct RecoveryArgs {
    #[command(subcommand)]
    command: RecoveryCommand,
}

#[derive(Debug, Subcommand)]
enum RecoveryCommand {
    /// Restore this computer from its provider, question by question (what booted recovery
    /// media run).
    Run {
        /// Never offer to restart at the end.
        #[arg(long)]
        no_restart: bool,
    },
}

/// Runs `cloudkeep recovery-media …`.
pub fn run_media(args: MediaArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let MediaCommand::Create {
        out,
        provider,
        with_password,
        serial,
        kernel,
    } = args.command;
    let options = MediaOptions {
        out: std::path::absolute(&out)?,
        provider,
        with_password,
        serial,
        kernel,
    };
    eprintln!("making recovery media (this takes a minute)…");
    let report = recovery::create_media(ctx, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "recovery media written to {} ({}, kernel {}){}",
        report.path.display(),
        human_bytes(report.bytes),
        report.kernel,
        match &report.provider {
            Some(p) => format!(", for provider \"{p}\""),
            None => ", for any provider (its address is asked for at boot)".into(),
        }
    );
    if let Some(code) = &report.code {
        println!(
            "the provider's password is on it, sealed: its one-time code is {code} — keep it apart from the media"
        );
    }
    println!("write it to a USB stick (for example with dd) or boot it as a CD/DVD image");
    Ok(ExitCode::SUCCESS)
}

/// One question and its answer, on the console (stdin is locked per line only: the disk
/// restore's own confirmation reads it too).
struct Console;

impl Console {
    fn new() -> Self {
        Self
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            anyhow::bail!("the console closed");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Asks `question`; an empty answer is `default`.
    fn ask(&mut self, question: &str, default: Option<&str>) -> anyhow::Result<String> {
        match default {
            Some(d) if !d.is_empty() => print!("{question} [{d}]: "),
            _ => print!("{question}: "),
        }
        std::io::stdout().flush()?;
        let answer = self.line()?;
        Ok(if answer.trim().is_empty() {
            default.unwrap_or_default().to_owned()
        } else {
            answer.trim().to_owned()
        })
    }

    /// Asks for a secret without echoing it where the console is a terminal.
    fn secret(&mut self, question: &str) -> anyhow::Result<String> {
        print!("{question}: ");
        std::io::stdout().flush()?;
        let quiet = Echo::off();
        let answer = self.line();
        drop(quiet);
        if std::io::stdin().is_terminal() {
            println!();
        }
        answer
    }

    /// A number from 1 to `count` (`1` on an empty answer).
    fn choose(&mut self, question: &str, count: usize) -> anyhow::Result<usize> {
        loop {
            let answer = self.ask(question, Some("1"))?;
            match answer.parse::<usize>() {
                Ok(n) if (1..=count).contains(&n) => return Ok(n - 1),
                _ => println!("type a number from 1 to {count}"),
            }
        }
    }
}

/// The terminal's echo, off while it lives (Unix terminals; nothing elsewhere).
struct Echo {
    #[cfg(unix)]
    saved: Option<rustix::termios::Termios>,
}

impl Echo {
    fn off() -> Self {
        #[cfg(unix)]
        {
            let stdin = std::io::stdin();
            let saved = rustix::termios::tcgetattr(&stdin).ok();
            if let Some(mut quiet) = saved.clone() {
                quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
                let _ = rustix::termios::tcsetattr(
                    &stdin,
                    rustix::termios::OptionalActions::Now,
                    &quiet,
                );
            }
            Self { saved }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// Runs `cloudkeep recovery run`.
pub fn run(args: RecoveryArgs, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    let RecoveryCommand::Run { no_restart } = args.command;
    let mut console = Console::new();
    println!("Cloudkeep recovery {}", cloudkeep_model::VERSION);
    let disks = local_disks();
    println!("This computer's disks:");
    for d in &disks {
        println!("  {}  {}", d.0.display(), human_bytes(d.1));
    }
    if disks.is_empty() {
        println!("  (none found: the drivers for its disks may be missing)");
    }
    let provider = connect(ctx, &mut console)?;
    let chosen = choose_backup(ctx, &mut console, &provider)?;
    let job = cloudkeep_tenant::found::adopt(
        ctx,
        &provider,
        &chosen.repo,
        chosen.account.as_deref(),
        &chosen.job,
        &chosen.job.name,
        chosen.password.as_deref(),
    )?;
    let repository = cloudkeep_tenant::runner::open_job_repository(ctx, &job)?;
    let mut points: Vec<_> = repository
        .list_points()?
        .into_iter()
        .filter(|p| p.manifest.job == job.name && p.manifest.is_image())
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.time_ns));
    if points.is_empty() {
        anyhow::bail!("\"{}\" has no restore point of whole disks", job.name);
    }
    for (i, p) in points.iter().enumerate() {
        let disks: Vec<String> = p
            .manifest
            .disks
            .iter()
            .map(|d| format!("{} {}", d.name(), human_bytes(d.layout.size)))
            .collect();
        println!(
            "  {}) {}  {}  {}",
            i + 1,
            crate::show::time_text(p.time_ns),
            p.short_id(),
            disks.join(", ")
        );
    }
    let point = &points[console.choose("Which restore point", points.len())?];
    println!("What to restore:");
    println!("  1) the entire computer (every disk)");
    println!("  2) chosen volumes");
    let whole = console.choose("Restore", 2)? == 0;
    let source = crate::image::Source::Job {
        ctx,
        job: job.name.clone(),
        point: point.id.clone(),
    };
    let mut used = Vec::new();
    for disk in &point.manifest.disks {
        if whole {
            println!(
                "Disk {} ({}) onto which disk of this computer?",
                disk.name(),
                human_bytes(disk.layout.size)
            );
            let target = pick_target(&mut console, &disks, disk.layout.size, &used)?;
            used.push(target.clone());
            crate::image::restore(
                &source,
                ImageRestore {
                    disk: disk.name().to_owned(),
                    volume: None,
                    format: Format::Raw,
                },
                &target,
                false,
                false,
            )?;
        } else {
            for p in &disk.layout.partitions {
                let name = cloudkeep_repo::engine::volumes::volume_name(disk, p);
                let fs = p.filesystem.as_ref().map_or("-", |f| f.kind.name());
                let answer = console.ask(
                    &format!(
                        "Restore volume {name} ({fs}, {})? [y/N]",
                        human_bytes(p.size)
                    ),
                    Some("n"),
                )?;
                if !answer.eq_ignore_ascii_case("y") {
                    continue;
                }
                let target = PathBuf::from(console.ask(
                    &format!(
                        "Onto which device (a partition of at least {})",
                        human_bytes(p.size)
                    ),
                    None,
                )?);
                crate::image::restore(
                    &source,
                    ImageRestore {
                        disk: disk.name().to_owned(),
                        volume: Some(p.number),
                        format: Format::Raw,
                    },
                    &target,
                    false,
                    false,
                )?;
            }
        }
    }
    println!("Recovery done.");
    if !no_restart {
        let answer = console.ask("Restart the computer now? [Y/n]", Some("y"))?;
        if answer.eq_ignore_ascii_case("y") {
            println!("Restarting...");
            std::io::stdout().flush()?;
            let _ = std::process::Command::new("sync").status();
            let _ = std::process::Command::new("reboot").arg("-f").status();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// This computer's whole disks: device and size.
fn local_disks() -> Vec<(PathBuf, u64)> {
    cloudkeep_repo::image::devices::list()
        .into_iter()
        .filter(|d| d.kind == cloudkeep_repo::image::devices::DeviceKind::Disk)
        .map(|d| (d.path, d.size))
        .collect()
}

/// A disk of this computer for `size` bytes: chosen from those large enough, or typed.
fn pick_target(
    console: &mut Console,
    disks: &[(PathBuf, u64)],
    size: u64,
    used: &[PathBuf],
) -> anyhow::Result<PathBuf> {
    let fit: Vec<&(PathBuf, u64)> = disks
        .iter()
        .filter(|(p, s)| *s >= size && !used.contains(p))
        .collect();
    if fit.is_empty() {
        let typed = console.ask("No disk here is large enough; type a device to use", None)?;
        return Ok(PathBuf::from(typed));
    }
    for (i, (p, s)) in fit.iter().enumerate() {
        println!("  {}) {}  {}", i + 1, p.display(), human_bytes(*s));
    }
    loop {
        let answer = console.ask("Disk (a number, or a device path)", Some("1"))?;
        if answer.starts_with('/') {
            return Ok(PathBuf::from(answer));
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=fit.len()).contains(&n) => return Ok(fit[n - 1].0.clone()),
            _ => println!("type a number from 1 to {}, or a device path", fit.len()),
        }
    }
}

/// Adds the provider (the media's, or one typed); its name.
fn connect(ctx: &TenantContext, console: &mut Console) -> anyhow::Result<String> {
    let media = recovery::media_provider();
    let name = media
        .as_ref()
        .map_or_else(|| "provider".to_owned(), |m| m.name.clone());
    if ctx.block_on(ctx.state().provider(&name)).is_ok() {
        return Ok(name);
    }
    loop {
        let address = console.ask(
            "Provider address",
            media
                .as_ref()
                .and_then(|m| m.addresses.first())
                .map(String::as_str),
        )?;
        let trust = match &media {
            Some(m) => m.fingerprint.clone(),
            None => console.ask(
                "Fingerprint of the provider's certificate (as your provider gave it)",
                None,
            )?,
        };
        let user = console.ask("Login", media.as_ref().map(|m| m.user.as_str()))?;
        let password = match media.as_ref().and_then(|m| m.sealed_password.as_ref()) {
            Some(sealed) => {
                let code = console
                    .secret("One-time code of this recovery media (Enter to type the password)")?;
                if code.trim().is_empty() {
                    console.secret("Password")?
                } else {
                    match recovery::open_password(sealed, &code) {
                        Ok(p) => p,
                        Err(e) => {
                            println!("{e}");
                            continue;
                        }
                    }
                }
            }
            None => console.secret("Password")?,
        };
        let request = cloudkeep_tenant::providers::NewProvider {
            name: name.clone(),
            host: address,
            user,
            password,
            trust: Some(trust),
        };
        match ctx.block_on(cloudkeep_tenant::providers::add(
            ctx.state(),
            ctx.secrets(),
            &request,
        )) {
            Ok(p) => {
                println!("Connected to {} as {}.", p.name, p.user);
                return Ok(name);
            }
            Err(e) => println!("Not connected: {e}"),
        }
    }
}

/// A backup of whole computers at the provider.
struct Chosen {
    repo: String,
    account: Option<String>,
    password: Option<String>,
    job: cloudkeep_tenant::found::FoundJob,
}

/// A backup of whole computers at the provider, chosen.
fn choose_backup(
    ctx: &TenantContext,
    console: &mut Console,
    provider: &str,
) -> anyhow::Result<Chosen> {
    println!("Looking for backups of whole computers...");
    let repos = cloudkeep_tenant::found::repositories(ctx, provider)?;
    let mut offered = Vec::new();
    for r in repos.iter().filter(|r| r.has_backups) {
        let place = match &r.account {
            Some(a) => format!("repository \"{}\" of {a}", r.repo),
            None => format!("repository \"{}\"", r.repo),
        };
        let mut tries = 0;
        loop {
            let password = if r.encrypted {
                Some(console.secret(&format!("Encryption password of {place}"))?)
            } else {
                None
            };
            match cloudkeep_tenant::found::jobs_in(
                ctx,
                provider,
                &r.repo,
                r.account.as_deref(),
                password.as_deref(),
            ) {
                Ok(jobs) => {
                    for job in jobs.into_iter().filter(|j| j.level == "image") {
                        offered.push(Chosen {
                            repo: r.repo.clone(),
                            account: r.account.clone(),
                            password: password.clone(),
                            job,
                        });
                    }
                    break;
                }
                Err(e) if tries < 2 => {
                    println!("{e}");
                    tries += 1;
                }
                Err(e) => {
                    println!("{place} skipped: {e}");
                    break;
                }
            }
        }
    }
    if offered.is_empty() {
        anyhow::bail!(
            "no backup of whole computers (image level) was found at this provider; restore files from another computer instead"
        );
    }
    for (i, Chosen { job: j, .. }) in offered.iter().enumerate() {
        println!(
            "  {}) {} - from {}, {} point(s), newest {}",
            i + 1,
            j.name,
            j.computers.join(", "),
            j.points,
            cloudkeep_model::units::date_time_text(j.newest_ms)
        );
    }
    let chosen = console.choose("Which backup", offered.len())?;
    Ok(offered.swap_remove(chosen))
}
