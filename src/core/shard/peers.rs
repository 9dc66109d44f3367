//! The other shards: the batches this shard sends each of them per unit of
//! work, the batches it applies from them, acks, and the PING barrier built
//! on acks (a PONG waits until every peer applied what the client caused).

use crate::ids::{ClientId, ShardId};
use crate::io::{ShardIo, Wake};
use crate::mesh::{BatchBuffers, MeshItem, QueueNames, ShardBatch};
use crate::protocol::Publish;

use super::publish::Origin;
use super::ShardBroker;

/// An ack goes back on its own at the latest after this many applied batches
/// from one peer, so that their buffers return to it for reuse.
pub(super) const ACK_EVERY: u32 = 8;

/// Per peer, the latest batch sent to it when a barrier was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarrierTarget(Vec<u64>);

impl<I: ShardIo> ShardBroker<I> {
    /// Applies one batch from shard `src`, in order. Returns the sockets it
    /// handed us to adopt.
    pub fn apply_batch(
        &mut self,
        src: ShardId,
        batch: ShardBatch<I::Handoff>,
        now: std::time::Instant,
    ) -> Vec<(I::Handoff, ClientId)> {
        self.set_now(now);
        let mut adopted = Vec::new();
        let mut barrier_moved = false;
        let ShardBatch {
            seq,
            arena: arena_bytes,
            mut items,
            returned,
            ingress,
        } = batch;
        if let Some(ingress) = ingress {
            self.note_ingress(ingress);
        }
        self.spare_batches.put(returned);
        let arena = &arena_bytes[..];
        for item in items.drain(..) {
            match item {
                MeshItem::Interest {
                    account,
                    subject,
                    queue,
                    delta,
                } => {
                    self.accounts.get_mut(account).apply_remote(
                        src,
                        &subject,
                        queue.as_deref(),
                        delta,
                    );
                    self.cluster_interest_changed(account, &subject, queue.as_deref(), delta);
                }
                MeshItem::Ack { seq } => {
                    let acked = &mut self.acked[src.index()];
                    if seq > *acked {
                        *acked = seq;
                        barrier_moved = true;
                    }
                }
                MeshItem::AckWanted => self.ack_wanted[src.index()] = true,
                MeshItem::Deliver {
                    account,
                    subject,
                    reply,
                    header_len,
                    payload,
                    queues,
                    one_hop,
                } => {
                    let message = Publish {
                        subject: subject.slice(arena),
                        reply: reply.map(|r| r.slice(arena)),
                        header_len: header_len.map(|h| h as usize),
                        payload: payload.slice(arena),
                    };
                    self.publish(
                        account,
                        Origin::Shard {
                            from: src,
                            queues: QueueNames::new(queues.slice(arena)),
                            one_hop,
                        },
                        &message,
                    );
                }
                MeshItem::Adopt { socket, client_id } => adopted.push((socket, client_id)),
                MeshItem::ConnectUrls(info) => self.cluster_urls_changed(info),
            }
        }
        if seq > 0 {
            self.ack_due[src.index()] = seq;
            self.unacked_batches[src.index()] += 1;
        }
        if let Some(buffers) = BatchBuffers::reclaim(arena_bytes, items) {
            self.outgoing[src.index()].give_back(buffers);
        }
        if barrier_moved {
            self.io.wake(Wake::Barrier);
        }
        adopted
    }

    /// Hands a newly accepted socket to shard `target`.
    pub fn send_adopt(&mut self, target: ShardId, socket: I::Handoff, client_id: ClientId) {
        self.outgoing[target.index()].push(MeshItem::Adopt { socket, client_id });
    }

    /// Moves this unit of work's batches (and due acks) out, one per peer.
    ///
    /// Acks are folded: an ack rides on the next batch of work going back,
    /// and goes on its own only when the peer asked for it (it waits on a
    /// barrier), after [`ACK_EVERY`] batches (so its buffers come back), or
    /// at the tick ([`ShardBroker::flush_acks`]). Acking every batch at once
    /// woke the sending shard once per forwarded message at low rates (an
    /// ack-only batch and a wake-up of a shard that had just gone to sleep),
    /// for a barrier that is rarely waited on.
    pub fn drain_batches(&mut self, mut send: impl FnMut(ShardId, ShardBatch<I::Handoff>)) {
        let ask_for_acks = std::mem::take(&mut self.acks_requested);
        for dst in ShardId::all(self.shard_count) {
            let d = dst.index();
            if dst == self.id {
                continue;
            }
            let has_work = !self.outgoing[d].is_empty();
            let carries_messages = self.outgoing[d].carries_messages();
            if ask_for_acks && (has_work || self.acked[d] < self.sent[d]) {
                self.outgoing[d].push(MeshItem::AckWanted);
            }
            let ack_now = has_work
                || std::mem::take(&mut self.ack_wanted[d])
                || self.unacked_batches[d] >= ACK_EVERY;
            if ack_now && self.ack_due[d] > 0 {
                let seq = std::mem::take(&mut self.ack_due[d]);
                self.unacked_batches[d] = 0;
                self.outgoing[d].push(MeshItem::Ack { seq });
            }
            if !self.outgoing[d].is_empty() {
                let mut batch = self.outgoing[d].take(&mut self.spare_batches);
                if has_work {
                    self.batch_seq += 1;
                    self.sent[d] = self.batch_seq;
                    batch.seq = self.batch_seq;
                }
                if carries_messages {
                    batch.ingress = self.unit_ingress;
                }
                send(dst, batch);
            }
        }
    }

    /// Sends every due ack with the next drain, asked for or not (the tick:
    /// a peer's buffers and a late barrier never wait longer than that).
    pub fn flush_acks(&mut self) {
        for (wanted, due) in self.ack_wanted.iter_mut().zip(&self.ack_due) {
            *wanted |= *due > 0;
        }
    }

    /// Per peer, the latest batch sent so far; a barrier taken now is
    /// reached once every peer has applied its entry.
    pub fn barrier_target(&self) -> BarrierTarget {
        BarrierTarget(self.sent.clone())
    }

    pub fn barrier_reached(&self, target: &BarrierTarget) -> bool {
        self.acked
            .iter()
            .zip(&target.0)
            .all(|(acked, needed)| acked >= needed)
    }
}
