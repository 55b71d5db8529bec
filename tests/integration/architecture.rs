//! The map of ARCHITECTURE.md, checked: which crate may depend on which (through
//! `cargo metadata`, transitively for the external crates a layer must never pull in), which
//! module of a crate may name which (its `crate::` and `super::` paths against a table of
//! layers), what the faces may reach of the gateway, that the binaries do not know each
//! other, and that the code map names every source file. Each rule is also shown failing on a
//! planted forbidden edge, so a rule that silently stopped checking would be noticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cloudkeep_tests::{relative, repo_root, source_files};
use serde_json::Value;

/// Each crate of the workspace and the Cloudkeep crates it may depend on (normal
/// dependencies). Dev-dependencies may reach further: a suite tests through the real peer
/// (the gateway's suite logs in with the real client).
const CRATE_EDGES: &[(&str, &[&str])] = &[
    ("cloudkeep-model", &[]),
    ("cloudkeep-api", &["cloudkeep-model"]),
    ("cloudkeep-repo", &["cloudkeep-model", "cloudkeep-api"]),
    ("cloudkeep-certs", &["cloudkeep-api"]),
    // A published point reads through the repository alone (a FUSE face of its tree); its
    // records live in the data home.
    ("cloudkeep-publish", &["cloudkeep-model", "cloudkeep-repo"]),
    // Notifications speak the wire's event and channel types, nothing else of ours.
    ("cloudkeep-notify", &["cloudkeep-api"]),
    (
        "cloudkeep-gateway",
        &[
            "cloudkeep-model",
            "cloudkeep-api",
            "cloudkeep-repo",
            "cloudkeep-certs",
            "cloudkeep-notify",
        ],
    ),
    (
        "cloudkeep-client",
        &[
            "cloudkeep-model",
            "cloudkeep-api",
            "cloudkeep-repo",
            "cloudkeep-certs",
        ],
    ),
    (
        "cloudkeep-tenant",
        &[
            "cloudkeep-model",
            "cloudkeep-api",
            "cloudkeep-repo",
            "cloudkeep-client",
            "cloudkeep-notify",
        ],
    ),
    // A cloud host reports to the gateways as their client; replicas need no repository.
    (
        "cloudkeep-host",
        &[
            "cloudkeep-model",
            "cloudkeep-api",
            "cloudkeep-certs",
            "cloudkeep-client",
        ],
    ),
    ("cloudkeep-cli", FACE_CRATES),
    ("cloudkeep-console", FACE_CRATES),
    ("cloudkeep-tests", &[]),
    // The AppImage's runtime stands alone: it unpacks and starts the console, nothing more.
    ("cloudkeep-appimage-runtime", &[]),
];

/// What the two faces (the CLI and the console) build on.
const FACE_CRATES: &[&str] = &[
    "cloudkeep-model",
    "cloudkeep-api",
    "cloudkeep-repo",
    "cloudkeep-client",
    "cloudkeep-tenant",
    "cloudkeep-gateway",
    "cloudkeep-publish",
    "cloudkeep-host",
];

/// Crates that must never be in a layer's dependency tree (normal dependencies, at any
/// depth): the repository is synchronous and network-free, the model and the wire types are
/// plain data.
const NEVER_BELOW: &[(&str, &[&str])] = &[
    ("cloudkeep-model", SERVER_STACK),
    ("cloudkeep-api", SERVER_STACK),
    ("cloudkeep-repo", SERVER_STACK),
    ("cloudkeep-certs", SERVER_STACK),
    ("cloudkeep-publish", SERVER_STACK),
];

/// An async runtime, a database, HTTP and TLS.
const SERVER_STACK: &[&str] = &[
    "tokio", "sqlx", "axum", "hyper", "reqwest", "rustls", "tower",
];

/// The API crate's whole list of direct dependencies: serde, chrono and the shared model.
///
/// BLAKE3 too: replication's block fingerprints are part of the protocol (the tenant and the
/// cloud host each compute them and must agree), so the wire crate defines them.
const API_DEPENDENCIES: &[&str] = &["blake3", "chrono", "cloudkeep-model", "serde"];

