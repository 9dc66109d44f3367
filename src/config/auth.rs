//! The `authorization` block, `no_auth_user` and the `--user`, `--pass`,
//! `--auth` flags, into the core's [`AuthPolicy`], with nats-server 2.9's
//! keys, aliases and error texts (opts.go `parseAuthorization`,
//! `parseUsers`; auth.go `validateNoAuthUser`).
//!
//! Where nats-server accepts a configuration that cannot work (a broken
//! bcrypt hash, `users: []`, a password without a user) percore refuses it
//! with a clear message: the result would be a server that lets nobody in,
//! or everybody.

// The connection types nats-server knows (jwt's `ConnectionType*`): one
// list for config users and user JWTs.
use percore_core::jwt::login::CONNECTION_TYPES;
use std::sync::Arc;
use std::time::Duration;

use percore_core::auth::{AuthPolicy, NkeyUser, PasswordUser, Permissions, Secret};
use percore_core::ids::AccountId;

use super::conf::{Entry, Map, Node, Pos, Value};
use super::credentials::{is_valid_public_user_key, secret};
use super::entry::{string, unknown_field, wrong_type};
use super::error::{go_quote, go_type, go_value, ConfigError};
use super::permissions::parse_permissions;

/// The keys of one `authorization` block, as written.
#[derive(Default)]
struct Block<'a> {
    user: Option<&'a Entry>,
    password: Option<&'a Entry>,
    token: Option<&'a Entry>,
    timeout: Option<Duration>,
    users: Option<Users>,
    default_permissions: Option<Permissions>,
}

/// The entries of a `users` list (of `authorization` or of an account),
/// with where each was written (for duplicates).
#[derive(Default)]
pub(super) struct Users {
    passwords: Vec<(PasswordUser, Pos)>,
    nkeys: Vec<(NkeyUser, Pos)>,
}

impl Users {
    pub(super) fn is_empty(&self) -> bool {
        self.passwords.is_empty() && self.nkeys.is_empty()
    }
}

/// Applies the top-level `authorization` block to `auth`, replacing what a
/// previous block set (but not `no_auth_user`, a key of its own).
pub fn apply_authorization(entry: &Entry, auth: &mut AuthPolicy) -> Result<(), ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(wrong_type(entry, "a map"));
    };
    let block = read_block(map)?;
    let policy = build_policy(entry, block)?;
    *auth = AuthPolicy {
        no_auth_user: auth.no_auth_user.take(),
        ..policy
    };
    Ok(())
}

fn read_block(map: &Map) -> Result<Block<'_>, ConfigError> {
    let mut block = Block::default();
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "user" | "username" => block.user = Some(string_entry(e)?),
            "pass" | "password" => block.password = Some(string_entry(e)?),
            "token" => block.token = Some(string_entry(e)?),
            "timeout" => block.timeout = timeout(e)?,
            "users" => block.users = Some(parse_users(e)?),
            "default_permission" | "default_permissions" | "permissions" => {
                block.default_permissions = Some(parse_permissions(e)?);
            }
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    Ok(block)
}

/// The entry itself, once its value is known to be a string.
fn string_entry(entry: &Entry) -> Result<&Entry, ConfigError> {
    string(entry).map(|_| entry)
}

/// The text of an optional string entry ("" when absent, as in Go).
fn text(entry: Option<&Entry>) -> &str {
    match entry.map(|e| &e.node.value) {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

/// Seconds, as an integer or a float; any other type means 1 s, as in
/// nats-server. 0 keeps the default (`None`). A negative value would make
/// every client time out at once, so it is refused.
fn timeout(entry: &Entry) -> Result<Option<Duration>, ConfigError> {
    let seconds = match entry.node.value {
        Value::Integer(n) => n as f64,
        Value::Float(f) => f,
        _ => 1.0,
    };
    if seconds == 0.0 {
        return Ok(None);
    }
    if seconds < 0.0 {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!("{} value can not be negative", entry.key),
        ));
    }
    Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| ConfigError::at(&entry.key_pos, format!("{} value is too big", entry.key)))
}

