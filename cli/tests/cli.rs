//! The `cloudkeep` binary as a user runs it: version, help, `about`, exit codes.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use expect_test::expect;

fn cloudkeep(args: &[&str], home: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudkeep"));
    cmd.args(args).env_remove("RUST_LOG");
    match home {
        Some(home) => cmd.env("CLOUDKEEP_HOME", home),
        None => cmd.env_remove("CLOUDKEEP_HOME"),
    };
    crate::support::output(&mut cmd)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn version_is_the_core_version() {
    let out = cloudkeep(&["--version"], None);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("cloudkeep {}", cloudkeep_model::VERSION)
    );
}

#[test]
fn help_lists_only_real_subcommands() {
    let out = cloudkeep(&["--help"], None);
    assert!(out.status.success());
    expect![[r#"
        Cloudkeep: backup to your service provider's cloud repositories

        Usage: cloudkeep [OPTIONS] <COMMAND>

        Commands:
          about           Show this build's version, protocol and where Cloudkeep keeps its data and logs
          local           Back up to and restore from a repository in a local folder
          gateway         Create and run an SP cloud gateway on this machine
          sp              Administer a gateway as the service provider: tenants, quotas, repositories,
                          certificate
          provider        The service providers you back up to: add (with the certificate check), list,
                          trust
          repo            Your cloud repositories at your service providers
          job             Backup jobs: create, list, show, delete, run
          points          Restore points of a job
          restore         Restore from a restore point
          verify          Health check of a job's repository or a backup file: re-read and authenticate its
                          data
          notify          Where this computer sends word of failed runs, failed restore tests and suspicious
                          runs: email (SMTP with TLS) or a webhook
          daemon          Run scheduled jobs when they are due (without the console)
          subtenant       Your subtenants at a provider, with quotas carved from yours
          policy          Backup policies: one job template for many computers, each with its own subtenant
          agent           This computer's agent under a backup policy: enroll, run
          lab             A service provider on this computer, with a demo tenant, for trying everything
          replica         Cloud replication at your provider: your hardware plans
          failover-plan   The order your replicas start in at failover, each waiting for the last to answer
          nea             This computer as a network extension appliance: your site's network joined to your
                          network at the provider, so failed-over replicas keep their addresses
          host            Run this machine as a cloud host of a service provider (Linux with QEMU/KVM): it
                          runs tenants' replicas
          recovery-media  Bootable recovery media: restore a dead or blank computer from your provider
          recovery        Restore this whole computer from your provider, question by question (what
                          recovery media run when booted)
          help            Print this message or the help of the given subcommand(s)

        Options:
          -v, --verbose...  More detail on stderr (-v info, -vv debug, -vvv trace)
          -q, --quiet...    Less on stderr (-q errors only, -qq nothing)
          -h, --help        Print help
          -V, --version     Print version
    "#]]
    .assert_eq(&stdout(&out));
}

#[test]
fn about_json_names_the_data_and_log_folders() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    let out = cloudkeep(&["about", "--json"], Some(home));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let about: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(about["product"], "Cloudkeep");
    assert_eq!(about["version"], cloudkeep_model::VERSION);
    assert_eq!(about["data_folder"], home);
    assert_eq!(
        about["log_folder"],
        std::path::Path::new(home).join("logs").to_str().unwrap()
    );
    assert_eq!(about["protocol_versions"], serde_json::json!([1]));
}

#[test]
fn about_table_is_readable() {
    let home = if cfg!(windows) {
        r"C:\srv\ck"
    } else {
        "/srv/ck"
    };
    let out = cloudkeep(&["about"], Some(home));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.starts_with(&format!("Cloudkeep {}\n", cloudkeep_model::VERSION)));
    assert!(text.contains(&format!("data folder  {home}\n")), "{text}");
    let logs = Path::new(home).join("logs");
    assert!(
        text.contains(&format!("log folder   {}\n", logs.display())),
        "{text}"
    );
}

#[test]
fn relative_home_fails_with_the_fix() {
    let out = cloudkeep(&["about"], Some("not/absolute"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CLOUDKEEP_HOME"), "{err}");
    assert!(err.contains("absolute"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = cloudkeep(&["no-such-command"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = cloudkeep(&["about", "-v", "-q"], None);
    assert_eq!(out.status.code(), Some(2), "-v and -q conflict");
}

#[test]
fn bad_log_filter_is_explained() {
    let out = crate::support::output(
        Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(["about"])
            .env("RUST_LOG", "cloudkeep=notalevel"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RUST_LOG"), "{err}");
    assert!(err.contains("RUST_LOG=info"), "{err}");
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    // `cloudkeep about --json | head -0`: the reader is gone before anything is printed.
    let home = tempfile::tempdir().unwrap();
    for args in [&["about", "--json"][..], &["about"][..], &["--help"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudkeep"))
            .args(args)
            .env("CLOUDKEEP_HOME", home.path())
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// The systemd units shipped in `packaging/` (the agent's, the daemon's) start commands this
/// binary has, with flags it takes.
#[test]
fn packaged_units_run_real_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{} has no ExecStart", path.display()));
        let mut words = exec.split_whitespace();
        assert!(words.next().unwrap().ends_with("/cloudkeep"), "{exec}");
        let mut args: Vec<&str> = words.collect();
        args.push("--help");
        let out = cloudkeep(&args, None);
        assert!(
            out.status.success(),
            "{}: {exec}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "the agent's and the daemon's units");
}