/// What no domain crate depends on: user-interface and binary-only crates.
const UI_ONLY: &[&str] = &[
    "tauri",
    "tauri-build",
    "clap",
    "indicatif",
    "rfd",
    "anyhow",
    "cloudkeep-cli",
    "cloudkeep-console",
];

/// Inside each crate, its top-level modules in layers, lowest first. A module may name
/// (`crate::m`, or `super::m` from a top-level file) only modules of lower layers; the crate
/// root and a module's own children are exempt (a parent and its children are one unit).
/// Every module must be listed: a new one is placed deliberately.
const MODULE_LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "core/model/src",
        &[
            // Windows access lists, below the data home's owner-only files.
            &["winacl"],
            &[
                "clock",
                "failure",
                "mode",
                "names",
                "paths",
                "retention",
                "schedule",
                "units",
            ],
            &["about"],
        ],
    ),
    (
        "core/api/src",
        &[
            &["accounts", "handoff", "health", "replication"],
            &["notify", "policy"],
        ],
    ),
    (
        "core/repo/src",
        &[
            &["crypto", "signals"],
            &["blobcache", "catalog", "chunker", "compress"],
            // Disks and volumes, above the zero detection of the chunker.
            &["image"],
            &["blob"],
            &["pack"],
            &["backend"],
            &["chunkset", "index"],
            &["refs"],
            // Backup files: the container and its read-only repository over packs.
            &["backupfile"],
            &["fetch"],
            &["repo"],
            &["lock", "saver"],
            &["engine"],
        ],
    ),
    ("core/certs/src", &[]),
    ("core/notify/src", &[]),
    (
        "core/host/src",
        &[
            &["config", "network"],
            &["chain", "facts"],
            &["store"],
            &["machine"],
            &["failback"],
            &["server"],
            &["run"],
        ],
    ),
    (
        "core/publish/src",
        &[
            &["content", "registry", "watchdog"],
            &["volumes"],
            &["tree", "attach"],
            &["fs"],
            &["publication"],
        ],
    ),
    (
        "core/gateway/src",
        &[
            &["metrics", "storage", "store", "tls"],
            &["error"],
            // How the gateway reaches its cloud hosts (their pinned certificates).
            &["auth", "hostlink"],
            &["session"],
            &[
                "keyring",
                "limits",
                "notify",
                "object_lock",
                "packread",
                "policies",
                "recycle",
                "repos",
            ],
            &["health", "replication", "space"],
            &["admin", "check", "moves", "tenant"],
            &["server"],
            &["lab"],
        ],
    ),
    (
        "core/client/src",
        &[
            &["failover", "nbd", "tls"],
            &["remote"],
            &["tenant"],
            &["replication"],
        ],
    ),
    (
        "core/tenant/src",
        &[
            &[
                "failure", "libvirt", "logging", "secrets", "sources", "state",
            ],
            &["context", "providers"],
            // Replicas need a provider, nothing of jobs.
            &["jobs", "replicas"],
            // Failover plans start replicas in order; the network extension appliance joins a
            // plan's network.
            &["failover_plans", "nea"],
            // Ransomware signals judged against a job's sessions.
            &["anomaly"],
            // What a run tells the provider and the notification channels.
            &["notify"],
            &["policies", "runner"],
            // Backup files, which an opened file's catalog entry is made from; restore tests
            // (a restore session of their own).
            &["portable", "restoretest"],
            &["catalog", "keys", "machines", "recovery", "scheduler"],
            &["agent", "found", "live", "overview"],
        ],
    ),
    (
        "cli/src",
        &[
            &[
                "about", "daemon", "exit", "progress", "runtime", "secrets", "service", "shutdown",
            ],
            &["gateway", "notify", "plans", "show"],
            // The image-level commands (`points show`, `restore volume|disk`), publishing
            // (`points mount|unmount`), backup files (`points export|import`, `--from-file`);
            // the cloud host (stopped like a gateway).
            &["image", "publish", "backupfile", "host"],
            // Which provider a command means, for the commands above it.
            &["provider"],
            &[
                "job",
                "lab",
                "local",
                "policy",
                "recovery",
                "sp",
                "subtenant",
            ],
            // The agent's restore is `restore files` of its own job.
            &["agent", "replica"],
            &["failover_plan", "nea"],
        ],
    ),
    (
        "src-tauri/src",
        &[&["error"], &["state"], &["background"], &["commands"]],
    ),
];

