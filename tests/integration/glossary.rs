//! One thing, one name: every text of the console (`ui/`) against `docs/glossary.md` — no
//! word of its **Not** column, no `(s)` plural, no flag-form schedule, no raw ISO date
//! formatting outside `ui/format.js`, and SP screens never telling the SP about "your
//! service provider".

use cloudkeep_tests::{relative, repo_root, source_files};

/// The glossary's rows: (say, words not to use).
fn glossary() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("docs/glossary.md")).unwrap();
    let rows: Vec<(String, Vec<String>)> = text
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| Say") && !l.starts_with("|--"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let not = cells[2]
                .split(',')
                .map(|w| w.split('(').next().unwrap_or("").trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            (cells[1].to_owned(), not)
        })
        .collect();
    assert!(rows.len() >= 15, "the glossary's table is read: {rows:?}");
    rows
}

/// The string literals of a JavaScript file (template literals without their `${…}` parts),
/// comments left out.
fn literals(js: &str) -> Vec<String> {
    let chars: Vec<char> = js.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            q @ ('\'' | '"' | '`') => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' {
                        i += 1;
                    } else if q == '`' && chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                        // An expression: skipped (its own literals are rare and short).
                        let mut depth = 0;
                        while i < chars.len() {
                            match chars[i] {
                                '{' => depth += 1,
                                '}' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            i += 1;
                        }
                        s.push(' ');
                    } else {
                        s.push(chars[i]);
                    }
                    i += 1;
                }
                out.push(s);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Texts people read: with a space, or starting with a capital (ids, classes, commands and
/// selectors are lower-case single tokens).
fn is_text(s: &str) -> bool {
    s.contains(' ') || s.chars().next().is_some_and(char::is_uppercase)
}

/// Whether `word` (one or more words) is in `text` as whole words, any case.
fn has_word(text: &str, word: &str) -> bool {
    let lower = text.to_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(word) {
        let start = from + at;
        let end = start + word.len();
        let before = lower[..start].chars().next_back();
        let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '-');
        // The word itself or its plural.
        let plural = lower[end..].strip_prefix('s').unwrap_or(&lower[end..]);
        if edge(before) && (edge(lower[end..].chars().next()) || edge(plural.chars().next())) {
            return true;
        }
        from = end;
    }
    false
}

fn ui_texts() -> Vec<(String, String)> {
    let files = source_files("ui", &["js"]);
    assert!(files.len() >= 10, "{files:?}");
    files
        .iter()
        .flat_map(|path| {
            let js = std::fs::read_to_string(path).unwrap();
            let file = relative(path);
            literals(&js)
                .into_iter()
                .filter(|s| is_text(s))
                .map(move |s| (file.clone(), s))
        })
        .collect()
}

#[test]
fn the_console_says_each_thing_by_its_one_name() {
    let rows = glossary();
    let mut wrong = Vec::new();
    for (file, text) in ui_texts() {
        for (say, not) in &rows {
            for word in not {
                if has_word(&text, word) {
                    wrong.push(format!("{file}: “{text}” says “{word}”: say “{say}”"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "docs/glossary.md:\n{}", wrong.join("\n"));
}

#[test]
fn the_consoles_texts_follow_the_glossarys_rules() {
    let schedule_flag = |t: &str| {
        t.char_indices().any(|(i, c)| {
            c == '@'
                && t[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_digit())
        })
    };
    let mut wrong = Vec::new();
    for (file, text) in ui_texts() {
        if text.contains("(s)") {
            wrong.push(format!(
                "{file}: “{text}”: count with fmt.counted, never “(s)”"
            ));
        }
        if schedule_flag(&text) {
            wrong.push(format!(
                "{file}: “{text}”: a schedule reads “daily at 22:00”"
            ));
        }
        if file.starts_with("ui/views/sp-") && has_word(&text, "your service provider") {
            wrong.push(format!("{file}: “{text}”: SP screens speak to the SP"));
        }
    }
    // Dates are formatted in one place.
    for path in source_files("ui", &["js"]) {
        let file = relative(&path);
        let js = std::fs::read_to_string(&path).unwrap();
        for call in [
            "toLocaleDateString",
            "toLocaleString(",
            "toUTCString",
            "toDateString",
        ] {
            if js.contains(call) && file != "ui/format.js" {
                wrong.push(format!("{file}: {call}: format dates with ui/format.js"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/glossary.md rules:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_glossary_checks_catch_what_they_should() {
    assert_eq!(
        literals("a('x y'); // 'no'\n b(`1 ${n ? 'a' : 'b'} files`); /* \"no\" */ c(\"it's\")"),
        ["x y", "1   files", "it's"]
    );
    assert!(has_word("Browse the Snapshot", "snapshot"));
    assert!(!has_word("snapshots-table", "snapshot"));
    assert!(!has_word("the repository", "repo"));
    assert!(has_word("a backup set here", "backup set"));
    assert!(has_word("Loading the key slots…", "key slot"));
    assert!(!has_word("the repositories", "repo"));
}
