//! Leader election through a `coordination.k8s.io/v1` Lease. A candidate reads the lease and
//! takes it when it is free, its own, or expired, writing it back with the `resourceVersion`
//! it read: of two candidates that read the same version only one write succeeds (the other
//! gets 409 Conflict). A lease is expired when this process has seen the same holder and renew
//! time for longer than the lease duration; another machine's `renewTime` is never compared
//! with this machine's clock.
//!
//! Not taken from a crate: `kube-leader-election` writes with merge patches that carry no
//! precondition, so two candidates can both take an expired lease, and `kube-lease-manager`
//! detects a rival through server-side apply's field ownership, which kube-sim, the API server
//! the tests run against, does not implement.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};

/// One candidate for one lease.
#[derive(Debug)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The holder and renew time last read, and when this process read them first.
    observed: Option<(Option<String>, Option<String>, Instant)>,
}

impl LeaseLock {
    /// A candidate named `identity` for the lease `name` of `api`'s namespace.
    #[must_use]
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            observed: None,
        }
    }

    /// This candidate's identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt to take or renew the lease: whether this candidate holds it afterwards.
    /// A conflict (another candidate wrote first) is `Ok(false)`.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(chrono::Utc::now());
        let seconds = i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let renewed = spec.renew_time.as_ref().map(|t| t.0.to_rfc3339());
        let record = (holder.clone(), renewed);
        let seen_at = match &self.observed {
            Some((h, r, at)) if (h, r) == (&record.0, &record.1) => *at,
            _ => Instant::now(),
        };
        self.observed = Some((record.0, record.1, seen_at));
        let ours = holder.as_deref() == Some(self.identity.as_str());
        let held_for = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.duration, Duration::from_secs);
        let expired = seen_at.elapsed() > held_for;
        if !(ours || holder.is_none() || expired) {
            return Ok(false);
        }
        let mut next = spec;
        if !ours {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.identity.clone());
        next.renew_time = Some(now);
        next.lease_duration_seconds = Some(seconds);
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}
