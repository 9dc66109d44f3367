//! Version 1 tokens, as the Go jwt v2 library (and so nats-server 2.9)
//! still reads them: `nsc` before 2.0 wrote them, and client test suites
//! (nats.py's `resolver_preload.conf` and `.creds`) still ship them.
//!
//! A v1 payload keeps `type`, `tags` and `issuer_account` at the top level
//! instead of inside `nats`, and knows fewer fields. [`to_v2`] rewrites it
//! into the v2 shape the claim types here read, keeping only what the
//! library's v1 structs read (a v2-only field in a v1 token is ignored, as
//! there) and with their defaults (a v1 user without limits is unlimited).
//! The signature of a v1 token covers the payload part alone (the
//! library's `verify(chunks[1], sig)`), see [`super::verify`].

use serde_json::{Map, Value};

use super::claims::ClaimType;
use super::JwtError;

/// `nats` fields each kind's v1 struct reads (the library's
/// `v1NatsOperator`, `v1NatsAccount`, `v1User`, `v1NatsActivation`), by
/// the name the v2 struct reads them under.
fn kept_fields(kind: ClaimType) -> &'static [(&'static str, &'static str)] {
    match kind {
        ClaimType::Operator => &[
            ("signing_keys", "signing_keys"),
            ("account_server_url", "account_server_url"),
            ("operator_service_urls", "operator_service_urls"),
            ("system_account", "system_account"),
        ],
        ClaimType::Account => &[
            ("imports", "imports"),
            ("exports", "exports"),
            ("limits", "limits"),
            ("signing_keys", "signing_keys"),
            ("revocations", "revocations"),
        ],
        ClaimType::User => &[
            ("pub", "pub"),
            ("sub", "sub"),
            ("resp", "resp"),
            ("src", "src"),
            ("times", "times"),
            ("times_location", "times_location"),
            ("subs", "subs"),
            ("data", "data"),
            ("payload", "payload"),
            ("bearer_token", "bearer_token"),
        ],
        // v1 named the import type `type`; v2 calls it `kind`.
        ClaimType::Activation => &[("subject", "subject"), ("type", "kind")],
    }
}

