//! A wake-up for the one task that waits on it: a connection woken because it was killed or
//! because messages reached its mailbox.
//!
//! Why not `tokio::sync::Notify`: a connection waits for its socket and its signals together
//! on every turn of its loop, and each `Notified` future registers in, and on drop leaves, a
//! mutex-guarded waiter list. With one request per turn (`-P 1`) that was about a tenth of a
//! request's instructions. A connection is the only task that ever waits on its signals, so
//! a flag and an [`AtomicWaker`] do: no lock, and nothing to undo when the wait is dropped.

use futures_util::task::AtomicWaker;
use std::cell::Cell;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

thread_local! {
    /// Signals given on this thread: a connection compares it around its commands to learn
    /// whether they woke other connections (see `server::turn`).
    static GIVEN: Cell<u64> = const { Cell::new(0) };
}

/// How many signals this thread has given.
pub fn given_here() -> u64 {
    GIVEN.with(Cell::get)
}

/// A flag that wakes its waiter when set (a permit, like `Notify::notify_one`'s: a signal
/// given while no one waits is taken by the next wait).
#[derive(Default)]
pub struct Signal {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// A signal not yet given.
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Gives the signal: the waiting task (or the next wait) wakes.
    pub fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
        GIVEN.with(|g| g.set(g.get().wrapping_add(1)));
    }

    /// Ready (taking the signal) if it was given; otherwise the task is woken when it is.
    /// Only one task may wait on a signal.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Given between the first check and the registration: `wake` found no waker.
        if self.take() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits for the signal and takes it.
    pub async fn notified(&self) {
        poll_fn(|cx| self.poll_take(cx)).await
    }

    fn take(&self) -> bool {
        // A plain load first: the common case (not given) then writes nothing.
        self.set.load(Ordering::Acquire) && self.set.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_given_before_the_wait_is_taken_by_it_once() {
        let s = Signal::new();
        s.notify();
        s.notified().await;
        let second = tokio::time::timeout(Duration::from_millis(50), s.notified()).await;
        assert!(second.is_err(), "the permit was taken by the first wait");
    }

    #[tokio::test]
    async fn a_waiting_task_wakes_when_another_thread_gives_the_signal() {
        let s = Arc::new(Signal::new());
        let s2 = s.clone();
        let giver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            s2.notify();
        });
        tokio::time::timeout(Duration::from_secs(5), s.notified()).await.expect("woken");
        giver.join().unwrap();
    }

    #[tokio::test]
    async fn a_wait_dropped_unfinished_leaves_the_signal_working() {
        let s = Signal::new();
        assert!(tokio::time::timeout(Duration::from_millis(10), s.notified()).await.is_err());
        s.notify();
        tokio::time::timeout(Duration::from_secs(5), s.notified()).await.expect("woken");
    }
}
