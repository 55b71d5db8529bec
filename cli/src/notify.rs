//! `cloudkeep notify …` (this computer's notifications) and the channel options `cloudkeep sp
//! notify set` shares: where failed runs, failed restore tests and suspicious runs are sent —
//! an email through an SMTP server (STARTTLS or TLS, never in the clear) and a webhook.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use cloudkeep_api::notify::{Channels, EmailChannel, SmtpSecurity, WebhookChannel};
use cloudkeep_tenant::TenantContext;

use crate::secrets;

/// Arguments of `cloudkeep notify`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: NotifyCommand,
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Where this computer's notifications go.
    Show,
    /// Set where they go (replaces what was set; the SMTP password stays unless given).
    Set(ChannelArgs),
    /// Send a test notification to every channel.
    Test,
    /// Send no more notifications from this computer.
    Clear,
}

/// The channels, as options.
#[derive(Debug, ClapArgs)]
pub struct ChannelArgs {
    /// The SMTP server's host name (email notifications).
    #[arg(long, value_name = "HOST", requires_all = ["from", "to"])]
    smtp_server: Option<String>,
    /// Its port (default: 587 for STARTTLS, 465 for TLS).
    #[arg(long, value_name = "PORT")]
    smtp_port: Option<u16>,
    /// starttls (the default) or tls.
    #[arg(long, value_name = "MODE", default_value = "starttls", value_parser = parse_security)]
    smtp_security: SmtpSecurity,
    /// The login at the SMTP server.
    #[arg(long, value_name = "USER")]
    smtp_user: Option<String>,
    /// Read the SMTP password from stdin.
    #[arg(long, requires = "smtp_user")]
    smtp_password_stdin: bool,
    /// A private certificate authority the SMTP server's certificate is signed by (PEM file).
    #[arg(long, value_name = "FILE")]
    smtp_ca: Option<PathBuf>,
    /// The sender address.
    #[arg(long, value_name = "ADDRESS")]
    from: Option<String>,
    /// A recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    to: Vec<String>,
    /// A webhook: https://… (http:// only to this computer).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// A private certificate authority the webhook's certificate is signed by (PEM file).
    #[arg(long, value_name = "FILE")]
    webhook_ca: Option<PathBuf>,
}

fn parse_security(text: &str) -> Result<SmtpSecurity, String> {
    match text {
        "starttls" => Ok(SmtpSecurity::Starttls),
        "tls" => Ok(SmtpSecurity::Tls),
        other => Err(format!("\"{other}\": use starttls or tls")),
    }
}

fn read_pem(path: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    path.as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
        })
        .transpose()
}

impl ChannelArgs {
    /// The channels these options name.
    pub fn channels(&self) -> anyhow::Result<Channels> {
        let email = match &self.smtp_server {
            None => None,
            Some(server) => Some(EmailChannel {
                server: server.clone(),
                port: self.smtp_port.unwrap_or(match self.smtp_security {
                    SmtpSecurity::Starttls => 587,
                    SmtpSecurity::Tls => 465,
                }),
                security: self.smtp_security,
                user: self.smtp_user.clone(),
                password: if self.smtp_password_stdin {
                    Some(secrets::stdin_line("SMTP password")?)
                } else {
                    None
                },
                from: self.from.clone().unwrap_or_default(),
                to: self.to.clone(),
                ca_pem: read_pem(&self.smtp_ca)?,
            }),
        };
        let webhook = match &self.webhook {
            None => None,
            Some(url) => Some(WebhookChannel {
                url: url.clone(),
                ca_pem: read_pem(&self.webhook_ca)?,
            }),
        };
        if email.is_none() && webhook.is_none() {
            anyhow::bail!("give --smtp-server (with --from and --to) or --webhook, or both");
        }
        Ok(Channels { email, webhook })
    }
}

/// Prints channels for people.
pub fn print_channels(c: &Channels) {
    match &c.email {
        Some(e) => println!(
            "email:   {} via {}:{} ({}){}",
            e.to.join(", "),
            e.server,
            e.port,
            match e.security {
                SmtpSecurity::Starttls => "STARTTLS",
                SmtpSecurity::Tls => "TLS",
            },
            e.user
                .as_ref()
                .map_or(String::new(), |u| format!(", as {u}"))
        ),
        None => println!("email:   none"),
    }
    match &c.webhook {
        Some(w) => println!("webhook: {}", w.url),
        None => println!("webhook: none"),
    }
    println!("sent for: failed runs, failed restore tests, runs that look like ransomware");
}

/// Prints the outcome of a test per channel; failure when one did not take it.
pub fn print_tried(tried: &[(String, Option<String>)], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let rows: Vec<_> = tried
            .iter()
            .map(|(c, e)| serde_json::json!({"channel": c, "error": e}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for (channel, error) in tried {
            match error {
                None => println!("{channel}: sent"),
                Some(e) => println!("{channel}: NOT sent: {e}"),
            }
        }
    }
    Ok(if tried.iter().all(|(_, e)| e.is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

/// Runs `cloudkeep notify …`.
pub fn run_command(args: Args, ctx: &TenantContext) -> anyhow::Result<ExitCode> {
    use cloudkeep_tenant::notify;
    let show = |c: &Channels| -> anyhow::Result<()> {
        if args.json {
            println!("{}", serde_json::to_string_pretty(c)?);
        } else {
            print_channels(c);
        }
        Ok(())
    };
    match &args.command {
        NotifyCommand::Show => show(&notify::channels(ctx)?)?,
        NotifyCommand::Set(channel_args) => {
            show(&notify::set_channels(ctx, channel_args.channels()?)?)?;
        }
        NotifyCommand::Clear => {
            notify::set_channels(ctx, Channels::default())?;
            println!("this computer sends no notifications");
        }
        NotifyCommand::Test => {
            let tried: Vec<_> = notify::test(ctx)?
                .into_iter()
                .map(|(c, e)| (c.to_owned(), e))
                .collect();
            return print_tried(&tried, args.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
