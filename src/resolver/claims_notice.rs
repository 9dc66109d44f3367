//! Account JWT update notices for the URL resolver (nats-server's
//! `accountClaimUpdate`, which resolvers without a store of their own
//! follow): an account server that took a new account JWT publishes it on
//! `$SYS.ACCOUNT.<id>.CLAIMS.UPDATE` (or `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE`),
//! and a server that has the account loaded takes it at once; one it has
//! not loaded is skipped (the next login fetches the current JWT). Runs on
//! a shard's blocking thread, as the `full` resolver's requests do
//! ([`crate::resolver::claims_update`]), with their answers and log lines.

use percore_core::jwt::account::Account;
use percore_core::jwt::{decode, ClaimType};
use percore_core::shard::SystemRequest;

use crate::auth_checks::NkeyVerifier;
use crate::config::operator::OperatorOptions;
use crate::resolver::claims_update::{failed, succeeded, Handled, Responder};
use crate::resolver::url::{validate, UrlResolver};

/// Handles one notice.
pub fn handle(
    request: &SystemRequest,
    operator: &OperatorOptions,
    resolver: &UrlResolver,
    me: &Responder,
) -> Handled {
    let tokens: Vec<&str> = request.subject.split('.').collect();
    let key = match tokens.as_slice() {
        ["$SYS", "ACCOUNT", id, "CLAIMS", "UPDATE"] => *id,
        ["$SYS", "REQ", "ACCOUNT", id, "CLAIMS", "UPDATE"] => *id,
        _ => {
            return Handled {
                answer: None,
                stored: false,
                log: Some((
                    false,
                    format!(
                        "Received account claims update on bad subject {:?}",
                        request.subject
                    ),
                )),
            }
        }
    };
    let text = String::from_utf8_lossy(&request.payload);
    let token = text.trim();
    if token.is_empty() {
        return failed(me, key, "jwt update error", "request body is empty");
    }
    let claims = match decode::<Account>(token, ClaimType::Account, &NkeyVerifier) {
        Ok(claims) => claims,
        Err(e) => return failed(me, key, "jwt update resulted in error", &e.to_string()),
    };
    if claims.data.subject != key {
        return failed(
            me,
            key,
            "jwt update resulted in error",
            "subject does not match jwt content",
        );
    }
    if resolver.fetched.get(key).is_none() {
        return succeeded(me, Some(key), "jwt update skipped", false);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(e) = validate(token, key, &operator.trusted, now) {
        return failed(me, key, "jwt update resulted in error", &e);
    }
    resolver.fetched.insert(key, token);
    succeeded(me, Some(key), "jwt updated", true)
}
