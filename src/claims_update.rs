//! Account JWT updates over the system account for the `full` resolver
//! (`nsc push`): `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE` and
//! `$SYS.REQ.CLAIMS.UPDATE`, checked and stored as nats-server's
//! `DirAccResolver` does, with its answers. Runs on a shard's blocking
//! thread (an Ed25519 check and a file write); the caller publishes the
//! answer and, when a file changed, has every shard take the new accounts.

use std::path::Path;

use percore_core::info::ADVERTISED_VERSION;
use percore_core::jwt::account::Account;
use percore_core::jwt::{decode, ClaimType};
use percore_core::shard::SystemRequest;
use serde_json::{json, Value};

use crate::auth_checks::NkeyVerifier;
use crate::config::operator::{OperatorOptions, ResolverConfig};

/// Who answers: nats-server's `ServerInfo` of the answer.
#[derive(Debug, Clone)]
pub struct Responder {
    pub name: String,
    pub host: String,
    pub id: String,
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The JSON answer, for the request's reply subject.
    pub answer: Value,
    /// A JWT file was written: the accounts must be rebuilt.
    pub stored: bool,
    /// nats-server's log line for it, and whether it is an error.
    pub log: (bool, String),
}

/// Checks and stores one update.
pub fn handle(request: &SystemRequest, operator: &OperatorOptions, me: &Responder) -> Handled {
    let tokens: Vec<&str> = request.subject.split('.').collect();
    // $SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE names the account; the older
    // $SYS.REQ.CLAIMS.UPDATE takes it from the claims.
    let named = (tokens.len() == 6).then(|| tokens[3].to_string());
    let text = String::from_utf8_lossy(&request.payload);
    let claims = match decode::<Account>(text.trim(), ClaimType::Account, &NkeyVerifier) {
        Ok(claims) => claims,
        Err(e) => return failed(me, "n/a", "jwt update resulted in error", &e.to_string()),
    };
    let key = named.unwrap_or_else(|| claims.data.subject.clone());
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
    let Some(ResolverConfig::Full { dir, .. }) = &operator.resolver else {
        return failed(
            me,
            &key,
            "jwt update resulted in error",
            "read-only resolver",
        );
    };
    if let Err(e) = store(dir, &key, text.trim()) {
        return failed(me, &key, "jwt update resulted in error", &e.to_string());
    }
    Handled {
        answer: json!({
            "server": server_info(me),
            "data": {"account": key, "code": 200, "message": "jwt updated"},
        }),
        stored: true,
        log: (false, format!("jwt updated - {key}")),
    }
}

/// Writes `<dir>/<key>.jwt` through a temporary file, so a reader never
/// sees half a token.
fn store(dir: &Path, key: &str, token: &str) -> std::io::Result<()> {
    let path = dir.join(format!("{key}.jwt"));
    let temporary = dir.join(format!(".{key}.jwt.tmp"));
    std::fs::write(&temporary, token)?;
    std::fs::rename(&temporary, &path)
}

fn failed(me: &Responder, account: &str, message: &str, error: &str) -> Handled {
    Handled {
        answer: json!({
            "server": server_info(me),
            "error": {
                "account": account,
                "code": 500,
                "description": format!("{message} - {error}"),
            },
        }),
        stored: false,
        log: (true, format!("{message} - {account} - {error}")),
    }
}

fn server_info(me: &Responder) -> Value {
    json!({
        "name": me.name,
        "host": me.host,
        "id": me.id,
        "ver": ADVERTISED_VERSION,
        "seq": 0,
        "jetstream": false,
        "time": crate::monitor::format::rfc3339_nano(std::time::SystemTime::now()),
    })
}
