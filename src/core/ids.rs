//! Typed ids: what a number names is in its type, so a shard index cannot be
//! passed where a connection is meant, and a connection slot reused after a
//! close cannot be mistaken for the connection that had it before.

use std::fmt;

/// A shard: `0..shard_count`. Not a CPU number and not glommio's executor
/// id (1-based, in thread start order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(u16);

impl ShardId {
    /// The most shards a server can have (the server refuses more at start).
    pub const MAX_COUNT: usize = u16::MAX as usize + 1;

    /// `index` < [`ShardId::MAX_COUNT`], which the server checks at start.
    pub fn new(index: usize) -> ShardId {
        ShardId(u16::try_from(index).expect("shard index below ShardId::MAX_COUNT"))
    }

    /// The shard's position in per-shard tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Every shard of a server with `count` shards.
    pub fn all(count: usize) -> impl Iterator<Item = ShardId> {
        (0..count).map(ShardId::new)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client as nats-server numbers them (`cid`, INFO `client_id`): unique
/// for the server's life, assigned in accept order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A connection on its shard: a slot in the shard's connection table plus
/// the slot's generation, bumped each time the slot is freed. A key kept by
/// a task after its connection closed names nothing instead of the next
/// connection that takes the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.slot, self.generation)
    }
}

/// A subscription in its shard's subscription table and index. Only the
/// shard that owns it holds one; the table and the index change together,
/// so no generation is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubKey(pub(crate) u32);

impl SubKey {
    pub fn new(index: usize) -> SubKey {
        SubKey(u32::try_from(index).expect("fewer than 2^32 subscriptions per shard"))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An account. Until accounts land every connection is in the global
/// account, [`AccountId::GLOBAL`]; the shard's subscription index then
/// becomes one index per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AccountId(pub u32);

impl AccountId {
    /// nats-server's `$G`.
    pub const GLOBAL: AccountId = AccountId(0);
}
