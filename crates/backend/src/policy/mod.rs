//! The policy engine as a backend service (backend.md §5): the compiled [`PolicySet`] behind an
//! [`ArcSwap`], the Redis decision cache, the evaluation audit and the seed policies.
//!
//! * **Versions.** `policies` changes bump `policy_revision.revision` (a trigger, same
//!   transaction). After a change commits, the replica that made it INCRs the Redis counter
//!   `policy:version`; every evaluation reads that counter, uses it in the cache key
//!   (`policy:v<N>:…`, so a change invalidates every replica's cache at once) and reloads its
//!   compiled set from the database when `N` differs from the version it last saw. When the
//!   counter is missing (Redis restarted), it is re-created from the time of the last policy
//!   change in milliseconds, so versions never repeat. A failed INCR is retried by the refresh
//!   task, which also reloads the set when the database revision moved (Redis down).
//! * **Cache.** Fail-open: Redis errors mean no caching. Explanations are never cached.
//! * **Audit.** Every evaluation, cache hits included, is queued for
//!   [`audit::AuditWriter`] with its decision id.
//!
//! The remediation loop calls [`PolicyService::evaluate`] in-process.

pub mod audit;
pub mod config;

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use aegis_common::{
    contracts::{EvaluationRequest, EvaluationResponse},
    redis_conn::SharedRedis,
};
use aegis_policy::{
    DecisionBody, OwnedContext, OwnedRequest, Policy, PolicySet, PolicyType, RemediationMode,
};
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

/// What [`PolicyService::lookup`] found.
enum Lookup {
    /// The version, and the decision cached under it if this replica had already seen that
    /// version (else none: a miss).
    Found {
        version: u64,
        decision: Option<String>,
    },
    /// No version key yet (it is re-created from the last change time).
    NoVersion,
    /// Redis failed or timed out: no caching for this evaluation.
    Unavailable,
}

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
    /// A reload failed: the set may be older than `cache_version` (no cache writes).
    stale: bool,
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
    /// Served from the Redis cache.
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

/// Inserts the six seed policies of §5.9 that are missing (by name); how many were inserted.
pub async fn seed(db: &PgPool) -> anyhow::Result<usize> {
    let mut inserted = 0;
    for d in aegis_policy::seed_policy_definitions() {
        if policies::insert_if_absent(db, &d).await? {
            inserted += 1;
        }
    }
    Ok(inserted)
}

