//! A client's publish renamed by its account's `mappings` before anything
//! else looks at its subject (permissions, interest), as nats-server maps
//! it when the message has been read. Only clients' messages are mapped:
//! a message from a route or another shard was mapped where it was
//! published. The reply subject is left alone.
//!
//! The mappings are the shard's copy of the account table (no lock); the
//! weighted pick draws from the shard's generator. The renamed subject is
//! written into a buffer the shard keeps for it, taken for the publish and
//! put back after it (`ShardBroker::handle_mapped_pub`).

use crate::account::Mapped;
use crate::ids::ConnKey;
use crate::io::ShardIo;

use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// Some account has mappings: what those of `key`'s account make of
    /// `subject`; a new subject is written into `renamed` (the shard's
    /// buffer, which the caller takes and puts back). A dropped message
    /// still gets a verbose client its +OK.
    #[cold]
    #[inline(never)]
    pub(super) fn map_published(
        &mut self,
        key: ConnKey,
        subject: &[u8],
        renamed: &mut Vec<u8>,
    ) -> Mapped {
        let account = self.conns[key].account;
        let Some(mappings) = self
            .limits
            .accounts
            .get(account)
            .map(|a| &a.mappings)
            .filter(|m| !m.is_empty())
        else {
            return Mapped::Unchanged;
        };
        let cluster = self.limits.cluster.as_deref().map(|c| c.name.as_str());
        let rng = &mut self.rng;
        let outcome = mappings.select(subject, cluster, || rng.below(100) as u8, renamed);
        match outcome {
            Mapped::Unchanged => {}
            Mapped::Renamed => {
                if crate::log::trace_enabled() {
                    let conn = &self.conns[key];
                    crate::trace!(
                        "{} - cid:{} - <<- [MAPPING {} -> {}]",
                        conn.peer(),
                        conn.client_id,
                        String::from_utf8_lossy(subject),
                        String::from_utf8_lossy(renamed)
                    );
                }
            }
            // Taken and lost, as the configuration asked.
            Mapped::Dropped => {
                if self.conns[key].options.verbose {
                    self.queue_bytes(key, crate::outbound::OK);
                }
            }
        }
        outcome
    }
}
