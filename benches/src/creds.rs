//! JWT logins for the bench clients (operator mode): a `.creds` file as
//! `nsc` writes it (the user JWT and its NKey seed), the CONNECT fields it
//! gives (`jwt`, and `sig`: the seed's signature over INFO's nonce), and the
//! operator setup the JWT benchmarks run both servers with.
//!
//! Set once per process, like `--tls-ca` ([`crate::tls`]): every
//! connection the bench opens logs in with the same user.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use percore_core::jwt::mint::{mint_issued_at, unlimited};
use serde_json::json;

/// A user's JWT and the key that signs nonces for it.
pub struct Creds {
    pub jwt: String,
    pub key: KeyPair,
}

static CREDS: OnceLock<Creds> = OnceLock::new();

/// Reads `path` (a `.creds` file) for every later connection.
pub fn enable(path: &Path) -> Result<(), String> {
    let creds = read(path)?;
    CREDS
        .set(creds)
        .map_err(|_| "credentials already set".to_string())
}

/// The credentials [`enable`] read, if any.
pub fn enabled() -> Option<&'static Creds> {
    CREDS.get()
}

pub fn read(path: &Path) -> Result<Creds, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--creds {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("--creds {}: {e}", path.display()))
}

/// The first line after each `-----BEGIN ...-----` marker: the JWT, then
/// the seed.
pub fn parse(text: &str) -> Result<Creds, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("-----BEGIN") {
            if let Some(value) = lines.next() {
                blocks.push(value.to_string());
            }
        }
    }
    let [jwt, seed] = <[String; 2]>::try_from(blocks)
        .map_err(|b| format!("expected a JWT and a seed block, found {}", b.len()))?;
    let key = KeyPair::from_seed(&seed).map_err(|e| format!("seed: {e}"))?;
    Ok(Creds { jwt, key })
}

impl Creds {
    /// `,"jwt":"…","sig":"…"`: what CONNECT adds for a server whose INFO
    /// carried `nonce`.
    pub fn connect_fields(&self, nonce: &str) -> Result<String, String> {
        let sig = self
            .key
            .sign(nonce.as_bytes())
            .map_err(|e| format!("signing the nonce: {e}"))?;
        Ok(format!(
            ",\"jwt\":\"{}\",\"sig\":\"{}\"",
            self.jwt,
            BASE64URL_NOPAD.encode(&sig)
        ))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn user_creds(jwt: &str, seed: &str) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    text
}

/// Writes `dir/server.conf` (an operator, a system account and account
/// BENCH, preloaded into a `MEMORY` resolver: a config both percore and
/// nats-server start with) and `dir/user.creds` (a user of BENCH allowed
/// everything).
pub fn write_operator_setup(dir: &Path) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("operator setup in {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    let iat = now() - 5;
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let bench = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = mint_issued_at(
        "operator",
        &operator.public_key(),
        &operator,
        iat,
        json!({"name": "BENCH_OP"}),
        json!({"system_account": system.public_key()}),
    );
    let account = |key: &KeyPair, name: &str| {
        mint_issued_at(
            "account",
            &key.public_key(),
            &operator,
            iat,
            json!({"name": name}),
            json!({"limits": unlimited()}),
        )
    };
    let user_jwt = mint_issued_at(
        "user",
        &user.public_key(),
        &bench,
        iat,
        json!({"name": "bench"}),
        json!({"subs": -1, "data": -1, "payload": -1}),
    );
    let seed = user.seed().map_err(|e| fail(&e))?;
    let conf = format!(
        "operator: \"{operator_jwt}\"\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {sys}: \"{sys_jwt}\"\n  {acc}: \"{acc_jwt}\"\n}}\n",
        sys = system.public_key(),
        sys_jwt = account(&system, "SYS"),
        acc = bench.public_key(),
        acc_jwt = account(&bench, "BENCH"),
    );
    std::fs::write(dir.join("server.conf"), conf).map_err(|e| fail(&e))?;
    std::fs::write(dir.join("user.creds"), user_creds(&user_jwt, &seed)).map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_setup_writes() {
        let dir = std::env::temp_dir().join(format!("percore-creds-{}", std::process::id()));
        write_operator_setup(&dir).expect("setup");
        let creds = read(&dir.join("user.creds")).expect("creds");
        assert!(creds.jwt.starts_with("eyJ"), "{}", creds.jwt);
        assert!(creds.key.public_key().starts_with('U'));
        let fields = creds.connect_fields("nonce").expect("sign");
        assert!(fields.contains("\"sig\":\""), "{fields}");
        let conf = std::fs::read_to_string(dir.join("server.conf")).expect("conf");
        assert!(conf.contains("resolver: MEMORY"), "{conf}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_file_without_both_blocks() {
        assert!(parse("-----BEGIN NATS USER JWT-----\nabc\n").is_err());
        assert!(parse("").is_err());
    }
}