/// nats-server's checks across the block, in its order, then the policy.
fn build_policy(entry: &Entry, block: Block<'_>) -> Result<AuthPolicy, ConfigError> {
    let (user, password, token) = (text(block.user), text(block.password), text(block.token));
    let conflict = |message: &str| Err(ConfigError::at(&entry.key_pos, message));
    if (!user.is_empty() || !password.is_empty()) && !token.is_empty() {
        return conflict("Cannot have a user/pass and token");
    }
    if block.users.is_some() && !user.is_empty() {
        return conflict("Can not have a single user/pass and a users array");
    }
    if block.users.is_some() && !token.is_empty() {
        return conflict("Can not have a token and a users array");
    }
    let mut policy = AuthPolicy {
        timeout: block
            .timeout
            .unwrap_or(percore_core::auth::DEFAULT_AUTH_TIMEOUT),
        ..AuthPolicy::default()
    };
    if let Some(token_entry) = block.token.filter(|_| !token.is_empty()) {
        policy.token = Some(secret_at(token_entry, token, "authorization token")?);
    }
    if !user.is_empty() || !password.is_empty() {
        let password = match block.password {
            Some(e) => secret_at(e, password, &password_of(user))?,
            None => Secret::Plain(String::new()),
        };
        policy.single_user = Some(PasswordUser {
            account: AccountId::GLOBAL,
            name: user.to_string(),
            password,
            permissions: None,
        });
    }
    if let Some(users) = block.users {
        add_users(entry, users, block.default_permissions, &mut policy)?;
    }
    Ok(policy)
}

/// How a password is named in errors (never by its value).
fn password_of(user: &str) -> String {
    if user.is_empty() {
        "authorization password".to_string()
    } else {
        format!("password of user {}", go_quote(user))
    }
}

fn secret_at(entry: &Entry, value: &str, what: &str) -> Result<Secret, ConfigError> {
    secret(value, what).map_err(|message| ConfigError::at(&entry.key_pos, message))
}

/// Adds the `users` entries to `policy`, each with its own permissions or
/// the block's defaults.
///
/// The defaults are resolved here, per entry, and `policy.default_permissions`
/// stays `None`: nats-server applies `default_permissions` to `users`
/// entries only (`applyDefaultPermissions`), never to a token or a single
/// user, which the core would otherwise extend them to.
fn add_users(
    entry: &Entry,
    users: Users,
    defaults: Option<Permissions>,
    policy: &mut AuthPolicy,
) -> Result<(), ConfigError> {
    if users.is_empty() {
        // nats-server only records non-empty lists, and then runs with no
        // authentication at all: surely not what `users` was written for.
        return Err(ConfigError::at(
            &entry.key_pos,
            "users array is empty (nats-server would then require no authentication)",
        ));
    }
    let defaults = defaults.map(Arc::new);
    insert_users(users, AccountId::GLOBAL, defaults.as_ref(), policy)
}

/// Adds `users` to `policy` as users of `account`, each with its own
/// permissions or else `defaults`. User names and nkeys share one namespace
/// across the `authorization` block and every account, as in nats-server,
/// so each must be new to `policy`.
pub(super) fn insert_users(
    users: Users,
    account: AccountId,
    defaults: Option<&Arc<Permissions>>,
    policy: &mut AuthPolicy,
) -> Result<(), ConfigError> {
    let taken = |policy: &AuthPolicy, name: &str| {
        policy.users.contains_key(name) || policy.nkeys.contains_key(name)
    };
    for (mut user, pos) in users.passwords {
        if taken(policy, &user.name) {
            let message = format!("Duplicate user {} detected", go_quote(&user.name));
            return Err(ConfigError::at(&pos, message));
        }
        user.permissions = user.permissions.or_else(|| defaults.cloned());
        user.account = account;
        policy.users.insert(user.name.clone(), user);
    }
    for (mut nkey, pos) in users.nkeys {
        if taken(policy, &nkey.public_key) {
            let message = format!("Duplicate nkey {} detected", go_quote(&nkey.public_key));
            return Err(ConfigError::at(&pos, message));
        }
        nkey.permissions = nkey.permissions.or_else(|| defaults.cloned());
        nkey.account = account;
        policy.nkeys.insert(nkey.public_key.clone(), nkey);
    }
    Ok(())
}