/// Converts the shared contract type into the engine's request.
#[must_use]
pub fn owned_request(req: &EvaluationRequest) -> OwnedRequest {
    use aegis_common::contracts::PolicyType as C;
    OwnedRequest {
        policy_type: match req.policy_type {
            C::ApiAccess => PolicyType::ApiAccess,
            C::SelfHealing => PolicyType::SelfHealing,
            C::DataAccess => PolicyType::DataAccess,
            C::ResourceLimit => PolicyType::ResourceLimit,
        },
        action: req.action.clone(),
        resource: req.resource.clone(),
        context: OwnedContext {
            user_id: req.context.user_id.clone(),
            role: req.context.role.clone(),
            metadata: req.context.metadata.clone(),
            ip_address: req.context.ip_address.clone(),
            user_agent: req.context.user_agent.clone(),
        },
    }
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
                loaded: ArcSwap::from_pointee(Loaded {
                    set: Arc::new(compile(&rows)),
                    revision,
                    revision_at,
                    cache_version: None,
                    stale: false,
                }),
                db,
                redis,
                metrics,
                config,
                reload: tokio::sync::Mutex::new(()),
                bump_pending: AtomicBool::new(false),
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

    /// Evaluates `request` (§5.4) against the current set, through the decision cache unless
    /// `explain` is set, and queues its audit row. Never fails: Redis is fail-open and the
    /// compiled set is always available. Waits only when the audit queue is full.
    pub async fn evaluate(
        &self,
        request: &OwnedRequest,
        meta: EvaluationMeta,
        explain: bool,
    ) -> Evaluation {
        let started = Instant::now();
        let decision_id = Uuid::new_v4();
        let req = request.as_request();
        let wants_cache = !self.inner.config.cache_ttl.is_zero() && !explain;
        // Hashed once: for the lookup, and for the write on a miss.
        let suffix = wants_cache.then(|| aegis_policy::cache_key_suffix(&req));
        // One round trip: the version and the decision cached under the version last seen.
        let (version, raw_hit) = match &suffix {
            Some(suffix) => match self.lookup(suffix).await {
                Lookup::Found { version, decision } => (Some(version), decision),
                Lookup::NoVersion => (self.cache_version().await, None),
                Lookup::Unavailable => (None, None),
            },
            None => (self.cache_version().await, None),
        };
        let loaded = self.current(version).await;
        let now = Utc::now();
        let cache_on = wants_cache && !loaded.stale;
        let key = version
            .zip(suffix.as_deref())
            .filter(|_| cache_on)
            .map(|(v, s)| {
                self.inner
                    .redis
                    .key(&aegis_policy::cache_key_from_suffix(v, s))
            });
        let hit: Option<DecisionBody> = raw_hit
            .filter(|_| cache_on)
            .and_then(|raw| serde_json::from_str(&raw).ok());
        let cached = hit.is_some();
        let (decision, explanation) = match hit {
            Some(d) => (d, None),
            None if explain => {
                let e = loaded.set.explain(&req, now);
                (e.decision.to_body(), serde_json::to_value(&e).ok())
            }
            None => (loaded.set.evaluate(&req, now).to_body(), None),
        };
        if let (Some(k), false) = (&key, cached) {
            self.cache_put(k, &decision).await;
        }
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

    /// [`PolicyService::evaluate`] for the shared contract type (contract 6), without
    /// explanation.
    pub async fn evaluate_contract(
        &self,
        request: &EvaluationRequest,
        meta: EvaluationMeta,
    ) -> EvaluationResponse {
        self.evaluate(&owned_request(request), meta, false)
            .await
            .to_response()
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

    async fn redis_conn(&self) -> Option<redis::aio::ConnectionManager> {
        self.inner.redis.connection().await
    }

    async fn redis_query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.redis_conn().await?;
        match tokio::time::timeout(self.inner.redis.timeout(), cmd.query_async::<T>(&mut conn))
            .await
        {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "policy cache: Redis command failed (fail-open)");
                None
            }
            Err(_) => {
                tracing::warn!("policy cache: Redis timed out (fail-open)");
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

    /// The cache version and the decision cached under it for a key ending in `suffix`, in one
    /// round trip: an `MGET` of the version and of the key under the version this replica last
    /// saw, which is the current one except just after a policy change. When the version moved,
    /// the decision read belongs to the old version and is not used (a miss: the caller reloads
    /// the set and caches under the new version).
    async fn lookup(&self, suffix: &str) -> Lookup {
        let Some(mut conn) = self.redis_conn().await else {
            return Lookup::Unavailable;
        };
        let seen = self.inner.loaded.load().cache_version;
        let mut mget = redis::cmd("MGET");
        mget.arg(self.inner.redis.key(VERSION_KEY));
        if let Some(v) = seen {
            mget.arg(
                self.inner
                    .redis
                    .key(&aegis_policy::cache_key_from_suffix(v, suffix)),
            );
        }
        let reply = tokio::time::timeout(
            self.inner.redis.timeout(),
            mget.query_async::<Vec<Option<String>>>(&mut conn),
        )
        .await;
        match reply {
            Ok(Ok(values)) => {
                let mut values = values.into_iter();
                match values.next().flatten().map(|v| v.parse::<u64>()) {
                    Some(Ok(version)) => Lookup::Found {
                        version,
                        decision: values.next().flatten().filter(|_| seen == Some(version)),
                    },
                    Some(Err(_)) => {
                        tracing::warn!("policy cache: the version key holds no number (fail-open)");
                        Lookup::Unavailable
                    }
                    None => Lookup::NoVersion,
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "policy cache: Redis lookup failed (fail-open)");
                Lookup::Unavailable
            }
            Err(_) => {
                tracing::warn!("policy cache: Redis timed out (fail-open)");
                Lookup::Unavailable
            }
        }
    }

    async fn cache_put(&self, key: &str, decision: &DecisionBody) {
        let Ok(json) = serde_json::to_string(decision) else {
            return;
        };
        let ttl = self.inner.config.cache_ttl.as_secs().max(1);
        let _ = self
            .redis_query::<Option<String>>(redis::cmd("SET").arg(key).arg(json).arg("EX").arg(ttl))
            .await;
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
                let stale = Arc::new(Loaded {
                    set: loaded.set.clone(),
                    revision: loaded.revision,
                    revision_at: loaded.revision_at,
                    cache_version: Some(v),
                    stale: true,
                });
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
        let next = if !force && !current.stale && revision == current.revision {
            Loaded {
                set: current.set.clone(),
                revision,
                revision_at,
                cache_version,
                stale: false,
            }
        } else {
            let ((revision, revision_at), rows) = policies::load_all(&self.inner.db).await?;
            tracing::debug!(revision, policies = rows.len(), "policy set reloaded");
            Loaded {
                set: Arc::new(compile(&rows)),
                revision,
                revision_at,
                cache_version,
                stale: false,
            }
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
