//! `verify_and_map`: the user a client certificate names. The runtime reads
//! the certificate (`src/tls/identity.rs`) into a [`CertificateIdentity`];
//! here it is matched against the configured `users`, in nats-server's
//! order: e-mail SANs, DNS SANs, URI SANs (each as a user name), then the
//! subject as a distinguished name (equal, or with its RDNs reordered), then
//! the subject's string forms (with its `DC=` parts appended, then without).

use std::collections::HashMap;

use super::policy::PasswordUser;

/// One attribute of a distinguished name: its type as nats-server prints it
/// (`CN`, `O`, `OU`, `C`, `L`, `ST`, `DC`, ..., upper case, or the dotted
/// OID) and its value.
pub type Attribute = (String, String);

/// What a verified client certificate says about who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// E-mail, then DNS, then URI subject alternative names.
    pub san_names: Vec<String>,
    /// The subject's RDNs, most specific first (LDAP order: `CN` before
    /// `O`), each a set of attributes.
    pub subject: Vec<Vec<Attribute>>,
    /// The subject as strings to look up literally, in order.
    pub subject_names: Vec<String>,
}

impl CertificateIdentity {
    /// The configured user this certificate names, if any.
    pub fn find_user<'a>(
        &self,
        users: &'a HashMap<String, PasswordUser>,
    ) -> Option<&'a PasswordUser> {
        if let Some(user) = self.san_names.iter().find_map(|n| users.get(n)) {
            return Some(user);
        }
        if !self.subject.is_empty() {
            let named: Vec<(&PasswordUser, Vec<Vec<Attribute>>)> = users
                .values()
                .filter_map(|u| parse_dn(&u.name).map(|dn| (u, dn)))
                .collect();
            if let Some((user, _)) = named.iter().find(|(_, dn)| dn_equal(dn, &self.subject)) {
                return Some(user);
            }
            if let Some((user, _)) = named.iter().find(|(_, dn)| rdns_match(dn, &self.subject)) {
                return Some(user);
            }
        }
        self.subject_names.iter().find_map(|n| users.get(n))
    }
}

/// Same RDNs in the same order (attribute order within an RDN is free).
fn dn_equal(a: &[Vec<Attribute>], b: &[Vec<Attribute>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| rdn_equal(x, y))
}

/// Same RDNs in any order.
fn rdns_match(a: &[Vec<Attribute>], b: &[Vec<Attribute>]) -> bool {
    a.len() == b.len() && b.iter().all(|rdn| a.iter().any(|r| rdn_equal(r, rdn)))
}