/// What the faces may name of the gateway crate: its entry points (crate root), the lab and
/// certificate management; never its handlers, its server internals or its database.
const FACE_GATEWAY_PATHS: &[&str] = &[
    "init",
    "run",
    "InitOptions",
    "RunOptions",
    "Started",
    "GatewayConfig",
    "GatewayError",
    "lab",
    "tls",
];

// ---- crate edges ------------------------------------------------------------------------

/// The workspace as `cargo metadata` resolves it: each package's direct dependencies (name,
/// kind) and, for every resolved package id, its normal dependencies.
struct Graph {
    /// Workspace crate -> (dependency, kind: "normal", "dev" or "build").
    direct: BTreeMap<String, Vec<(String, String)>>,
    /// Package name -> names of its normal dependencies (every version merged).
    normal: BTreeMap<String, BTreeSet<String>>,
}

fn metadata() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // This machine's platform only: the packages of other platforms' dependencies need not be
    // downloaded, and the rules hold per platform.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut names = BTreeMap::new();
    let mut direct = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_owned();
        names.insert(package["id"].as_str().unwrap().to_owned(), name.clone());
        if members.contains(package["id"].as_str().unwrap()) {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (d["name"].as_str().unwrap().to_owned(), kind)
                })
                .collect();
            direct.insert(name, deps);
        }
    }
    let mut normal: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let from = names[node["id"].as_str().unwrap()].clone();
        let entry = normal.entry(from).or_default();
        for dep in node["deps"].as_array().unwrap() {
            let is_normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if is_normal {
                entry.insert(names[dep["pkg"].as_str().unwrap()].clone());
            }
        }
    }
    Graph { direct, normal }
}

/// Everything `name` pulls in through normal dependencies, at any depth.
fn tree_of(graph: &Graph, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.normal.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

/// Every broken crate rule, as a sentence naming the edge.
fn crate_violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (krate, deps) in &graph.direct {
        let Some((_, allowed)) = CRATE_EDGES.iter().find(|(c, _)| c == krate) else {
            found.push(format!(
                "{krate} is not in CRATE_EDGES: place the new crate in the map (and ARCHITECTURE.md)"
            ));
            continue;
        };
        for (dep, kind) in deps {
            if kind == "normal" && dep.starts_with("cloudkeep-") && !allowed.contains(&dep.as_str())
            {
                found.push(format!("{krate} -> {dep}: a forbidden edge between crates"));
            }
            if krate.starts_with("cloudkeep-")
                && !["cloudkeep-cli", "cloudkeep-console"].contains(&krate.as_str())
                && UI_ONLY.contains(&dep.as_str())
            {
                found.push(format!(
                    "{krate} -> {dep}: domain crates know no user interface"
                ));
            }
        }
        if krate == "cloudkeep-api" {
            for (dep, kind) in deps {
                if kind == "normal" && !API_DEPENDENCIES.contains(&dep.as_str()) {
                    found.push(format!(
                        "cloudkeep-api -> {dep}: the wire types depend on serde, chrono, BLAKE3 and the model only"
                    ));
                }
            }
        }
    }
    for (krate, banned) in NEVER_BELOW {
        let tree = tree_of(graph, krate);
        for b in *banned {
            if tree.contains(*b) {
                found.push(format!(
                    "{krate} pulls in {b}: it must stay out of this layer"
                ));
            }
        }
    }
    found
}

#[test]
fn crates_depend_only_along_the_map() {
    let graph = metadata();
    for (krate, _) in CRATE_EDGES {
        assert!(
            graph.direct.contains_key(*krate),
            "{krate} is in CRATE_EDGES but not in the workspace"
        );
    }
    let found = crate_violations(&graph);
    assert!(
        found.is_empty(),
        "forbidden crate edges:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_planted_forbidden_crate_edge_is_caught() {
    let mut graph = metadata();
    // The client importing the gateway, and the repository pulling in an async runtime
    // through a dependency of a dependency.
    graph
        .direct
        .get_mut("cloudkeep-client")
        .unwrap()
        .push(("cloudkeep-gateway".into(), "normal".into()));
    graph
        .normal
        .entry("zstd".into())
        .or_default()
        .insert("tokio".into());
    graph
        .direct
        .get_mut("cloudkeep-api")
        .unwrap()
        .push(("sha2".into(), "normal".into()));
    let found = crate_violations(&graph);
    for expected in [
        "cloudkeep-client -> cloudkeep-gateway",
        "cloudkeep-repo pulls in tokio",
        "cloudkeep-api -> sha2",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "the planted edge {expected} was not caught: {found:?}"
        );
    }
    // A test dependency may cross: the gateway's suite uses the real client.
    assert!(!found.iter().any(|f| f.starts_with("cloudkeep-gateway ->")));
}

