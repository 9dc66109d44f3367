//! The accounts of the system-account tests (`system_account.rs`,
//! `system_cluster.rs`): `SYS` is the system account and `APP` an
//! application account beside it, each with one user whose password is
//! its name, for percore and the reference nats-server alike.

/// The accounts as a config file (NATS conf syntax).
pub const CONFIG: &str = r#"
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP { users = [{user: app, password: app}] }
}
system_account: SYS
"#;

/// CONNECT credentials (appended to the CONNECT JSON) of the system user.
pub const SYS: &str = r#","user":"sys","pass":"sys""#;
/// CONNECT credentials of the application user.
pub const APP: &str = r#","user":"app","pass":"app""#;
