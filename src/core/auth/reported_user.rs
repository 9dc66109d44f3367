//! Who a connection is, as nats-server reports it in `/connz?auth=1`
//! (`authorized_user`) and in its connect and disconnect events (`user`):
//! what the client's CONNECT claimed, not only what it logged in with.

use super::{AuthMethod, Credentials};

/// The user name the connection holds: the one it logged in as (a
/// `no_auth_user`, a user taken from its certificate), else the one its
/// CONNECT named, even where no authentication is configured or the login
/// failed. nats-server keeps only this for a closed connection.
pub fn user_name<'a>(
    method: &'a AuthMethod,
    credentials: Option<&'a Credentials>,
) -> Option<&'a str> {
    match method {
        AuthMethod::User(name) | AuthMethod::SingleUser(name) | AuthMethod::NoAuthUser(name) => {
            Some(name)
        }
        _ => non_empty(credentials.and_then(|c| c.user.as_deref())),
    }
}

/// What an open connection is reported as (nats-server's `getRawAuthUser`):
/// the nkey its CONNECT carried, else its user name, else its JWT's user
/// key, else the token it sent (shown as sent).
pub fn raw_auth_user<'a>(
    method: &'a AuthMethod,
    credentials: Option<&'a Credentials>,
) -> Option<&'a str> {
    if let Some(nkey) = non_empty(credentials.and_then(|c| c.nkey.as_deref())) {
        return Some(nkey);
    }
    if let AuthMethod::Nkey(nkey) = method {
        return Some(nkey);
    }
    if let Some(name) = user_name(method, credentials) {
        return Some(name);
    }
    if let AuthMethod::Jwt(key) = method {
        return Some(key);
    }
    non_empty(credentials.and_then(|c| c.auth_token.as_deref()))
}

fn non_empty(field: Option<&str>) -> Option<&str> {
    field.filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(user: Option<&str>, token: Option<&str>, nkey: Option<&str>) -> Credentials {
        Credentials {
            user: user.map(str::to_string),
            auth_token: token.map(str::to_string),
            nkey: nkey.map(str::to_string),
            ..Credentials::default()
        }
    }

    #[test]
    fn nkey_then_user_then_jwt_then_token() {
        let both = sent(Some("bob"), Some("t"), Some("UKEY"));
        assert_eq!(raw_auth_user(&AuthMethod::Open, Some(&both)), Some("UKEY"));
        let user = sent(Some("bob"), Some("t"), None);
        assert_eq!(raw_auth_user(&AuthMethod::Open, Some(&user)), Some("bob"));
        let token = sent(None, Some("t"), None);
        assert_eq!(raw_auth_user(&AuthMethod::Token, Some(&token)), Some("t"));
        let jwt = AuthMethod::Jwt("UJWT".into());
        assert_eq!(raw_auth_user(&jwt, Some(&token)), Some("UJWT"));
        assert_eq!(raw_auth_user(&AuthMethod::Open, None), None);
    }

    #[test]
    fn the_logged_in_name_wins_and_closed_keeps_only_names() {
        let nobody = sent(None, None, None);
        let method = AuthMethod::NoAuthUser("guest".into());
        assert_eq!(user_name(&method, Some(&nobody)), Some("guest"));
        let token = sent(None, Some("t"), None);
        assert_eq!(user_name(&AuthMethod::Token, Some(&token)), None);
        let failed = sent(Some("mallory"), None, None);
        assert_eq!(user_name(&AuthMethod::Open, Some(&failed)), Some("mallory"));
    }
}
