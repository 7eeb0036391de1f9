//! Which replica owns a series, so that every replica gives the same verdict for it.
//!
//! An anomaly model is a series' history, and each window changes it. Two replicas behind one
//! Service that each kept their own model of a series would each see half its windows and
//! answer differently. So each series has one owner among the replicas, chosen by rendezvous
//! hashing of the series key over the members (the highest SHA-256 of `member ‖ key` wins):
//! every replica computes the same owner from the same member list, and a member joining or
//! leaving moves only the series it wins or held. A replica that receives a window of a
//! series it does not own forwards the request, body and headers unchanged, to the owner and
//! relays the answer; the owner scores it, records it, and holds the series' model.
//!
//! Availability wins over agreement when they conflict: when the owner cannot be reached
//! within [`FORWARD_TIMEOUT`] or fails, the receiving replica answers from its own model of
//! the series (rebuilt from the shared history in PostgreSQL) and counts the fallback in
//! `ai_series_routing_total{result="fallback"}`. While the member lists of two replicas
//! differ (for a DNS refresh interval after a scale-out), both may answer for a series. A
//! forwarded request carries [`FORWARDED`] and is always answered where it lands, so a
//! request is forwarded at most once.
//!
//! The Prometheus feed runs on every replica and reads the same samples; each replica's feed
//! scores only the series it owns.
//!
//! Members come from `AI_ENGINE_PEERS` (a fixed list of base URLs, this replica's own
//! `AI_ENGINE_SELF_URL` among them) or from `AI_ENGINE_PEERS_DNS` (a headless Service's name
//! and port, resolved every [`DNS_REFRESH`]; this replica is `POD_IP`). Without either, a
//! replica owns every series.

use std::{
    net::IpAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

/// Header that marks a request forwarded by a replica to the series' owner.
pub const FORWARDED: &str = "x-aegis-forwarded";
/// Deadline of a forwarded request, connection included.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the DNS members are resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(10);

/// How the members are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// This replica answers for every series.
    Alone,
    /// A fixed list of base URLs (`http://host:port`), this replica's among them.
    Static {
        /// This replica's base URL.
        self_url: String,
        /// Every member's base URL, this one's included.
        peers: Vec<String>,
    },
    /// The addresses a name resolves to (a headless Service), each at `port`.
    Dns {
        /// The name to resolve.
        host: String,
        /// The members' port.
        port: u16,
        /// This replica's address among them.
        self_ip: IpAddr,
    },
}

#[derive(Debug, Default)]
struct Members {
    self_url: Option<String>,
    peers: Vec<String>,
}

/// The current members, shared by the handlers and the DNS refresher.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    members: Arc<RwLock<Members>>,
}

impl Ring {
    /// A ring for `membership` (a DNS one starts alone until [`spawn_dns`] resolves it).
    #[must_use]
    pub fn new(membership: &Membership) -> Self {
        let ring = Self::default();
        if let Membership::Static { self_url, peers } = membership {
            ring.set(self_url.clone(), peers.clone());
        }
        ring
    }

    /// Replaces the members. `self_url` should be among `peers`; a replica missing from its
    /// own list owns nothing and forwards everything.
    pub fn set(&self, self_url: String, mut peers: Vec<String>) {
        for p in &mut peers {
            *p = p.trim_end_matches('/').to_owned();
        }
        peers.sort();
        peers.dedup();
        if let Ok(mut m) = self.members.write() {
            *m = Members {
                self_url: Some(self_url.trim_end_matches('/').to_owned()),
                peers,
            };
        }
    }

    /// The base URL of the member that owns `key`, or `None` when this replica does (or
    /// there are no other members).
    #[must_use]
    pub fn owner(&self, key: &str) -> Option<String> {
        let m = self.members.read().ok()?;
        let me = m.self_url.as_deref()?;
        if m.peers.len() < 2 && m.peers.iter().all(|p| p == me) {
            return None;
        }
        let owner = m.peers.iter().max_by_key(|p| weight(p, key))?;
        (owner != me).then(|| owner.clone())
    }
}

/// The rendezvous weight of `member` for `key`.
fn weight(member: &str, key: &str) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(member.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The base URL of a member at `ip:port`.
#[must_use]
pub fn member_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// Resolves a DNS membership now and every [`DNS_REFRESH`] after. A failed lookup keeps the
/// members it had (a DNS hiccup must not make every replica claim every series).
pub fn spawn_dns(ring: Ring, host: String, port: u16, self_ip: IpAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let me = member_url(self_ip, port);
        loop {
            let lookup = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await;
            match lookup {
                Ok(Ok(addrs)) => {
                    let mut peers: Vec<String> = addrs.map(|a| member_url(a.ip(), port)).collect();
                    peers.push(me.clone());
                    ring.set(me.clone(), peers);
                }
                Ok(Err(e)) => {
                    tracing::warn!(host, error = %e, "ai-engine peers not resolved; keeping the last members");
                }
                Err(_) => {
                    tracing::warn!(
                        host,
                        "ai-engine peers not resolved in time; keeping the last members"
                    );
                }
            }
            tokio::time::sleep(DNS_REFRESH).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(me: &str, peers: &[&str]) -> Ring {
        let r = Ring::default();
        r.set(me.into(), peers.iter().map(|p| (*p).to_owned()).collect());
        r
    }

    #[test]
    fn alone_owns_everything() {
        assert_eq!(Ring::new(&Membership::Alone).owner("a|cpu_usage"), None);
        assert_eq!(ring("http://a", &["http://a"]).owner("x"), None);
    }

    #[test]
    fn every_member_agrees_on_the_owner_and_the_series_spread() {
        let peers = ["http://a:8000", "http://b:8000/", "http://c:8000"];
        let rings: Vec<Ring> = ["http://a:8000", "http://b:8000", "http://c:8000"]
            .iter()
            .map(|me| ring(me, &peers))
            .collect();
        let mut owned = [0usize; 3];
        for i in 0..300 {
            let key = format!("ns/app-{i}|cpu_usage");
            // Exactly one member answers itself; the others name it.
            let local: Vec<usize> = (0..3).filter(|&r| rings[r].owner(&key).is_none()).collect();
            assert_eq!(local.len(), 1, "{key}");
            let owner = local[0];
            owned[owner] += 1;
            for (r, ring) in rings.iter().enumerate() {
                if r != owner {
                    assert_eq!(
                        ring.owner(&key).as_deref(),
                        Some(peers[owner].trim_end_matches('/'))
                    );
                }
            }
        }
        assert!(owned.iter().all(|&n| n > 60), "series spread: {owned:?}");
    }

    #[test]
    fn a_member_leaving_moves_only_its_series() {
        let three = ring("http://a", &["http://a", "http://b", "http://c"]);
        let two = ring("http://a", &["http://a", "http://b"]);
        for i in 0..200 {
            let key = format!("k{i}");
            let before = three.owner(&key);
            if before.as_deref() != Some("http://c") {
                assert_eq!(two.owner(&key), before, "{key} moved without reason");
            }
        }
    }

    #[test]
    fn member_urls() {
        assert_eq!(
            member_url("10.0.0.7".parse().unwrap(), 8000),
            "http://10.0.0.7:8000"
        );
        assert_eq!(
            member_url("fd00::1".parse().unwrap(), 8000),
            "http://[fd00::1]:8000"
        );
    }
}
