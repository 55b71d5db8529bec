//! Names people give things — accounts, jobs, policies, computers, cloud repositories, admins —
//! and the one rule they share: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter
//! or digit (no `/`: it separates a tenant from its subtenant; no spaces or path characters: a
//! name becomes part of logins, file names and URLs). One rule, one message that names the kind
//! of thing it refuses.

/// The longest name, in characters.
pub const MAX_LEN: usize = 64;

/// The fewest characters a password of an account or an encrypted repository may have.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The rule in words, for messages and forms.
pub const RULE: &str = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/// The rules the console's forms check as you type, from here so that they never drift from
/// what the crates check again (`input_rules` in the console).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputRules {
    /// The name rule as a regular expression (JavaScript and Rust syntax alike).
    pub name_pattern: String,
    /// The name rule in words.
    pub name_rule: &'static str,
    /// The longest name.
    pub name_max: usize,
    /// The fewest characters of a password.
    pub password_min: usize,
}

/// The input rules, for the console.
pub fn input_rules() -> InputRules {
    InputRules {
        name_pattern: format!("^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$", MAX_LEN - 1),
        name_rule: RULE,
        name_max: MAX_LEN,
        password_min: MIN_PASSWORD_CHARS,
    }
}

/// Whether a password is long enough; the message says what is needed.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else {
        Ok(())
    }
}

/// A name that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{name}\" is not a valid {what} name: use {RULE}")]
pub struct BadName {
    /// What it names: "account", "job", "policy", "computer", "cloud repository".
    pub what: &'static str,
    /// The name as given.
    pub name: String,
}

/// Checks the name of a `what`.
pub fn check(what: &'static str, name: &str) -> Result<(), BadName> {
    let ok = (1..=MAX_LEN).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BadName {
            what,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_one_rule_and_say_what_they_name() {
        for good in ["a", "acme", "laptop-7", "x.y_z", &"a".repeat(64)] {
            assert!(check("job", good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "ü", &"a".repeat(65), "../etc"] {
            assert!(check("job", bad).is_err(), "{bad}");
        }
        let e = check("job", "my job").unwrap_err().to_string();
        assert!(e.contains("not a valid job name"), "{e}");
    }

    #[test]
    fn the_forms_pattern_is_the_rule() {
        // The console checks names with this pattern; a tiny matcher of its one shape shows
        // it accepts and refuses exactly what `check` does.
        let rules = input_rules();
        assert_eq!(rules.name_pattern, "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
        let matches = |name: &str| {
            let mut chars = name.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && name.len() <= rules.name_max
                && chars.all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        };
        for name in [
            "a",
            "acme",
            "x.y_z",
            "-x",
            "a b",
            "",
            &"a".repeat(64),
            &"a".repeat(65),
        ] {
            assert_eq!(matches(name), check("job", name).is_ok(), "{name:?}");
        }
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("ünïcödé").is_err(), "characters, not bytes");
    }
}
