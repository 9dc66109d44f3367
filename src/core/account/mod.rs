//! Accounts: isolated subject spaces inside one server, as nats-server's
//! `accounts` block defines them. A subject published in one account
//! reaches subscribers of that account only, unless an account exports it
//! ([`export`]) and another imports it ([`import`]), possibly under another
//! name ([`transform`]). An account may also rename what its clients
//! publish ([`mapping`]).
//!
//! The [`AccountTable`] is built once from the configuration (and again
//! at each reload) and shared read-only by every shard through its
//! [`crate::limits::ShardLimits`]. The shard keeps one subscription index
//! per account, indexed by [`AccountId`] (see `shard/accounts.rs`).

pub mod export;
pub mod import;
pub mod limits;
pub mod mapping;
pub mod request_info;
pub mod transform;

use std::collections::HashMap;

pub use export::{Export, ExportKind, ResponseType, DEFAULT_RESPONSE_THRESHOLD};
pub use import::{ServiceImport, StreamImport};
pub use limits::{AccountLimits, ActiveConnections};
pub use mapping::{MapDestination, Mapped, Mappings};
pub use transform::SubjectTransform;

pub use crate::ids::AccountId;

/// The account of clients when none is configured for them.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// nats-server's default system account.
pub const SYSTEM_ACCOUNT: &str = "$SYS";

/// One account as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub exports: Vec<Export>,
    pub stream_imports: Vec<StreamImport>,
    pub service_imports: Vec<ServiceImport>,
    pub limits: AccountLimits,
    /// `mappings`: subjects its clients publish on, renamed.
    pub mappings: Mappings,
}

impl Account {
    pub fn new(id: AccountId, name: &str) -> Account {
        Account {
            id,
            name: name.to_string(),
            exports: Vec::new(),
            stream_imports: Vec::new(),
            service_imports: Vec::new(),
            limits: AccountLimits::default(),
            mappings: Mappings::default(),
        }
    }

    /// The export of this account that lets `importer` import `subject` of
    /// the given kind, if any (nats-server: the subject must be a subset of
    /// the export's, and a private export must list the importer).
    pub fn export_for(
        &self,
        subject: &[u8],
        service: bool,
        importer: AccountId,
    ) -> Option<&Export> {
        self.exports
            .iter()
            .find(|export| export.is_service() == service && export.authorizes(subject, importer))
    }
}

/// Every account of the server, by id and by name. Ids are dense indexes:
/// `$G` is 0, then the configured accounts, then `$SYS` unless it was
/// configured by name. A reload keeps the ids of accounts that still exist
/// ([`AccountTable::keeping_ids_of`]), so connections and subscriptions
/// that name an account stay correct across it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountTable {
    /// By id; `None` for an id whose account a reload removed.
    accounts: Vec<Option<Account>>,
    by_name: HashMap<String, AccountId>,
    system: Option<AccountId>,
    /// Some account has `mappings`: the publish path looks them up only
    /// then.
    has_mappings: bool,
}

impl Default for AccountTable {
    /// `$G` and `$SYS`, as nats-server 2.9 runs without an `accounts` block.
    fn default() -> Self {
        AccountTable::build(Vec::new(), Some(SYSTEM_ACCOUNT))
    }
}

impl AccountTable {
    /// The table for `configured` accounts (ids assigned in order after
    /// `$G`; the accounts' own `id` fields are overwritten), with
    /// `system` as the system account (created if not configured). A
    /// configured `$G` gives only its mappings (the top-level `mappings`).
    pub fn build(configured: Vec<Account>, system: Option<&str>) -> AccountTable {
        let mut table = AccountTable {
            accounts: Vec::new(),
            by_name: HashMap::new(),
            system: None,
            has_mappings: false,
        };
        let mut global = Account::new(AccountId::GLOBAL, GLOBAL_ACCOUNT);
        let mut others = Vec::new();
        for account in configured {
            if account.name == GLOBAL_ACCOUNT {
                global.mappings = account.mappings;
            } else {
                others.push(account);
            }
        }
        table.push(global);
        for account in others {
            table.push(account);
        }
        if let Some(name) = system {
            let id = match table.by_name.get(name) {
                Some(&id) => id,
                None => table.push(Account::new(AccountId::GLOBAL, name)),
            };
            table.system = Some(id);
        }
        let has_mappings = table.iter().any(|a| !a.mappings.is_empty());
        table.has_mappings = has_mappings;
        table
    }

