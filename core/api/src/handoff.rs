//! The connection details an SP hands a new tenant: where its gateways are, the certificate
//! fingerprint to check, the account and (once, when just set) its password. One text, the
//! same from the console's Connection details card and file and from `cloudkeep sp tenant
//! handoff`, readable by people and by [`Handoff::parse`] (so a tenant console can read the
//! file instead of having each line typed).

use serde::{Deserialize, Serialize};

/// What a tenant needs to add its service provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// Gateway addresses (`host:port`), the first one to try first.
    pub addresses: Vec<String>,
    /// SHA-256 fingerprint of the certificate the gateways serve.
    pub fingerprint: String,
    /// The account (`tenant` or `tenant/sub`).
    pub user: String,
    /// Its password, when it was just set (it is never stored and cannot be read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

const GATEWAY: &str = "Gateway address";
const FINGERPRINT: &str = "Certificate fingerprint (SHA-256)";
const USER: &str = "Account";
const PASSWORD: &str = "Password";

impl Handoff {
    /// The details as a text to print, copy or save: one `Name: value` line each, then how to
    /// use them.
    pub fn text(&self) -> String {
        let mut out = self.lines("Cloudkeep: connection details for your service provider");
        let first = self.addresses.first().map_or("", String::as_str);
        out.push_str(&format!(
            "\nIn the Cloudkeep Console: Service providers, Add service provider; enter the \
             gateway address, compare the certificate's fingerprint with the one above before \
             you trust it, then sign in with the account and password.\n\
             With the command line:\n  cloudkeep provider add NAME --host {first} --user {} \
             --trust {} --password-stdin\n\
             Keep this file private: it holds the password.\n",
            self.user, self.fingerprint
        ));
        out
    }

    /// The details of a cloud host (its account is the host's name), with how the host uses
    /// them. [`Handoff::parse`] reads them back.
    pub fn host_text(&self) -> String {
        let mut out = self.lines(&format!(
            "Cloudkeep: connection details for cloud host {}",
            self.user
        ));
        out.push_str(
            "\nOn the host (Linux with QEMU, and KVM where the hardware has it), as the account \
             that will run the replicas:\n  cloudkeep host run --connect THIS-FILE --pool \
             main=/srv/cloudkeep/replicas\n\
             Keep this file private: it holds the host's password. Delete it once the host runs.\n",
        );
        out
    }

    fn lines(&self, title: &str) -> String {
        let mut out = format!("{title}\n\n");
        for address in &self.addresses {
            out.push_str(&format!("{GATEWAY}: {address}\n"));
        }
        out.push_str(&format!("{FINGERPRINT}: {}\n", self.fingerprint));
        out.push_str(&format!("{USER}: {}\n", self.user));
        match &self.password {
            Some(p) => out.push_str(&format!("{PASSWORD}: {p}\n")),
            None => out.push_str(&format!("{PASSWORD}: (given to you separately)\n")),
        }
        out
    }

    /// Reads a text [`Handoff::text`] wrote (other lines are ignored); `None` when it lacks
    /// an address, the fingerprint or the account.
    pub fn parse(text: &str) -> Option<Self> {
        let mut found = Self {
            addresses: Vec::new(),
            fingerprint: String::new(),
            user: String::new(),
            password: None,
        };
        for line in text.lines() {
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            let value = value.trim().to_owned();
            match name.trim() {
                GATEWAY => found.addresses.push(value),
                FINGERPRINT => found.fingerprint = value,
                USER => found.user = value,
                PASSWORD if !value.starts_with('(') => found.password = Some(value),
                _ => {}
            }
        }
        (!found.addresses.is_empty() && !found.fingerprint.is_empty() && !found.user.is_empty())
            .then_some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_reads_back_and_a_missing_password_is_said() {
        let h = Handoff {
            addresses: vec!["gw1.example:6180".into(), "gw2.example:6180".into()],
            fingerprint: "AB:CD".into(),
            user: "acme".into(),
            password: Some("s3cret: with colon".into()),
        };
        assert_eq!(Handoff::parse(&h.text()), Some(h.clone()));
        assert_eq!(Handoff::parse(&h.host_text()), Some(h.clone()));
        assert!(h.host_text().contains("cloud host acme"));
        let without = Handoff {
            password: None,
            ..h
        };
        let text = without.text();
        assert!(text.contains("given to you separately"), "{text}");
        assert_eq!(Handoff::parse(&text), Some(without));
        assert_eq!(Handoff::parse("Account: x\n"), None);
    }
}
