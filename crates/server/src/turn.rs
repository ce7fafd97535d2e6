//! The end of a thread's turn: replies wait for it, as Redis writes every reply at the end of
//! its event-loop turn (`beforeSleep`) rather than after each command.
//!
//! Why: a client that serves many connections from one thread (redis-benchmark, any
//! event-loop client) sleeps between our replies when each goes out as soon as it is ready,
//! and every reply then wakes it, which costs the sending thread a few microseconds in the
//! kernel (15% of a `SADD -P 16` profile). Sent together, the first reply wakes it and the
//! rest find it running. Unlike `tokio::task::yield_now`, which resumes a task only after the
//! I/O driver has been polled and so after the connections that became ready meanwhile, the
//! turn ends when this thread is about to wait for I/O (tokio's `on_thread_park` hook),
//! before it looks for new input, so replies are not held behind the next round of requests.
//! (Which replies wait: see `connection::write_out`.)
//!
//! A thread kept busy never parks: a subscriber woken from other threads for every message,
//! a flood of commands whose replies are off. Held replies would then wait as long as that
//! load lasts, so every write that does not wait, and every batch with nothing to write, ends
//! the turn too ([`end`]): what keeps a thread busy is connections, and a connection either
//! waits here (and so stops keeping it busy) or ends the turn.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// Whether this thread runs a runtime from [`runtime`] (elsewhere nothing ends a turn).
    static HOOKED: Cell<bool> = const { Cell::new(false) };
    /// The tasks waiting for the end of the turn.
    static WAITING: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// A single-threaded runtime, to be driven from the calling thread, whose turns end as
/// described above.
///
/// The thread must drive no other executor afterwards: tasks waiting for the end of a turn
/// on it would wait for ever.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().on_thread_park(end).build()?;
    HOOKED.with(|h| h.set(true));
    Ok(rt)
}

/// Ends the turn: wakes the tasks waiting for it (they run after the current task yields).
pub fn end() {
    let mut wakers = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for w in wakers.drain(..) {
        w.wake();
    }
    // The emptied vector goes back for its capacity, unless a wake registered a new waiter.
    WAITING.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_empty() {
            *w = wakers;
        }
    });
}

/// Completes at the end of this thread's turn (at once on a thread not run by [`runtime`]).
pub fn end_of_turn() -> EndOfTurn {
    EndOfTurn { waiting: false }
}

/// See [`end_of_turn`].
pub struct EndOfTurn {
    waiting: bool,
}

impl Future for EndOfTurn {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Polled again when `end` woke it (a spurious wake-up only sends a reply early).
        if self.waiting || !HOOKED.with(Cell::get) {
            return Poll::Ready(());
        }
        self.waiting = true;
        WAITING.with(|w| w.borrow_mut().push(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Three "connections" ready in the same turn: each runs its commands, then waits for the
    /// end of the turn to reply. Every command runs before any reply.
    fn order_on(rt: tokio::runtime::Runtime) -> Vec<String> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for i in 0..3 {
                let l = l.clone();
                tasks.push(tokio::spawn(async move {
                    l.lock().unwrap().push(format!("ran {i}"));
                    end_of_turn().await;
                    l.lock().unwrap().push(format!("replied {i}"));
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let v = log.lock().unwrap().clone();
        v
    }

    #[test]
    fn replies_wait_until_every_ready_task_has_run() {
        // On a thread of its own: `runtime` marks the thread it is built on.
        let got = std::thread::spawn(|| order_on(runtime().unwrap())).join().unwrap();
        assert_eq!(got, ["ran 0", "ran 1", "ran 2", "replied 0", "replied 1", "replied 2"]);
    }

    /// A thread that never parks: one task is woken again and again (as a subscriber fed
    /// from other threads is) and writes each time, which ends the turn. The waiting reply
    /// goes out at the next turn's end, not after the busy task is done.
    #[test]
    fn a_busy_thread_still_ends_its_turns() {
        let got = std::thread::spawn(|| {
            let rt = runtime().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let l = log.clone();
            rt.block_on(async move {
                let busy = {
                    let l = l.clone();
                    tokio::spawn(async move {
                        for i in 0..100 {
                            l.lock().unwrap().push(format!("busy {i}"));
                            end();
                            tokio::task::yield_now().await;
                        }
                    })
                };
                let waiting = {
                    let l = l.clone();
                    tokio::spawn(async move {
                        end_of_turn().await;
                        l.lock().unwrap().push("replied".to_string());
                    })
                };
                busy.await.unwrap();
                waiting.await.unwrap();
            });
            let v = log.lock().unwrap().clone();
            v
        })
        .join()
        .unwrap();
        let at = got.iter().position(|e| e == "replied").unwrap();
        assert!(at < 5, "the reply waited for the busy task: {got:?}");
    }

    #[test]
    fn without_the_hook_a_reply_goes_at_once() {
        let got = std::thread::spawn(|| {
            order_on(tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(got, ["ran 0", "replied 0", "ran 1", "replied 1", "ran 2", "replied 2"]);
    }
}