    fn push(&mut self, mut account: Account) -> AccountId {
        let id = AccountId(self.accounts.len() as u32);
        account.id = id;
        self.by_name.insert(account.name.clone(), id);
        self.accounts.push(Some(account));
        id
    }

    /// The same accounts renumbered so that every name `old` knows keeps
    /// its id there; new names take ids no account of `old` ever had.
    /// Imports and exports that name accounts by id are rewritten.
    pub fn keeping_ids_of(self, old: &AccountTable) -> AccountTable {
        let mut next = old.accounts.len() as u32;
        let mut renumber: HashMap<AccountId, AccountId> = HashMap::new();
        for account in self.accounts.iter().flatten() {
            let id = match old.by_name.get(&account.name) {
                Some(&id) => id,
                None => {
                    next += 1;
                    AccountId(next - 1)
                }
            };
            renumber.insert(account.id, id);
        }
        let map = |id: AccountId| renumber.get(&id).copied().unwrap_or(id);
        let mut accounts: Vec<Option<Account>> = (0..next).map(|_| None).collect();
        let mut by_name = HashMap::new();
        for mut account in self.accounts.into_iter().flatten() {
            account.id = map(account.id);
            for export in &mut account.exports {
                if let Some(list) = &mut export.accounts {
                    list.iter_mut().for_each(|id| *id = map(*id));
                }
            }
            for import in &mut account.stream_imports {
                import.exporter = map(import.exporter);
            }
            for import in &mut account.service_imports {
                import.exporter = map(import.exporter);
            }
            by_name.insert(account.name.clone(), account.id);
            let slot = account.id.0 as usize;
            accounts[slot] = Some(account);
        }
        AccountTable {
            accounts,
            by_name,
            system: self.system.map(map),
            has_mappings: self.has_mappings,
        }
    }

    pub fn get(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id.0 as usize)?.as_ref()
    }

    /// The account lookup: a name as the configuration and `/accountz`
    /// give it.
    pub fn lookup(&self, name: &str) -> Option<AccountId> {
        self.by_name.get(name).copied()
    }

    /// The account's name, or `""` for an id no account has.
    pub fn name(&self, id: AccountId) -> &str {
        self.get(id).map_or("", |a| a.name.as_str())
    }

    pub fn system(&self) -> Option<AccountId> {
        self.system
    }

    /// One past the highest id: the size of a per-account vector.
    pub fn id_bound(&self) -> usize {
        self.accounts.len()
    }

    /// The existing accounts, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter().flatten()
    }

    /// Whether any account has `mappings` (one load on the publish path).
    #[inline]
    pub fn has_mappings(&self) -> bool {
        self.has_mappings
    }

    /// Whether any account imports anything (the publish path skips the
    /// import machinery otherwise).
    pub fn has_imports(&self) -> bool {
        self.iter()
            .any(|a| !a.stream_imports.is_empty() || !a.service_imports.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Account {
        Account::new(AccountId::GLOBAL, name)
    }

    #[test]
    fn default_table_has_global_and_system() {
        let table = AccountTable::default();
        assert_eq!(table.lookup("$G"), Some(AccountId::GLOBAL));
        let sys = table.lookup("$SYS").expect("system account");
        assert_eq!(table.system(), Some(sys));
        assert_eq!(table.name(sys), "$SYS");
    }

    #[test]
    fn reload_keeps_ids_of_known_names() {
        let old = AccountTable::build(vec![named("A"), named("B")], Some("$SYS"));
        let a = old.lookup("A").unwrap();
        let b = old.lookup("B").unwrap();
        let mut c = named("C");
        c.stream_imports.push(StreamImport {
            exporter: AccountId(1),
            subject: "x".into(),
            transform: None,
        });
        // B is gone, C is new and imports from the account at (new) id 1.
        let new = AccountTable::build(vec![named("A"), c], Some("$SYS")).keeping_ids_of(&old);
        assert_eq!(new.lookup("A"), Some(a));
        assert_eq!(new.lookup("B"), None);
        assert!(new.get(b).is_none());
        let c = new.lookup("C").unwrap();
        assert!(c.0 as usize >= old.id_bound());
        assert_eq!(new.get(c).unwrap().stream_imports[0].exporter, a);
        assert_eq!(new.system(), old.system());
    }
}
