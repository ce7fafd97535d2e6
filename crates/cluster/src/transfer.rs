//! Leadership transfer (`TANDEM TRANSFER`), for maintenance: move the leader off a node before
//! stopping it, or onto the node most clients talk to.
//!
//! openraft 0.9 has no transfer call, and a voter refuses every candidate while its leader
//! lease runs (`election_timeout_max` since it last heard from the leader). So the leader hands
//! over by going quiet: it holds new proposals and read rounds (their replication and
//! heartbeats would renew the leases), waits until the target holds its whole log, asks the
//! other voters not to stand for election for a while (`Rpc::Hold`), and stops its heartbeats.
//! The target, the only voter still willing, times out and wins once the leases have run out
//! (one to two seconds); its log is as long as anyone's, so every voter grants. The held
//! writes and reads then go to the new leader (see `Cluster::run_batch`): nothing a client
//! sent in the meantime fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::membership::MemberStatus;
use crate::net::Rpc;
use crate::node::{Cluster, Leader};
use crate::types::NodeId;

/// How long a transfer may take before it is given up (the old leader then leads on).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the target may take to receive the log's last entries.
const CATCH_UP: Duration = Duration::from_secs(2);

impl Cluster {
    /// Hands leadership to voter `to` (None: the most caught-up other voter), from any node
    /// (the leader does it); returns the new leader's id. Callable from any runtime.
    pub async fn transfer(self: &Arc<Self>, to: Option<NodeId>) -> Result<NodeId, String> {
        let me = self.clone();
        let task = self.rt.spawn(async move {
            match me.leader() {
                Some(Leader::Here) => me.transfer_here(to).await,
                Some(Leader::At(addr)) => me
                    .peers
                    .call::<Result<NodeId, String>>(&addr, &Rpc::Transfer(to), TRANSFER_TIMEOUT + CATCH_UP)
                    .await
                    .unwrap_or_else(|e| Err(format!("the leader did not answer: {e:?}"))),
                None => Err("no leader is known to this node".into()),
            }
        });
        task.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// [`Cluster::transfer`] for a caller that cannot await: blocks the calling thread until
    /// leadership moved or the transfer was given up.
    pub fn transfer_blocking(self: &Arc<Self>, to: Option<NodeId>) -> Result<NodeId, String> {
        let me = self.clone();
        let limit = TRANSFER_TIMEOUT + CATCH_UP + Duration::from_secs(2);
        self.block_on(limit, "the leadership transfer", async move { me.transfer(to).await })
    }

    /// The transfer, on the leader.
    pub(crate) async fn transfer_here(&self, to: Option<NodeId>) -> Result<NodeId, String> {
        let me = self.cfg.node_id;
        let members = self.members();
        let target = match to {
            Some(id) => {
                let m = members.iter().find(|m| m.id == id).ok_or_else(|| format!("node {id} is not a member"))?;
                if !m.voter {
                    return Err(format!("node {id} is a learner, only a voter can lead"));
                }
                id
            }
            None => members
                .iter()
                .filter(|m| m.voter && m.id != me)
                .max_by_key(|m| (m.matched, std::cmp::Reverse(m.last_contact_ms.unwrap_or(u64::MAX))))
                .map(|m| m.id)
                .ok_or("this node is the cluster's only voter")?,
        };
        if target == me {
            return Ok(me);
        }
        if self.transferring.send_replace(true) {
            return Err("a leadership transfer is already in progress".into());
        }
        let result = self.hand_over(target, &members).await;
        self.raft.runtime_config().heartbeat(true);
        self.raft.runtime_config().elect(true);
        self.transferring.send_replace(false);
        for m in members.iter().filter(|m| m.voter && m.id != me && m.id != target) {
            let (peers, addr) = (self.peers.clone(), m.addr.clone());
            tokio::spawn(async move { peers.call::<bool>(&addr, &Rpc::Hold(0), Duration::from_millis(500)).await });
        }
        match &result {
            Ok(_) => tracing::info!("leadership handed over to node {target}"),
            Err(e) => tracing::warn!("leadership transfer to node {target} failed: {e}"),
        }
        result
    }

    async fn hand_over(&self, target: NodeId, members: &[MemberStatus]) -> Result<NodeId, String> {
        let me = self.cfg.node_id;
        let caught_up = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            let matched = m.replication.as_ref().and_then(|r| r.get(&target).cloned().flatten()).map(|l| l.index);
            matched >= m.last_log_index
        };
        // Proposals already under way when the hold began still replicate; wait for them too.
        if self.raft.wait(Some(CATCH_UP)).metrics(caught_up, "transfer target caught up").await.is_err() {
            return Err(format!("node {target} has not caught up with the log"));
        }
        let hold_ms = TRANSFER_TIMEOUT.as_millis() as u64;
        for m in members.iter().filter(|m| m.voter && m.id != me && m.id != target) {
            // One that does not answer may be down; if it is only slow, the target can still
            // win against it (equal logs), so go on either way.
            let _ = self.peers.call::<bool>(&m.addr, &Rpc::Hold(hold_ms), Duration::from_millis(500)).await;
        }
        self.raft.runtime_config().elect(false);
        self.raft.runtime_config().heartbeat(false);
        let moved = self
            .raft
            .wait(Some(TRANSFER_TIMEOUT))
            .metrics(|m| m.current_leader.is_some_and(|l| l != me), "leadership moved")
            .await;
        match moved.map(|m| m.current_leader) {
            Ok(Some(l)) if l == target => Ok(target),
            Ok(other) => Err(format!("node {} took the leadership instead of node {target}", other.unwrap_or(0))),
            Err(_) => {
                Err(format!("node {target} did not take the leadership within {} ms", TRANSFER_TIMEOUT.as_millis()))
            }
        }
    }

    /// Waits until no transfer is in progress on this node.
    pub(crate) async fn transfer_settled(&self) {
        // (Every proposal passes here: no receiver unless a transfer runs.)
        if !*self.transferring.borrow() {
            return;
        }
        let mut rx = self.transferring.subscribe();
        let _ = rx.wait_for(|t| !*t).await;
    }

    /// `Rpc::Hold`: stands aside from elections for `ms` milliseconds (0: no longer).
    pub(crate) fn hold(&self, ms: u64) -> bool {
        *self.hold_until.lock() = Some(Instant::now() + Duration::from_millis(ms));
        if ms > 0 {
            self.raft.runtime_config().elect(false);
        }
        // A release (or an expired hold) is undone by `held` on the next membership round.
        true
    }

    /// True while a hold runs; once it has run out, clears it and stands for election again.
    pub(crate) fn held(&self) -> bool {
        let mut h = self.hold_until.lock();
        match *h {
            Some(until) if until > Instant::now() => true,
            Some(_) => {
                *h = None;
                self.raft.runtime_config().elect(true);
                false
            }
            None => false,
        }
    }
}
