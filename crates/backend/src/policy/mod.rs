//! The policy engine as a backend service: the compiled [`PolicySet`] behind an
//! [`ArcSwap`], the decision cache, the evaluation audit and the seed policies.
//!
//! * **Versions.** `policies` changes bump `policy_revision.revision` (a trigger, same
//!   transaction). After a change commits, the replica that made it INCRs the Redis counter
//!   `policy:version`. Every evaluation reads that counter with a read *sent after the
//!   evaluation began* ([`coalesced::CoalescedReads`]: concurrent evaluations share one
//!   `GET`, and one that arrives while a read is in flight waits for the next), so a change that
//!   committed before an evaluation began is always seen, on every replica. A replica reloads its
//!   compiled set from the database when the counter differs from the version it last saw.
//!   When the counter is missing (Redis restarted), it is re-created from the time of the last
//!   policy change in milliseconds, so versions never repeat. A failed INCR is retried by the
//!   refresh task, which also reloads the set when the database revision moved (Redis down).
//! * **Cache.** Decisions are cached in process, per (version, compiled set): the cache belongs
//!   to the [`Loaded`] set, so a new version starts an empty one. Keys are the
//!   `policy:v<N>:…` keys, the version being the set's; entries live
//!   `POLICY_CACHE_TTL_SECONDS` and at most `POLICY_CACHE_MAX_ENTRIES` are kept. A decision is
//!   evaluated in microseconds, less than the Redis round trip the original's Redis cache cost,
//!   so Redis only carries the version. Fail-open: when the version cannot be read, nothing is
//!   cached or served from the cache. Explanations are never cached.
//! * **Audit.** Every evaluation, cache hits included, is queued for
//!   [`audit::AuditWriter`] with its decision id.
//!
//! The remediation loop calls [`PolicyService::evaluate`] in-process.

pub mod audit;
pub mod coalesced;
pub mod config;

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aegis_common::{
    contracts::{EvaluationRequest, EvaluationResponse},
    redis_conn::SharedRedis,
};
use aegis_policy::{DecisionBody, Policy, PolicySet, RemediationMode, Request};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub use config::PolicyConfig;

use crate::{
    db::{
        policies::{self, PolicyRow},
        policy_audit::NewPolicyAudit,
    },
    metrics::BackendMetrics,
};

/// Redis key (before the instance prefix) of the cache-version counter.
pub const VERSION_KEY: &str = "policy:version";

/// A compiled set and what it was built from.
#[derive(Debug)]
struct Loaded {
    set: Arc<PolicySet>,
    /// `policy_revision.revision` the set was read at.
    revision: i64,
    /// When that revision was made.
    revision_at: DateTime<Utc>,
    /// The Redis cache version last seen with this set.
    cache_version: Option<u64>,
    /// A reload failed: the set may be older than `cache_version` (no caching).
    stale: bool,
    /// Decisions evaluated with this set under this version.
    decisions: DecisionCache,
}

impl Loaded {
    fn new(
        set: Arc<PolicySet>,
        (revision, revision_at): (i64, DateTime<Utc>),
        cache_version: Option<u64>,
        stale: bool,
        config: &PolicyConfig,
    ) -> Self {
        Self {
            set,
            revision,
            revision_at,
            cache_version,
            stale,
            decisions: DecisionCache::new(config),
        }
    }
}

/// The in-process decision cache of one [`Loaded`] set, keyed by
/// [`aegis_policy::cache_key_suffix`] (the version is the set's).
struct DecisionCache {
    entries: quick_cache::sync::Cache<String, Arc<CachedDecision>>,
    ttl: Duration,
}

struct CachedDecision {
    decision: DecisionBody,
    at: Instant,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("entries", &self.entries.len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl DecisionCache {
    fn new(config: &PolicyConfig) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(config.cache_max_entries.max(1)),
            ttl: config.cache_ttl,
        }
    }

    /// The decision cached under `key`, unless it is older than the TTL.
    fn get(&self, key: &str) -> Option<DecisionBody> {
        let cached = self.entries.get(key)?;
        if cached.at.elapsed() < self.ttl {
            Some(cached.decision.clone())
        } else {
            self.entries.remove(key);
            None
        }
    }

    fn insert(&self, key: String, decision: &DecisionBody) {
        self.entries.insert(
            key,
            Arc::new(CachedDecision {
                decision: decision.clone(),
                at: Instant::now(),
            }),
        );
    }
}

