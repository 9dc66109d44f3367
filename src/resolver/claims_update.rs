//! The `full` resolver's requests over the system account, as nats-server's
//! `DirAccResolver` answers them: account JWT updates
//! (`$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE`, `$SYS.REQ.CLAIMS.UPDATE`,
//! `nsc push`), lookups (`$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`), the list
//! (`$SYS.REQ.CLAIMS.LIST`, `nsc pull`) and deletes
//! (`$SYS.REQ.CLAIMS.DELETE`, with `allow_delete`). Runs on a shard's
//! blocking thread (an Ed25519 check, file reads and writes); the caller
//! publishes the answer and, when the directory changed, has every shard
//! take the new accounts.

use std::path::Path;

use percore_core::jwt::account::Account;
use percore_core::jwt::nkey::{is_public_key, KeyKind};
use percore_core::jwt::{decode, ClaimType};
use percore_core::shard::SystemRequest;
use serde_json::{json, Value};

use crate::auth_checks::NkeyVerifier;
use crate::config::operator::{read_dir, OperatorOptions, ResolverConfig};

pub use crate::system_account::envelope::Responder;

/// What a request came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The answer, for the request's reply subject (none: no answer).
    pub answer: Option<String>,
    /// The directory changed: the accounts must be rebuilt.
    pub stored: bool,
    /// nats-server's log line for it, and whether it is an error.
    pub log: Option<(bool, String)>,
}

/// Answers one request.
pub fn handle(request: &SystemRequest, operator: &OperatorOptions, me: &Responder) -> Handled {
    if let Some(ResolverConfig::Url(resolver)) = &operator.resolver {
        return crate::resolver::claims_notice::handle(request, operator, resolver, me);
    }
    let Some(ResolverConfig::Full {
        dir, allow_delete, ..
    }) = &operator.resolver
    else {
        return Handled {
            answer: None,
            stored: false,
            log: None,
        };
    };
    let tokens: Vec<&str> = request.subject.split('.').collect();
    match tokens.as_slice() {
        ["$SYS", "REQ", "ACCOUNT", id, "CLAIMS", "LOOKUP"] => lookup(dir, id),
        ["$SYS", "REQ", "CLAIMS", "LIST"] => list(dir, me),
        ["$SYS", "REQ", "CLAIMS", "DELETE"] => delete(request, operator, dir, *allow_delete, me),
        ["$SYS", "REQ", "ACCOUNT", id, "CLAIMS", "UPDATE"] => {
            update(request, operator, dir, Some(id), me)
        }
        _ => update(request, operator, dir, None, me),
    }
}

/// Checks and stores an account JWT.
fn update(
    request: &SystemRequest,
    operator: &OperatorOptions,
    dir: &Path,
    named: Option<&str>,
    me: &Responder,
) -> Handled {
    let text = String::from_utf8_lossy(&request.payload);
    let claims = match decode::<Account>(text.trim(), ClaimType::Account, &NkeyVerifier) {
        Ok(claims) => claims,
        Err(e) => return failed(me, "n/a", "jwt update resulted in error", &e.to_string()),
    };
    let key = named.map_or_else(|| claims.data.subject.clone(), str::to_string);
    if claims.data.subject != key {
        return failed(
            me,
            &key,
            "jwt update resulted in error",
            "subject does not match jwt content",
        );
    }
    if operator.strict && operator.operator_keys.contains(&claims.data.issuer) {
        return failed(
            me,
            &key,
            "jwt update resulted in error",
            "operator requires issuer to be a signing key",
        );
    }
    if let Err(e) = store(dir, &key, text.trim()) {
        return failed(me, &key, "jwt update resulted in error", &e.to_string());
    }
    succeeded(me, Some(&key), "jwt updated", true)
}

/// The stored JWT, as it is; nothing when there is none.
fn lookup(dir: &Path, id: &str) -> Handled {
    let stored = is_public_key(id, KeyKind::Account)
        .then(|| std::fs::read_to_string(dir.join(format!("{id}.jwt"))).ok())
        .flatten();
    match stored {
        Some(jwt) => Handled {
            answer: Some(jwt.trim().to_string()),
            stored: false,
            log: None,
        },
        None => Handled {
            answer: None,
            stored: false,
            log: Some((true, format!("Merging resulted in error: no jwt for {id}"))),
        },
    }
}

/// Every account id the directory holds.
fn list(dir: &Path, me: &Responder) -> Handled {
    let ids: Vec<String> = read_dir(dir)
        .map(|tokens| tokens.into_keys().collect())
        .unwrap_or_default();
    Handled {
        log: Some((
            false,
            format!("list request responded with {} account ids", ids.len()),
        )),
        answer: Some(answer(me, "data", &json!(ids))),
        stored: false,
    }
}