/// The v2 form of the v1 `payload` (decoded JSON) of a `kind` token, with
/// `nats.version` 1.
pub fn to_v2(kind: ClaimType, payload: &[u8]) -> Result<Value, JwtError> {
    let malformed = |e: serde_json::Error| JwtError::Malformed(e.to_string());
    let mut top: Map<String, Value> = serde_json::from_slice(payload).map_err(malformed)?;
    let old = match top.remove("nats") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(JwtError::Malformed(
                "v1 nats claims are not an object".into(),
            ))
        }
    };
    let mut nats = Map::new();
    for (from, to) in kept_fields(kind) {
        if let Some(value) = old.get(*from).filter(|v| !v.is_null()) {
            nats.insert((*to).to_string(), value.clone());
        }
    }
    match kind {
        ClaimType::User => {
            // The library presets a v1 user's NATS limits to "no limit"
            // before reading the token over them.
            for limit in ["subs", "data", "payload"] {
                nats.entry(limit).or_insert(Value::from(-1));
            }
        }
        ClaimType::Operator | ClaimType::Account => {
            // v1 signing keys are a list of public keys, never scopes.
            if let Some(keys) = nats.get("signing_keys") {
                let all_keys = keys
                    .as_array()
                    .is_some_and(|list| list.iter().all(Value::is_string));
                if !all_keys {
                    return Err(JwtError::Malformed(
                        "v1 signing_keys must be a list of keys".into(),
                    ));
                }
            }
        }
        ClaimType::Activation => {}
    }
    for moved in ["type", "tags"] {
        if let Some(value) = top.remove(moved) {
            nats.insert(moved.to_string(), value);
        }
    }
    // Only the user and activation migrations carry the top-level issuer
    // account over.
    if let Some(issuer_account) = top.remove("issuer_account") {
        if matches!(kind, ClaimType::User | ClaimType::Activation) {
            nats.insert("issuer_account".to_string(), issuer_account);
        }
    }
    nats.insert("version".to_string(), Value::from(1));
    top.insert("nats".to_string(), Value::Object(nats));
    Ok(Value::Object(top))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn migrate(kind: ClaimType, v1: Value) -> Value {
        to_v2(kind, v1.to_string().as_bytes()).expect("migrates")
    }

    #[test]
    fn a_v1_user_moves_its_top_level_fields_and_is_unlimited_by_default() {
        let v2 = migrate(
            ClaimType::User,
            json!({"iss": "AISSUER", "sub": "USUBJECT", "type": "user", "tags": ["t"],
                   "issuer_account": "AACCOUNT",
                   "nats": {"pub": {"allow": ["a"]}, "sub": {}, "payload": 10,
                            "allowed_connection_types": ["STANDARD"], "max": 5}}),
        );
        assert_eq!(v2["iss"], "AISSUER");
        assert_eq!(v2.get("type"), None);
        let nats = &v2["nats"];
        assert_eq!(nats["type"], "user");
        assert_eq!(nats["tags"], json!(["t"]));
        assert_eq!(nats["issuer_account"], "AACCOUNT");
        assert_eq!(nats["version"], 1);
        assert_eq!(nats["pub"], json!({"allow": ["a"]}));
        assert_eq!(nats["payload"], 10);
        assert_eq!(
            (nats["subs"].clone(), nats["data"].clone()),
            (json!(-1), json!(-1))
        );
        assert_eq!(nats.get("allowed_connection_types"), None, "v2 only");
        assert_eq!(nats.get("max"), None, "dropped by the migration");
        let bare = migrate(ClaimType::User, json!({"type": "user"}));
        assert_eq!(bare["nats"]["subs"], -1);
    }

    #[test]
    fn v1_accounts_operators_and_activations() {
        let account = migrate(
            ClaimType::Account,
            json!({"type": "account", "issuer_account": "AX",
                   "nats": {"limits": {"conn": -1}, "default_permissions": {"pub": {}},
                            "signing_keys": ["AKEY"]}}),
        );
        assert_eq!(account["nats"]["limits"], json!({"conn": -1}));
        assert_eq!(account["nats"]["signing_keys"], json!(["AKEY"]));
        assert_eq!(account["nats"].get("default_permissions"), None);
        assert_eq!(account["nats"].get("issuer_account"), None);
        let scoped = json!({"type": "account", "nats": {"signing_keys": [{"kind": "user_scope"}]}});
        assert!(to_v2(ClaimType::Account, scoped.to_string().as_bytes()).is_err());

        let operator = migrate(
            ClaimType::Operator,
            json!({"type": "operator", "nats": {"system_account": "ASYS",
                   "strict_signing_key_usage": true}}),
        );
        assert_eq!(operator["nats"]["system_account"], "ASYS");
        assert_eq!(operator["nats"].get("strict_signing_key_usage"), None);
        assert_eq!(operator["nats"]["type"], "operator");

        let activation = migrate(
            ClaimType::Activation,
            json!({"type": "activation", "issuer_account": "AEXP",
                   "nats": {"subject": "s.>", "type": "service", "src": "1.2.3.4/32"}}),
        );
        assert_eq!(activation["nats"]["subject"], "s.>");
        assert_eq!(activation["nats"]["kind"], "service");
        assert_eq!(activation["nats"]["type"], "activation");
        assert_eq!(activation["nats"]["issuer_account"], "AEXP");
        assert_eq!(activation["nats"].get("src"), None);
    }

    #[test]
    fn refuses_what_go_cannot_read() {
        assert!(to_v2(ClaimType::User, b"[]").is_err());
        assert!(to_v2(ClaimType::User, br#"{"type":"user","nats":3}"#).is_err());
    }
}
