//! Password hashing: argon2id with configurable cost, legacy bcrypt
//! verification with transparent upgrade, and a dummy hash for unknown e-mails.
//!
//! Hashing is CPU- and memory-heavy (19 MiB per argon2id call by default). Every call runs on
//! the blocking pool behind a semaphore sized to the number of cores, and uses one of as many
//! memory buffers, reused while hashes keep coming: a login flood queues instead of allocating
//! `n × 19 MiB`. The reuse matters as much as the semaphore: letting argon2 allocate per call
//! made glibc keep a 19–38 MiB heap in every blocking thread's arena (peak RSS 620 MB under 64
//! concurrent logins on 2 cores, versus about 60 MB with the buffers). When the last hash in
//! flight finishes the buffers are freed, so an idle backend holds none of that memory (the
//! binary's allocator, mimalloc, returns it to the system).

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString},
};
use tokio::sync::Semaphore;

use super::config::AuthConfig;

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// The stored hash should be replaced (legacy bcrypt or different argon2 parameters).
    pub needs_rehash: bool,
}

/// Buffers of finished hashes, for the next ones while others still run, and how many run.
#[derive(Default)]
struct Pool {
    buffers: Vec<Vec<Block>>,
    running: usize,
}

struct Inner {
    params: Params,
    permits: Arc<Semaphore>,
    pool: Mutex<Pool>,
    dummy: String,
}

