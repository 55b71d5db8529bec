//! Tidiness rules a reviewer would otherwise have to remember: every file says what it
//! owns, the UI never turns data into markup, and only `ipc.js` talks to the backend.

use cloudkeep_tests::{relative, repo_root, source_files};

const RUST_DIRS: &[&str] = &["core", "cli", "src-tauri", "tests"];

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let mut missing = Vec::new();
    for dir in RUST_DIRS {
        for path in source_files(dir, &["rs"]) {
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(relative(&path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these files must start with a `//!` line saying what they own: {missing:?}"
    );
}

#[test]
fn every_ui_module_opens_with_a_comment() {
    let files = source_files("ui", &["js", "css"]);
    assert!(files.len() >= 5, "ui/ has its modules: {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let first = text.trim_start();
            !(first.starts_with("//") || first.starts_with("/*"))
        })
        .map(|p| relative(p))
        .collect();
    assert!(
        missing.is_empty(),
        "these UI files must start with a comment saying what they own: {missing:?}"
    );
}

#[test]
fn ui_never_builds_markup_from_strings() {
    for path in source_files("ui", &["js", "html"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(
                !text.contains(banned),
                "{} uses {banned}; build elements with dom.js (createElement, textContent)",
                relative(&path)
            );
        }
        if path.extension().is_some_and(|e| e == "html") {
            assert!(
                !has_inline_handler(&text),
                "{} has an inline event handler; wire behaviour with data-action",
                relative(&path)
            );
            assert!(
                !text.contains("<script>") && !text.contains("style=\""),
                "{} has inline script or style, which the CSP forbids",
                relative(&path)
            );
        }
    }
}

/// True when an HTML text has an attribute such as ` onclick=`.
fn has_inline_handler(text: &str) -> bool {
    text.match_indices(" on").any(|(i, _)| {
        let rest = &text[i + 3..];
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

/// A view's imports of other views, as the module paths it names.
fn view_imports(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("import "))
        .filter_map(|l| l.split(" from ").nth(1))
        .map(|from| {
            from.trim()
                .trim_end_matches(';')
                .trim_matches('\'')
                .to_owned()
        })
        .filter(|from| from.starts_with("./"))
        .collect()
}

#[test]
fn views_do_not_import_each_other_or_spell_the_input_rules() {
    for path in source_files("ui/views", &["js"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            view_imports(&text),
            Vec::<String>::new(),
            "{} imports another view; move what they share to a module of ui/ (steps.js, lists.js, components.js)",
            relative(&path)
        );
    }
    for path in source_files("ui", &["js"]) {
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for rule in ["[a-za-z0-9][a-za-z0-9._-]", "length < 8", "least 8"] {
            assert!(
                !text.contains(rule),
                "{} spells an input rule ({rule}); use ui/rules.js, which has them from core",
                relative(&path)
            );
        }
    }
    // An unlimited quota (`-1` on the wire) is read in one place, ui/format.js.
    for path in source_files("ui", &["js"]) {
        if relative(&path) == "ui/format.js" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap().replace(' ', "");
        for reading in ["_bytes<0", "_bytes>=0", "_bytes>0", "_bytes===0", "?-1:"] {
            assert!(
                !text.contains(reading),
                "{} reads an unlimited quota itself ({reading}); use fmt.isUnlimited / fmt.quotaShare",
                relative(&path)
            );
        }
    }
    // The check itself: a planted import of a view is seen.
    assert_eq!(
        view_imports("import { repoBars } from './home.js';\nimport * as fmt from '../format.js';"),
        ["./home.js"]
    );
}

#[test]
fn only_ipc_js_calls_the_backend() {
    let ipc = repo_root().join("ui/ipc.js");
    for path in source_files("ui", &["js"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        if path != ipc {
            assert!(
                !text.contains("invoke(") && !text.contains("__TAURI__"),
                "{} calls the backend directly; add a function to ui/ipc.js instead",
                relative(&path)
            );
        }
    }
}

#[test]
fn no_placeholders_in_product_code() {
    for dir in ["core", "cli", "src-tauri", "ui"] {
        for path in source_files(dir, &["rs", "js", "html"]) {
            let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
            for banned in [
                "todo!(",
                "unimplemented!(",
                "coming soon",
                "not yet implemented",
            ] {
                assert!(
                    !text.contains(banned),
                    "{} contains {banned:?}: build it or leave it out",
                    relative(&path)
                );
            }
        }
    }
}
