//! Accounts on one shard: a subscription index per account (the subject
//! spaces a publish is matched in), the import subscriptions this shard
//! installs for the configured imports, and the counters `/accountz`
//! reads.
//!
//! Import subscriptions are the shard's own: every shard installs the same
//! ones from the shared [`AccountTable`], fires them only for messages
//! published on it, and never tells the other shards about them (each has
//! its own). The other servers of a cluster do hear of those that need
//! their messages (stream imports, the system services): the cluster shard
//! counts them as this server's interest, once per server, and announces
//! them to the routes. What they do when they fire is in
//! [`super::imports`] and [`super::system_requests`].

use std::sync::Arc;

use crate::account::AccountTable;
use crate::connection::{Sid, SubOwner, Subscription};
use crate::ids::{AccountId, SubKey};
use crate::io::ShardIo;
use crate::sublist::{IndexCounters, SubscriptionIndex};

use super::ShardBroker;

/// One subscription index per account, by [`AccountId`].
#[derive(Debug, Default)]
pub struct AccountIndexes {
    indexes: Vec<SubscriptionIndex>,
    /// `disable_sublist_cache`: the indexes cache no match results.
    no_cache: bool,
}

impl AccountIndexes {
    /// `no_cache`: `disable_sublist_cache` (fixed for the server's life,
    /// as in nats-server, which picks each account's sublist kind once).
    pub fn new(no_cache: bool) -> Self {
        AccountIndexes {
            indexes: Vec::new(),
            no_cache,
        }
    }

    /// Every id below `bound` gets an index (a reload may add accounts;
    /// another shard may name one before this shard has the new table).
    fn make_room(&mut self, bound: usize) {
        if self.indexes.len() < bound {
            self.grow(bound);
        }
    }

    // Out of line: every publish asks for its account's index, and growing
    // happens only after a reload added accounts.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, bound: usize) {
        let make = if self.no_cache {
            SubscriptionIndex::without_cache
        } else {
            SubscriptionIndex::new
        };
        self.indexes.resize_with(bound, make);
    }

    #[inline]
    pub fn get_mut(&mut self, account: AccountId) -> &mut SubscriptionIndex {
        let slot = account.0 as usize;
        self.make_room(slot + 1);
        &mut self.indexes[slot]
    }

    pub fn get(&self, account: AccountId) -> Option<&SubscriptionIndex> {
        self.indexes.get(account.0 as usize)
    }

    /// Summed over the accounts, for `/subsz` and `/varz`.
    pub fn counters(&self) -> IndexCounters {
        let mut sum = IndexCounters::default();
        for index in &self.indexes {
            let c = index.counters();
            sum.inserts += c.inserts;
            sum.removes += c.removes;
            sum.matches += c.matches;
            sum.cache_hits += c.cache_hits;
        }
        sum
    }

    /// Every account's index, by id.
    pub fn iter(&self) -> impl Iterator<Item = &SubscriptionIndex> {
        self.indexes.iter()
    }

    pub fn cached_subjects(&self) -> usize {
        self.indexes.iter().map(|i| i.cached_subjects()).sum()
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// Installs this shard's import subscriptions for `accounts`, replacing
    /// those of the previous table.
    pub(super) fn install_imports(&mut self, accounts: &Arc<AccountTable>) {
        self.accounts.make_room(accounts.id_bound());
        let old: Vec<SubKey> = std::mem::take(&mut self.import_subs);
        // The routes' interest of the old subscriptions is withdrawn after
        // the new ones are counted: a subject that stays (the system
        // services, across every reload) is then neither withdrawn nor
        // announced again.
        let mut withdrawn: Vec<(AccountId, Box<[u8]>)> = Vec::new();
        for sk in old {
            if let Some(sub) = self.subs.try_remove(sk.index()) {
                self.accounts
                    .get_mut(sub.account)
                    .remove_local(sub.subject(), None, sk);
                if matches!(
                    sub.owner,
                    SubOwner::StreamImport { .. } | SubOwner::SystemService
                ) {
                    withdrawn.push((sub.account, sub.subject().into()));
                }
            }
        }
        for account in accounts.iter() {
            for (i, import) in account.stream_imports.iter().enumerate() {
                let owner = SubOwner::StreamImport {
                    importer: account.id,
                    import: i as u32,
                };
                self.install_import(owner, import.exporter, import.subject.as_bytes());
                // Other servers of the cluster must send what the exporter
                // publishes there (the cluster shard announces it).
                self.cluster_interest_changed(import.exporter, import.subject.as_bytes(), None, 1);
            }
            for (i, import) in account.service_imports.iter().enumerate() {
                let owner = SubOwner::ServiceImport {
                    importer: account.id,
                    import: i as u32,
                };
                self.install_import(owner, account.id, import.local.as_bytes());
            }
        }
        self.install_system_services();
        for (account, subject) in withdrawn {
            self.cluster_interest_changed(account, &subject, None, -1);
        }
    }

    fn install_import(&mut self, owner: SubOwner, account: AccountId, subject: &[u8]) {
        let sk = SubKey::new(self.subs.insert(Subscription::new(
            owner,
            account,
            Sid::new(b""),
            subject,
            None,
            1,
        )));
        self.accounts
            .get_mut(account)
            .insert_local(subject, None, sk);
        self.import_subs.push(sk);
    }
}
