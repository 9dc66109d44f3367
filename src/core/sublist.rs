//! `SubscriptionIndex`: one shard's view of all interest in the server, and
//! the per-shard cache of match results (the replica model is described in
//! `shard/mod.rs`).
//!
//! It owns two kinds of entries, stored at the trie node of their pattern:
//!
//! * full entries for this shard's own subscriptions, identified by a
//!   `SubKey` the caller owns (a slab key);
//! * aggregated interest of other shards: per (pattern, optional queue
//!   group, shard) a count, changed by `apply_remote` deltas.
//!
//! The trie has one level per token: literal children (a short vector,
//! a hash map beyond `FEW_CHILDREN`), plus a `*` child and a `>` child.
//! Nodes are laid out for millions of subscriptions (see `Node`). `matches`
//! walks it for a published subject and caches the result per subject.
//!
//! Invariants:
//! * Used by one thread only (no locks, no atomics; results are `Rc`).
//! * The cache never serves a stale result: every change removes each cached
//!   subject its pattern matches (exactly that key for a literal pattern, a
//!   scan with `subject::pattern_matches` for a wildcard pattern).
//! * A node exists only while it or a descendant holds an entry: removing
//!   the last entry prunes the path, so churning `_INBOX.x.y` subscriptions
//!   leave nothing behind. Remote counts are > 0 (zero counts are removed).

mod token;

use std::rc::Rc;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use thin_vec::ThinVec;

use crate::subject::{has_empty_token, has_wildcard_token, pattern_matches};

use token::Token;

pub use crate::ids::{ShardId, SubKey};

/// Cache bound: above this many subjects, the cache is cut down to
/// `CACHE_SWEEP_TO` (arbitrary survivors), like nats-server's sublist cache.
const CACHE_MAX: usize = 1024;
const CACHE_SWEEP_TO: usize = 256;

/// Everything that matches one published subject.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MatchResult {
    /// Every matching local non-queue subscription, once per subscription
    /// (a subscription matching through several patterns is several subs).
    pub local_plain: Vec<SubKey>,
    /// Other shards with any matching non-queue interest: sorted, unique.
    pub remote_plain: Vec<ShardId>,
    /// One entry per distinct queue group name across all matching patterns.
    pub queues: Vec<QueueMatch>,
}

/// The members of one queue group that match a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMatch {
    pub name: Bytes,
    /// Local members.
    pub local: Vec<SubKey>,
    /// Per other shard (sorted by shard), its member count for this group
    /// summed over all matching patterns: the weight for a uniform pick.
    pub remote: Vec<(ShardId, u32)>,
}

impl MatchResult {
    pub fn is_empty(&self) -> bool {
        self.local_plain.is_empty() && self.remote_plain.is_empty() && self.queues.is_empty()
    }

    fn queue_mut(&mut self, name: &Bytes) -> &mut QueueMatch {
        // Few groups per subject: a linear search beats hashing here.
        let pos = match self.queues.iter().position(|q| q.name == *name) {
            Some(pos) => pos,
            None => {
                self.queues.push(QueueMatch {
                    name: name.clone(),
                    local: Vec::new(),
                    remote: Vec::new(),
                });
                self.queues.len() - 1
            }
        };
        &mut self.queues[pos]
    }
}

/// Local members of one queue group on one pattern.
#[derive(Debug)]
struct LocalQueue {
    name: Bytes,
    members: ThinVec<SubKey>,
}

/// Another shard's member count of one queue group on one pattern.
#[derive(Debug)]
struct RemoteQueue {
    name: Bytes,
    shard: ShardId,
    count: u32,
}

/// One entry of a pattern's plain (non-queue) interest: a local
/// subscription, or another shard's count (> 0). One vector holds both, so
/// a node carries one word for them whether it is this shard's own
/// interest or a replica of another shard's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plain {
    Local(SubKey),
    Remote(ShardId, u32),
}

/// Children a node keeps in its vector, searched linearly; a node with
/// more keeps them in a hash map. A lookup stays O(1) per token.
const FEW_CHILDREN: usize = 8;

/// Pushes onto a small vector growing it one element at a time while it is
/// short (`ThinVec` would jump to room for 4; most vectors here hold one
/// element, and this is per subscribed subject), doubling beyond.
fn push_small<T>(items: &mut ThinVec<T>, item: T) {
    if items.len() == items.capacity() && items.len() < 4 {
        items.reserve_exact(1);
    }
    items.push(item);
}

/// One trie node (one token of a pattern) and the interest of the pattern
/// that ends here.
///
/// Sized for millions of subscriptions on distinct subjects, where nearly
/// every node has one literal child or none, and plain interest only: 24
/// bytes, with literal children inline in a short vector (no map, no boxed
/// key for short tokens) and what is rarer (wildcard children, many
/// children, queue groups) behind one optional box. A node with nothing
/// allocates nothing.
#[derive(Debug, Default)]
struct Node {
    /// Literal children, when there are at most [`FEW_CHILDREN`] (else in
    /// `rest.many`, and this is empty).
    few: ThinVec<(Token, Node)>,
    plain: ThinVec<Plain>,
    rest: Option<Box<Rest>>,
}

/// What fewer nodes need.
#[derive(Debug, Default)]
struct Rest {
    /// Literal children when there are more than [`FEW_CHILDREN`].
    many: FxHashMap<Token, Node>,
    star: Option<Box<Node>>,
    full: Option<Box<Node>>,
    local_queues: ThinVec<LocalQueue>,
    remote_queues: ThinVec<RemoteQueue>,
}