/// `users: [ {user, password, permissions} | {nkey, permissions} ]`, of
/// the `authorization` block or of an account; every user is in `$G`
/// until [`insert_users`] places it.
pub(super) fn parse_users(entry: &Entry) -> Result<Users, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Expected users field to be an array, got {}",
                go_value(&entry.node.value)
            ),
        ));
    };
    let mut users = Users::default();
    for item in items {
        let Value::Map(map) = &item.value else {
            return Err(ConfigError::at(
                &item.pos,
                format!(
                    "Expected user entry to be a map/struct, got {}",
                    go_value(&item.value)
                ),
            ));
        };
        user_entry(item, map, &mut users)?;
    }
    Ok(users)
}

/// The keys of one `users` entry, as written.
#[derive(Default)]
struct UserEntry<'a> {
    nkey: Option<&'a Entry>,
    user: Option<&'a Entry>,
    password: Option<&'a Entry>,
    permissions: Option<Permissions>,
}

fn user_entry(item: &Node, map: &Map, users: &mut Users) -> Result<(), ConfigError> {
    let mut fields = UserEntry::default();
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "nkey" => fields.nkey = Some(string_entry(e)?),
            "user" | "username" => fields.user = Some(string_entry(e)?),
            "pass" | "password" => fields.password = Some(string_entry(e)?),
            "permission" | "permissions" | "authorization" => {
                fields.permissions = Some(parse_permissions(e)?);
            }
            "allowed_connection_types" | "connection_types" | "clients" => {
                connection_types(e)?;
            }
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    let (nkey, user, password) = (text(fields.nkey), text(fields.user), text(fields.password));
    let permissions = fields.permissions.map(Arc::new);
    if let Some(nkey_entry) = fields.nkey.filter(|_| !nkey.is_empty()) {
        if !is_valid_public_user_key(nkey) {
            return Err(ConfigError::at(
                &nkey_entry.key_pos,
                "Not a valid public nkey for a user",
            ));
        }
        if !user.is_empty() || !password.is_empty() {
            return Err(ConfigError::at(
                &item.pos,
                "Nkey users do not take usernames or passwords",
            ));
        }
        let nkey_user = NkeyUser {
            account: AccountId::GLOBAL,
            public_key: nkey.to_string(),
            permissions,
        };
        users.nkeys.push((nkey_user, nkey_entry.key_pos.clone()));
        return Ok(());
    }
    let Some(user_entry) = fields.user.filter(|_| !user.is_empty()) else {
        return Err(ConfigError::at(&item.pos, "User entry requires a user"));
    };
    let password = match fields.password {
        Some(e) => secret_at(e, password, &password_of(user))?,
        None => Secret::Plain(String::new()),
    };
    let password_user = PasswordUser {
        account: AccountId::GLOBAL,
        name: user.to_string(),
        password,
        permissions,
    };
    users
        .passwords
        .push((password_user, user_entry.key_pos.clone()));
    Ok(())
}

/// `allowed_connection_types`: a name or a list of names, checked as
/// nats-server checks them. percore serves only standard NATS clients, so
/// a list that includes `STANDARD` changes nothing, and one that excludes
/// it (a user only for websocket, MQTT or leaf nodes) is refused rather
/// than silently let in over plain NATS.
fn connection_types(entry: &Entry) -> Result<(), ConfigError> {
    let names = connection_type_names(entry)?;
    let upper: Vec<String> = names.iter().map(|n| n.to_ascii_uppercase()).collect();
    let unknown: Vec<String> = upper
        .iter()
        .filter(|n| !CONNECTION_TYPES.contains(&n.as_str()))
        .map(go_quote)
        .collect();
    if !unknown.is_empty() {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!("invalid connection types [{}]", unknown.join(" ")),
        ));
    }
    if !upper.is_empty() && !upper.iter().any(|n| n == "STANDARD") {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "\"{}\" without STANDARD is not supported yet by percore (it serves only standard NATS clients)",
                entry.key
            ),
        ));
    }
    Ok(())
}

