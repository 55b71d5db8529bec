//! The runtime at the head of the Cloudkeep Console's AppImage (type 2): the SquashFS image
//! appended to this program holds the console and its `AppRun`. Run without `--appimage-*`
//! options it unpacks the image into a private folder and starts `AppRun` with the arguments
//! (no FUSE mount, so it runs where FUSE is missing too); the options are those of the
//! AppImage specification's runtime.
//!
//! Code map: `elf` finds where the image starts, `extract` unpacks it, `run` starts it.

#[cfg(unix)]
mod elf;
#[cfg(unix)]
mod extract;
#[cfg(unix)]
mod run;

use std::process::ExitCode;

const HELP: &str = "\
This is the Cloudkeep Console as an AppImage. Run it to start the console; arguments go to it.
AppImage options:
  --appimage-extract           unpack the image into ./squashfs-root
  --appimage-extract-and-run   unpack into a private temporary folder and run (what running does)
  --appimage-offset            print where the image starts in this file
  --appimage-version           print this runtime's version
  --appimage-help              print this help";

fn main() -> ExitCode {
    match app() {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("cloudkeep AppImage: {message}");
            ExitCode::from(127)
        }
    }
}

#[cfg(unix)]
fn app() -> Result<u8, String> {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let image = std::env::current_exe()
        .map_err(|e| format!("cannot find this AppImage's own file: {e}"))?;
    let offset = || -> Result<u64, String> {
        let mut file = std::fs::File::open(&image)
            .map_err(|e| format!("cannot read {}: {e}", image.display()))?;
        if !elf::has_appimage_magic(&mut file).map_err(|e| e.to_string())? {
            return Err(format!(
                "{} is the bare AppImage runtime, not an AppImage (scripts/package makes one)",
                image.display()
            ));
        }
        elf::elf_end(&mut file).map_err(|e| e.to_string())
    };
    let option = args
        .first()
        .and_then(|a| a.to_str())
        .filter(|a| a.starts_with("--appimage-"));
    match option {
        None | Some("--appimage-extract-and-run") => {
            if option.is_some() {
                args.remove(0);
            }
            run::run(&image, offset()?, args).map_err(|e| e.to_string())
        }
        Some("--appimage-offset") => {
            println!("{}", offset()?);
            Ok(0)
        }
        Some("--appimage-extract") => {
            if args.len() > 1 {
                return Err(
                    "--appimage-extract unpacks the whole image; it takes no pattern".into(),
                );
            }
            let dest = std::path::Path::new("squashfs-root");
            std::fs::create_dir(dest).map_err(|e| {
                format!("cannot make ./squashfs-root ({e}); remove it or run from another folder")
            })?;
            let files = extract::extract(&image, offset()?, dest).map_err(|e| e.to_string())?;
            println!("unpacked {files} files into squashfs-root");
            Ok(0)
        }
        Some("--appimage-version") => {
            println!("cloudkeep-appimage-runtime {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Some("--appimage-help") => {
            println!("{HELP}");
            Ok(0)
        }
        Some(other) => Err(format!("unknown option {other}\n{HELP}")),
    }
}

#[cfg(not(unix))]
fn app() -> Result<u8, String> {
    Err(format!("an AppImage runs on Linux only\n{HELP}"))
}
