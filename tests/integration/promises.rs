//! The project's promises to a newcomer and to CI: the README opens with exactly two
//! set-up commands, `.ci/run` calls exactly the second, and both scripts exist and run
//! under bash.

use cloudkeep_tests::repo_root;

/// The commands of the README's first fenced block, without comments.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let block = readme
        .split("```")
        .nth(1)
        .expect("README.md has a fenced block of set-up commands");
    block
        .lines()
        .skip(1) // the fence's language tag
        .map(|line| line.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn readme_opens_with_exactly_two_commands() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let before_block = readme.split("```").next().unwrap();
    assert!(
        before_block.lines().count() < 12,
        "the set-up commands come at the top of README.md"
    );
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[0].contains("scripts/console"), "{commands:?}");
    assert!(commands[1].contains("scripts/test"), "{commands:?}");
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    let ci_commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    let test_command = &readme_commands()[1];
    assert_eq!(
        ci_commands.last().map(|c| c.trim_start_matches("exec ")),
        Some(test_command.as_str()),
        ".ci/run must end by running the README's test command"
    );
}

#[test]
fn scripts_parse_under_bash() {
    for script in [
        "scripts/console",
        "scripts/test",
        "scripts/lib.sh",
        ".ci/run",
    ] {
        let path = repo_root().join(script);
        assert!(path.is_file(), "{script} exists");
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "{script} has a bash syntax error");
        #[cfg(unix)]
        if script != "scripts/lib.sh" {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert!(mode & 0o111 != 0, "{script} is executable");
        }
    }
}
