//! Scoped signing key templates: a user signed by a scoped key gets the
//! scope's permissions, with `{{name()}}`, `{{subject()}}`,
//! `{{account-name()}}`, `{{account-subject()}}`, `{{tag(x)}}` and
//! `{{account-tag(x)}}` tokens filled in from the user and its account, as
//! nats-server's `processUserPermissionsTemplate` does.

use super::user::{Permission, UserPermissionLimits};
use super::JwtError;
use crate::subject::is_valid_subscribe_subject;

/// What the template tokens are filled with.
#[derive(Debug, Clone, Copy)]
pub struct TemplateValues<'a> {
    pub user_name: &'a str,
    pub user_subject: &'a str,
    pub user_tags: &'a [String],
    /// The user's `issuer_account`.
    pub account_subject: &'a str,
    pub account_name: &'a str,
    pub account_tags: &'a [String],
}

/// One template token: a literal, or the values it stands for (several
/// for a tag with several values: every combination is emitted).
enum Filled {
    Literal(String),
    Values(Vec<String>),
}

fn is_template(token: &str) -> bool {
    token.starts_with("{{") && token.ends_with("}}") && token.len() >= 4
}

fn fill(token: &str, values: &TemplateValues<'_>) -> Filled {
    if !is_template(token) {
        return Filled::Literal(token.to_string());
    }
    let op = token[2..token.len() - 2].to_ascii_lowercase();
    let tag_values = |tags: &[String], name: &str| -> Filled {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let found: Vec<String> = tags
            .iter()
            .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
            .collect();
        if found.is_empty() {
            // An empty token makes the subject invalid, as in nats-server.
            Filled::Literal(String::new())
        } else {
            Filled::Values(found)
        }
    };
    match op.as_str() {
        "name()" => Filled::Literal(values.user_name.to_string()),
        "subject()" => Filled::Literal(values.user_subject.to_string()),
        "account-name()" => Filled::Literal(values.account_name.to_string()),
        "account-subject()" => Filled::Literal(values.account_subject.to_string()),
        _ => {
            if let Some(name) = op
                .strip_prefix("account-tag(")
                .and_then(|o| o.strip_suffix(')'))
            {
                tag_values(values.account_tags, name)
            } else if let Some(name) = op.strip_prefix("tag(").and_then(|o| o.strip_suffix(')')) {
                tag_values(values.user_tags, name)
            } else {
                // Unknown: a space makes the subject invalid on purpose.
                Filled::Literal(" ".to_string())
            }
        }
    }
}

/// Expands one list. Subjects that come out invalid are skipped, or fail
/// the whole expansion when `fail_on_bad_subject` (deny lists).
fn apply(
    list: &[String],
    values: &TemplateValues<'_>,
    fail_on_bad_subject: bool,
) -> Result<Vec<String>, JwtError> {
    if !list.iter().any(|s| s.split('.').any(is_template)) {
        return Ok(list.to_vec());
    }
    let mut out = Vec::new();
    for subject in list {
        let tokens: Vec<Filled> = subject.split('.').map(|t| fill(t, values)).collect();
        let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
        for token in &tokens {
            combinations = match token {
                Filled::Literal(text) => combinations
                    .into_iter()
                    .map(|mut c| {
                        c.push(text.clone());
                        c
                    })
                    .collect(),
                Filled::Values(options) => combinations
                    .into_iter()
                    .flat_map(|c| {
                        options.iter().map(move |o| {
                            let mut c = c.clone();
                            c.push(o.clone());
                            c
                        })
                    })
                    .collect(),
            };
        }
        for combination in combinations {
            let emitted = combination.join(".");
            if is_valid_subscribe_subject(emitted.as_bytes()) {
                out.push(emitted);
            } else if fail_on_bad_subject {
                return Err(JwtError::Invalid("generated invalid subject".into()));
            }
        }
    }
    Ok(out)
}

fn apply_permission(
    permission: &mut Permission,
    values: &TemplateValues<'_>,
) -> Result<(), JwtError> {
    let allow_was_set = !permission.allow.is_empty();
    permission.allow = apply(&permission.allow, values, false)?;
    permission.deny = apply(&permission.deny, values, true)?;
    // An allow list that templating emptied must not allow everything.
    if allow_was_set && permission.allow.is_empty() && !permission.deny.iter().any(|d| d == ">") {
        permission.deny.push(">".to_string());
    }
    Ok(())
}

/// The template with its tokens filled in.
pub fn expand(
    template: &UserPermissionLimits,
    values: &TemplateValues<'_>,
) -> Result<UserPermissionLimits, JwtError> {
    let mut out = template.clone();
    apply_permission(&mut out.permissions.subscribe, values)?;
    apply_permission(&mut out.permissions.publish, values)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(user_tags: &'a [String], account_tags: &'a [String]) -> TemplateValues<'a> {
        TemplateValues {
            user_name: "alice",
            user_subject: "UALICE",
            user_tags,
            account_subject: "AACC",
            account_name: "acme",
            account_tags,
        }
    }

    #[test]
    fn fills_names_subjects_and_tags() {
        let user_tags = vec!["dept:eng".to_string(), "dept:ops".to_string()];
        let account_tags = vec!["region:eu".to_string()];
        let mut template = UserPermissionLimits::default();
        template.permissions.publish.allow = vec![
            "{{name()}}.>".into(),
            "{{account-name()}}.{{subject()}}".into(),
            "t.{{tag(dept)}}.{{account-tag(region)}}".into(),
            "plain".into(),
        ];
        template.permissions.subscribe.allow = vec!["{{account-subject()}}.*".into()];
        let out = expand(&template, &values(&user_tags, &account_tags)).expect("expands");
        assert_eq!(
            out.permissions.publish.allow,
            vec!["alice.>", "acme.UALICE", "t.eng.eu", "t.ops.eu", "plain"]
        );
        assert_eq!(out.permissions.subscribe.allow, vec!["AACC.*"]);
    }

    #[test]
    fn bad_subjects_are_skipped_in_allow_and_fail_in_deny() {
        let mut template = UserPermissionLimits::default();
        template.permissions.publish.allow = vec!["x.{{tag(missing)}}".into()];
        let out = expand(&template, &values(&[], &[])).expect("expands");
        assert!(out.permissions.publish.allow.is_empty());
        assert_eq!(out.permissions.publish.deny, vec![">"], "deny > added");
        template.permissions.publish.deny = vec!["{{bogus()}}".into()];
        assert!(expand(&template, &values(&[], &[])).is_err());
    }
}
