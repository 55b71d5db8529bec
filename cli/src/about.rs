//! `cloudkeep about`: the same facts as the console's About panel.

use cloudkeep_model::about::AboutInfo;
use cloudkeep_model::paths::DataHome;

/// Arguments of `cloudkeep about`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (stable field names) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the About facts.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let home = DataHome::locate()?;
    let about = AboutInfo::for_home(&home);
    let now = chrono::Utc::now().timestamp_millis();
    let daemon = cloudkeep_tenant::scheduler::daemon_running(&home, now);
    if args.json {
        let mut out = serde_json::to_value(&about)?;
        out["daemon_running"] = serde_json::Value::Bool(daemon);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let protocols: Vec<String> = about
        .protocol_versions
        .iter()
        .map(|v| format!("v{v}"))
        .collect();
    println!("{} {}", about.product, about.version);
    println!("protocol     {}", protocols.join(", "));
    println!("platform     {} {}", about.os, about.arch);
    println!("data folder  {}", about.data_folder);
    println!("log folder   {}", about.log_folder);
    println!(
        "scheduler    {}",
        if daemon {
            "cloudkeep daemon runs the scheduled jobs"
        } else {
            "scheduled jobs run only while the console is open (install packaging/cloudkeep-daemon.service to run them always)"
        }
    );
    Ok(())
}