impl Rest {
    fn is_empty(&self) -> bool {
        self.many.is_empty()
            && self.star.is_none()
            && self.full.is_none()
            && self.local_queues.is_empty()
            && self.remote_queues.is_empty()
    }
}

impl Node {
    fn is_empty(&self) -> bool {
        self.few.is_empty() && self.plain.is_empty() && self.rest.is_none()
    }

    /// Drops `rest` once nothing is left in it.
    fn tidy(&mut self) {
        if self.rest.as_ref().is_some_and(|rest| rest.is_empty()) {
            self.rest = None;
        }
        if self.few.is_empty() && self.few.capacity() > 0 {
            self.few = ThinVec::new();
        }
        if self.plain.is_empty() && self.plain.capacity() > 0 {
            self.plain = ThinVec::new();
        }
    }

    fn rest_mut(&mut self) -> &mut Rest {
        self.rest.get_or_insert_with(Box::default)
    }

    /// The literal child for `token`.
    #[inline]
    fn child(&self, token: &[u8]) -> Option<&Node> {
        if let Some(rest) = self.rest.as_deref() {
            if !rest.many.is_empty() {
                return rest.many.get(token);
            }
        }
        self.few
            .iter()
            .find(|(t, _)| t.as_bytes() == token)
            .map(|(_, child)| child)
    }

    fn child_mut(&mut self, token: &[u8]) -> Option<&mut Node> {
        if self.rest.as_ref().is_some_and(|rest| !rest.many.is_empty()) {
            return self.rest_mut().many.get_mut(token);
        }
        self.few
            .iter_mut()
            .find(|(t, _)| t.as_bytes() == token)
            .map(|(_, child)| child)
    }

    /// The literal child for `token`, created as needed.
    fn child_or_create(&mut self, token: &[u8]) -> &mut Node {
        if self.rest.as_ref().is_some_and(|rest| !rest.many.is_empty()) {
            return self.rest_mut().many.entry(Token::new(token)).or_default();
        }
        if let Some(pos) = self.few.iter().position(|(t, _)| t.as_bytes() == token) {
            return &mut self.few[pos].1;
        }
        if self.few.len() < FEW_CHILDREN {
            push_small(&mut self.few, (Token::new(token), Node::default()));
            let last = self.few.len() - 1;
            return &mut self.few[last].1;
        }
        // One child too many for the vector: all of them move to the map.
        let few = std::mem::take(&mut self.few);
        let many = &mut self.rest_mut().many;
        many.reserve(few.len() + 1);
        many.extend(few);
        many.entry(Token::new(token)).or_default()
    }

    fn remove_child(&mut self, token: &[u8]) {
        if self.rest.as_ref().is_some_and(|rest| !rest.many.is_empty()) {
            let many = &mut self.rest_mut().many;
            many.remove(token);
            if many.is_empty() {
                // Give the table back; children come back into `few`.
                *many = FxHashMap::default();
            }
        } else if let Some(pos) = self.few.iter().position(|(t, _)| t.as_bytes() == token) {
            self.few.swap_remove(pos);
        }
        self.tidy();
    }

    /// The node for `pattern`, created as needed.
    fn get_or_create(&mut self, pattern: &[u8]) -> &mut Node {
        let mut node = self;
        for token in pattern.split(|&b| b == b'.') {
            node = match token {
                b"*" => node.rest_mut().star.get_or_insert_with(Box::default),
                b">" => node.rest_mut().full.get_or_insert_with(Box::default),
                _ => node.child_or_create(token),
            };
        }
        node
    }

    /// Applies `change` to the node at `rest` below this node (if it
    /// exists), then prunes nodes left empty on the way back. Returns what
    /// `change` returned (false if the node does not exist).
    fn change_at(
        &mut self,
        rest: Option<&[u8]>,
        change: &mut dyn FnMut(&mut Node) -> bool,
    ) -> bool {
        let Some(rest) = rest else {
            let changed = change(self);
            self.tidy();
            return changed;
        };
        let (token, after) = match rest.iter().position(|&b| b == b'.') {
            Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
            None => (rest, None),
        };
        match token {
            b"*" | b">" => {
                let Some(extra) = self.rest.as_deref_mut() else {
                    return false;
                };
                let slot = if token == b"*" {
                    &mut extra.star
                } else {
                    &mut extra.full
                };
                let Some(child) = slot.as_mut() else {
                    return false;
                };
                let changed = child.change_at(after, change);
                if child.is_empty() {
                    *slot = None;
                    self.tidy();
                }
                changed
            }
            _ => {
                let Some(child) = self.child_mut(token) else {
                    return false;
                };
                let changed = child.change_at(after, change);
                if child.is_empty() {
                    self.remove_child(token);
                }
                changed
            }
        }
    }

    /// Adds the interest of every node below this one that matches the
    /// tokens `rest` (at least one token) to `result`.
    fn collect(&self, rest: &[u8], result: &mut MatchResult) {
        let (token, after) = match rest.iter().position(|&b| b == b'.') {
            Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
            None => (rest, None),
        };
        if let Some(extra) = self.rest.as_deref() {
            // `>` takes this token and all that follow.
            if let Some(full) = &extra.full {
                full.add_to(result);
            }
            // `*` takes this token; a published `*` or `>` token is a
            // literal and only ever meets the wildcard children or a
            // literal key.
            if let Some(star) = &extra.star {
                star.collect_or_add(after, result);
            }
        }
        if let Some(child) = self.child(token) {
            child.collect_or_add(after, result);
        }
    }

