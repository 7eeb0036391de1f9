//! Starting the real binaries for a test: fresh databases and a Redis prefix per stack.
#![allow(dead_code)] // each test binary uses part of it

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aegis_dev::{Stack, StackOptions};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/debug/`: the test executable lives in `target/debug/deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// kube-sim (seeded with the demo seed) and the three services, each service on a fresh
/// database; `backend_env` adds or overrides backend settings.
pub async fn start_stack(tag: &str, backend_env: &[(&str, &str)]) -> Stack {
    start_stack_with_seed(
        tag,
        &repo().join("crates/kube-sim/seed/demo.yaml"),
        backend_env,
    )
    .await
}

/// [`start_stack`] with extra settings for the backend and the executor.
pub async fn start_stack_with(
    tag: &str,
    backend_env: &[(&str, &str)],
    executor_env: &[(&str, &str)],
) -> Stack {
    start(
        tag,
        &repo().join("crates/kube-sim/seed/demo.yaml"),
        backend_env,
        executor_env,
    )
    .await
}

/// [`start_stack`] with another kube-sim seed file.
pub async fn start_stack_with_seed(tag: &str, seed: &Path, backend_env: &[(&str, &str)]) -> Stack {
    start(tag, seed, backend_env, &[]).await
}

/// [`start_stack`] with the ai-engine's Prometheus feed on and extra ai-engine settings (the
/// caller starts Prometheus).
pub async fn start_stack_with_feed(
    tag: &str,
    backend_env: &[(&str, &str)],
    ai_env: &[(&str, &str)],
    feed: aegis_dev::stack::FeedOptions,
) -> Stack {
    let seed = repo().join("crates/kube-sim/seed/demo.yaml");
    start_full(
        tag,
        &seed,
        backend_env,
        &[],
        ai_env,
        Extras {
            feed: Some(feed),
            ..Extras::default()
        },
    )
    .await
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn start(
    tag: &str,
    seed: &Path,
    backend_env: &[(&str, &str)],
    executor_env: &[(&str, &str)],
) -> Stack {
    start_full(tag, seed, backend_env, executor_env, &[], Extras::default()).await
}

/// [`start_stack_with_seed`] with the ai-engine's Kubernetes watcher on, and extra ai-engine
/// settings.
pub async fn start_stack_with_watcher(
    tag: &str,
    seed: &Path,
    backend_env: &[(&str, &str)],
    ai_env: &[(&str, &str)],
) -> Stack {
    start_full(
        tag,
        seed,
        backend_env,
        &[],
        ai_env,
        Extras {
            watcher: true,
            ..Extras::default()
        },
    )
    .await
}

/// [`start_stack`] with kube-sim serving HTTPS, as the demo runs it (kubectl needs it); also
/// the executor's database URL, for tests that tamper with its audit trail.
pub async fn start_stack_tls(tag: &str, backend_env: &[(&str, &str)]) -> (Stack, String) {
    let seed = repo().join("crates/kube-sim/seed/demo.yaml");
    start_with_databases(
        tag,
        &seed,
        backend_env,
        &[],
        &[],
        Extras {
            kube_tls: true,
            ..Extras::default()
        },
    )
    .await
}

/// The optional parts of a stack.
#[derive(Default)]
struct Extras {
    feed: Option<aegis_dev::stack::FeedOptions>,
    watcher: bool,
    kube_tls: bool,
}

async fn start_full(
    tag: &str,
    seed: &Path,
    backend_env: &[(&str, &str)],
    executor_env: &[(&str, &str)],
    ai_env: &[(&str, &str)],
    extras: Extras,
) -> Stack {
    start_with_databases(tag, seed, backend_env, executor_env, ai_env, extras)
        .await
        .0
}

/// [`start_full`], and the executor's database URL.
async fn start_with_databases(
    tag: &str,
    seed: &Path,
    backend_env: &[(&str, &str)],
    executor_env: &[(&str, &str)],
    ai_env: &[(&str, &str)],
    extras: Extras,
) -> (Stack, String) {
    let Extras {
        feed,
        watcher,
        kube_tls,
    } = extras;
    let backend_db = aegis_test_support::db::fresh_database(&format!("{tag}_backend")).await;
    let ai_db = aegis_test_support::db::fresh_database(&format!("{tag}_ai")).await;
    let executor_db = aegis_test_support::db::fresh_database(&format!("{tag}_executor")).await;
    let mut extra_env = BTreeMap::new();
    let db = |url: &str| vec![("DATABASE_URL".to_owned(), url.to_owned())];
    let mut backend = db(&backend_db.url);
    backend.push((
        "REDIS_KEY_PREFIX".into(),
        aegis_test_support::db::redis_prefix(),
    ));
    backend.extend(owned(backend_env));
    extra_env.insert("backend".to_owned(), backend);
    let mut ai = db(&ai_db.url);
    ai.extend(owned(ai_env));
    extra_env.insert("ai-engine".to_owned(), ai);
    let mut executor = db(&executor_db.url);
    executor.extend(owned(executor_env));
    extra_env.insert("executor".to_owned(), executor);
    let server = aegis_test_support::db::server_url();
    let postgres_base = server
        .rsplit_once('/')
        .map_or(server.clone(), |(base, _)| base.to_owned());
    let opts = StackOptions {
        bin_dir: bin_dir(),
        run_dir: std::env::temp_dir().join(unique(&format!("aegis-{tag}"))),
        seed: seed.to_path_buf(),
        postgres_base,
        redis_url: aegis_test_support::db::redis_url(),
        preferred_ports: false,
        extra_env,
        feed,
        watcher,
        kube_tls,
    };
    match Stack::start(opts).await {
        Ok(stack) => (stack, executor_db.url),
        Err(e) => panic!("cannot start the stack: {e:#}"),
    }
}
