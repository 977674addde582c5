//! Wakes long-polling receivers as soon as a message may have become available: every commit that
//! adds or releases a message calls `notify`; a waiter sleeps until then or its deadline. At
//! shutdown `close` ends every wait at once, so long polls answer (empty) instead of holding the
//! drain up.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A generation counter with a condition variable.
#[derive(Default)]
pub struct QueueSignal {
    generation: Mutex<u64>,
    changed: Condvar,
    closed: std::sync::atomic::AtomicBool,
}

impl QueueSignal {
    /// The current generation; read it before looking for messages.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every waiter that messages may be available.
    pub fn notify(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// Tells every waiter, once what this thread has written so far is committed
    /// (`store::after_commit`): a waiter woken before the commit would find nothing and sleep on.
    pub fn notify_after_commit(self: &Arc<Self>) {
        let signal = self.clone();
        crate::store::after_commit(move || signal.notify());
    }

    /// Sleeps until the generation moves past `seen`, `timeout` passes, or the signal closes.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let guard = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |g| *g == seen && !self.is_closed())
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Ends every wait, now and later: the server is shutting down.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify();
    }

    /// Whether the server is shutting down.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_wakes_a_waiter_before_its_deadline() {
        let signal = Arc::new(QueueSignal::default());
        let seen = signal.generation();
        let s2 = signal.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s2.notify();
        });
        // Only the notify can end this wait: its timeout is an hour.
        signal.wait(seen, Duration::from_secs(3600));
        assert_eq!(signal.generation(), seen + 1);
        t.join().unwrap();
        // A stale generation returns at once.
        signal.wait(seen, Duration::from_secs(3600));
    }

    #[test]
    fn closing_ends_every_wait_now_and_later() {
        let signal = Arc::new(QueueSignal::default());
        let s2 = signal.clone();
        let waiter = std::thread::spawn(move || {
            let seen = s2.generation();
            s2.wait(seen, Duration::from_secs(3600));
        });
        std::thread::sleep(Duration::from_millis(50));
        signal.close();
        waiter.join().unwrap();
        // A wait begun after the close returns at once, whatever generation it saw.
        let seen = signal.generation();
        signal.wait(seen, Duration::from_secs(3600));
        assert!(signal.is_closed());
    }
}
