//! The blocking issues of an account claim (the Go library's
//! `AccountClaims.Validate` without its time checks): nats-server refuses
//! to load an account that has one, so its users cannot log in.

use super::account::{Account, ExportType};
use super::claims::Claims;
use super::user::NO_LIMIT;
use crate::go_quote::go_quote;

fn subject_issue(subject: &str) -> Option<String> {
    if subject.is_empty() {
        return Some("subject cannot be empty".into());
    }
    subject
        .contains(' ')
        .then(|| format!("subject {subject:?} cannot have spaces"))
}

fn has_wildcards(subject: &str) -> bool {
    subject == "*"
        || subject == ">"
        || subject.ends_with(".>")
        || subject.ends_with(".*")
        || subject.starts_with("*.")
        || subject.contains(".*.")
}

/// The first blocking issue, if any.
pub fn account_issue(claims: &Claims<Account>) -> Option<String> {
    let nats = &claims.nats;
    let limits = &nats.limits;
    if limits.imports != NO_LIMIT && nats.imports.len() as i64 > limits.imports {
        return Some("the account contains more imports than allowed by the operator".into());
    }
    if limits.exports != NO_LIMIT {
        if nats.exports.len() as i64 > limits.exports {
            return Some("the account contains more exports than allowed by the operator".into());
        }
        if !limits.wildcard_exports && nats.exports.iter().any(|e| has_wildcards(&e.subject)) {
            return Some(
                "the account contains wildcard exports that are not allowed by the operator".into(),
            );
        }
    }
    for export in &nats.exports {
        let single = matches!(export.response_type.as_str(), "" | "Singleton");
        let valid = single || matches!(export.response_type.as_str(), "Stream" | "Chunked");
        match export.kind {
            ExportType::Service if !valid => {
                return Some(format!(
                    "invalid response type for service: {:?}",
                    export.response_type
                ))
            }
            ExportType::Stream if !export.response_type.is_empty() => {
                return Some(format!(
                    "invalid response type for stream: {:?}",
                    export.response_type
                ))
            }
            _ => {}
        }
        if export.response_threshold < 0 {
            return Some("negative response threshold is invalid".into());
        }
        if export.response_threshold > 0 && export.kind == ExportType::Stream {
            return Some("response threshold only valid for services".into());
        }
        if let Some(issue) = subject_issue(&export.subject) {
            return Some(issue);
        }
        let position = export.account_token_position;
        if position > 0 {
            if !has_wildcards(&export.subject) {
                return Some(format!(
                    "Account Token Position can only be used with wildcard subjects: {}",
                    export.subject
                ));
            }
            let tokens: Vec<&str> = export.subject.split('.').collect();
            match tokens.get(position as usize - 1) {
                None => {
                    return Some(format!(
                        "Account Token Position {position} exceeds length of subject '{}'",
                        export.subject
                    ))
                }
                Some(&token) if token != "*" => {
                    return Some(format!(
                    "Account Token Position {position} matches '{token}' but must match a * in: {}",
                    export.subject
                ))
                }
                _ => {}
            }
        }
    }
    for import in &nats.imports {
        if import.account.is_empty() {
            return Some("account to import from is not specified".into());
        }
        if let Some(issue) = subject_issue(&import.subject) {
            return Some(issue);
        }
        if !import.local_subject.is_empty() && !import.to.is_empty() {
            return Some("Local Subject replaces To".into());
        }
        if import.share && import.kind != ExportType::Service {
            return Some(format!(
                "sharing information (for latency tracking) is only valid for services: {:?}",
                import.subject
            ));
        }
    }
    mapping_issue(nats)
}

/// The Go library's `Mapping.Validate`: subjects as everywhere, no
/// wildcard in a destination (so not `>` either), and the weights (a
/// `uint8` sum there, wrapping) at most 100.
fn mapping_issue(nats: &Account) -> Option<String> {
    for (source, destinations) in &nats.mappings {
        if let Some(issue) = subject_issue(source) {
            return Some(issue);
        }
        let mut total: u8 = 0;
        for d in destinations {
            if let Some(issue) = subject_issue(&d.subject) {
                return Some(issue);
            }
            if has_wildcards(&d.subject) {
                return Some(format!(
                    "Subject {} in weighted mapping {} is not allowed to contains wildcard",
                    go_quote(&d.subject),
                    go_quote(source)
                ));
            }
            total = total.wrapping_add(d.weight());
        }
        if total > 100 {
            return Some(format!(
                "Mapping {} exceeds 100% among all of it's weighted to mappings",
                go_quote(source)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::account::{Export, Import};

    #[test]
    fn limits_and_shapes() {
        let mut claims = Claims::<Account>::default();
        claims.nats.limits.imports = NO_LIMIT;
        claims.nats.limits.exports = NO_LIMIT;
        assert_eq!(account_issue(&claims), None);
        claims.nats.imports.push(Import {
            account: "AX".into(),
            subject: "a".into(),
            ..Import::default()
        });
        claims.nats.limits.imports = 0;
        assert!(account_issue(&claims).is_some_and(|i| i.contains("more imports")));
        claims.nats.limits.imports = NO_LIMIT;
        claims.nats.exports.push(Export {
            subject: "x.>".into(),
            ..Export::default()
        });
        claims.nats.limits.exports = 5;
        assert!(account_issue(&claims).is_some_and(|i| i.contains("wildcard exports")));
        claims.nats.limits.wildcard_exports = true;
        assert_eq!(account_issue(&claims), None);
        claims.nats.exports[0].account_token_position = 1;
        assert!(account_issue(&claims).is_some_and(|i| i.contains("must match a *")));
        claims.nats.exports[0].account_token_position = 0;
        claims.nats.exports[0].response_type = "Stream".into();
        assert!(account_issue(&claims).is_some_and(|i| i.contains("for stream")));
    }

    #[test]
    fn mappings() {
        use crate::jwt::account::WeightedMapping;
        let to = |subject: &str, weight: u8| WeightedMapping {
            subject: subject.into(),
            weight,
            cluster: String::new(),
        };
        let mut claims = Claims::<Account>::default();
        claims.nats.limits.imports = NO_LIMIT;
        claims.nats.limits.exports = NO_LIMIT;
        claims
            .nats
            .mappings
            .insert("a.*".into(), vec![to("b.$1", 40), to("c.$1", 60)]);
        assert_eq!(account_issue(&claims), None);
        claims
            .nats
            .mappings
            .insert("x".into(), vec![to("y", 0), to("z", 50)]);
        assert_eq!(
            account_issue(&claims).as_deref(),
            Some("Mapping \"x\" exceeds 100% among all of it's weighted to mappings")
        );
        claims.nats.mappings.insert("x".into(), vec![to("y.>", 10)]);
        assert_eq!(
            account_issue(&claims).as_deref(),
            Some("Subject \"y.>\" in weighted mapping \"x\" is not allowed to contains wildcard")
        );
    }
}