// ---- module edges -----------------------------------------------------------------------

/// The source of a file as far as the map is concerned: its code before the unit tests, with
/// comments removed (a doc link is not a dependency).
fn code_of(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    before_tests
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules of the crate that a file's code names: `crate::m…`, `crate::{m, …}`, and
/// `super::m…` from a top-level file.
fn named_modules(code: &str, top_level_file: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["crate::"];
    if top_level_file {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // part of a longer path such as `a::super::`
            }
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    out.insert(ident(item.trim()));
                }
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level module a file of a crate belongs to (`None` for the crate root).
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!["lib", "main"].contains(&name)).then(|| name.to_owned())
}

/// Every broken module rule of one crate, given its files as (path inside `src`, text).
fn module_violations(dir: &str, files: &[(std::path::PathBuf, String)]) -> Vec<String> {
    let layers = MODULE_LAYERS
        .iter()
        .find(|(d, _)| *d == dir)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("{dir} has no entry in MODULE_LAYERS"));
    let layer_of = |m: &str| layers.iter().position(|layer| layer.contains(&m));
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| top_module(p)).collect();
    let mut found = Vec::new();
    for m in &modules {
        if layer_of(m).is_none() {
            found.push(format!(
                "{dir}: module {m} is not in MODULE_LAYERS; place it in a layer"
            ));
        }
    }
    for (rel, text) in files {
        let Some(from) = top_module(rel) else {
            continue;
        };
        let Some(from_layer) = layer_of(&from) else {
            continue;
        };
        let top_level_file = rel.components().count() == 1;
        for to in named_modules(&code_of(text), top_level_file) {
            if to == from || !modules.contains(&to) {
                continue; // itself, or an item of the crate root
            }
            if layer_of(&to).is_some_and(|to_layer| to_layer >= from_layer) {
                found.push(format!(
                    "{dir}/{}: {from} -> {to}: a module names one of its own layer or above",
                    rel.display()
                ));
            }
        }
    }
    found
}

fn crate_files(dir: &str) -> Vec<(std::path::PathBuf, String)> {
    let base = repo_root().join(dir);
    source_files(dir, &["rs"])
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(&base).unwrap().to_path_buf(), text)
        })
        .collect()
}

#[test]
fn modules_name_only_lower_layers() {
    let mut found = Vec::new();
    for (dir, _) in MODULE_LAYERS {
        found.extend(module_violations(dir, &crate_files(dir)));
    }
    assert!(
        found.is_empty(),
        "forbidden module edges:\n{}",
        found.join("\n")
    );
}

/// The files of the crate in `dir` with `text` put at the top of its file `name`.
fn planted(dir: &str, name: &str, text: &str) -> Vec<(std::path::PathBuf, String)> {
    let mut files = crate_files(dir);
    let (_, code) = files
        .iter_mut()
        .find(|(p, _)| p == Path::new(name))
        .unwrap_or_else(|| panic!("{dir} has no {name}"));
    code.insert_str(0, text);
    files
}

#[test]
fn a_planted_forbidden_module_edge_is_caught() {
    // A shared helper reaching up into the server that routes to it: a cycle.
    let files = planted(
        "core/gateway/src",
        "session.rs",
        "use crate::server::router;\n",
    );
    let found = module_violations("core/gateway/src", &files);
    assert!(
        found.iter().any(|f| f.contains("session -> server")),
        "the planted edge was not caught: {found:?}"
    );
    // A doc link is not an edge.
    let files = planted("core/repo/src", "crypto.rs", "//! See [`crate::engine`].\n");
    assert!(module_violations("core/repo/src", &files).is_empty());
}

