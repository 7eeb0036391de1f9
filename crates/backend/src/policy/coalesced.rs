//! Coalesced fresh reads: many callers share one remote read, and each caller only takes the
//! result of a read that was *sent after the caller asked*.
//!
//! That is what keeps a shared read as fresh as a read of one's own: any write that completed
//! before a caller asked is seen by the read that answers it. A caller that arrives while a
//! read is in flight waits for the next one, which starts as soon as the current one ends and
//! serves everybody who arrived meanwhile. Under load, one round trip serves a whole batch of
//! callers; alone, a caller pays one round trip, as without coalescing.
//!
//! The reads run on a task of their own, so a caller that goes away (a dropped request future)
//! never strands the others. If that task ends without answering (a panic), every waiter gets
//! the fallback value.

use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;

/// One coalesced read source; see the module documentation.
#[derive(Debug)]
pub struct CoalescedReads<T> {
    state: Mutex<State>,
    done: watch::Sender<Answer<T>>,
    fallback: T,
}

#[derive(Debug, Default)]
struct State {
    /// Rounds started so far (the number of the latest one).
    started: u64,
    /// A read task is running.
    running: bool,
    /// Someone arrived after the running round was sent: start another when it ends.
    wanted: bool,
}

#[derive(Debug, Clone)]
struct Answer<T> {
    round: u64,
    value: T,
}

impl<T: Clone + Send + Sync + 'static> CoalescedReads<T> {
    /// A source with no read yet; `fallback` answers the waiters of a read task that failed.
    pub fn new(fallback: T) -> Arc<Self> {
        let (done, _) = watch::channel(Answer {
            round: 0,
            value: fallback.clone(),
        });
        Arc::new(Self {
            state: Mutex::new(State::default()),
            done,
            fallback,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of a read sent after this call began. `read` performs one read; it is called
    /// on a spawned task, once per round, and should bound its own time (a timeout).
    pub async fn get<F, Fut>(self: &Arc<Self>, read: F) -> T
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        // Subscribed before the round is chosen, so its answer cannot be missed.
        let mut rx = self.done.subscribe();
        let needed = {
            let mut s = self.lock();
            if s.running {
                s.wanted = true;
                s.started + 1
            } else {
                s.running = true;
                s.started += 1;
                let round = s.started;
                tokio::spawn(Arc::clone(self).run(round, read));
                round
            }
        };
        match rx.wait_for(|a| a.round >= needed).await {
            Ok(answer) => answer.value.clone(),
            // The sender lives in `self`, which this call holds: unreachable, but harmless.
            Err(_) => self.fallback.clone(),
        }
    }

    async fn run<F, Fut>(self: Arc<Self>, mut round: u64, read: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut guard = Unanswered(Some(&self));
        loop {
            let value = read().await;
            self.done.send_replace(Answer { round, value });
            let mut s = self.lock();
            if s.wanted {
                s.wanted = false;
                s.started += 1;
                round = s.started;
            } else {
                s.running = false;
                guard.0 = None;
                return;
            }
        }
    }
}

/// Answers every waiter with the fallback if the read task ends without finishing its rounds.
struct Unanswered<'a, T: Clone>(Option<&'a CoalescedReads<T>>);

impl<T: Clone> Drop for Unanswered<'_, T> {
    fn drop(&mut self) {
        let Some(reads) = self.0 else { return };
        let mut s = reads.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.running = false;
        s.wanted = false;
        let round = s.started;
        drop(s);
        reads.done.send_replace(Answer {
            round,
            value: reads.fallback.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        sync::atomic::{AtomicU64, Ordering},
        time::Duration,
    };

    use super::*;

    /// A "remote" counter whose reads take a while, counting how many reads were sent.
    struct Remote {
        value: AtomicU64,
        reads: AtomicU64,
    }

    fn remote(value: u64) -> Arc<Remote> {
        Arc::new(Remote {
            value: AtomicU64::new(value),
            reads: AtomicU64::new(0),
        })
    }

    fn reader(
        remote: &Arc<Remote>,
    ) -> impl Fn() -> Pin<Box<dyn Future<Output = Option<u64>> + Send>> + Send + Sync + 'static
    {
        let remote = Arc::clone(remote);
        move || {
            let remote = Arc::clone(&remote);
            Box::pin(async move {
                remote.reads.fetch_add(1, Ordering::SeqCst);
                // The value is taken when the read is sent, then the answer travels.
                let v = remote.value.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some(v)
            })
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_reads_and_a_write_before_a_call_is_always_seen() {
        let remote = remote(1);
        let reads = CoalescedReads::new(None);
        // A read is in flight with value 1.
        let first = tokio::spawn({
            let (reads, read) = (Arc::clone(&reads), reader(&remote));
            async move { reads.get(read).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        // The write completes, then 50 callers ask while that read is still in flight.
        remote.value.store(2, Ordering::SeqCst);
        let later: Vec<_> = (0..50)
            .map(|_| {
                let (reads, read) = (Arc::clone(&reads), reader(&remote));
                tokio::spawn(async move { reads.get(read).await })
            })
            .collect();
        assert_eq!(first.await.unwrap(), Some(1));
        for h in later {
            assert_eq!(
                h.await.unwrap(),
                Some(2),
                "a caller got a read sent before it asked"
            );
        }
        // One read for the first caller, one shared by the fifty.
        assert_eq!(remote.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lone_caller_pays_one_read_and_an_idle_source_starts_again() {
        let remote = remote(7);
        let reads = CoalescedReads::new(None);
        assert_eq!(reads.get(reader(&remote)).await, Some(7));
        remote.value.store(8, Ordering::SeqCst);
        assert_eq!(reads.get(reader(&remote)).await, Some(8));
        assert_eq!(remote.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_strand_the_others() {
        let remote = remote(3);
        let reads = CoalescedReads::new(None);
        // The caller that started the read goes away at once.
        let starter = tokio::spawn({
            let (reads, read) = (Arc::clone(&reads), reader(&remote));
            async move { reads.get(read).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        starter.abort();
        let other = tokio::time::timeout(Duration::from_secs(5), reads.get(reader(&remote)))
            .await
            .expect("the second caller was stranded");
        assert_eq!(other, Some(3));
    }

    #[tokio::test]
    async fn a_read_task_that_panics_answers_its_waiters_with_the_fallback() {
        let reads = CoalescedReads::new(Some(0u64));
        let panicking = || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if std::hint::black_box(true) {
                panic!("read failed");
            }
            Some(1u64)
        };
        let got = tokio::time::timeout(Duration::from_secs(5), reads.get(panicking))
            .await
            .expect("a waiter hung after the read task panicked");
        assert_eq!(got, Some(0));
        // The source recovers: the next caller starts a new read.
        assert_eq!(reads.get(|| async { Some(5) }).await, Some(5));
    }
}
