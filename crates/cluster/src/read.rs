//! Linearizable reads by ReadIndex, batched.
//!
//! A read is linearizable when it sees every write acknowledged before it began. The leader
//! knows the index of the last such write (its commit index, or its own no-op entry if it has
//! not committed one yet) but must first prove it still leads (a heartbeat round answered by a
//! majority); a node then serves the read once it has applied up to that index. Followers ask
//! the leader for the index over the cluster port.
//!
//! Proving leadership costs a round trip, so reads share it: every read that arrives while no
//! round is running starts one; reads that arrive during a round wait for the next one (a
//! round that began before a read arrived cannot vouch for it). Under load this is one round
//! per round-trip time, whatever the number of readers.

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Why a read could not be served at the connection's consistency level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// No leader with a majority could confirm the read index.
    NoQuorum(String),
    /// The index was known, but this node did not apply up to it in time.
    Behind(String),
}

impl ReadError {
    /// The error reply text (without the leading `-`).
    pub fn reply_text(&self) -> String {
        match self {
            ReadError::NoQuorum(why) => {
                format!("CLUSTERDOWN No quorum, the read could not be served up to date ({why})")
            }
            ReadError::Behind(why) => format!("TRYAGAIN This node is behind the cluster, retry the read ({why})"),
        }
    }
}

type Waiter = oneshot::Sender<Result<u64, ReadError>>;

/// Readers waiting for the next leadership round.
#[derive(Default)]
pub struct Gate {
    inner: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    /// A round is running (its task serves `waiting` when it ends).
    running: bool,
    waiting: Vec<Waiter>,
}

impl Gate {
    /// Queues a reader; returns its receiver and whether the caller must start the round task.
    pub fn enqueue(&self) -> (oneshot::Receiver<Result<u64, ReadError>>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut g = self.inner.lock();
        g.waiting.push(tx);
        let start = !g.running;
        g.running = true;
        (rx, start)
    }

    /// The readers the next round serves: those queued before it starts. None when nobody
    /// waits (the round task then ends; the next reader starts a new one).
    pub fn next_batch(&self) -> Option<Vec<Waiter>> {
        let mut g = self.inner.lock();
        if g.waiting.is_empty() {
            g.running = false;
            return None;
        }
        Some(std::mem::take(&mut g.waiting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_arriving_during_a_round_wait_for_the_next_one() {
        let gate = Gate::default();
        let (mut a, start_a) = gate.enqueue();
        assert!(start_a, "the first reader starts the round task");
        let batch1 = gate.next_batch().unwrap();
        assert_eq!(batch1.len(), 1);
        // Arrives while round 1 runs: must not be answered by it.
        let (mut b, start_b) = gate.enqueue();
        assert!(!start_b, "a round task is running already");
        for w in batch1 {
            let _ = w.send(Ok(7));
        }
        assert_eq!(a.try_recv().unwrap(), Ok(7));
        assert!(b.try_recv().is_err(), "served by a round that began before it arrived");
        let batch2 = gate.next_batch().unwrap();
        assert_eq!(batch2.len(), 1);
        for w in batch2 {
            let _ = w.send(Ok(9));
        }
        assert_eq!(b.try_recv().unwrap(), Ok(9));
        assert!(gate.next_batch().is_none());
        let (_c, start_c) = gate.enqueue();
        assert!(start_c, "after the task ended, the next reader starts a new one");
    }
}