// ---- the faces --------------------------------------------------------------------------

/// What a face's code names of the gateway crate beyond its entry points.
fn face_violations(files: &[(std::path::PathBuf, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, text) in files {
        let code = code_of(text);
        for (at, _) in code.match_indices("cloudkeep_gateway::") {
            let rest = &code[at + "cloudkeep_gateway::".len()..];
            let names: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(|i| ident(i.trim()))
                    .collect(),
                None => vec![ident(rest)],
            };
            for name in names.into_iter().filter(|n| !n.is_empty()) {
                if !FACE_GATEWAY_PATHS.contains(&name.as_str()) {
                    found.push(format!(
                        "{}: names cloudkeep_gateway::{name}; a face starts the gateway through its entry points only",
                        rel.display()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn the_faces_reach_the_gateway_through_its_entry_points_only() {
    for dir in ["cli/src", "src-tauri/src"] {
        let found = face_violations(&crate_files(dir));
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
    let planted = vec![(
        std::path::PathBuf::from("sp.rs"),
        "use cloudkeep_gateway::store::Db;\nuse cloudkeep_gateway::{run, admin};\n".to_owned(),
    )];
    let found = face_violations(&planted);
    assert_eq!(found.len(), 2, "both planted imports are caught: {found:?}");
}

#[test]
fn binaries_do_not_know_each_other() {
    let graph = metadata();
    let names =
        |k: &str| -> Vec<String> { graph.direct[k].iter().map(|(d, _)| d.clone()).collect() };
    let (cli, console) = (names("cloudkeep-cli"), names("cloudkeep-console"));
    assert!(!cli.iter().any(|d| d.starts_with("tauri")));
    assert!(!console.contains(&"cloudkeep-cli".to_owned()));
    assert!(!console.contains(&"clap".to_owned()));
}

// ---- workspace shape --------------------------------------------------------------------

fn manifest(path: &str) -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The workspace members, from the root manifest.
fn members() -> Vec<String> {
    manifest("Cargo.toml")["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn webdriver_suite_and_fuzzers_are_their_own_workspaces() {
    let root = manifest("Cargo.toml");
    let excluded: Vec<_> = root["workspace"]["exclude"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(toml::Value::as_str)
        .collect();
    for own in ["tests/e2e", "core/fuzz", "core/repo/fuzz"] {
        assert!(
            excluded.contains(&own),
            "{own} is excluded from the workspace"
        );
        assert!(
            manifest(&format!("{own}/Cargo.toml")).contains_key("workspace"),
            "{own}/Cargo.toml declares its own [workspace]"
        );
    }
    for member in members() {
        let m = manifest(&format!("{member}/Cargo.toml"));
        assert_eq!(
            m["lints"]["workspace"].as_bool(),
            Some(true),
            "{member} inherits [workspace.lints]"
        );
    }
}

#[test]
fn each_crate_has_one_integration_test_binary() {
    for member in members() {
        let dir = repo_root().join(&member).join("tests");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            continue;
        }
        let m = manifest(&format!("{member}/Cargo.toml"));
        assert_eq!(
            m["package"].get("autotests").and_then(toml::Value::as_bool),
            Some(false),
            "{member}: autotests = false, one binary (tests/main.rs) instead of one per file"
        );
        let tests = m["test"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(tests, 1, "{member} declares exactly one [[test]]");
    }
}

#[test]
fn code_map_names_every_source_file() {
    let map = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let mut dirs: Vec<String> = MODULE_LAYERS.iter().map(|(d, _)| (*d).to_owned()).collect();
    dirs.push("ui".into());
    for dir in &dirs {
        let ext = if dir == "ui" { "js" } else { "rs" };
        for path in source_files(dir, &[ext]) {
            let rel = relative(&path);
            assert!(
                map.contains(&format!("`{rel}`")),
                "ARCHITECTURE.md's code map does not mention `{rel}`; add a line saying what it owns"
            );
        }
    }
    for (krate, _) in CRATE_EDGES {
        assert!(
            map.contains(&format!("`{krate}`")),
            "ARCHITECTURE.md does not name the crate `{krate}`"
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