    fn collect_or_add(&self, rest: Option<&[u8]>, result: &mut MatchResult) {
        match rest {
            Some(rest) => self.collect(rest, result),
            None => self.add_to(result),
        }
    }

    /// Adds this pattern's interest to `result`.
    fn add_to(&self, result: &mut MatchResult) {
        for entry in &self.plain {
            match *entry {
                Plain::Local(key) => result.local_plain.push(key),
                Plain::Remote(shard, _) => result.remote_plain.push(shard),
            }
        }
        let Some(extra) = self.rest.as_deref() else {
            return;
        };
        for q in &extra.local_queues {
            result
                .queue_mut(&q.name)
                .local
                .extend_from_slice(&q.members);
        }
        for q in &extra.remote_queues {
            let group = result.queue_mut(&q.name);
            match group.remote.iter_mut().find(|(shard, _)| *shard == q.shard) {
                Some((_, weight)) => *weight = weight.saturating_add(q.count),
                None => group.remote.push((q.shard, q.count)),
            }
        }
    }

    fn add_local(&mut self, queue: Option<&[u8]>, key: SubKey) {
        match queue {
            None => push_small(&mut self.plain, Plain::Local(key)),
            Some(name) => {
                let queues = &mut self.rest_mut().local_queues;
                match queues.iter_mut().find(|q| q.name == name) {
                    Some(group) => group.members.push(key),
                    None => queues.push(LocalQueue {
                        name: Bytes::copy_from_slice(name),
                        members: thin_vec::thin_vec![key],
                    }),
                }
            }
        }
    }

    fn remove_local(&mut self, queue: Option<&[u8]>, key: SubKey) -> bool {
        match queue {
            None => match self.plain.iter().position(|&p| p == Plain::Local(key)) {
                Some(pos) => {
                    // Order of subscriptions within a pattern is not
                    // meaningful.
                    self.plain.swap_remove(pos);
                    true
                }
                None => false,
            },
            Some(name) => {
                let Some(extra) = self.rest.as_deref_mut() else {
                    return false;
                };
                let queues = &mut extra.local_queues;
                let Some(pos) = queues.iter().position(|q| q.name == name) else {
                    return false;
                };
                let removed = remove_item(&mut queues[pos].members, key);
                if queues[pos].members.is_empty() {
                    queues.swap_remove(pos);
                }
                removed
            }
        }
    }

    /// Adds `delta` to a remote count, removing it at zero. Returns whether
    /// anything changed.
    fn apply_remote(&mut self, shard: ShardId, queue: Option<&[u8]>, delta: i32) -> bool {
        match queue {
            None => {
                let pos = self
                    .plain
                    .iter()
                    .position(|p| matches!(p, Plain::Remote(s, _) if *s == shard));
                let count = match pos.map(|p| self.plain[p]) {
                    Some(Plain::Remote(_, count)) => count,
                    _ => 0,
                };
                let new = add_delta(count, delta);
                match (pos, new) {
                    (Some(p), 0) => {
                        self.plain.swap_remove(p);
                    }
                    (Some(p), n) => self.plain[p] = Plain::Remote(shard, n),
                    (None, 0) => return false,
                    (None, n) => push_small(&mut self.plain, Plain::Remote(shard, n)),
                }
            }
            Some(name) => {
                let queues = &mut self.rest_mut().remote_queues;
                let pos = queues
                    .iter()
                    .position(|q| q.shard == shard && q.name == name);
                let count = pos.map_or(0, |p| queues[p].count);
                let new = add_delta(count, delta);
                match (pos, new) {
                    (Some(p), 0) => {
                        queues.swap_remove(p);
                    }
                    (Some(p), n) => queues[p].count = n,
                    (None, 0) => {
                        self.tidy();
                        return false;
                    }
                    (None, n) => queues.push(RemoteQueue {
                        name: Bytes::copy_from_slice(name),
                        shard,
                        count: n,
                    }),
                }
            }
        }
        true
    }

    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        let children: usize = match self.rest.as_deref() {
            Some(extra) => {
                extra.many.values().map(Node::count_nodes).sum::<usize>()
                    + extra.star.as_ref().map_or(0, |n| n.count_nodes())
                    + extra.full.as_ref().map_or(0, |n| n.count_nodes())
            }
            None => 0,
        };
        1 + children + self.few.iter().map(|(_, n)| n.count_nodes()).sum::<usize>()
    }
}

/// `count + delta`, saturating at 0 and u32::MAX. A negative result means
/// the replica and the owner disagree: a bug, loud in debug builds.
fn add_delta(count: u32, delta: i32) -> u32 {
    let new = i64::from(count) + i64::from(delta);
    debug_assert!(
        new >= 0,
        "remote interest count would go negative ({count} {delta:+})"
    );
    new.clamp(0, i64::from(u32::MAX)) as u32
}

fn remove_item(items: &mut ThinVec<SubKey>, key: SubKey) -> bool {
    match items.iter().position(|&k| k == key) {
        Some(pos) => {
            // Order of subscriptions within a pattern is not meaningful.
            items.swap_remove(pos);
            true
        }
        None => false,
    }
}

