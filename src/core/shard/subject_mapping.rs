//! A client's publish renamed by its account's `mappings` before anything
//! else looks at its subject (permissions, interest), as nats-server maps
//! it when the message has been read. Only clients' messages are mapped:
//! a message from a route or another shard was mapped where it was
//! published. The reply subject is left alone.
//!
//! The mappings are the shard's copy of the account table (no lock); the
//! weighted pick draws from the shard's generator.

use crate::account::Mapped;
use crate::ids::ConnKey;
use crate::io::ShardIo;
use crate::protocol::Publish;

use super::client_ops::Next;
use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// Some account has mappings: this publish goes on under its mapped
    /// subject (or is dropped when the weights say so).
    #[cold]
    #[inline(never)]
    pub(super) fn handle_mapped_pub(&mut self, key: ConnKey, publish: Publish<'_>) -> Next {
        let account = self.conns[key].account;
        let Some(mappings) = self
            .limits
            .accounts
            .get(account)
            .map(|a| &a.mappings)
            .filter(|m| !m.is_empty())
        else {
            return self.publish_permitted(key, publish);
        };
        let cluster = self.limits.cluster.as_deref().map(|c| c.name.as_str());
        let rng = &mut self.rng;
        let mut subject = std::mem::take(&mut self.mapped_subject);
        let outcome = mappings.select(
            publish.subject,
            cluster,
            || rng.below(100) as u8,
            &mut subject,
        );
        let next = match outcome {
            Mapped::Unchanged => self.publish_permitted(key, publish),
            Mapped::Renamed => {
                if crate::log::trace_enabled() {
                    let conn = &self.conns[key];
                    crate::trace!(
                        "{} - cid:{} - <<- [MAPPING {} -> {}]",
                        conn.peer(),
                        conn.client_id,
                        String::from_utf8_lossy(publish.subject),
                        String::from_utf8_lossy(&subject)
                    );
                }
                self.publish_permitted(
                    key,
                    Publish {
                        subject: &subject,
                        ..publish
                    },
                )
            }
            // Taken and lost, as the configuration asked; a verbose
            // client still gets its +OK.
            Mapped::Dropped => {
                if self.conns[key].options.verbose {
                    self.queue_bytes(key, crate::outbound::OK);
                }
                Next::NeedMore
            }
        };
        self.mapped_subject = subject;
        next
    }
}