/// nats-server's `parseStringArray` for connection types.
fn connection_type_names(entry: &Entry) -> Result<Vec<&str>, ConfigError> {
    let unsupported = |pos: &Pos, what: &str, value: &Value| {
        ConfigError::at(
            pos,
            format!(
                "error parsing allowed connection types: unsupported type{what} {}",
                go_type(value)
            ),
        )
    };
    match &entry.node.value {
        Value::String(name) => Ok(vec![name]),
        Value::Array(items) => items
            .iter()
            .map(|item| match &item.value {
                Value::String(name) => Ok(name.as_str()),
                other => Err(unsupported(&item.pos, " in array", other)),
            })
            .collect(),
        other => Err(unsupported(&entry.key_pos, "", other)),
    }
}

/// `--user`, `--pass`, `--auth`: each non-empty flag replaces the file's
/// value of that one setting (nats-server's `MergeOptions`), so `--pass`
/// alone keeps the file's user.
pub fn apply_flags(
    user: Option<&str>,
    pass: Option<&str>,
    token: Option<&str>,
    auth: &mut AuthPolicy,
) -> Result<(), ConfigError> {
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        single_user(auth).name = user.to_string();
    }
    if let Some(pass) = pass.filter(|p| !p.is_empty()) {
        let password = secret(pass, "--pass value").map_err(ConfigError::new)?;
        single_user(auth).password = password;
    }
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        auth.token = Some(secret(token, "--auth value").map_err(ConfigError::new)?);
    }
    Ok(())
}

/// The single user, created empty if the file had none.
fn single_user(auth: &mut AuthPolicy) -> &mut PasswordUser {
    auth.single_user.get_or_insert_with(|| PasswordUser {
        account: AccountId::GLOBAL,
        name: String::new(),
        password: Secret::Plain(String::new()),
        permissions: None,
    })
}