/// Facts about an evaluation that are not part of the decision (never in the cache key).
#[derive(Debug, Clone, Default)]
pub struct EvaluationMeta {
    /// The W3C trace id the caller sent (`traceparent` / `X-Correlation-Id`), if any.
    pub correlation_id: Option<String>,
}

/// The outcome of [`PolicyService::evaluate`].
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `{allowed, reason, appliedPolicies}`.
    pub decision: DecisionBody,
    /// Id of the `policy_audit_logs` row (written asynchronously).
    pub decision_id: Uuid,
    /// Served from the decision cache.
    pub cached: bool,
    /// `remediationMode` of the deciding policy, when it has one.
    pub remediation_mode: Option<RemediationMode>,
    /// The per-policy trace, when asked for.
    pub explanation: Option<Value>,
}

impl Evaluation {
    /// The wire response (contract of `POST /policy/evaluate`).
    #[must_use]
    pub fn to_response(&self) -> EvaluationResponse {
        EvaluationResponse {
            allowed: self.decision.allowed,
            reason: self.decision.reason.clone(),
            applied_policies: self.decision.applied_policies.clone(),
            decision_id: Some(self.decision_id.to_string()),
        }
    }
}

/// The policy engine service; cheap to clone.
#[derive(Clone)]
pub struct PolicyService {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    redis: SharedRedis,
    metrics: BackendMetrics,
    config: PolicyConfig,
    loaded: ArcSwap<Loaded>,
    reload: tokio::sync::Mutex<()>,
    bump_pending: AtomicBool,
    /// Coalesced reads of the cache version.
    versions: Arc<coalesced::CoalescedReads<Option<u64>>>,
    audit: audit::AuditSender,
}

impl std::fmt::Debug for PolicyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.inner.loaded.load();
        f.debug_struct("PolicyService")
            .field("policies", &loaded.set.len())
            .field("revision", &loaded.revision)
            .field("cache_version", &loaded.cache_version)
            .finish_non_exhaustive()
    }
}

fn compile(rows: &[PolicyRow]) -> PolicySet {
    PolicySet::new(rows.iter().filter_map(|row| {
        match row.definition().and_then(|d| Ok(Policy::from_definition(d)?)) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(policy = %row.id, name = %row.name, error = %format!("{e:#}"), "stored policy is invalid; left out of the compiled set");
                None
            }
        }
    }))
}

/// Inserts the seed policies that are missing (by name); how many were inserted.
pub async fn seed(db: &PgPool) -> anyhow::Result<usize> {
    let mut inserted = 0;
    for d in aegis_policy::seed_policy_definitions() {
        if policies::insert_if_absent(db, &d).await? {
            inserted += 1;
        }
    }
    Ok(inserted)
}

impl PolicyService {
    /// Seeds, loads the set and starts the audit writer and the refresh task.
    pub async fn start(
        db: PgPool,
        redis: SharedRedis,
        metrics: BackendMetrics,
        config: PolicyConfig,
    ) -> anyhow::Result<(Self, audit::AuditWriter)> {
        use anyhow::Context as _;
        let seeded = seed(&db).await.context("failed to seed the policies")?;
        let ((revision, revision_at), rows) = policies::load_all(&db)
            .await
            .context("failed to load the policies")?;
        let (sender, writer) = audit::AuditWriter::spawn(
            db.clone(),
            config.audit_buffer,
            config.audit_batch_size,
            metrics.policy_audit_buffer_depth.clone(),
        );
        let service = Self {
            inner: Arc::new(Inner {
                loaded: ArcSwap::from_pointee(Loaded::new(
                    Arc::new(compile(&rows)),
                    (revision, revision_at),
                    None,
                    false,
                    &config,
                )),
                db,
                redis,
                metrics,
                config,
                reload: tokio::sync::Mutex::new(()),
                bump_pending: AtomicBool::new(false),
                versions: coalesced::CoalescedReads::new(None),
                audit: sender,
            }),
        };
        if seeded > 0 {
            tracing::info!(seeded, "seed policies inserted");
            service.bump_version().await;
        }
        service.spawn_refresh();
        Ok((service, writer))
    }

    /// The compiled set currently in use.
    #[must_use]
    pub fn current_set(&self) -> Arc<PolicySet> {
        self.inner.loaded.load().set.clone()
    }

