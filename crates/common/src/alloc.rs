//! The services' global allocator, mimalloc, and its housekeeping.
//!
//! mimalloc is fast for the many short-lived allocations of JSON handling and gives memory back
//! to the system, but it purges freed memory lazily, from inside later allocator calls. A
//! service that goes idle after a burst (the 19 MiB argon2 buffers of a login flood, a forest
//! retrain) would keep that memory resident until its next burst; the housekeeping task lets
//! mimalloc purge what has been free for longer than its purge delay, on a timer.
//!
//! Transparent huge pages are kept away from the heap: mimalloc is built without its
//! `madvise(MADV_HUGEPAGE)` on arenas (the `no_thp` feature), and [`run`] turns them off for the
//! process, for kernels that apply them to every mapping (`always` mode). With huge pages, the
//! first byte touched in a 2 MiB region makes all of it resident: idle, the backend held 44 MiB
//! instead of 27, the ai-engine 23 instead of 13, the executor 26 instead of 15.

use std::{process::ExitCode, time::Duration};

pub use mimalloc::MiMalloc;

/// How often [`spawn_housekeeping`] lets mimalloc purge.
pub const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(5);

/// Purges, on a timer, memory that has been free for longer than mimalloc's purge delay (call
/// once from a binary whose global allocator is [`MiMalloc`]; needs a Tokio runtime).
pub fn spawn_housekeeping() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(HOUSEKEEPING_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            collect();
        }
    });
}

/// A service binary's `main`: transparent huge pages off first, before the Tokio runtime and
/// its threads allocate anything, then `entry` on a multi-threaded runtime with the
/// housekeeping task running.
pub fn run<F, Fut>(entry: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ExitCode>,
{
    disable_transparent_huge_pages();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async {
            spawn_housekeeping();
            entry().await
        }),
        Err(e) => {
            eprintln!("failed to start the Tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`, inherited
/// by its threads and children), unless `MIMALLOC_ALLOW_THP` is set: then mimalloc's own option
/// decides. [`run`] calls it first thing. Returns whether they are off now because of this call;
/// a kernel that refuses leaves them as they were (the service runs, with a larger RSS).
fn disable_transparent_huge_pages() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    set_thp_disabled()
}

#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "FFI call to prctl with integer arguments only; it touches no memory of ours"
)]
fn set_thp_disabled() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes four integers and sets a flag on the process's memory
    // descriptor; no pointer is passed.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn set_thp_disabled() -> bool {
    false
}

/// One non-forcing collection: this thread's heap, and every arena range whose purge delay has
/// passed.
#[expect(
    unsafe_code,
    reason = "FFI call into mimalloc; mi_collect takes no pointers and is safe from any thread"
)]
fn collect() {
    // SAFETY: `mi_collect` only walks mimalloc's own structures; it is documented as callable
    // from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[expect(
        unsafe_code,
        reason = "FFI read of the process's THP flag, integers only"
    )]
    fn thp_disabled() -> bool {
        // SAFETY: PR_GET_THP_DISABLE takes no pointer and returns the flag.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
    }

    #[test]
    fn transparent_huge_pages_are_off_for_the_process_after_the_call() {
        // nextest runs each test in its own process, so the flag starts as the runner left it.
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            assert!(!super::disable_transparent_huge_pages());
            return;
        }
        assert!(super::disable_transparent_huge_pages());
        assert!(thp_disabled());
    }
}