fn rdn_equal(a: &[Attribute], b: &[Attribute]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Parses `CN=alice,OU=eng+O=Acme` (RFC 4514 string form, with `\` escapes)
/// into RDNs; `None` if it is not a DN (no `type=value` pairs).
pub fn parse_dn(text: &str) -> Option<Vec<Vec<Attribute>>> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut current = String::new();
    let mut key: Option<String> = None;
    let mut chars = text.chars();
    let finish_attr = |key: &mut Option<String>, current: &mut String, rdn: &mut Vec<Attribute>| {
        let k = key.take()?;
        let value = std::mem::take(current);
        rdn.push((attribute_type(k.trim()), value.trim().to_string()));
        Some(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next()?),
            '=' if key.is_none() => key = Some(std::mem::take(&mut current)),
            '+' => finish_attr(&mut key, &mut current, &mut rdn)?,
            ',' | ';' => {
                finish_attr(&mut key, &mut current, &mut rdn)?;
                rdns.push(std::mem::take(&mut rdn));
            }
            _ => current.push(c),
        }
    }
    finish_attr(&mut key, &mut current, &mut rdn)?;
    rdns.push(rdn);
    Some(rdns)
}

/// Upper-case short names for the long forms LDAP also allows.
fn attribute_type(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "COMMONNAME" => "CN".into(),
        "ORGANIZATIONNAME" => "O".into(),
        "ORGANIZATIONALUNITNAME" => "OU".into(),
        "COUNTRYNAME" => "C".into(),
        "LOCALITYNAME" => "L".into(),
        "STATEORPROVINCENAME" => "ST".into(),
        "STREETADDRESS" => "STREET".into(),
        "DOMAINCOMPONENT" => "DC".into(),
        "EMAILADDRESS" => "EMAILADDRESS".into(),
        _ => upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn users(names: &[&str]) -> HashMap<String, PasswordUser> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    PasswordUser {
                        account: crate::ids::AccountId::GLOBAL,
                        name: n.to_string(),
                        password: Secret::Plain(String::new()),
                        permissions: None,
                    },
                )
            })
            .collect()
    }

    fn attr(k: &str, v: &str) -> Attribute {
        (k.into(), v.into())
    }

    #[test]
    fn sans_come_first_then_the_subject() {
        let identity = CertificateIdentity {
            san_names: vec!["a@example.com".into(), "host.example.com".into()],
            subject: vec![vec![attr("CN", "alice")], vec![attr("O", "Acme")]],
            subject_names: vec!["CN=alice,O=Acme".into()],
        };
        let both = users(&["host.example.com", "CN=alice,O=Acme"]);
        assert_eq!(identity.find_user(&both).unwrap().name, "host.example.com");
        let subject_only = users(&["O=Acme,CN=alice"]);
        assert_eq!(
            identity.find_user(&subject_only).unwrap().name,
            "O=Acme,CN=alice",
            "reordered RDNs match"
        );
        let exact = users(&["cn=alice, o=Acme"]);
        assert_eq!(identity.find_user(&exact).unwrap().name, "cn=alice, o=Acme");
        assert!(identity.find_user(&users(&["CN=bob,O=Acme"])).is_none());
    }

    #[test]
    fn dns_parse_with_escapes_and_multi_valued_rdns() {
        assert_eq!(
            parse_dn("CN=a\\,b+UID=7,O=x").unwrap(),
            vec![
                vec![attr("CN", "a,b"), attr("UID", "7")],
                vec![attr("O", "x")]
            ]
        );
        assert_eq!(parse_dn("alice"), None);
    }

    /// The policy's hook: with `tls_map`, the certificate decides (no
    /// password, CONNECT's user ignored); without one, the client is refused.
    #[test]
    fn the_policy_takes_the_user_from_the_certificate() {
        use crate::auth::{AuthMethod, AuthPolicy, Credentials, Decision};
        use std::sync::Arc;
        let policy = AuthPolicy {
            users: users(&["alice@example.com", "CN=bob"]),
            tls_map: true,
            ..AuthPolicy::default()
        };
        let alice = CertificateIdentity {
            san_names: vec!["alice@example.com".into()],
            ..CertificateIdentity::default()
        };
        let with = |certificate: Option<CertificateIdentity>, user: Option<&str>| Credentials {
            user: user.map(str::to_string),
            certificate: certificate.map(Arc::new),
            ..Credentials::default()
        };
        match policy.decide(&with(Some(alice), Some("CN=bob")), None) {
            Decision::Accept(identity) => {
                assert_eq!(
                    identity.method,
                    AuthMethod::User("alice@example.com".into())
                )
            }
            other => panic!("{other:?}"),
        }
        let bob = CertificateIdentity {
            subject: vec![vec![attr("CN", "bob")]],
            ..CertificateIdentity::default()
        };
        assert!(matches!(
            policy.decide(&with(Some(bob), None), None),
            Decision::Accept(_)
        ));
        assert!(matches!(
            policy.decide(&with(None, Some("CN=bob")), None),
            Decision::Reject { .. }
        ));
        // A password is held against the mapped user's (none): refused, as
        // by nats-server 2.9.10, with the mapped user in the log line.
        let alice = CertificateIdentity {
            san_names: vec!["alice@example.com".into()],
            ..CertificateIdentity::default()
        };
        let with_pass = Credentials {
            pass: Some("x".into()),
            ..with(Some(alice), Some("mallory"))
        };
        match policy.decide(&with_pass, None) {
            Decision::Reject { log } => {
                assert_eq!(log, "authentication error - User \"alice@example.com\"")
            }
            other => panic!("{other:?}"),
        }
    }
}