/// Checks once the file and the flags are merged (nats-server's
/// `validateAuth`, when the server is created).
pub fn validate(auth: &AuthPolicy) -> Result<(), ConfigError> {
    if auth.single_user.as_ref().is_some_and(|u| u.name.is_empty()) {
        // nats-server ignores a password without a user, and then may
        // require no authentication at all.
        return Err(ConfigError::new(
            "a password is set without a user (authorization user or --user)",
        ));
    }
    let Some(name) = &auth.no_auth_user else {
        return Ok(());
    };
    if auth.users.is_empty() {
        return Err(ConfigError::new(format!(
            "no_auth_user: \"{name}\" present, but users are not defined"
        )));
    }
    if !auth.users.contains_key(name) {
        return Err(ConfigError::new(format!(
            "no_auth_user: \"{name}\" not present as user in authorization block or account configuration"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;
    use crate::config::credentials::samples::{HASH, OTHER_USER_KEY, USER_KEY};
    use crate::config::load::{apply_config, validate as validate_options};
    use crate::config::options::Options;
    use percore_core::auth::{Rules, SubscribeRule, DEFAULT_AUTH_TIMEOUT};

    /// Loads `source` as the file x.conf and runs the cross-option checks.
    fn load(source: &str) -> Result<AuthPolicy, String> {
        let map = parse_str(source, "x.conf", &|_| None).map_err(|e| e.to_string())?;
        let mut opts = Options::default();
        apply_config(&map, &mut opts).map_err(|e| e.to_string())?;
        validate_options(&opts).map_err(|e| e.to_string())?;
        Ok(opts.auth)
    }

    fn ok(source: &str) -> AuthPolicy {
        load(source).unwrap_or_else(|e| panic!("unexpected error for {source:?}: {e}"))
    }

    fn err(source: &str) -> String {
        match load(source) {
            Ok(auth) => panic!("expected an error for {source:?}, got {auth:?}"),
            Err(e) => e,
        }
    }

    fn publish_only(subject: &str) -> Arc<Permissions> {
        Arc::new(Permissions {
            publish: Some(Rules {
                allow: Some(vec![subject.as_bytes().into()]),
                deny: vec![],
            }),
            ..Permissions::default()
        })
    }

    fn user_permissions(auth: &AuthPolicy, name: &str) -> Option<Arc<Permissions>> {
        auth.users[name].permissions.clone()
    }

    #[test]
    fn no_block_means_no_authentication() {
        let auth = ok("port: 4222");
        assert_eq!(auth, AuthPolicy::default());
        assert!(!auth.enabled());
        // An empty block changes nothing either (nats-server alike).
        assert_eq!(ok("authorization {}"), AuthPolicy::default());
    }

    #[test]
    fn token() {
        let auth = ok("authorization { token: s3cr3t }");
        assert_eq!(auth.token, Some(Secret::Plain("s3cr3t".into())));
        assert_eq!(auth.timeout, DEFAULT_AUTH_TIMEOUT);
        assert!(auth.enabled() && auth.auth_required());
        let auth = ok(&format!("authorization {{ token: \"{HASH}\" }}"));
        assert_eq!(auth.token, Some(Secret::Bcrypt(HASH.into())));
        // An empty token is no token, as in nats-server.
        assert_eq!(ok("authorization { token: \"\" }").token, None);
    }

    #[test]
    fn single_user() {
        for source in [
            "authorization { user: admin, password: pw }",
            "authorization { USERNAME: admin, pass: pw }",
        ] {
            let expected = PasswordUser {
                account: percore_core::ids::AccountId::GLOBAL,
                name: "admin".into(),
                password: Secret::Plain("pw".into()),
                permissions: None,
            };
            assert_eq!(ok(source).single_user, Some(expected), "{source}");
        }
        let auth = ok(&format!("authorization {{ user: a, password: '{HASH}' }}"));
        assert_eq!(
            auth.single_user.map(|u| u.password),
            Some(Secret::Bcrypt(HASH.into()))
        );
        // A user without a password must send an empty one (or none).
        let auth = ok("authorization { user: a }");
        assert_eq!(
            auth.single_user.map(|u| u.password),
            Some(Secret::Plain(String::new()))
        );
    }

    #[test]
    fn timeout_values() {
        let cases = [
            ("3", Duration::from_secs(3)),
            ("0.5", Duration::from_millis(500)),
            ("0", DEFAULT_AUTH_TIMEOUT),
            // Any other type is 1 s in nats-server, even a duration string.
            ("\"5s\"", Duration::from_secs(1)),
            ("true", Duration::from_secs(1)),
        ];
        for (value, expected) in cases {
            let auth = ok(&format!("authorization {{ token: t, timeout: {value} }}"));
            assert_eq!(auth.timeout, expected, "{value}");
        }
        assert_eq!(
            err("authorization { token: t, timeout: -1 }"),
            "x.conf:1:26: timeout value can not be negative"
        );
        assert_eq!(
            err("authorization { token: t, timeout: 99999999999999999999.0 }"),
            "x.conf:1:26: timeout value is too big"
        );
    }

    #[test]
    fn users_with_permissions_and_defaults() {
        let auth = ok("authorization {\n\
             default_permissions: { publish: \"def\" }\n\
             users: [\n\
               { user: alice, password: a, permissions: { publish: \"own\" } }\n\
               { username: bob, pass: b }\n\
               { user: carol, permission: { publish: \"c\" } }\n\
               { user: dave, authorization: { publish: \"d\" } }\n\
               { nkey: UC6NLCN7AS34YOJVCYD4PJ3QB7QGLYG5B5IMBT25VW5K4TNUJODM7BOX }\n\
               { nkey: UDKTV7HZVYJFJN64LLMYQBUR6MTNNYCDC3LAZH4VHURW3GZLL3FULBXV, permissions: { publish: \"k\" } }\n\
             ]\n\
           }");
        assert_eq!(auth.users.len(), 4);
        assert_eq!(auth.users["alice"].password, Secret::Plain("a".into()));
        assert_eq!(auth.users["bob"].password, Secret::Plain("b".into()));
        assert_eq!(user_permissions(&auth, "alice"), Some(publish_only("own")));
        assert_eq!(user_permissions(&auth, "bob"), Some(publish_only("def")));
        assert_eq!(user_permissions(&auth, "carol"), Some(publish_only("c")));
        assert_eq!(user_permissions(&auth, "dave"), Some(publish_only("d")));
        assert_eq!(auth.nkeys.len(), 2);
        assert_eq!(auth.nkeys[USER_KEY].public_key, USER_KEY);
        assert_eq!(auth.nkeys[USER_KEY].permissions, Some(publish_only("def")));
        assert_eq!(
            auth.nkeys[OTHER_USER_KEY].permissions,
            Some(publish_only("k"))
        );
        // Resolved per entry; see `add_users`.
        assert_eq!(auth.default_permissions, None);
        assert!(auth.wants_nonce());
        assert_eq!((auth.token.clone(), auth.single_user.clone()), (None, None));
    }

    #[test]
    fn default_permissions_aliases() {
        for key in ["default_permissions", "default_permission", "permissions"] {
            let auth = ok(&format!(
                "authorization {{ {key}: {{ subscribe: \"q.> g\" }}, users: [{{user: u}}] }}"
            ));
            let expected = Permissions {
                subscribe: Some(Rules {
                    allow: Some(vec![SubscribeRule {
                        subject: b"q.>"[..].into(),
                        queue: Some(b"g"[..].into()),
                    }]),
                    deny: vec![],
                }),
                ..Permissions::default()
            };
            assert_eq!(
                user_permissions(&auth, "u"),
                Some(Arc::new(expected)),
                "{key}"
            );
        }
        // Without users, defaults have no one to apply to (a token or a
        // single user never gets them in nats-server).
        let auth = ok("authorization { token: t, default_permissions: { publish: x } }");
        assert_eq!(auth.default_permissions, None);
        // Users without permissions and no defaults have none.
        let auth = ok("authorization { users: [{user: u, password: p}] }");
        assert_eq!(user_permissions(&auth, "u"), None);
    }

    #[test]
    fn allow_responses_in_a_user_entry() {
        let auth =
            ok("authorization { users: [{user: u, permissions: { allow_responses: true }}] }");
        let permissions = user_permissions(&auth, "u").expect("permissions");
        assert!(permissions.allow_responses.is_some());
        assert_eq!(
            permissions.publish.as_ref().and_then(|r| r.allow.clone()),
            Some(vec![])
        );
    }

    #[test]
    fn block_conflicts() {
        let cases = [
            (
                "authorization { user: a, token: t }",
                "x.conf:1:0: Cannot have a user/pass and token",
            ),
            (
                "authorization { password: p, token: t }",
                "x.conf:1:0: Cannot have a user/pass and token",
            ),
            (
                "authorization { user: a, users: [{user: b}] }",
                "x.conf:1:0: Can not have a single user/pass and a users array",
            ),
            (
                "authorization { token: t, users: [{user: b}] }",
                "x.conf:1:0: Can not have a token and a users array",
            ),
            (
                "authorization { users: [] }",
                "x.conf:1:0: users array is empty (nats-server would then require no authentication)",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
    }

    #[test]
    fn duplicates() {
        assert_eq!(
            err("authorization { users: [\n{user: a, password: x}\n{user: a, password: y}\n] }"),
            "x.conf:3:2: Duplicate user \"a\" detected"
        );
        assert_eq!(
            err(&format!(
                "authorization {{ users: [\n{{nkey: {USER_KEY}}}\n{{nkey: {USER_KEY}}}\n] }}"
            )),
            format!("x.conf:3:2: Duplicate nkey \"{USER_KEY}\" detected")
        );
    }

    #[test]
    fn nkey_entries() {
        let mut broken = USER_KEY.to_string();
        broken.replace_range(55.., "A");
        let cases = [
            (
                format!("{{nkey: {broken}}}"),
                "x.conf:1:25: Not a valid public nkey for a user",
            ),
            (
                "{nkey: UABC}".to_string(),
                "x.conf:1:25: Not a valid public nkey for a user",
            ),
            (
                format!("{{nkey: {USER_KEY}, user: a}}"),
                "x.conf:1:24: Nkey users do not take usernames or passwords",
            ),
            (
                format!("{{nkey: {USER_KEY}, password: p}}"),
                "x.conf:1:24: Nkey users do not take usernames or passwords",
            ),
            (
                "{nkey: \"\"}".to_string(),
                "x.conf:1:24: User entry requires a user",
            ),
            (
                "{password: p}".to_string(),
                "x.conf:1:24: User entry requires a user",
            ),
        ];
        for (entry, expected) in cases {
            let source = format!("authorization {{ users: [{entry}] }}");
            assert_eq!(err(&source), expected, "{source}");
        }
    }

    #[test]
    fn malformed_entries() {
        let cases = [
            (
                "authorization: 1",
                "x.conf:1:0: invalid value for \"authorization\": expected a map, got an integer",
            ),
            (
                "authorization { users: {user: a} }",
                "x.conf:1:16: Expected users field to be an array, got map[user:a]",
            ),
            (
                "authorization { users: [a] }",
                "x.conf:1:24: Expected user entry to be a map/struct, got a",
            ),
            (
                "authorization { users: [{user: a, foo: 1}] }",
                "x.conf:1:34: unknown field \"foo\"",
            ),
            (
                "authorization { token: t, foo: 1 }",
                "x.conf:1:26: unknown field \"foo\"",
            ),
            (
                "authorization { user: 1 }",
                "x.conf:1:16: invalid value for \"user\": expected a string, got an integer",
            ),
            (
                "authorization { users: [{user: a, password: 2}] }",
                "x.conf:1:34: invalid value for \"password\": expected a string, got an integer",
            ),
            (
                "authorization { users: [{user: a, permissions: { foo: x }}] }",
                "x.conf:1:49: Unknown field \"foo\" parsing permissions",
            ),
            (
                "authorization { users: [{user: a, permissions: [x]}] }",
                "x.conf:1:34: Expected permissions to be a map/struct, got [x]",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
        // Keys used as variables are not unknown fields.
        let auth = ok("authorization { PW: secret, users: [{user: a, password: $PW}] }");
        assert_eq!(auth.users["a"].password, Secret::Plain("secret".into()));
    }

    #[test]
    fn malformed_bcrypt_hashes() {
        let shape = "starts with \"$2\" but is not a valid bcrypt hash (expected $2a$, $2b$, $2x$ or $2y$, \
                     a cost from 04 to 31, '$', then 53 characters of [./A-Za-z0-9])";
        let short = &HASH[..40];
        let cases = [
            (
                format!("authorization {{ users: [{{user: alice, password: \"{short}\"}}] }}"),
                format!("x.conf:1:38: password of user \"alice\" {shape}"),
            ),
            (
                format!("authorization {{ user: admin, password: \"{short}\" }}"),
                format!("x.conf:1:29: password of user \"admin\" {shape}"),
            ),
            (
                format!("authorization {{ token: \"{short}\" }}"),
                format!("x.conf:1:16: authorization token {shape}"),
            ),
            (
                "authorization { token: \"$2a$03$x\" }".to_string(),
                format!("x.conf:1:16: authorization token {shape}"),
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(&source), expected, "{source}");
        }
    }

    #[test]
    fn connection_types() {
        for value in [
            "STANDARD",
            "[standard, websocket]",
            "[]",
            "[\"MQTT\", \"Standard\"]",
        ] {
            let source = format!(
                "authorization {{ users: [{{user: a, allowed_connection_types: {value}}}] }}"
            );
            assert!(ok(&source).users.contains_key("a"), "{source}");
        }
        for key in ["connection_types", "clients"] {
            let source = format!("authorization {{ users: [{{user: a, {key}: [STANDARD]}}] }}");
            assert!(ok(&source).users.contains_key("a"), "{source}");
        }
        let cases = [
            ("[websocket, leafnode]", "x.conf:1:34: \"allowed_connection_types\" without STANDARD is not supported yet by percore (it serves only standard NATS clients)"),
            ("[standard, foo, Bar]", "x.conf:1:34: invalid connection types [\"FOO\" \"BAR\"]"),
            ("1", "x.conf:1:34: error parsing allowed connection types: unsupported type int64"),
            ("[STANDARD, 2]", "x.conf:1:71: error parsing allowed connection types: unsupported type in array int64"),
        ];
        for (value, expected) in cases {
            let source = format!(
                "authorization {{ users: [{{user: a, allowed_connection_types: {value}}}] }}"
            );
            assert_eq!(err(&source), expected, "{source}");
        }
    }

    #[test]
    fn no_auth_user() {
        let auth = ok("no_auth_user: bob\nauthorization { users: [{user: bob}, {user: al}] }");
        assert_eq!(auth.no_auth_user.as_deref(), Some("bob"));
        assert!(auth.enabled() && !auth.auth_required());
        // The order of the two keys does not matter.
        let auth = ok("authorization { users: [{user: bob}] }\nno_auth_user: bob");
        assert_eq!(auth.no_auth_user.as_deref(), Some("bob"));
        assert_eq!(ok("no_auth_user: \"\"").no_auth_user, None);
        let cases = [
            ("no_auth_user: bob", "no_auth_user: \"bob\" present, but users are not defined"),
            ("no_auth_user: bob\nauthorization { user: bob }", "no_auth_user: \"bob\" present, but users are not defined"),
            ("no_auth_user: bob\nauthorization { token: t }", "no_auth_user: \"bob\" present, but users are not defined"),
            (
                "no_auth_user: bob\nauthorization { users: [{user: al}] }",
                "no_auth_user: \"bob\" not present as user in authorization block or account configuration",
            ),
            ("no_auth_user: 1", "x.conf:1:0: invalid value for \"no_auth_user\": expected a string, got an integer"),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
        // An nkey is not a user name.
        assert_eq!(
            err(&format!(
                "no_auth_user: {USER_KEY}\nauthorization {{ users: [{{nkey: {USER_KEY}}}] }}"
            )),
            format!("no_auth_user: \"{USER_KEY}\" present, but users are not defined")
        );
    }

    #[test]
    fn password_without_user_is_refused() {
        let expected = "a password is set without a user (authorization user or --user)";
        assert_eq!(err("authorization { password: p }"), expected);
        assert_eq!(err("authorization { user: \"\", password: p }"), expected);
    }

    /// The policy after the file `source` and then the flags.
    fn with_flags(
        source: &str,
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> Result<AuthPolicy, String> {
        let mut auth = load(source)?;
        apply_flags(user, pass, token, &mut auth).map_err(|e| e.to_string())?;
        validate(&auth).map_err(|e| e.to_string())?;
        Ok(auth)
    }

    #[test]
    fn flags_replace_one_setting_each() {
        let file = "authorization { user: a, password: p }";
        let single = |auth: AuthPolicy| {
            let user = auth.single_user.expect("single user");
            (user.name, user.password)
        };
        let plain = |s: &str| Secret::Plain(s.into());
        assert_eq!(
            single(with_flags(file, Some("b"), None, None).unwrap()),
            ("b".into(), plain("p"))
        );
        assert_eq!(
            single(with_flags(file, None, Some("q"), None).unwrap()),
            ("a".into(), plain("q"))
        );
        assert_eq!(
            single(with_flags(file, Some(""), Some(""), Some("")).unwrap()),
            ("a".into(), plain("p"))
        );
        assert_eq!(
            single(with_flags("", Some("u"), Some(HASH), None).unwrap()),
            ("u".into(), Secret::Bcrypt(HASH.into()))
        );
        let auth = with_flags(
            "authorization { token: t, timeout: 5 }",
            None,
            None,
            Some("x"),
        )
        .unwrap();
        assert_eq!(auth.token, Some(plain("x")));
        assert_eq!(auth.timeout, Duration::from_secs(5));
        // A user alone needs no password.
        let auth = with_flags("", Some("u"), None, None).unwrap();
        assert_eq!(single(auth), ("u".into(), plain("")));
    }

    #[test]
    fn flag_errors() {
        assert_eq!(
            with_flags("", None, Some("p"), None),
            Err("a password is set without a user (authorization user or --user)".into())
        );
        assert_eq!(
            with_flags("", None, None, Some("$2y$10$x")),
            Err("--auth value starts with \"$2\" but is not a valid bcrypt hash (expected $2a$, $2b$, $2x$ or $2y$, \
                 a cost from 04 to 31, '$', then 53 characters of [./A-Za-z0-9])"
                .into())
        );
        assert!(with_flags("", Some("u"), Some("$2b$"), None)
            .unwrap_err()
            .starts_with("--pass value starts with \"$2\""));
    }
}
