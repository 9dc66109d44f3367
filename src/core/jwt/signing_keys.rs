//! An account's `signing_keys`: a JSON list whose entries are either a
//! public account key (the key may sign any user) or a scope object
//! (`{"kind":"user_scope","key","role","template"}`: users it signs get
//! the template's permissions and limits instead of their own).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::user::UserPermissionLimits;

/// A scoped signing key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserScope {
    pub key: String,
    pub role: String,
    pub template: UserPermissionLimits,
}

/// Signing key → its scope, if it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigningKeys(pub BTreeMap<String, Option<UserScope>>);

impl SigningKeys {
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// `Some(scope)` for a key of this account (`scope` is `None` for an
    /// unscoped key), `None` for a key that is not one.
    pub fn get(&self, key: &str) -> Option<Option<&UserScope>> {
        self.0.get(key).map(Option::as_ref)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for SigningKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Key(String),
            Scope(serde_json::Map<String, serde_json::Value>),
        }
        let entries = Option::<Vec<Entry>>::deserialize(deserializer)?.unwrap_or_default();
        let mut keys = BTreeMap::new();
        for entry in entries {
            match entry {
                Entry::Key(key) => {
                    keys.insert(key, None);
                }
                Entry::Scope(map) => {
                    let kind = map.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                    if kind != "user_scope" {
                        return Err(serde::de::Error::custom(format!(
                            "unknown signing key scope {:?}",
                            map.get("type").and_then(|t| t.as_str()).unwrap_or("")
                        )));
                    }
                    let scope: UserScope = serde_json::from_value(serde_json::Value::Object(map))
                        .map_err(serde::de::Error::custom)?;
                    keys.insert(scope.key.clone(), Some(scope));
                }
            }
        }
        Ok(SigningKeys(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_scoped_keys() {
        let json = r#"["AKEY1", {"kind":"user_scope","key":"AKEY2","role":"dev",
            "template":{"pub":{"allow":["{{name()}}.>"]},"subs":-1}}]"#;
        let keys: SigningKeys = serde_json::from_str(json).expect("parses");
        assert_eq!(keys.get("AKEY1"), Some(None));
        let scope = keys.get("AKEY2").flatten().expect("scoped");
        assert_eq!(scope.role, "dev");
        assert_eq!(
            scope.template.permissions.publish.allow,
            vec!["{{name()}}.>"]
        );
        assert_eq!(keys.get("AOTHER"), None);
        assert!(serde_json::from_str::<SigningKeys>(r#"[{"kind":"other"}]"#).is_err());
        let none: SigningKeys = serde_json::from_str("null").expect("null");
        assert_eq!(none, SigningKeys::default());
    }
}
