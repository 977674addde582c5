//! Threads of a store's own that run requests' work (`Store::run_on_store_thread`): for a store
//! whose transactions are network round trips, a request waits for the database on one of a
//! few threads that do nothing else, started with the first piece of work, instead of on a
//! thread of tokio's blocking pool that would then wait again for a free connection.
//!
//! The threads take work in arrival order from one queue. Under load a thread that finishes
//! one piece takes the next without sleeping, so a request costs one hand-over there and one
//! back to the runtime; a piece that panics is logged and its thread carries on.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use super::StoreThreadWork as Work;

/// A fixed set of threads taking work from one queue; they end when this is dropped.
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

struct Shared {
    queue: Mutex<Queue>,
    arrived: Condvar,
}

struct Queue {
    work: VecDeque<Work>,
    closing: bool,
}

impl Workers {
    /// Starts `count` threads (at least one) named `<name>-<n>`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Workers> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                work: VecDeque::new(),
                closing: false,
            }),
            arrived: Condvar::new(),
        });
        let mut workers = Workers {
            shared,
            threads: Vec::new(),
        };
        for n in 0..count.max(1) {
            let shared = workers.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || shared.serve())?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Queues `work` for the next free thread.
    pub fn submit(&self, work: Work) {
        let mut queue = self.shared.lock();
        queue.work.push_back(work);
        drop(queue);
        self.shared.arrived.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One thread's life: take work until the queue closes, then finish what is queued.
    fn serve(&self) {
        loop {
            let mut queue = self.lock();
            let work = loop {
                if let Some(work) = queue.work.pop_front() {
                    break work;
                }
                if queue.closing {
                    return;
                }
                queue = self.arrived.wait(queue).unwrap_or_else(|p| p.into_inner());
            };
            drop(queue);
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
                tracing::error!("work on a store thread panicked");
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.arrived.notify_all();
        for thread in self.threads.drain(..) {
            // The last handle may be dropped by work running on one of these threads.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn every_piece_runs_once_and_a_panic_leaves_its_thread_working() {
        let workers = Workers::start(3, "test-worker").unwrap();
        let (done, finished) = mpsc::channel();
        workers.submit(Box::new(|| panic!("a piece of work that panics")));
        for i in 0..100 {
            let done = done.clone();
            workers.submit(Box::new(move || done.send(i).unwrap()));
        }
        let mut seen: Vec<i32> = (0..100).map(|_| finished.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert!(finished.try_recv().is_err(), "nothing ran twice");
    }

    #[test]
    fn dropping_them_finishes_what_is_queued() {
        let (done, finished) = mpsc::channel();
        let workers = Workers::start(1, "test-worker").unwrap();
        for i in 0..10 {
            let done = done.clone();
            workers.submit(Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                done.send(i).unwrap()
            }));
        }
        drop(workers);
        drop(done);
        assert_eq!(finished.iter().count(), 10);
    }
}
