//! The dependency rules of ARCHITECTURE.md, checked: core knows no user interface, the
//! binaries do not know each other, the WebDriver suite stays out of the main workspace,
//! and the code map names every core module.

use cloudkeep_tests::{relative, repo_root, source_files};

fn manifest(path: &str) -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Names of every dependency (normal, dev, build) of a manifest.
fn dependencies(table: &toml::Table) -> Vec<String> {
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| table.get(*k).and_then(toml::Value::as_table))
        .flat_map(|deps| deps.keys().cloned())
        .collect()
}

#[test]
fn core_knows_no_user_interface() {
    let deps = dependencies(&manifest("core/Cargo.toml"));
    for banned in [
        "tauri",
        "tauri-build",
        "clap",
        "indicatif",
        "rfd",
        "cloudkeep-cli",
        "cloudkeep-console",
        "anyhow",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "core must not depend on {banned}: it is the UI-free library (anyhow belongs to binaries)"
        );
    }
}

#[test]
fn binaries_depend_on_core_not_on_each_other() {
    let cli = dependencies(&manifest("cli/Cargo.toml"));
    let console = dependencies(&manifest("src-tauri/Cargo.toml"));
    assert!(cli.contains(&"cloudkeep-core".to_owned()));
    assert!(console.contains(&"cloudkeep-core".to_owned()));
    assert!(!cli.iter().any(|d| d.starts_with("tauri")));
    assert!(!console.contains(&"cloudkeep-cli".to_owned()));
    assert!(!console.contains(&"clap".to_owned()));
}

#[test]
fn webdriver_suite_is_its_own_workspace() {
    let root = manifest("Cargo.toml");
    let workspace = root["workspace"].as_table().unwrap();
    let excluded: Vec<_> = workspace["exclude"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(toml::Value::as_str)
        .collect();
    assert!(excluded.contains(&"tests/e2e"));
    let e2e = manifest("tests/e2e/Cargo.toml");
    assert!(
        e2e.contains_key("workspace"),
        "tests/e2e/Cargo.toml declares its own [workspace]"
    );
    for member in ["core", "cli", "src-tauri", "tests"] {
        let m = manifest(&format!("{member}/Cargo.toml"));
        assert_eq!(
            m["lints"]["workspace"].as_bool(),
            Some(true),
            "{member} inherits [workspace.lints]"
        );
    }
}

#[test]
fn code_map_names_every_core_module_and_crate() {
    let map = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    for path in source_files("core/src", &["rs"])
        .into_iter()
        .chain(source_files("src-tauri/src", &["rs"]))
        .chain(source_files("cli/src", &["rs"]))
        .chain(source_files("ui", &["js"]))
    {
        let rel = relative(&path);
        assert!(
            map.contains(&format!("`{rel}`")),
            "ARCHITECTURE.md's code map does not mention `{rel}`; add a line saying what it owns"
        );
    }
}

#[test]
fn every_console_command_is_declared_and_granted() {
    let handler = std::fs::read_to_string(repo_root().join("src-tauri/src/lib.rs")).unwrap();
    let build = std::fs::read_to_string(repo_root().join("src-tauri/build.rs")).unwrap();
    let capability: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("src-tauri/capabilities/main-window.json"))
            .unwrap(),
    )
    .unwrap();
    let granted: Vec<&str> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let commands: String = std::fs::read_dir(repo_root().join("src-tauri/src/commands"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let names: Vec<String> = commands
        .split("#[tauri::command]")
        .skip(1)
        .filter_map(|rest| {
            let after = rest.split("fn ").nth(1)?;
            Some(after.split('(').next()?.trim().to_owned())
        })
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        assert!(
            handler.contains(&format!("::{name},")),
            "{name} missing in generate_handler!"
        );
        assert!(
            build.contains(&format!("\"{name}\"")),
            "{name} missing in build.rs COMMANDS"
        );
        let permission = format!("allow-{}", name.replace('_', "-"));
        assert!(
            granted.contains(&permission.as_str()),
            "{permission} not granted in capabilities/main-window.json"
        );
    }
    assert_eq!(
        granted.len(),
        names.len(),
        "the main window is granted exactly the app's own commands: {granted:?}"
    );
}
