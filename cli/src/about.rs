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
    let about = AboutInfo::for_home(&DataHome::locate()?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&about)?);
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
    Ok(())
}