    /// Evaluates `request` against the current set, through the decision cache unless
    /// `explain` is set, and queues its audit row. Never fails: Redis is fail-open and the
    /// compiled set is always available. Waits for one version read (shared with concurrent
    /// evaluations), and when the audit queue is full.
    pub async fn evaluate(
        &self,
        request: &EvaluationRequest,
        meta: EvaluationMeta,
        explain: bool,
    ) -> Evaluation {
        let started = Instant::now();
        let decision_id = Uuid::new_v4();
        let req = Request::from(request);
        let version = self.fresh_version().await;
        let loaded = self.current(version).await;
        let now = Utc::now();
        let cache = (!self.inner.config.cache_ttl.is_zero()
            && !explain
            && !loaded.stale
            && version.is_some())
        .then_some(&loaded.decisions);
        let key = cache.map(|_| aegis_policy::cache_key_suffix(&req));
        let hit = cache
            .zip(key.as_deref())
            .and_then(|(cache, key)| cache.get(key));
        let cached = hit.is_some();
        let (decision, explanation) = match hit {
            Some(d) => (d, None),
            None if explain => {
                let e = loaded.set.explain(&req, now);
                (e.decision.to_body(), serde_json::to_value(&e).ok())
            }
            None => {
                let decision = loaded.set.evaluate(&req, now).to_body();
                if let (Some(cache), Some(key)) = (cache, key) {
                    cache.insert(key, &decision);
                }
                (decision, None)
            }
        };
        let remediation_mode = decision
            .applied_policies
            .last()
            .and_then(|name| loaded.set.get(name))
            .and_then(Policy::remediation_mode);
        let result = if decision.allowed { "allow" } else { "deny" };
        let type_label = request.policy_type.as_str();
        self.inner
            .metrics
            .policy_evaluations
            .with_label_values(&[type_label, result, if cached { "true" } else { "false" }])
            .inc();
        self.inner
            .metrics
            .policy_evaluation_duration
            .with_label_values(&[type_label])
            .observe(started.elapsed().as_secs_f64());
        let ctx = &request.context;
        self.inner
            .audit
            .send(
                NewPolicyAudit {
                    id: decision_id,
                    user_id: ctx.user_id.clone(),
                    action: request.action.clone(),
                    resource: request.resource.clone(),
                    result,
                    reason: decision.reason.clone(),
                    context: Value::Object(ctx.metadata.clone().unwrap_or_default()),
                    applied_policies: decision.applied_policies.clone(),
                    ip_address: ctx.ip_address.clone(),
                    user_agent: ctx.user_agent.clone(),
                    correlation_id: meta.correlation_id,
                    created_at: now,
                }
                .sanitised(),
            )
            .await;
        Evaluation {
            decision,
            decision_id,
            cached,
            remediation_mode,
            explanation,
        }
    }

    /// To call after a policy change committed: bumps the cache version (every replica's
    /// cache is invalidated and its next evaluation reloads) and reloads this replica's set.
    pub async fn changed(&self) {
        let version = self.bump_version().await;
        let _guard = self.inner.reload.lock().await;
        if let Err(e) = self.reload_from_db(version, true).await {
            tracing::error!(error = %format!("{e:#}"), "failed to reload the policies after a change");
        }
    }