/// Hashes and verifies passwords on the blocking pool with bounded memory.
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.inner.params;
        f.debug_struct("Passwords")
            .field("m_cost", &p.m_cost())
            .field("t_cost", &p.t_cost())
            .field("p_cost", &p.p_cost())
            .field("permits", &self.inner.permits.available_permits())
            .finish()
    }
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str, memory: &mut [Block]) -> anyhow::Result<String> {
    let raw_salt = rand::random::<[u8; 16]>();
    let salt = SaltString::encode_b64(&raw_salt)
        .map_err(|e| anyhow::anyhow!("salt encoding failed: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(params)
        .hash_password_into_with_memory(password.as_bytes(), &raw_salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

fn verify_argon2(
    password: &str,
    stored: &str,
    configured: &Params,
    memory: &mut [Block],
) -> Option<Verified> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
    let mut out = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params.clone());
    if params.block_count() <= memory.len() {
        hasher
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
            .ok()?;
    } else {
        // A stored hash costlier than the configured one: rare, rehashed on success.
        hasher
            .hash_password_into(password.as_bytes(), salt, &mut out)
            .ok()?;
    }
    let ok = aegis_common::signing::secrets_equal(&out, expected.as_bytes());
    let same = algorithm == Algorithm::Argon2id
        && version == Version::V0x13
        && params.m_cost() == configured.m_cost()
        && params.t_cost() == configured.t_cost()
        && params.p_cost() == configured.p_cost()
        && expected.len() == Params::DEFAULT_OUTPUT_LEN;
    Some(Verified {
        ok,
        needs_rehash: ok && !same,
    })
}

fn verify_with(params: &Params, password: &str, stored: &str, memory: &mut [Block]) -> Verified {
    let no = Verified {
        ok: false,
        needs_rehash: false,
    };
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        // bcrypt keeps its 72-byte truncation until the hash is upgraded.
        return match bcrypt::verify(password, stored) {
            Ok(ok) => Verified {
                ok,
                needs_rehash: ok,
            },
            Err(e) => {
                tracing::error!(error = %e, "stored bcrypt hash is malformed");
                no
            }
        };
    }
    if !stored.starts_with("$argon2") {
        tracing::error!("stored password hash has an unknown format");
        return no;
    }
    verify_argon2(password, stored, params, memory).unwrap_or_else(|| {
        tracing::error!("stored argon2 hash is malformed");
        no
    })
}

/// A PHC string with the configured parameters, a random salt and a random output: verifying a
/// password against it costs exactly what a real verification costs (the work is in deriving
/// the key, not in comparing it), and no password can match it. Nothing is hashed to build it,
/// so start-up allocates none of argon2's memory.
fn dummy_hash(params: &Params) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt encoding failed: {e}"))?;
    let out = rand::random::<[u8; Params::DEFAULT_OUTPUT_LEN]>();
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

impl Passwords {
    /// Builds the hasher and the dummy hash used for unknown accounts.
    pub fn new(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy = dummy_hash(&params)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                permits: Arc::new(Semaphore::new(cfg.hash_concurrency)),
                pool: Mutex::new(Pool::default()),
                dummy,
            }),
        })
    }

    /// Runs `f` on the blocking pool with a permit and a memory buffer. The permit moves into
    /// the blocking task, so a cancelled request cannot raise the concurrency.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Params, &mut [Block]) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hash semaphore closed")?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let buffer = {
                let mut pool = inner.pool.lock().unwrap_or_else(PoisonError::into_inner);
                pool.running += 1;
                pool.buffers.pop()
            };
            let mut buffer =
                buffer.unwrap_or_else(|| vec![Block::new(); inner.params.block_count()]);
            let result = f(&inner.params, &mut buffer);
            let mut pool = inner.pool.lock().unwrap_or_else(PoisonError::into_inner);
            pool.running -= 1;
            if pool.running == 0 {
                // The last hash in flight: free every buffer, this one included.
                pool.buffers.clear();
            } else {
                pool.buffers.push(buffer);
            }
            result
        })
        .await
        .context("password hashing task failed")
    }

    /// argon2id PHC string of `password`.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        self.run(move |params, memory| hash_with(params, &password, memory))
            .await?
    }

    /// Checks `password` against `stored` (argon2id or legacy bcrypt).
    pub async fn verify(&self, password: &str, stored: &str) -> anyhow::Result<Verified> {
        let (password, stored) = (password.to_owned(), stored.to_owned());
        self.run(move |params, memory| verify_with(params, &password, &stored, memory))
            .await
    }

    /// Spends the same work as a real verification, for unknown e-mails.
    pub async fn verify_dummy(&self, password: &str) -> anyhow::Result<()> {
        let dummy = self.inner.dummy.clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_common::config::{AppEnv, Env};

    fn passwords(m: &str) -> Passwords {
        let env = Env::from_pairs([("ARGON2_MEMORY_KIB", m), ("ARGON2_ITERATIONS", "1")]);
        Passwords::new(&AuthConfig::from_env(&env, AppEnv::Test).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn no_hash_buffer_is_kept_once_the_hashes_in_flight_are_done() {
        let p = passwords("1024");
        assert_eq!(
            p.inner.pool.lock().unwrap().buffers.len(),
            0,
            "none at start"
        );
        let hashes = futures::future::join_all((0..8).map(|i| {
            let p = p.clone();
            async move { p.hash(&format!("Password{i}!")).await.unwrap() }
        }))
        .await;
        assert_eq!(hashes.len(), 8);
        let idle = {
            let pool = p.inner.pool.lock().unwrap();
            (pool.buffers.len(), pool.running)
        };
        assert_eq!(idle, (0, 0), "none when idle");
        assert!(p.verify("Password3!", &hashes[3]).await.unwrap().ok);
        assert_eq!(p.inner.pool.lock().unwrap().buffers.len(), 0);
    }

    #[tokio::test]
    async fn the_dummy_hash_costs_a_real_verification_and_matches_nothing() {
        let p = passwords("2048");
        let parsed = PasswordHash::new(&p.inner.dummy).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        let params = Params::try_from(&parsed).unwrap();
        let configured = &p.inner.params;
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (
                configured.m_cost(),
                configured.t_cost(),
                configured.p_cost()
            ),
            "verifying against it derives a key with the configured cost"
        );
        assert_eq!(parsed.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
        let dummy = p.inner.dummy.clone();
        for guess in ["", "aegis-dummy-password-for-timing", "Password1!"] {
            let verified = p.verify(guess, &dummy).await.unwrap();
            assert!(!verified.ok && !verified.needs_rehash, "{guess:?}");
        }
        assert_ne!(
            passwords("2048").inner.dummy,
            dummy,
            "a fresh salt and output each start"
        );
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let p = passwords("1024");
        let h = p.hash("Password123!").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(
            p.verify("Password123!", &h).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!p.verify("Password123?", &h).await.unwrap().ok);
    }

    #[tokio::test]
    async fn parameter_drift_and_bcrypt_ask_for_a_rehash() {
        let old = passwords("2048").hash("Password123!").await.unwrap();
        let p = passwords("1024");
        assert_eq!(
            p.verify("Password123!", &old).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        let legacy = bcrypt::hash("Legacy12345", 4).unwrap();
        assert_eq!(
            p.verify("Legacy12345", &legacy).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(!p.verify("Legacy1234", &legacy).await.unwrap().ok);
        assert!(!p.verify("x", "plaintext").await.unwrap().ok);
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_reference_argon2_api() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let p = passwords("1024");
        let ours = p.hash("Password123!").await.unwrap();
        let reference = argon2id(&Params::new(1024, 1, 1, None).unwrap());
        assert!(
            reference
                .verify_password(b"Password123!", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = reference
            .hash_password(b"Password123!", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            p.verify("Password123!", &theirs).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!p.verify("Password123?", &theirs).await.unwrap().ok);
        // A costlier stored hash (bigger than the buffers) still verifies.
        let big = passwords("4096").hash("Password123!").await.unwrap();
        assert_eq!(
            p.verify("Password123!", &big).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }
}
