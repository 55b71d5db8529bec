//! Names people give things — accounts, jobs, policies, computers, cloud repositories, admins —
//! and the one rule they share: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter
//! or digit (no `/`: it separates a tenant from its subtenant; no spaces or path characters: a
//! name becomes part of logins, file names and URLs). One rule, one message that names the kind
//! of thing it refuses.

/// A name that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{name}\" is not a valid {what} name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)]
pub struct BadName {
    /// What it names: "account", "job", "policy", "computer", "cloud repository".
    pub what: &'static str,
    /// The name as given.
    pub name: String,
}

/// Checks the name of a `what`.
pub fn check(what: &'static str, name: &str) -> Result<(), BadName> {
    let ok = (1..=64).contains(&name.len())
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
}
