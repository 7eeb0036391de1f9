//! The services' global allocator, mimalloc, and its housekeeping.
//!
//! mimalloc is fast for the many short-lived allocations of JSON handling and gives memory back
//! to the system, but it purges freed memory lazily, from inside later allocator calls. A
//! service that goes idle after a burst (the 19 MiB argon2 buffers of a login flood, a forest
//! retrain) would keep that memory resident until its next burst; the housekeeping task lets
//! mimalloc purge what has been free for longer than its purge delay, on a timer.

use std::time::Duration;

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
