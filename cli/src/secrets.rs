//! Reading passwords the way the CLI promises (DESIGN §9): from stdin or a file, never from
//! the command line.

use std::io::BufRead;

use anyhow::{Context, bail};

/// The first line of stdin, without its line ending; refuses an empty one.
pub fn stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!(
            "the {what} given on stdin is empty; pipe it in, e.g. `printf '%s\\n' \"$PW\" | cloudkeep …`"
        );
    }
    Ok(line)
}

/// A random password for accounts the CLI creates without being given one.
pub fn generate_password() -> anyhow::Result<String> {
    Ok(cloudkeep_repo::crypto::generate_password()?)
}
