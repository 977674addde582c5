//! Wake-ups of long pollers: a generation counter that a store moves on when a commit asked
//! for it ([`super::Tx::wake_waiters`]), in this process or, through the database, in another.
//! A waiter reads the generation, looks for work, and sleeps until the generation moves, its
//! deadline passes, or the bounded fallback interval ends (a notification lost across a
//! reconnect, or a writer in another process that cannot notify, costs at most that long).
//! At shutdown `close` ends every wait at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A generation counter with a condition variable.
pub struct Wakeups {
    generation: Mutex<u64>,
    changed: Condvar,
    closed: AtomicBool,
    fallback: Duration,
}

impl Wakeups {
    /// Wake-ups whose waits last at most `fallback` before the waiter looks again.
    pub fn new(fallback: Duration) -> Wakeups {
        Wakeups {
            generation: Mutex::new(0),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
            fallback,
        }
    }

    /// The current generation; read it before looking for work.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the generation on and wakes every waiter: called by the store after a commit
    /// that asked for it, or when it may have missed one.
    pub fn notify(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// Sleeps until the generation moves past `seen`, `timeout` (at most the fallback
    /// interval) passes, or the wake-ups close.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let guard = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout.min(self.fallback), |g| {
                *g == seen && !self.is_closed()
            })
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Ends every wait, now and later: the server is shutting down.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify();
    }

    /// Whether the server is shutting down.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_notify_wakes_a_waiter_before_its_deadline() {
        let wakeups = Arc::new(Wakeups::new(Duration::from_secs(3600)));
        let seen = wakeups.generation();
        let w2 = wakeups.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w2.notify();
        });
        // Only the notify can end this wait: its timeout and fallback are an hour.
        wakeups.wait(seen, Duration::from_secs(3600));
        assert_eq!(wakeups.generation(), seen + 1);
        t.join().unwrap();
        // A stale generation returns at once.
        wakeups.wait(seen, Duration::from_secs(3600));
    }

    #[test]
    fn a_wait_ends_at_the_fallback_interval() {
        let wakeups = Wakeups::new(Duration::from_millis(20));
        let started = std::time::Instant::now();
        wakeups.wait(wakeups.generation(), Duration::from_secs(3600));
        assert!(started.elapsed() < Duration::from_secs(3600));
        assert_eq!(wakeups.generation(), 0, "nothing was notified");
    }

    #[test]
    fn closing_ends_every_wait_now_and_later() {
        let wakeups = Arc::new(Wakeups::new(Duration::from_secs(3600)));
        let w2 = wakeups.clone();
        let waiter = std::thread::spawn(move || {
            let seen = w2.generation();
            w2.wait(seen, Duration::from_secs(3600));
        });
        std::thread::sleep(Duration::from_millis(50));
        wakeups.close();
        waiter.join().unwrap();
        // A wait begun after the close returns at once, whatever generation it saw.
        let seen = wakeups.generation();
        wakeups.wait(seen, Duration::from_secs(3600));
        assert!(wakeups.is_closed());
    }
}
