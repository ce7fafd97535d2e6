//! Membership without an operator. The leader tends the member list: a member that has not
//! answered for `cluster-node-timeout` is removed, and caught-up learners are promoted while
//! the cluster has fewer than `cluster-voters` voters. A node that leaves (SIGTERM,
//! `TANDEM LEAVE`) asks the leader to remove it first; a node that finds itself removed (it
//! was cut off, or down, for longer than the timeout) stops standing for election and joins
//! again as a learner.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{ChangeMembers, ServerState};

use crate::net::{Hello, Rpc};
use crate::node::{Cluster, Leader};
use crate::types::NodeId;

/// How often the leader looks at the member list, and a non-member at its standing.
const TEND_EVERY: Duration = Duration::from_millis(500);

/// A learner this far behind the leader's log is not promoted yet.
const PROMOTE_LAG: u64 = 100;

/// How long a node may know no leader before it asks whether it is still a member.
const LEADERLESS_FOR: Duration = Duration::from_secs(3);

/// One member, as this node knows it (for `TANDEM MEMBERS` and `INFO cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Node id.
    pub id: NodeId,
    /// Cluster address.
    pub addr: String,
    /// Votes (else a learner).
    pub voter: bool,
    /// Leads the cluster (as this node knows).
    pub leader: bool,
    /// The last log index known to be replicated to it (known only on the leader).
    pub matched: Option<u64>,
    /// Milliseconds since it last answered this node's Raft traffic (the leader's view is
    /// the one that counts; `None`: never, or this node itself).
    pub last_contact_ms: Option<u64>,
}

