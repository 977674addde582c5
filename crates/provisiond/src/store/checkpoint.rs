//! SQLite's WAL checkpoints on a thread of their own, so that the writer thread seldom copies
//! pages into the database file (or waits for that file's fsync) between two group commits.
//!
//! After each commit the writer tells the `Checkpointer`, whose thread gathers the commits of a
//! short interval and then runs a `PASSIVE` checkpoint on its own connection: it copies what no
//! reader still needs and never blocks the writer or a reader. Under a steady stream of commits
//! such a checkpoint never catches up with the end of the log, and only a checkpoint that has
//! copied the whole log lets the next transaction start the log over; so the writer keeps
//! SQLite's automatic checkpoint (at 1,000 pages of log), which now finds all but the last
//! interval's pages copied already, and keeps the log that short.

use rusqlite::Connection;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long commits gather before a checkpoint copies them: long enough that a page written by
/// many commits is copied once, short enough that the log stays a few megabytes under load.
const INTERVAL: Duration = Duration::from_millis(50);

/// The checkpoint thread of one store handle; stopped (after a last checkpoint) when dropped.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Commits since the last checkpoint began.
    commits: u64,
    closing: bool,
}

impl Checkpointer {
    /// Starts the thread, which checkpoints through `conn`.
    pub fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(&conn, &for_thread))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// A group commit is on disk: its pages are now in the log, to be copied.
    pub fn committed(&self) {
        let mut state = self.shared.lock();
        state.commits += 1;
        // Only the first commit of an interval wakes the thread; the rest find it gathering.
        if state.commits == 1 {
            self.shared.changed.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        let mut state = shared.lock();
        while state.commits == 0 && !state.closing {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        if state.closing {
            return;
        }
        // Gather the interval's commits (a close cuts it short).
        let (gathered, _) = shared
            .changed
            .wait_timeout_while(state, INTERVAL, |s| !s.closing)
            .unwrap_or_else(|p| p.into_inner());
        state = gathered;
        state.commits = 0;
        drop(state);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "a WAL checkpoint failed; the next one retries");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