/// One shard's subscription index and match cache. Never shared between
/// threads.
#[derive(Debug, Default)]
pub struct SubscriptionIndex {
    root: Node,
    cache: FxHashMap<Box<[u8]>, Rc<MatchResult>>,
    /// Shared result for subjects that can match nothing (empty tokens).
    nothing: Rc<MatchResult>,
    local_count: usize,
    /// Sum of the other shards' interest counts held here.
    remote_count: i64,
    /// The last subject matched and its result, checked before the cache:
    /// a publisher mostly repeats its subject, and comparing it is cheaper
    /// than hashing it (the buffer keeps its capacity: no allocation).
    last_subject: Vec<u8>,
    last_result: Option<Rc<MatchResult>>,
    /// `disable_sublist_cache`: every match walks the trie and nothing is
    /// kept (neither `cache` nor `last_result`), which saves the memory of
    /// up to `CACHE_MAX` results per account and shard for servers with
    /// many distinct published subjects.
    no_cache: bool,
    counters: IndexCounters,
}

/// Lifetime counters of one index, for `/subsz` (local subscriptions only,
/// as each shard's replica of remote interest is bookkeeping, not clients').
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexCounters {
    pub inserts: u64,
    pub removes: u64,
    pub matches: u64,
    pub cache_hits: u64,
}

