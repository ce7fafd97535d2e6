//! Writes batched across connections: each connection's writes wait in one queue, and a sender
//! task takes everything queued as one batch: on a follower one `WriteBatch` call to the
//! leader, on the leader one proposal; either way one log entry. Fifty clients writing cost
//! the cluster one entry (and one round trip) per batch instead of fifty. Up to [`SENDERS`]
//! batches are in flight at once, so the next batch forms while the previous one commits.

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::node::WriteError;
use crate::types::{Replies, Request};

/// A write's outcome: its replies and log index, or why there are none.
pub type Outcome = Result<(Replies, u64), WriteError>;

/// Batches in flight at once.
pub const SENDERS: usize = 2;

/// Requests one batch carries at most.
const MAX_BATCH: usize = 512;

/// Writes waiting to be forwarded.
#[derive(Default)]
pub struct Queue {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    senders: usize,
    waiting: Vec<(Request, oneshot::Sender<Outcome>)>,
}

impl Queue {
    /// Queues a write; returns its receiver and whether the caller must start a sender task.
    pub fn enqueue(&self, req: Request) -> (oneshot::Receiver<Outcome>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut s = self.inner.lock();
        s.waiting.push((req, tx));
        let start = s.senders < SENDERS;
        if start {
            s.senders += 1;
        }
        (rx, start)
    }

    /// The next batch for a sender task; None when nothing waits (the task then ends).
    pub fn next_batch(&self) -> Option<Vec<(Request, oneshot::Sender<Outcome>)>> {
        let mut s = self.inner.lock();
        if s.waiting.is_empty() {
            s.senders -= 1;
            return None;
        }
        let n = s.waiting.len().min(MAX_BATCH);
        Some(s.waiting.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(db: u32) -> Request {
        Request::builder(db, 2, None).finish()
    }

    #[test]
    fn at_most_two_senders_and_batches_in_arrival_order() {
        let q = Queue::default();
        assert!(q.enqueue(req(0)).1);
        assert!(q.enqueue(req(1)).1);
        assert!(!q.enqueue(req(2)).1, "a third write joins the queue, no third sender");
        let batch = q.next_batch().unwrap();
        assert_eq!(batch.iter().map(|(r, _)| r.db()).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(q.next_batch().is_none());
        assert!(q.enqueue(req(3)).1, "a sender ended, so a new write starts one");
        assert!(q.next_batch().is_some());
        assert!(q.next_batch().is_none());
        assert!(q.next_batch().is_none());
        assert!(q.enqueue(req(4)).1);
    }
}