    async fn redis_query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        use aegis_common::redis_conn::RedisUnavailable;
        match self
            .inner
            .redis
            .run(|mut conn| async move { cmd.query_async::<T>(&mut conn).await })
            .await
        {
            Ok(v) => Some(v),
            // Skipped while Redis is known to be down: nothing new to log.
            Err(RedisUnavailable::Down) => None,
            Err(e) => {
                tracing::warn!(error = %e, "policy cache: Redis unavailable (fail-open)");
                None
            }
        }
    }

    /// INCRs the cache version; on failure the refresh task retries.
    async fn bump_version(&self) -> Option<u64> {
        let key = self.inner.redis.key(VERSION_KEY);
        let v = self.redis_query::<u64>(redis::cmd("INCR").arg(&key)).await;
        self.inner.bump_pending.store(v.is_none(), Ordering::SeqCst);
        v
    }

    /// The cache version from Redis; re-created from the last change time when missing.
    async fn cache_version(&self) -> Option<u64> {
        let key = self.inner.redis.key(VERSION_KEY);
        if let Some(v) = self
            .redis_query::<Option<u64>>(redis::cmd("GET").arg(&key))
            .await?
        {
            return Some(v);
        }
        let at = self.inner.loaded.load().revision_at.timestamp_millis();
        let floor = u64::try_from(at).unwrap_or(1).max(1);
        self.redis_query::<Option<String>>(redis::cmd("SET").arg(&key).arg(floor).arg("NX"))
            .await?;
        self.redis_query::<Option<u64>>(redis::cmd("GET").arg(&key))
            .await?
    }

    /// The cache version, from a read sent after this call began (shared with the concurrent
    /// callers, see [`fresh`]); `None` when Redis is unavailable.
    async fn fresh_version(&self) -> Option<u64> {
        let me = self.clone();
        self.inner
            .versions
            .get(move || {
                let me = me.clone();
                async move { me.cache_version().await }
            })
            .await
    }

    /// The loaded set, reloaded first when Redis reports a version this replica has not seen.
    async fn current(&self, version: Option<u64>) -> Arc<Loaded> {
        let loaded = self.inner.loaded.load_full();
        let Some(v) = version else {
            return loaded;
        };
        if loaded.cache_version == Some(v) {
            return loaded;
        }
        let _guard = self.inner.reload.lock().await;
        let loaded = self.inner.loaded.load_full();
        if loaded.cache_version == Some(v) {
            return loaded;
        }
        match self.reload_from_db(Some(v), false).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "failed to reload the policies; using the loaded set");
                let stale = Arc::new(Loaded::new(
                    loaded.set.clone(),
                    (loaded.revision, loaded.revision_at),
                    Some(v),
                    true,
                    &self.inner.config,
                ));
                self.inner.loaded.store(stale.clone());
                stale
            }
        }
    }

    /// Reloads from the database (rows only when the revision moved, or `force`); call with
    /// the reload lock held.
    async fn reload_from_db(
        &self,
        cache_version: Option<u64>,
        force: bool,
    ) -> anyhow::Result<Arc<Loaded>> {
        let current = self.inner.loaded.load_full();
        let (revision, revision_at) = policies::revision(&self.inner.db).await?;
        let config = &self.inner.config;
        let next = if !force && !current.stale && revision == current.revision {
            Loaded::new(
                current.set.clone(),
                (revision, revision_at),
                cache_version,
                false,
                config,
            )
        } else {
            let (at, rows) = policies::load_all(&self.inner.db).await?;
            tracing::debug!(
                revision = at.0,
                policies = rows.len(),
                "policy set reloaded"
            );
            Loaded::new(Arc::new(compile(&rows)), at, cache_version, false, config)
        };
        let next = Arc::new(next);
        self.inner.loaded.store(next.clone());
        Ok(next)
    }

    /// Every `refresh_interval`: retry a failed version bump, reload when the database moved.
    fn spawn_refresh(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.config.refresh_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { break };
                let me = PolicyService { inner };
                if me.inner.bump_pending.load(Ordering::SeqCst) {
                    me.bump_version().await;
                }
                let _guard = me.inner.reload.lock().await;
                let loaded = me.inner.loaded.load_full();
                let moved = match policies::revision(&me.inner.db).await {
                    Ok((rev, _)) => rev != loaded.revision || loaded.stale,
                    Err(e) => {
                        tracing::debug!(error = %e, "policy refresh: database unavailable");
                        false
                    }
                };
                if moved && let Err(e) = me.reload_from_db(loaded.cache_version, true).await {
                    tracing::warn!(error = %format!("{e:#}"), "policy refresh failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(reason: &str) -> DecisionBody {
        DecisionBody {
            allowed: true,
            reason: reason.to_owned(),
            applied_policies: vec!["p".to_owned()],
        }
    }

    #[test]
    fn cached_decisions_expire_after_the_ttl_and_the_capacity_is_bounded() {
        let config = PolicyConfig {
            cache_ttl: Duration::from_millis(40),
            cache_max_entries: 100,
            ..PolicyConfig::default()
        };
        let cache = DecisionCache::new(&config);
        cache.insert("a".to_owned(), &decision("first"));
        assert_eq!(cache.get("a"), Some(decision("first")));
        assert_eq!(cache.get("b"), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(cache.get("a"), None, "an expired decision was served");
        assert_eq!(cache.entries.len(), 0, "an expired decision was kept");

        let cache = DecisionCache::new(&PolicyConfig {
            cache_max_entries: 100,
            ..PolicyConfig::default()
        });
        for i in 0..1_000 {
            cache.insert(format!("k{i}"), &decision("d"));
        }
        assert!(cache.entries.len() <= 100, "{}", cache.entries.len());
    }
}