impl SubscriptionIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index that caches no match result (`disable_sublist_cache`).
    pub fn without_cache() -> Self {
        SubscriptionIndex {
            no_cache: true,
            ..Self::default()
        }
    }

    /// Adds a local subscription. The subject is already validated by the
    /// caller; `key` must not already be in the index.
    pub fn insert_local(&mut self, subject: &[u8], queue: Option<&[u8]>, key: SubKey) {
        self.root.get_or_create(subject).add_local(queue, key);
        self.local_count += 1;
        self.counters.inserts += 1;
        self.invalidate(subject);
    }

    /// Removes a local subscription; false if it was not there.
    pub fn remove_local(&mut self, subject: &[u8], queue: Option<&[u8]>, key: SubKey) -> bool {
        let removed = self
            .root
            .change_at(Some(subject), &mut |node| node.remove_local(queue, key));
        if removed {
            self.local_count -= 1;
            self.counters.removes += 1;
            self.invalidate(subject);
        }
        removed
    }

    /// Another shard's interest changed: adds `delta` (+1/-1) to its count
    /// for (subject, queue). Counts never go negative (saturate; a debug
    /// assertion flags the replica bug).
    pub fn apply_remote(
        &mut self,
        shard: ShardId,
        subject: &[u8],
        queue: Option<&[u8]>,
        delta: i32,
    ) {
        self.remote_count += i64::from(delta);
        let changed = if delta > 0 {
            self.root
                .get_or_create(subject)
                .apply_remote(shard, queue, delta)
        } else if delta < 0 {
            let found = self.root.change_at(Some(subject), &mut |node| {
                node.apply_remote(shard, queue, delta)
            });
            debug_assert!(found, "remote interest removed that was never added");
            found
        } else {
            false
        };
        if changed {
            self.invalidate(subject);
        }
    }

    /// Everything that matches the published `subject` (any bytes; tokens
    /// split on `.`). A subject with an empty token matches nothing. A cache
    /// hit is one hash lookup and an `Rc` clone.
    pub fn matches(&mut self, subject: &[u8]) -> Rc<MatchResult> {
        self.counters.matches += 1;
        if let Some(last) = &self.last_result {
            if self.last_subject == subject {
                self.counters.cache_hits += 1;
                return Rc::clone(last);
            }
        }
        let result = match self.cache.get(subject) {
            Some(hit) => {
                self.counters.cache_hits += 1;
                Rc::clone(hit)
            }
            None => self.match_miss(subject),
        };
        if !self.no_cache {
            self.last_subject.clear();
            self.last_subject.extend_from_slice(subject);
            self.last_result = Some(Rc::clone(&result));
        }
        result
    }

    pub fn counters(&self) -> IndexCounters {
        self.counters
    }

    /// Subjects whose match result is cached.
    pub fn cached_subjects(&self) -> usize {
        self.cache.len()
    }

    /// Number of local subscriptions in the index.
    pub fn local_count(&self) -> usize {
        self.local_count
    }

    /// No subscription anywhere: nothing published here can match (an
    /// import into an account nobody listens to skips the match).
    pub fn is_empty(&self) -> bool {
        self.local_count == 0 && self.remote_count <= 0
    }

    #[cold]
    fn match_miss(&mut self, subject: &[u8]) -> Rc<MatchResult> {
        if has_empty_token(subject) {
            // Not cached: nothing to compute, and it keeps junk subjects
            // from evicting useful entries.
            return Rc::clone(&self.nothing);
        }
        let mut result = MatchResult::default();
        self.root.collect(subject, &mut result);
        result.remote_plain.sort_unstable();
        result.remote_plain.dedup();
        for q in &mut result.queues {
            q.remote.sort_unstable();
        }
        let result = Rc::new(result);
        if self.no_cache {
            return result;
        }
        if self.cache.len() >= CACHE_MAX {
            // Which entries survive is arbitrary (hash order); hot subjects
            // come back on their next publish.
            let mut kept = 0;
            self.cache.retain(|_, _| {
                kept += 1;
                kept <= CACHE_SWEEP_TO
            });
        }
        self.cache.insert(subject.into(), Rc::clone(&result));
        result
    }

    /// Drops every cached result that interest on `pattern` can affect.
    fn invalidate(&mut self, pattern: &[u8]) {
        self.last_result = None;
        if has_wildcard_token(pattern) {
            self.cache
                .retain(|subject, _| !pattern_matches(pattern, subject));
        } else {
            // A literal pattern matches exactly the subject equal to it.
            self.cache.remove(pattern);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: usize) -> SubKey {
        SubKey::new(i)
    }

    fn s(i: usize) -> ShardId {
        ShardId::new(i)
    }

    fn keys(ids: &[usize]) -> Vec<SubKey> {
        ids.iter().map(|&i| k(i)).collect()
    }

    fn shards(ids: &[usize]) -> Vec<ShardId> {
        ids.iter().map(|&i| s(i)).collect()
    }

    fn weights(ids: &[(usize, u32)]) -> Vec<(ShardId, u32)> {
        ids.iter().map(|&(i, w)| (s(i), w)).collect()
    }

    /// A result in a canonical order, for comparisons.
    fn canon(r: &MatchResult) -> MatchResult {
        let mut r = r.clone();
        r.local_plain.sort_unstable();
        for q in &mut r.queues {
            q.local.sort_unstable();
        }
        r.queues.sort_by(|a, b| a.name.cmp(&b.name));
        r
    }

    fn local_plain(idx: &mut SubscriptionIndex, subject: &[u8]) -> Vec<SubKey> {
        canon(&idx.matches(subject)).local_plain
    }

    #[test]
    fn trie_nodes_stay_small() {
        // One node per subscribed subject token, inline in its parent's
        // vector or map: three words (see `Node`).
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert_eq!(std::mem::size_of::<(Token, Node)>(), 40);
        assert_eq!(std::mem::size_of::<Plain>(), 8);
    }

    #[test]
    fn many_children_move_to_a_map_and_back() {
        let mut idx = SubscriptionIndex::new();
        let subject = |i: usize| format!("a.token-number-{i}.x");
        for i in 0..3 * FEW_CHILDREN {
            idx.insert_local(subject(i).as_bytes(), None, k(i));
            idx.insert_local(b"a.*.x", None, k(1000 + i));
        }
        for i in 0..3 * FEW_CHILDREN {
            let got = local_plain(&mut idx, subject(i).as_bytes());
            assert!(got.contains(&k(i)) && got.len() == 1 + 3 * FEW_CHILDREN);
        }
        assert_eq!(local_plain(&mut idx, b"a.other.x").len(), 3 * FEW_CHILDREN);
        for i in (0..3 * FEW_CHILDREN).rev() {
            assert!(idx.remove_local(subject(i).as_bytes(), None, k(i)));
            assert!(!local_plain(&mut idx, subject(i).as_bytes()).contains(&k(i)));
            // Below the map's size again: new children go to the vector.
            if i == FEW_CHILDREN / 2 {
                idx.insert_local(b"a.late.x", None, k(5000));
                assert_eq!(
                    local_plain(&mut idx, b"a.late.x").len(),
                    1 + 3 * FEW_CHILDREN
                );
                assert!(idx.remove_local(b"a.late.x", None, k(5000)));
            }
        }
        for i in 0..3 * FEW_CHILDREN {
            assert!(idx.remove_local(b"a.*.x", None, k(1000 + i)));
        }
        assert_eq!(idx.root.count_nodes(), 1);
        assert!(idx.root.is_empty());
    }

    #[test]
    fn literal_and_wildcards() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b"foo.bar", None, k(1));
        idx.insert_local(b"foo.*", None, k(2));
        idx.insert_local(b"foo.>", None, k(3));
        idx.insert_local(b">", None, k(4));
        idx.insert_local(b"*.bar", None, k(5));
        idx.insert_local(b"foo", None, k(6));
        assert_eq!(local_plain(&mut idx, b"foo.bar"), keys(&[1, 2, 3, 4, 5]));
        assert_eq!(local_plain(&mut idx, b"foo.baz"), keys(&[2, 3, 4]));
        assert_eq!(local_plain(&mut idx, b"foo.bar.baz"), keys(&[3, 4]));
        // `foo.>` needs at least one more token.
        assert_eq!(local_plain(&mut idx, b"foo"), keys(&[4, 6]));
        assert_eq!(local_plain(&mut idx, b"x.bar"), keys(&[4, 5]));
        assert_eq!(local_plain(&mut idx, b"x"), keys(&[4]));
        // Empty tokens match nothing, not even `>`.
        assert!(idx.matches(b"foo..bar").is_empty());
        assert!(idx.matches(b"").is_empty());
        assert!(idx.matches(b"foo.").is_empty());
        assert!(idx.matches(b".foo").is_empty());
        assert_eq!(idx.local_count(), 6);
    }

    #[test]
    fn published_wildcard_tokens_are_literals() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b"foo.bar", None, k(1));
        idx.insert_local(b"foo.*", None, k(2));
        idx.insert_local(b">", None, k(3));
        idx.insert_local(b"foo*", None, k(4));
        assert_eq!(local_plain(&mut idx, b"foo.*"), keys(&[2, 3]));
        assert_eq!(local_plain(&mut idx, b"foo.>"), keys(&[2, 3]));
        assert_eq!(local_plain(&mut idx, b"*"), keys(&[3]));
        assert_eq!(local_plain(&mut idx, b"foo*"), keys(&[3, 4]));
    }

    #[test]
    fn overlapping_subscriptions_each_appear() {
        let mut idx = SubscriptionIndex::new();
        // Same pattern twice (two sids), and overlapping patterns.
        idx.insert_local(b"a.b", None, k(10));
        idx.insert_local(b"a.b", None, k(11));
        idx.insert_local(b"a.*", None, k(12));
        assert_eq!(local_plain(&mut idx, b"a.b"), keys(&[10, 11, 12]));
        assert!(idx.remove_local(b"a.b", None, k(10)));
        assert!(!idx.remove_local(b"a.b", None, k(10)));
        assert!(!idx.remove_local(b"a.b", Some(b"q"), k(11)));
        assert!(!idx.remove_local(b"nope", None, k(11)));
        assert_eq!(local_plain(&mut idx, b"a.b"), keys(&[11, 12]));
        assert_eq!(idx.local_count(), 2);
    }

    #[test]
    fn queue_groups_merge_across_patterns() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b"orders.new", Some(b"workers"), k(1));
        idx.insert_local(b"orders.*", Some(b"workers"), k(2));
        idx.insert_local(b"orders.>", Some(b"audit"), k(3));
        idx.insert_local(b"orders.new", None, k(4));
        idx.apply_remote(s(7), b"orders.*", Some(b"workers"), 1);
        idx.apply_remote(s(7), b"orders.new", Some(b"workers"), 1);
        idx.apply_remote(s(7), b"orders.new", Some(b"workers"), 1);
        idx.apply_remote(s(3), b">", Some(b"audit"), 1);
        idx.apply_remote(s(5), b"orders.new", None, 1);
        let r = canon(&idx.matches(b"orders.new"));
        assert_eq!(r.local_plain, keys(&[4]));
        assert_eq!(r.remote_plain, shards(&[5]));
        assert_eq!(r.queues.len(), 2);
        assert_eq!(r.queues[0].name, Bytes::from_static(b"audit"));
        assert_eq!(r.queues[0].local, keys(&[3]));
        assert_eq!(r.queues[0].remote, weights(&[(3, 1)]));
        assert_eq!(r.queues[1].name, Bytes::from_static(b"workers"));
        assert_eq!(r.queues[1].local, keys(&[1, 2]));
        // Shard 7's weight is summed over `orders.*` (1) and `orders.new` (2).
        assert_eq!(r.queues[1].remote, weights(&[(7, 3)]));
        // A queue sub is not a plain sub.
        let r = canon(&idx.matches(b"orders.old"));
        assert!(r.local_plain.is_empty() && r.remote_plain.is_empty());
        assert_eq!(r.queues[1].local, keys(&[2]));
        assert_eq!(r.queues[1].remote, weights(&[(7, 1)]));
    }

    #[test]
    fn remote_counts_up_and_down() {
        let mut idx = SubscriptionIndex::new();
        idx.apply_remote(s(2), b"foo", None, 1);
        idx.apply_remote(s(2), b"foo", None, 1);
        idx.apply_remote(s(1), b"f*", None, 1); // literal token `f*`: no match
        idx.apply_remote(s(4), b"*", None, 1);
        idx.apply_remote(s(1), b">", None, 1);
        assert_eq!(idx.matches(b"foo").remote_plain, shards(&[1, 2, 4]));
        idx.apply_remote(s(2), b"foo", None, -1);
        assert_eq!(idx.matches(b"foo").remote_plain, shards(&[1, 2, 4]));
        idx.apply_remote(s(2), b"foo", None, -1);
        assert_eq!(idx.matches(b"foo").remote_plain, shards(&[1, 4]));
        idx.apply_remote(s(1), b">", None, -1);
        idx.apply_remote(s(4), b"*", None, -1);
        assert!(idx.matches(b"foo").is_empty());
        idx.apply_remote(s(1), b"f*", None, -1);
        assert_eq!(idx.root.count_nodes(), 1);
        assert_eq!(idx.local_count(), 0);
        // Queue weights go up and down too.
        idx.apply_remote(s(3), b"q", Some(b"g"), 1);
        idx.apply_remote(s(3), b"q", Some(b"g"), 1);
        assert_eq!(idx.matches(b"q").queues[0].remote, weights(&[(3, 2)]));
        idx.apply_remote(s(3), b"q", Some(b"g"), -1);
        assert_eq!(idx.matches(b"q").queues[0].remote, weights(&[(3, 1)]));
        idx.apply_remote(s(3), b"q", Some(b"g"), -1);
        assert!(idx.matches(b"q").is_empty());
        assert_eq!(idx.root.count_nodes(), 1);
    }

    #[test]
    fn cache_hits_share_the_result() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b"a", None, k(1));
        let first = idx.matches(b"a");
        let second = idx.matches(b"a");
        assert!(Rc::ptr_eq(&first, &second));
        // Unrelated changes keep the entry.
        idx.insert_local(b"b", None, k(2));
        idx.insert_local(b"b.*", None, k(3));
        idx.apply_remote(s(1), b"c.>", None, 1);
        assert!(Rc::ptr_eq(&first, &idx.matches(b"a")));
    }

    #[test]
    fn cache_invalidation_literal_and_wildcard_local_and_remote() {
        let mut idx = SubscriptionIndex::new();
        assert!(idx.matches(b"a.b").is_empty());
        assert!(idx.matches(b"a.c").is_empty());
        assert!(idx.matches(b"x.y.z").is_empty());
        // Literal local insert / remove.
        idx.insert_local(b"a.b", None, k(1));
        assert_eq!(idx.matches(b"a.b").local_plain, keys(&[1]));
        assert!(idx.matches(b"a.c").is_empty());
        assert!(idx.remove_local(b"a.b", None, k(1)));
        assert!(idx.matches(b"a.b").is_empty());
        // Wildcard local insert / remove.
        idx.insert_local(b"a.*", Some(b"g"), k(2));
        assert_eq!(idx.matches(b"a.c").queues[0].local, keys(&[2]));
        assert_eq!(idx.matches(b"a.b").queues[0].local, keys(&[2]));
        assert!(idx.matches(b"x.y.z").is_empty());
        assert!(idx.remove_local(b"a.*", Some(b"g"), k(2)));
        assert!(idx.matches(b"a.c").is_empty());
        assert!(idx.matches(b"a.b").is_empty());
        // Literal remote.
        idx.apply_remote(s(9), b"x.y.z", None, 1);
        assert_eq!(idx.matches(b"x.y.z").remote_plain, shards(&[9]));
        idx.apply_remote(s(9), b"x.y.z", None, -1);
        assert!(idx.matches(b"x.y.z").is_empty());
        // Wildcard remote.
        idx.apply_remote(s(8), b"x.>", Some(b"w"), 1);
        assert_eq!(idx.matches(b"x.y.z").queues[0].remote, weights(&[(8, 1)]));
        idx.apply_remote(s(8), b"x.>", Some(b"w"), 1);
        assert_eq!(idx.matches(b"x.y.z").queues[0].remote, weights(&[(8, 2)]));
        idx.apply_remote(s(8), b"x.>", Some(b"w"), -1);
        idx.apply_remote(s(8), b"x.>", Some(b"w"), -1);
        assert!(idx.matches(b"x.y.z").is_empty());
        // A cached subject with a literal wildcard token is invalidated by
        // the wildcard pattern that matches it.
        assert!(idx.matches(b"a.*").is_empty());
        idx.insert_local(b"*.*", None, k(5));
        assert_eq!(idx.matches(b"a.*").local_plain, keys(&[5]));
    }

    #[test]
    fn without_cache_every_match_walks_the_trie() {
        let mut idx = SubscriptionIndex::without_cache();
        idx.insert_local(b"a.*", None, k(1));
        let first = idx.matches(b"a.b");
        let second = idx.matches(b"a.b");
        assert_eq!(first.local_plain, vec![k(1)]);
        assert_eq!(first, second);
        assert!(!Rc::ptr_eq(&first, &second), "a result was kept");
        assert_eq!(idx.cached_subjects(), 0);
        assert_eq!(idx.counters().cache_hits, 0);
        assert_eq!(idx.counters().matches, 2);
        // Changes still show at once.
        idx.insert_local(b"a.b", None, k(2));
        assert_eq!(idx.matches(b"a.b").local_plain.len(), 2);
    }

    #[test]
    fn cache_is_bounded() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b">", None, k(1));
        for i in 0..10 * CACHE_MAX {
            let subject = format!("s.{i}");
            assert_eq!(idx.matches(subject.as_bytes()).local_plain, keys(&[1]));
            assert!(idx.cache.len() <= CACHE_MAX);
        }
        // Subjects that can match nothing are not cached.
        idx.cache.clear();
        let _ = idx.matches(b"a..b");
        assert!(idx.cache.is_empty());
    }

    #[test]
    fn churn_prunes_the_trie() {
        let mut idx = SubscriptionIndex::new();
        idx.insert_local(b"_INBOX.keep.*", None, k(0));
        let base = idx.root.count_nodes();
        for i in 1..2000 {
            let inbox = format!("_INBOX.abc{}.{}", i % 7, i);
            idx.insert_local(inbox.as_bytes(), None, k(i));
            idx.apply_remote(s(1), inbox.as_bytes(), Some(b"q"), 1);
            assert_eq!(idx.matches(inbox.as_bytes()).local_plain, keys(&[i]));
            assert!(idx.remove_local(inbox.as_bytes(), None, k(i)));
            idx.apply_remote(s(1), inbox.as_bytes(), Some(b"q"), -1);
        }
        assert_eq!(idx.root.count_nodes(), base);
        assert!(idx.remove_local(b"_INBOX.keep.*", None, k(0)));
        assert_eq!(idx.root.count_nodes(), 1);
        assert_eq!(idx.local_count(), 0);
    }

    /// The brute-force model: every live interest as a flat list, matched
    /// with `subject::pattern_matches`.
    type Pattern = Vec<u8>;
    type Queue = Option<Vec<u8>>;

    #[derive(Default)]
    struct Model {
        local: Vec<(Pattern, Queue, SubKey)>,
        remote: Vec<(ShardId, Pattern, Queue, u32)>,
    }

    impl Model {
        fn matches(&self, subject: &[u8]) -> MatchResult {
            let mut r = MatchResult::default();
            for (pattern, queue, key) in &self.local {
                if pattern_matches(pattern, subject) {
                    match queue {
                        None => r.local_plain.push(*key),
                        Some(q) => r.queue_mut(&Bytes::copy_from_slice(q)).local.push(*key),
                    }
                }
            }
            for (shard, pattern, queue, count) in &self.remote {
                if *count > 0 && pattern_matches(pattern, subject) {
                    match queue {
                        None => r.remote_plain.push(*shard),
                        Some(q) => {
                            let group = r.queue_mut(&Bytes::copy_from_slice(q));
                            match group.remote.iter_mut().find(|(s, _)| s == shard) {
                                Some((_, w)) => *w += count,
                                None => group.remote.push((*shard, *count)),
                            }
                        }
                    }
                }
            }
            r.remote_plain.sort_unstable();
            r.remote_plain.dedup();
            for q in &mut r.queues {
                q.remote.sort_unstable();
            }
            canon(&r)
        }
    }

    #[test]
    fn randomized_against_brute_force() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let toks: [&[u8]; 5] = [b"a", b"b", b"c", b"*", b">"];
        let pattern = |rnd: &mut dyn FnMut(usize) -> usize| -> Vec<u8> {
            let n = 1 + rnd(3);
            let mut p = Vec::new();
            for i in 0..n {
                if i > 0 {
                    p.push(b'.');
                }
                // `>` only last in a pattern.
                let t = if i + 1 < n {
                    toks[rnd(4)]
                } else {
                    toks[rnd(5)]
                };
                p.extend_from_slice(t);
            }
            p
        };
        let publish: Vec<Vec<u8>> = {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for a in toks {
                v.push(a.to_vec());
                for b in toks {
                    v.push([a, b".", b].concat());
                    for c in toks {
                        v.push([a, b".", b, b".", c].concat());
                    }
                }
            }
            v.extend([
                b"".to_vec(),
                b"a.".to_vec(),
                b".a".to_vec(),
                b"a..b".to_vec(),
                b"a.b.c.a".to_vec(),
            ]);
            v
        };
        let queues: [Option<&[u8]>; 3] = [None, Some(b"q1"), Some(b"q2")];

        let mut idx = SubscriptionIndex::new();
        let mut model = Model::default();
        let mut next_key = 0;
        let (mut compared, mut non_empty) = (0, 0);
        for step in 0..6000 {
            match rnd(10) {
                0..=2 => {
                    let p = pattern(&mut rnd);
                    let q = queues[rnd(3)];
                    idx.insert_local(&p, q, k(next_key));
                    model.local.push((p, q.map(<[u8]>::to_vec), k(next_key)));
                    next_key += 1;
                }
                3 | 4 => {
                    if !model.local.is_empty() && rnd(8) != 0 {
                        let (p, q, key) = model.local.swap_remove(rnd(model.local.len()));
                        assert!(idx.remove_local(&p, q.as_deref(), key));
                    } else {
                        // Not present: must report false and change nothing.
                        let p = pattern(&mut rnd);
                        assert!(!idx.remove_local(&p, None, k(u32::MAX as usize)));
                    }
                }
                5 | 6 => {
                    let shard = s(rnd(4));
                    let p = pattern(&mut rnd);
                    let q = queues[rnd(3)].map(<[u8]>::to_vec);
                    let pos = model
                        .remote
                        .iter()
                        .position(|(s, mp, mq, _)| *s == shard && *mp == p && *mq == q);
                    // Decrement only existing counts (a negative count is a
                    // replica bug, asserted in debug builds).
                    let delta = if pos.is_some_and(|i| model.remote[i].3 > 0) && rnd(2) == 0 {
                        -1
                    } else {
                        1
                    };
                    idx.apply_remote(shard, &p, q.as_deref(), delta);
                    match pos {
                        Some(i) => {
                            model.remote[i].3 = model.remote[i].3.checked_add_signed(delta).unwrap()
                        }
                        None => model.remote.push((shard, p, q, 1)),
                    }
                }
                _ => {
                    for _ in 0..5 {
                        let s = &publish[rnd(publish.len())];
                        let expected = model.matches(s);
                        non_empty += usize::from(!expected.is_empty());
                        compared += 1;
                        assert_eq!(
                            canon(&idx.matches(s)),
                            expected,
                            "step {step}, subject {}",
                            s.escape_ascii()
                        );
                    }
                }
            }
            assert_eq!(idx.local_count(), model.local.len());
        }
        // The random mix must actually exercise matching results.
        assert!(non_empty * 2 > compared, "{non_empty} of {compared}");
        // Finally every subject, with a cold and a warm cache.
        for s in &publish {
            assert_eq!(canon(&idx.matches(s)), model.matches(s));
        }
        idx.cache.clear();
        for s in &publish {
            assert_eq!(canon(&idx.matches(s)), model.matches(s));
        }
        // Removing everything leaves only the root.
        for (p, q, key) in model.local.drain(..) {
            assert!(idx.remove_local(&p, q.as_deref(), key));
        }
        for (shard, p, q, count) in model.remote.drain(..) {
            for _ in 0..count {
                idx.apply_remote(shard, &p, q.as_deref(), -1);
            }
        }
        assert_eq!(idx.root.count_nodes(), 1);
        assert!(publish.iter().all(|s| idx.matches(s).is_empty()));
    }

    /// Micro-benchmark: `cargo test --release --lib -- --ignored --nocapture bench_`.
    #[test]
    #[ignore]
    fn bench_cache_hit_match() {
        let mut idx = SubscriptionIndex::new();
        for i in 0..1000 {
            idx.insert_local(format!("orders.{i}.new").as_bytes(), None, k(i));
        }
        idx.insert_local(b"orders.*.new", Some(b"workers"), k(5000));
        idx.apply_remote(s(1), b"orders.>", None, 1);
        let subjects: Vec<Vec<u8>> = (0..64)
            .map(|i| format!("orders.{i}.new").into_bytes())
            .collect();
        for s in &subjects {
            let _ = idx.matches(s);
        }
        let rounds = 200_000;
        let mut best = f64::MAX;
        for _trial in 0..5 {
            let start = std::time::Instant::now();
            let mut total = 0usize;
            for r in 0..rounds {
                let m = idx.matches(std::hint::black_box(&subjects[r % subjects.len()]));
                total += m.local_plain.len();
            }
            assert_eq!(total, rounds);
            best = best.min(start.elapsed().as_nanos() as f64 / rounds as f64);
        }
        println!("cache-hit match (12-14 byte subjects): {best:.1} ns/op (best of 5)");
    }
}