impl Cluster {
    /// The members as this node knows them.
    pub fn members(&self) -> Vec<MemberStatus> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
                leader: m.current_leader == Some(*id),
                matched: m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|l| l.index),
                last_contact_ms: if *id == self.cfg.node_id {
                    None
                } else {
                    self.peers.last_contact(*id).map(|t| t.elapsed().as_millis() as u64)
                },
            })
            .collect()
    }

    /// The leader's round, forever: see the module documentation.
    pub(crate) async fn tend(self: Arc<Self>) {
        let mut leading_since: Option<Instant> = None;
        let mut last_round = Instant::now();
        loop {
            tokio::time::sleep(TEND_EVERY).await;
            // A round far later than due: this node was paused (or starved) meanwhile, so its
            // record of who answered lately says nothing; start it afresh.
            if last_round.elapsed() > 4 * TEND_EVERY && leading_since.is_some() {
                leading_since = Some(Instant::now());
            }
            last_round = Instant::now();
            let (state, member) = {
                let m = self.raft.metrics();
                let m = m.borrow();
                let member = m.membership_config.membership().get_node(&self.cfg.node_id).is_some();
                (m.state, member)
            };
            if state == ServerState::Leader {
                if *self.transferring.borrow() {
                    // Handing over: a membership change would renew the leases it waits out.
                    continue;
                }
                // Contacts from before this node led say nothing about reachability now.
                let since = *leading_since.get_or_insert_with(Instant::now);
                if let Err(e) = self.tend_members(since).await {
                    tracing::debug!("membership round: {e}");
                }
                continue;
            }
            leading_since = None;
            if !self.initialized() || self.left.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            if self.held() {
                continue;
            }
            // Heard from a leader lately (its entries or heartbeats accepted here), not merely
            // believing in one: a removed node can keep a committed vote for a leader that no
            // longer replicates to it, between elections it cannot win.
            let heard = self.leader_heard.lock().elapsed() < LEADERLESS_FOR;
            if member && heard {
                self.raft.runtime_config().elect(true);
                continue;
            }
            self.rejoin_if_removed().await;
        }
    }

    /// One round on the leader: remove unreachable members, promote learners.
    async fn tend_members(&self, leading_since: Instant) -> Result<(), String> {
        let me = self.cfg.node_id;
        let members = self.members();
        for m in members.iter().filter(|m| m.id != me) {
            let last = self.peers.last_contact(m.id).map_or(leading_since, |t| t.max(leading_since));
            if last.elapsed() > self.cfg.node_timeout {
                tracing::warn!(
                    "node {} ({}) has not answered for {} ms: removing it from the cluster",
                    m.id,
                    m.addr,
                    last.elapsed().as_millis()
                );
                self.remove_member(m.id).await?;
            }
        }
        let members = self.members();
        let voters = members.iter().filter(|m| m.voter).count();
        if voters >= self.cfg.voters {
            return Ok(());
        }
        let last_log = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let fresh = |m: &MemberStatus| m.last_contact_ms.is_some_and(|ms| ms < 1000);
        let ready: BTreeSet<NodeId> = members
            .iter()
            .filter(|m| !m.voter && fresh(m) && m.matched.is_some_and(|i| i + PROMOTE_LAG >= last_log))
            .map(|m| m.id)
            .take(self.cfg.voters - voters)
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        tracing::info!("promoting learners {ready:?} to voters");
        self.change(ChangeMembers::AddVoterIds(ready)).await?;
        Ok(())
    }

    /// Removes a member (on the leader): a voter stops voting and leaves the member list in
    /// one change; the last voter cannot be removed.
    pub(crate) async fn remove_member(&self, id: NodeId) -> Result<(), String> {
        let (voter, known, voters) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let voters = membership.voter_ids().count();
            (membership.voter_ids().any(|v| v == id), membership.get_node(&id).is_some(), voters)
        };
        let change = if voter {
            if voters <= 1 {
                return Err("the cluster's last voter cannot be removed".into());
            }
            ChangeMembers::RemoveVoters([id].into_iter().collect())
        } else if known {
            ChangeMembers::RemoveNodes([id].into_iter().collect())
        } else {
            return Err(format!("node {id} is not a member"));
        };
        self.change(change).await?;
        tracing::info!("node {id} removed from the cluster");
        Ok(())
    }

    /// A membership change, on the leader, given up after `cluster-write-timeout`: a leader
    /// cut off from the majority cannot commit it, and must not wait for ever (its
    /// membership round would stop, and with it its check of whether it was removed).
    pub(crate) async fn change(&self, change: ChangeMembers<NodeId, openraft::BasicNode>) -> Result<(), String> {
        match tokio::time::timeout(self.cfg.write_timeout, self.raft.change_membership(change, false)).await {
            Ok(r) => r.map(|_| ()).map_err(|e| e.to_string()),
            Err(_) => Err(format!("not committed within {} ms", self.cfg.write_timeout.as_millis())),
        }
    }

    /// Removes node `id` from the cluster, from any node (the leader does it). Callable from
    /// any runtime.
    pub async fn remove(self: &Arc<Self>, id: NodeId) -> Result<(), String> {
        let me = self.clone();
        let task = self.rt.spawn(async move {
            me.note_leaving(id, None);
            let result = match me.leader() {
                Some(Leader::Here) => me.remove_member(id).await,
                Some(Leader::At(addr)) => me
                    .peers
                    .call::<Result<(), String>>(&addr, &Rpc::Remove(id), me.cfg.write_timeout)
                    .await
                    .unwrap_or_else(|e| Err(format!("the leader did not answer: {e:?}"))),
                None => Err("no leader is known to this node".into()),
            };
            me.note_leaving(id, Some(&result));
            result
        });
        task.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// [`Cluster::remove`] (or [`Cluster::leave`] for `None`) for a caller that cannot await:
    /// blocks the calling thread until the change commits or `cluster-write-timeout` passes.
    pub fn remove_blocking(self: &Arc<Self>, id: Option<NodeId>) -> Result<(), String> {
        let id = id.unwrap_or(self.cfg.node_id);
        let me = self.clone();
        let limit = self.cfg.write_timeout + Duration::from_secs(1);
        self.block_on(limit, "the membership change", async move { me.remove(id).await })
    }

    /// This node leaves the cluster (before a graceful stop): removed by the leader, so the
    /// others need not wait `cluster-node-timeout` to replace it.
    pub async fn leave(self: &Arc<Self>) -> Result<(), String> {
        self.remove(self.cfg.node_id).await
    }

    /// Marks this node as leaving before its removal can apply here (so that it does not
    /// join again on finding itself removed), and unmarks it if the removal failed.
    fn note_leaving(&self, id: NodeId, result: Option<&Result<(), String>>) {
        if id == self.cfg.node_id {
            let leaving = result.is_none_or(|r| r.is_ok());
            self.left.store(leaving, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Asks the seeds and the members this node knows whether it is still a member; if a
    /// node of the cluster says it is not, stops standing for election (its log is behind,
    /// and its term would only disrupt the cluster) and asks to join again as a learner.
    async fn rejoin_if_removed(&self) {
        let me = self.cfg.node_id;
        let mut addrs: Vec<String> = self.seeds().await;
        for m in self.members() {
            if !addrs.contains(&m.addr) {
                addrs.push(m.addr);
            }
        }
        for addr in addrs.iter().filter(|a| **a != self.cfg.announce) {
            let Ok(h) = self.peers.call::<Hello>(addr, &Rpc::Hello(self.hello()), Duration::from_millis(500)).await
            else {
                continue;
            };
            if !h.initialized || h.members.is_empty() || h.members.contains(&me) {
                continue;
            }
            tracing::warn!("this node was removed from the cluster; joining it again");
            self.raft.runtime_config().elect(false);
            let _ = self.peers.call::<bool>(addr, &Rpc::Join(self.hello()), Duration::from_secs(10)).await;
            return;
        }
    }
}