/// A delete request: a generic JWT self-signed by a trusted operator key,
/// listing `accounts` in its `nats` data.
fn delete(
    request: &SystemRequest,
    operator: &OperatorOptions,
    dir: &Path,
    allow_delete: bool,
    me: &Responder,
) -> Handled {
    let text = String::from_utf8_lossy(&request.payload);
    let generic = decode_generic(text.trim());
    let subject = generic
        .as_ref()
        .map(|(subject, _, _)| subject.clone())
        .unwrap_or_default();
    let checked = generic.and_then(|(subject, issuer, data)| {
        if !allow_delete {
            return Err("delete must be enabled in server config".to_string());
        }
        if subject != issuer {
            return Err("not self signed".into());
        }
        if !operator.trusted.trusts(&issuer) {
            return Err("not trusted".into());
        }
        let list = data
            .get("accounts")
            .and_then(Value::as_array)
            .ok_or("malformed request")?;
        let mut ids = Vec::with_capacity(list.len());
        for entry in list {
            let id = entry
                .as_str()
                .filter(|id| is_public_key(id, KeyKind::Account))
                .ok_or("malformed request")?;
            if operator.system_account.as_deref() == Some(id) {
                return Err("not allowed to delete system account".into());
            }
            ids.push(id.to_string());
        }
        Ok(ids)
    });
    let message = format!("delete accounts request by {subject} failed");
    let ids = match checked {
        Ok(ids) => ids,
        Err(e) => return failed(me, "", &message, &e),
    };
    let mut errors = Vec::new();
    for id in &ids {
        // nats-server's `allow_delete` renames the file rather than
        // removing it.
        let path = dir.join(format!("{id}.jwt"));
        let deleted = dir.join(format!("{id}.jwt.deleted"));
        if let Err(e) = std::fs::rename(&path, &deleted) {
            errors.push(e.to_string());
        }
    }
    let passed = ids.len() - errors.len();
    if errors.is_empty() {
        succeeded(me, None, &format!("deleted {passed} accounts"), passed > 0)
    } else {
        let mut handled = failed(
            me,
            "",
            &format!("deleted {passed} accounts, failed for {}", errors.len()),
            &errors.join("\n"),
        );
        handled.stored = passed > 0;
        handled
    }
}

/// `(sub, iss, nats)` of any v2 JWT whose issuer signed it.
fn decode_generic(token: &str) -> Result<(String, String, Value), String> {
    use percore_core::jwt::SignatureVerifier;
    let compact = percore_core::jwt::encoding::split(token).map_err(|e| e.to_string())?;
    let payload: Value = serde_json::from_slice(&compact.payload).map_err(|e| e.to_string())?;
    let field = |name: &str| payload[name].as_str().unwrap_or("").to_string();
    let (subject, issuer) = (field("sub"), field("iss"));
    if !NkeyVerifier.verify(
        &issuer,
        compact.signing_input.as_bytes(),
        &compact.signature,
    ) {
        return Err("claim failed V2 signature verification".into());
    }
    Ok((subject, issuer, payload["nats"].clone()))
}

/// Writes `<dir>/<key>.jwt` through a temporary file, so a reader never
/// sees half a token.
fn store(dir: &Path, key: &str, token: &str) -> std::io::Result<()> {
    let path = dir.join(format!("{key}.jwt"));
    let temporary = dir.join(format!(".{key}.jwt.tmp"));
    std::fs::write(&temporary, token)?;
    std::fs::rename(&temporary, &path)
}

pub(crate) fn succeeded(
    me: &Responder,
    account: Option<&str>,
    message: &str,
    stored: bool,
) -> Handled {
    let mut data = json!({"code": 200, "message": message});
    if let Some(account) = account {
        data["account"] = json!(account);
    }
    Handled {
        answer: Some(answer(me, "data", &data)),
        stored,
        log: Some((
            false,
            match account {
                Some(account) => format!("{message} - {account}"),
                None => message.to_string(),
            },
        )),
    }
}

pub(crate) fn failed(me: &Responder, account: &str, message: &str, error: &str) -> Handled {
    let mut description = json!({
        "code": 500,
        "description": format!("{message} - {error}"),
    });
    if !account.is_empty() {
        description["account"] = json!(account);
    }
    Handled {
        answer: Some(answer(me, "error", &description)),
        stored: false,
        log: Some((
            true,
            if account.is_empty() {
                format!("{message} - {error}")
            } else {
                format!("{message} - {account} - {error}")
            },
        )),
    }
}

/// `{"<kind>":<body>,"server":<ServerInfo>}`: nats-server marshals a Go
/// map (sorted keys) holding the struct (its field order).
/// Escaped as Go's encoding/json does (`crate::go_json`).
fn answer(me: &Responder, kind: &str, body: &Value) -> String {
    crate::go_json::go_json_string(format!(
        "{{\"{kind}\":{body},\"server\":{}}}",
        server_info(me)
    ))
}

fn server_info(me: &Responder) -> String {
    crate::system_account::envelope::server_info(me, std::time::SystemTime::now())
}
