//! The behaviour every `Store` must have, as one suite that each implementation's tests run:
//! `run_all` on one handle, `run_concurrent` with many threads on two handles of one database
//! (two replicas, as far as the store can tell).

use super::{transact, Kind, Mode, QueuedMessage, Store, StoreError, StoredObject};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Threads of each concurrency check.
const THREADS: usize = 8;

/// Runs every concurrency check against `a` and `b`, two handles of one empty database.
pub fn run_concurrent(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    for read in [
        Read::ForUpdate,
        Read::Plain,
        Read::Listed,
        Read::LockedAhead,
    ] {
        no_update_is_lost(&a, &b, read);
    }
    no_creation_is_lost(&a, &b);
    each_document_is_taken_once(&a, &b);
    each_message_is_claimed_once(&a, &b);
    one_token_one_effect(&a, &b);
    one_creator_per_object_key(&a, &b);
    a_commit_wakes_waiters_of_another_handle(&a, &b);
}

/// The handle thread `t` uses: half on each.
fn handle<'s>(a: &'s Arc<dyn Store>, b: &'s Arc<dyn Store>, t: usize) -> Arc<dyn Store> {
    if t.is_multiple_of(2) {
        a.clone()
    } else {
        b.clone()
    }
}

/// How a read-modify-write reads what it then writes: every way must keep every update.
#[derive(Clone, Copy, Debug)]
enum Read {
    ForUpdate,
    Plain,
    Listed,
    /// `lock_ahead`, another statement, then `get_for_update`.
    LockedAhead,
}

fn counter(tx: &mut dyn super::Tx, scope: &str, id: &str, read: Read) -> Result<u64, StoreError> {
    let body = match read {
        Read::ForUpdate => tx.get_for_update(Kind::Test, scope, id)?,
        Read::LockedAhead => {
            tx.lock_ahead(Kind::Test, scope, id)?;
            tx.get(Kind::Test, scope, "elsewhere")?;
            tx.get_for_update(Kind::Test, scope, id)?
        }
        Read::Plain => tx.get(Kind::Test, scope, id)?,
        Read::Listed => tx
            .list(Kind::Test, scope, "", None, 10)?
            .into_iter()
            .find(|row| row.id == id)
            .map(|row| row.body),
    };
    Ok(body.map_or(0, |b| String::from_utf8_lossy(&b).parse().unwrap_or(0)))
}

fn no_update_is_lost(a: &Arc<dyn Store>, b: &Arc<dyn Store>, read: Read) {
    const EACH: u64 = 40;
    let scope = format!("race-{read:?}");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, scope) = (handle(a, b, t), scope.clone());
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    w(store.as_ref(), |tx| {
                        let n = counter(tx, &scope, "counter", read)?;
                        tx.put(
                            Kind::Test,
                            &scope,
                            "counter",
                            "",
                            (n + 1).to_string().as_bytes(),
                        )
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a counting thread");
    }
    let n = r(a.as_ref(), |tx| counter(tx, &scope, "counter", Read::Plain));
    assert_eq!(
        n,
        THREADS as u64 * EACH,
        "every increment is kept ({read:?})"
    );
}

/// Racers that each find a counter absent (by every way of reading) and create it, released
/// together round after round: one creation stands, the others see it and count on.
fn no_creation_is_lost(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    const ROUNDS: usize = 12;
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (handle(a, b, t), barrier.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let read = [Read::ForUpdate, Read::Plain, Read::Listed][round % 3];
                    let scope = format!("create-{round}");
                    barrier.wait();
                    w(store.as_ref(), |tx| {
                        let n = counter(tx, &scope, "counter", read)?;
                        tx.put(
                            Kind::Test,
                            &scope,
                            "counter",
                            "",
                            (n + 1).to_string().as_bytes(),
                        )
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a creating thread");
    }
    for round in 0..ROUNDS {
        let scope = format!("create-{round}");
        let n = r(a.as_ref(), |tx| counter(tx, &scope, "counter", Read::Plain));
        assert_eq!(
            n, THREADS as u64,
            "no creation overwrote another (round {round})"
        );
    }
}

/// Racers that each read a document and delete it if it is there: each is taken by one.
fn each_document_is_taken_once(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    const TICKETS: usize = 40;
    w(a.as_ref(), |tx| {
        for i in 0..TICKETS {
            tx.put(Kind::Test, "tickets", &format!("t{i:02}"), "", b"free")?;
        }
        Ok(())
    });
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = handle(a, b, t);
            std::thread::spawn(move || {
                let mut taken = 0;
                for i in 0..TICKETS {
                    let id = format!("t{i:02}");
                    taken += w(store.as_ref(), |tx| {
                        Ok(match tx.get(Kind::Test, "tickets", &id)? {
                            Some(_) => usize::from(tx.delete(Kind::Test, "tickets", &id)?),
                            None => 0,
                        })
                    });
                }
                taken
            })
        })
        .collect();
    let taken: usize = threads
        .into_iter()
        .map(|t| t.join().expect("a taking thread"))
        .sum();
    assert_eq!(taken, TICKETS, "each document is taken exactly once");
}

fn each_message_is_claimed_once(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    const MESSAGES: usize = 240;
    w(a.as_ref(), |tx| {
        for i in 0..MESSAGES {
            tx.enqueue("claims", &message(&format!("c{i:03}"), "work", 0))?;
        }
        Ok(())
    });
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = handle(a, b, t);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let taken = w(store.as_ref(), |tx| {
                        let mut taken = tx.claim_messages("claims", "work", 10, 3)?;
                        for m in &mut taken {
                            // Invisible for the rest of this check: one visibility window.
                            m.visible_at_ms = i64::MAX / 2;
                            m.receive_count += 1;
                            tx.update_message("claims", m)?;
                        }
                        Ok(taken)
                    });
                    if taken.is_empty() {
                        return mine;
                    }
                    mine.extend(taken.into_iter().map(|m| m.message_id));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a claiming thread"))
        .collect();
    let claims = all.len();
    all.sort();
    all.dedup();
    assert_eq!(claims, all.len(), "no message was handed to two claimers");
    assert_eq!(all.len(), MESSAGES, "and every message was claimed");
}

/// Racers each creating one object key only if it is absent: one creates it, the rest see it.
fn one_creator_per_object_key(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    const KEYS: usize = 20;
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (handle(a, b, t), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..KEYS)
                    .filter(|i| {
                        let o = object(&format!("claim/{i}"), format!("by {t}").as_bytes());
                        w(store.as_ref(), |tx| tx.insert_object("claims", "b", &o))
                    })
                    .map(|i| (i, t))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut won: Vec<(usize, usize)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a creating thread"))
        .collect();
    won.sort();
    assert_eq!(
        won.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..KEYS).collect::<Vec<_>>(),
        "each key was created by exactly one racer"
    );
    for (i, t) in won {
        let kept = r(a.as_ref(), |tx| {
            tx.get_object("claims", "b", &format!("claim/{i}"))
        });
        assert_eq!(
            kept.map(|o| o.body),
            Some(format!("by {t}").into_bytes()),
            "the winner's body is the one kept"
        );
    }
}

fn one_token_one_effect(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (handle(a, b, t), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // What `idempotency::remember` does: claim the token by inserting it, and
                // only then make the effect, in the same transaction.
                w(store.as_ref(), |tx| {
                    if !tx.insert(Kind::Idempotency, "tokens", "op/token", "", b"claimed")? {
                        return Ok(false);
                    }
                    let n = counter(tx, "tokens", "effects", Read::ForUpdate)?;
                    tx.put(
                        Kind::Test,
                        "tokens",
                        "effects",
                        "",
                        (n + 1).to_string().as_bytes(),
                    )?;
                    Ok(true)
                })
            })
        })
        .collect();
    let made: usize = threads
        .into_iter()
        .map(|t| usize::from(t.join().expect("a calling thread")))
        .sum();
    assert_eq!(made, 1, "one call claimed the token");
    assert_eq!(
        r(a.as_ref(), |tx| counter(
            tx,
            "tokens",
            "effects",
            Read::ForUpdate
        )),
        1
    );
}

fn a_commit_wakes_waiters_of_another_handle(a: &Arc<dyn Store>, b: &Arc<dyn Store>) {
    let waiters = b.wakeups().clone();
    let seen = waiters.generation();
    let writer = a.clone();
    let wake = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w(writer.as_ref(), |tx| {
            tx.put(Kind::Test, "wake", "x", "", b"1")?;
            tx.wake_waiters()
        });
    });
    let started = Instant::now();
    while waiters.generation() == seen && started.elapsed() < Duration::from_secs(30) {
        waiters.wait(seen, Duration::from_secs(30));
    }
    wake.join().expect("the waking thread");
    assert_ne!(
        waiters.generation(),
        seen,
        "the commit on one handle woke the waiters of the other"
    );
}

/// Runs every check against `store`, which must be empty.
pub fn run_all(store: &dyn Store) {
    insert_get_put_delete(store);
    lists_keep_insertion_order_and_page(store);
    a_failed_transaction_leaves_nothing(store);
    scopes_and_kinds_are_separate(store);
    queue_messages_follow_their_visibility(store);
    claims_come_in_the_order_messages_became_visible(store);
    objects_are_kept_per_scope_and_bucket(store);
    counts_follow_every_change(store);
    reads_in_one_snapshot_leave_the_store_as_it_was(store);
    quiet_writes_do_what_their_answering_forms_do(store);
    a_run_of_quiet_writes_lands_whole(store);
    a_read_transaction_refuses_every_write(store);
    work_stands_only_while_what_it_requires_exists(store);
    a_lock_ahead_changes_nothing_a_transaction_sees(store);
    a_discarded_message_is_gone_with_its_transaction(store);
}

/// `discard_message` removes a message as `delete_message` does, says nothing when there was
/// none, and is undone with its transaction.
fn a_discarded_message_is_gone_with_its_transaction(store: &dyn Store) {
    let here = |id: &'static str| r(store, |tx| tx.message("discard", "q", id)).is_some();
    w(store, |tx| {
        tx.enqueue("discard", &message("d1", "q", 0))?;
        tx.enqueue("discard", &message("d2", "q", 0))
    });
    w(store, |tx| {
        tx.discard_message("discard", &["q"], "d1")?;
        tx.discard_message("discard", &["q"], "never")?;
        // The next statement sees it gone.
        assert!(tx.message("discard", "q", "d1")?.is_none());
        Ok(())
    });
    assert!(!here("d1"), "discarded");
    let rolled_back = transact::<_, StoreError>(store, Mode::Write, |tx| {
        tx.discard_message("discard", &["q"], "d2")?;
        tx.create(Kind::Test, "discard", "taken", "", b"1")?;
        tx.create(Kind::Test, "discard", "taken", "", b"2")
    });
    assert!(rolled_back.is_err());
    assert!(here("d2"), "a discard is undone with its transaction");
    // The last statement of a transaction: committed with it.
    w(store, |tx| tx.discard_message("discard", &["q"], "d2"));
    assert!(!here("d2"));
    // From whichever of the queues named holds it, and from no other queue.
    w(store, |tx| {
        tx.enqueue("discard", &message("d3", "dlq", 0))?;
        tx.enqueue("discard", &message("d4", "other", 0))
    });
    w(store, |tx| {
        tx.discard_message("discard", &["q", "dlq"], "d3")?;
        tx.discard_message("discard", &["q", "dlq"], "d4")
    });
    assert!(r(store, |tx| tx.message("discard", "dlq", "d3")).is_none());
    assert!(
        r(store, |tx| tx.message("discard", "other", "d4")).is_some(),
        "a queue not named keeps its message"
    );
}

/// `lock_ahead` is a hint: what `get_for_update` answers after it is what it would have
/// answered without, whatever the transaction wrote in between; in a read transaction, or
/// never followed by a read, it changes nothing.
fn a_lock_ahead_changes_nothing_a_transaction_sees(store: &dyn Store) {
    let get = |id: &'static str| r(store, |tx| tx.get(Kind::Test, "ahead", id));
    w(store, |tx| tx.put(Kind::Test, "ahead", "a", "", b"1"));
    let seen = w(store, |tx| {
        tx.lock_ahead(Kind::Test, "ahead", "a")?;
        tx.lock_ahead(Kind::Test, "ahead", "absent")?;
        tx.lock_ahead(Kind::Test, "ahead", "rewritten")?;
        tx.get(Kind::Test, "ahead", "other")?;
        tx.put(Kind::Test, "ahead", "rewritten", "", b"new")?;
        let a = tx.get_for_update(Kind::Test, "ahead", "a")?;
        let absent = tx.get_for_update(Kind::Test, "ahead", "absent")?;
        let rewritten = tx.get_for_update(Kind::Test, "ahead", "rewritten")?;
        tx.put(Kind::Test, "ahead", "a", "", b"2")?;
        tx.put(Kind::Test, "ahead", "absent", "", b"made")?;
        Ok((a, absent, rewritten))
    });
    assert_eq!(seen, (Some(b"1".to_vec()), None, Some(b"new".to_vec())));
    assert_eq!(
        (get("a"), get("absent"), get("rewritten")),
        (
            Some(b"2".to_vec()),
            Some(b"made".to_vec()),
            Some(b"new".to_vec())
        )
    );
    // Read ahead, then deleted before the read: the read sees it gone.
    let after_delete = w(store, |tx| {
        tx.lock_ahead(Kind::Test, "ahead", "a")?;
        tx.get(Kind::Test, "ahead", "other")?;
        tx.discard(Kind::Test, "ahead", "a")?;
        tx.get_for_update(Kind::Test, "ahead", "a")
    });
    assert_eq!(after_delete, None);
    assert_eq!(get("a"), None);
    // Never read, or in a read transaction: nothing changes.
    w(store, |tx| {
        tx.lock_ahead(Kind::Test, "ahead", "rewritten")?;
        tx.put(Kind::Test, "ahead", "b", "", b"1")
    });
    let read = r(store, |tx| {
        tx.lock_ahead(Kind::Test, "ahead", "b")?;
        tx.get(Kind::Test, "ahead", "other")?;
        tx.get_for_update(Kind::Test, "ahead", "b")
    });
    assert_eq!((read, get("b")), (Some(b"1".to_vec()), Some(b"1".to_vec())));
}

/// Work run `requiring` a document keeps what it writes only while the document exists: when
/// it is gone, no transaction of the work commits (the first read or the first write alone
/// may carry the check), a later one neither, and work that opened none is refused too.
fn work_stands_only_while_what_it_requires_exists(store: &dyn Store) {
    use super::{requiring, Required};
    let key = |id| Required {
        kind: Kind::Test,
        scope: "required",
        id,
    };
    let get = |id: &'static str| r(store, |tx| tx.get(Kind::Test, "required-work", id));
    w(store, |tx| {
        tx.put(Kind::Test, "required", "there", "", b"1")
    });

    let done = requiring(store, key("there"), || {
        w(store, |tx| {
            tx.put(Kind::Test, "required-work", "a", "", b"1")
        });
        w(store, |tx| {
            tx.create(Kind::Test, "required-work", "b", "", b"1")
        });
        7
    });
    assert_eq!(done.expect("the store answers"), Some(7));
    assert_eq!(
        (get("a"), get("b")),
        (Some(b"1".to_vec()), Some(b"1".to_vec()))
    );

    type Work<'a> = &'a dyn Fn(&dyn Store) -> Result<(), StoreError>;
    let works: [(&str, Work); 4] = [
        ("a write transaction of quiet writes alone", &|store| {
            transact(store, Mode::Write, |tx| {
                tx.create(Kind::Test, "required-work", "c", "", b"1")?;
                tx.discard(Kind::Test, "required-work", "a")
            })
        }),
        ("a write transaction that reads first", &|store| {
            transact(store, Mode::Write, |tx| {
                tx.get_for_update(Kind::Test, "required-work", "a")?;
                tx.put(Kind::Test, "required-work", "a", "", b"2")
            })
        }),
        ("a read, then a write", &|store| {
            let _ = transact(store, Mode::Read, |tx| {
                tx.get(Kind::Test, "required-work", "a")
            });
            transact(store, Mode::Write, |tx| {
                tx.put(Kind::Test, "required-work", "a", "", b"2")
            })
        }),
        ("no transaction at all", &|_| Ok(())),
    ];
    for (name, work) in works {
        let mut outcome = None;
        let done = requiring(store, key("gone"), || outcome = Some(work(store)));
        assert_eq!(done.expect("the store answers"), None, "{name}: refused");
        if let (Some(Ok(())), false) = (outcome, name.starts_with("no transaction")) {
            // A store that looks first never runs the work; one that asks with the first
            // statement runs it, and its transactions fail.
            panic!("{name}: a transaction of work requiring a missing document reported success");
        }
        assert_eq!(get("a"), Some(b"1".to_vec()), "{name}: nothing changed");
        assert_eq!(get("c"), None, "{name}: nothing created");
    }
    // Outside `requiring`, the same work commits.
    w(store, |tx| {
        tx.put(Kind::Test, "required-work", "a", "", b"3")
    });
    assert_eq!(get("a"), Some(b"3".to_vec()));
}

/// Every form of write fails in a read transaction, at once, and nothing is stored.
fn a_read_transaction_refuses_every_write(store: &dyn Store) {
    let message = QueuedMessage {
        message_id: "read-only-message".into(),
        queue: "read-only".into(),
        body: "b".into(),
        sent_ms: 0,
        visible_at_ms: 0,
        receive_count: 0,
        first_receive_ms: None,
        receipt: String::new(),
        attributes: String::new(),
    };
    // Each in a read transaction of its own, so that no earlier failure answers for it.
    type Write<'a> = &'a (dyn Fn(&mut dyn super::Tx) -> Result<(), StoreError> + Sync);
    let writes: [(&str, Write); 5] = [
        ("put", &|tx| tx.put(Kind::Test, "read-only", "a", "", b"1")),
        ("insert", &|tx| {
            tx.insert(Kind::Test, "read-only", "b", "", b"1").map(drop)
        }),
        ("create", &|tx| {
            tx.create(Kind::Test, "read-only", "c", "", b"1")
        }),
        ("add", &|tx| tx.add(Kind::Test, "read-only", "d", "", b"1")),
        ("enqueue", &|tx| tx.enqueue("read-only", &message)),
    ];
    for (name, write) in writes {
        assert!(r(store, |tx| Ok(write(tx).is_err())), "{name} is refused");
    }
    assert_eq!(r(store, |tx| tx.count(Kind::Test, "read-only", "")), 0);
    assert_eq!(
        r(store, |tx| tx.message(
            "read-only",
            "read-only",
            "read-only-message"
        )),
        None
    );
}

/// `create`, `add` and `discard` change what `insert` and `delete` would, though the caller
/// learns nothing (a networked store sends them with the next statement); what a transaction
/// wrote quietly, it reads back; a `create` of a document that exists fails the transaction,
/// and nothing of it is kept.
fn quiet_writes_do_what_their_answering_forms_do(store: &dyn Store) {
    let get = |store: &dyn Store, id: &'static str| r(store, |tx| tx.get(Kind::Test, "quiet", id));
    w(store, |tx| {
        tx.create(Kind::Test, "quiet", "made", "p", b"1")?;
        tx.add(Kind::Test, "quiet", "added", "p", b"1")?;
        tx.put(Kind::Test, "quiet", "put", "p", b"1")?;
        // Read back in the transaction that wrote them.
        assert_eq!(tx.get(Kind::Test, "quiet", "made")?, Some(b"1".to_vec()));
        assert_eq!(tx.get(Kind::Test, "quiet", "put")?, Some(b"1".to_vec()));
        tx.add(Kind::Test, "quiet", "added", "p", b"2")?;
        tx.discard(Kind::Test, "quiet", "put")?;
        tx.discard(Kind::Test, "quiet", "never")
    });
    assert_eq!(get(store, "made"), Some(b"1".to_vec()));
    assert_eq!(
        get(store, "added"),
        Some(b"1".to_vec()),
        "add keeps what is there"
    );
    assert_eq!(get(store, "put"), None, "discarded");
    assert_eq!(get(store, "never"), None);
    assert_eq!(r(store, |tx| tx.count(Kind::Test, "quiet", "p")), 2);

    let refused = transact::<_, StoreError>(store, Mode::Write, |tx| {
        tx.put(Kind::Test, "quiet", "beside", "p", b"1")?;
        tx.create(Kind::Test, "quiet", "made", "p", b"2")
    });
    assert!(refused.is_err(), "a create of a document that exists fails");
    assert_eq!(get(store, "made"), Some(b"1".to_vec()));
    assert_eq!(
        get(store, "beside"),
        None,
        "nothing of that transaction is kept"
    );

    // A quiet write as the last of a transaction is committed with it.
    w(store, |tx| {
        let body = tx.get(Kind::Test, "quiet", "made")?.unwrap_or_default();
        tx.put(
            Kind::Test,
            "quiet",
            "made",
            "p",
            &[body, b"+".to_vec()].concat(),
        )?;
        tx.discard(Kind::Test, "quiet", "added")
    });
    assert_eq!(get(store, "made"), Some(b"1+".to_vec()));
    assert_eq!(get(store, "added"), None);
}

/// A run of quiet writes to several documents, as a Notify makes (a networked store sends
/// them together, behind one another): each lands as it would alone, a second write of one
/// document in the run lands after the first, counts follow the parents, and one `create` of a
/// document that exists fails the whole transaction, the writes of the run beside it included.
fn a_run_of_quiet_writes_lands_whole(store: &dyn Store) {
    let get = |store: &dyn Store, id: &'static str| r(store, |tx| tx.get(Kind::Test, "run", id));
    let count = |store: &dyn Store, parent: &'static str| {
        r(store, |tx| tx.count(Kind::Test, "run", parent))
    };
    w(store, |tx| {
        for id in ["a", "b", "c"] {
            tx.create(Kind::Test, "run", id, "p", b"0")?;
        }
        Ok(())
    });
    w(store, |tx| {
        for id in ["a", "b"] {
            tx.get_for_update(Kind::Test, "run", id)?;
        }
        tx.put(Kind::Test, "run", "a", "p", b"1")?;
        tx.discard(Kind::Test, "run", "c")?;
        tx.create(Kind::Test, "run", "d", "p", b"1")?;
        tx.put(Kind::Test, "run", "b", "q", b"1")?;
        tx.put(Kind::Test, "run", "a", "p", b"2")?;
        tx.create(Kind::Test, "run", "e", "q", b"1")?;
        tx.discard(Kind::Test, "run", "d")?;
        tx.create(Kind::Test, "run", "d", "q", b"2")
    });
    assert_eq!(get(store, "a"), Some(b"2".to_vec()), "the later write wins");
    assert_eq!(get(store, "b"), Some(b"1".to_vec()));
    assert_eq!(get(store, "c"), None);
    assert_eq!(
        get(store, "d"),
        Some(b"2".to_vec()),
        "removed, then made again"
    );
    assert_eq!(get(store, "e"), Some(b"1".to_vec()));
    assert_eq!((count(store, "p"), count(store, "q")), (1, 3));

    let refused = transact::<_, StoreError>(store, Mode::Write, |tx| {
        tx.get_for_update(Kind::Test, "run", "a")?;
        tx.put(Kind::Test, "run", "a", "p", b"3")?;
        tx.discard(Kind::Test, "run", "b")?;
        tx.create(Kind::Test, "run", "f", "p", b"1")?;
        tx.create(Kind::Test, "run", "e", "p", b"2")?;
        tx.create(Kind::Test, "run", "g", "p", b"1")
    });
    assert!(refused.is_err(), "a create of a document that exists fails");
    assert_eq!(
        get(store, "a"),
        Some(b"2".to_vec()),
        "nothing of it is kept"
    );
    assert_eq!(get(store, "b"), Some(b"1".to_vec()));
    assert_eq!((get(store, "f"), get(store, "g")), (None, None));
    assert_eq!(get(store, "e"), Some(b"1".to_vec()));
    assert_eq!((count(store, "p"), count(store, "q")), (1, 3));
}

/// Work in one snapshot (`Store::in_one_snapshot`) reads and writes as any work does, and the
/// snapshot ends with it, panic or not: what commits afterwards is seen.
fn reads_in_one_snapshot_leave_the_store_as_it_was(store: &dyn Store) {
    let read = |store: &dyn Store| {
        transact::<_, StoreError>(store, Mode::Read, |tx| tx.get(Kind::Test, "snap", "a")).unwrap()
    };
    w(store, |tx| tx.put(Kind::Test, "snap", "a", "", b"1"));
    let seen = super::in_one_snapshot(store, || {
        let first = read(store);
        let again = read(store);
        (first, again)
    });
    assert_eq!(seen, (Some(b"1".to_vec()), Some(b"1".to_vec())));
    w(store, |tx| tx.put(Kind::Test, "snap", "a", "", b"2"));
    assert_eq!(
        read(store),
        Some(b"2".to_vec()),
        "a snapshot ends with its work"
    );
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::in_one_snapshot(store, || {
            let _ = read(store);
            panic!("work that panics in a snapshot");
        })
    }));
    assert!(panicked.is_err());
    w(store, |tx| tx.put(Kind::Test, "snap", "a", "", b"3"));
    assert_eq!(
        read(store),
        Some(b"3".to_vec()),
        "a snapshot ends when its work panics"
    );
}

fn counts_follow_every_change(store: &dyn Store) {
    let count = |store: &dyn Store, parent: &str| {
        transact::<_, StoreError>(store, Mode::Read, |tx| {
            tx.count(Kind::Test, "counts", parent)
        })
        .unwrap()
    };
    assert_eq!(count(store, "p"), 0);
    w(store, |tx| {
        for id in ["a", "b", "c"] {
            tx.put(Kind::Test, "counts", id, "p", b"{}")?;
        }
        tx.put(Kind::Test, "counts", "a", "p", b"{\"again\":1}")
    });
    assert_eq!(count(store, "p"), 3, "an update is not a new document");
    w(store, |tx| tx.put(Kind::Test, "counts", "b", "q", b"{}"));
    assert_eq!(
        (count(store, "p"), count(store, "q")),
        (2, 1),
        "a move between parents"
    );
    w(store, |tx| tx.delete(Kind::Test, "counts", "c").map(|_| ()));
    assert_eq!(count(store, "p"), 1);
    let _ = transact::<(), StoreError>(store, Mode::Write, |tx| {
        tx.put(Kind::Test, "counts", "d", "p", b"{}")?;
        Err(StoreError::new("rolled back"))
    });
    assert_eq!(count(store, "p"), 1, "a rolled-back insert is not counted");
    w(store, |tx| tx.put(Kind::Audit, "counts", "e", "p", b"{}"));
    let refused =
        transact::<_, StoreError>(store, Mode::Read, |tx| tx.count(Kind::Audit, "counts", "p"));
    assert!(
        refused.is_err(),
        "a kind the store does not count is refused, not answered with a wrong number"
    );
    w(store, |tx| {
        tx.delete(Kind::Audit, "counts", "e").map(|_| ())
    });
}

/// Checks that a schema's count triggers (`migration`, the one that last defines them) name
/// exactly the counted kinds ([`Kind::COUNTED`]): each `IN (…)` list in it is theirs, and there
/// is one per trigger and one for the clean-up of the other kinds' counts.
/// Stores 3,000 test documents, a thousand in each of three scopes, and one of another kind in
/// a fourth, and checks the store lists those three scopes as holding test documents: the
/// setting of each store's test that the listing reads about one entry per scope.
pub fn fill_three_scopes(store: &dyn Store) {
    w(store, |tx| {
        for i in 0..3_000 {
            let scope = format!("scope-{}", i % 3);
            tx.put(Kind::Test, &scope, &format!("doc-{i}"), "", b"{}")?;
        }
        tx.put(Kind::Audit, "scope-x", "other-kind", "", b"{}")
    });
    assert_eq!(
        r(store, |tx| tx.scopes(Kind::Test)),
        ["scope-0", "scope-1", "scope-2"]
    );
}

pub fn assert_triggers_count_the_counted_kinds(migration: &str, lists: usize) {
    let names: Vec<String> = Kind::COUNTED
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    let expected = format!("IN ({})", names.join(", "));
    let found: Vec<&str> = migration
        .match_indices("IN (")
        .map(|(at, _)| {
            let end = migration[at..]
                .find(')')
                .map_or(migration.len(), |e| at + e + 1);
            &migration[at..end]
        })
        .collect();
    assert_eq!(found.len(), lists, "IN lists in {migration}");
    for list in found {
        assert_eq!(
            list, expected,
            "the schema counts other kinds than Kind::COUNTED"
        );
    }
}

fn w<R: Send>(
    store: &dyn Store,
    f: impl FnMut(&mut dyn super::Tx) -> Result<R, StoreError> + Send,
) -> R {
    transact(store, Mode::Write, f).expect("write transaction")
}

fn r<R: Send>(
    store: &dyn Store,
    f: impl FnMut(&mut dyn super::Tx) -> Result<R, StoreError> + Send,
) -> R {
    transact(store, Mode::Read, f).expect("read transaction")
}

fn insert_get_put_delete(store: &dyn Store) {
    assert!(w(store, |tx| tx.insert(Kind::Test, "s1", "a", "", b"1")));
    assert!(
        !w(store, |tx| tx.insert(Kind::Test, "s1", "a", "", b"2")),
        "insert never overwrites"
    );
    assert_eq!(
        r(store, |tx| tx.get(Kind::Test, "s1", "a")),
        Some(b"1".to_vec())
    );
    w(store, |tx| tx.put(Kind::Test, "s1", "a", "", b"3"));
    assert_eq!(
        r(store, |tx| tx.get(Kind::Test, "s1", "a")),
        Some(b"3".to_vec())
    );
    assert!(store.exists(Kind::Test, "s1", "a").unwrap());
    assert!(
        !store.exists(Kind::Test, "s2", "a").unwrap(),
        "exists is per scope"
    );
    assert!(w(store, |tx| tx.delete(Kind::Test, "s1", "a")));
    assert!(!w(store, |tx| tx.delete(Kind::Test, "s1", "a")));
    assert_eq!(r(store, |tx| tx.get(Kind::Test, "s1", "a")), None);
    assert!(!store.exists(Kind::Test, "s1", "a").unwrap());
    // A transaction's own writes, as `get` sees them.
    let seen = w(store, |tx| {
        let before = tx.exists(Kind::Test, "s1", "e")?;
        tx.put(Kind::Test, "s1", "e", "", b"{}")?;
        let after = tx.exists(Kind::Test, "s1", "e")?;
        tx.delete(Kind::Test, "s1", "e")?;
        Ok((before, after, tx.exists(Kind::Test, "s1", "e")?))
    });
    assert_eq!(seen, (false, true, false));
}

fn lists_keep_insertion_order_and_page(store: &dyn Store) {
    for id in ["c", "a", "b", "d"] {
        w(store, |tx| tx.put(Kind::Test, "s2", id, "p", id.as_bytes()));
    }
    w(store, |tx| tx.put(Kind::Test, "s2", "other", "q", b"x"));
    // Replacing keeps the place in the list.
    w(store, |tx| tx.put(Kind::Test, "s2", "a", "p", b"A"));
    let first = r(store, |tx| tx.list(Kind::Test, "s2", "p", None, 2));
    let ids: Vec<_> = first.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);
    assert_eq!(first[1].body, b"A");
    let rest = r(store, |tx| {
        tx.list(Kind::Test, "s2", "p", Some(first[1].seq), 10)
    });
    let ids: Vec<_> = rest.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["b", "d"]);
    assert!(r(store, |tx| tx.list(
        Kind::Test,
        "s2",
        "p",
        Some(rest[1].seq),
        10
    ))
    .is_empty());

    // Newest first, paged from the end.
    let newest = r(store, |tx| tx.list_newest(Kind::Test, "s2", "p", None, 3));
    let ids: Vec<_> = newest.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["d", "b", "a"]);
    assert_eq!(newest[2].body, b"A");
    let older = r(store, |tx| {
        tx.list_newest(Kind::Test, "s2", "p", Some(newest[2].seq), 3)
    });
    let ids: Vec<_> = older.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["c"]);
    // In a write transaction too (the PostgreSQL store remembers what it listed).
    let in_write = w(store, |tx| tx.list_newest(Kind::Test, "s2", "q", None, 3));
    assert_eq!(in_write.len(), 1);

    // `list_all` reads past any one page, in list order.
    w(store, |tx| {
        for i in 0..1_203 {
            tx.put(
                Kind::Test,
                "s2",
                &format!("many-{i}"),
                "many",
                format!("{i}").as_bytes(),
            )?;
        }
        Ok(())
    });
    let all: Vec<u32> = r(store, |tx| super::list_all(tx, Kind::Test, "s2", "many"));
    assert_eq!(all, (0..1_203).collect::<Vec<u32>>());
}

fn a_failed_transaction_leaves_nothing(store: &dyn Store) {
    let result: Result<(), StoreError> = transact(store, Mode::Write, |tx| {
        tx.put(Kind::Test, "s3", "x", "", b"1")?;
        Err(StoreError::new("the domain said no"))
    });
    assert!(result.is_err());
    assert_eq!(r(store, |tx| tx.get(Kind::Test, "s3", "x")), None);
}

fn scopes_and_kinds_are_separate(store: &dyn Store) {
    w(store, |tx| tx.put(Kind::Test, "acct-a", "same", "", b"a"));
    w(store, |tx| tx.put(Kind::Test, "acct-b", "same", "", b"b"));
    w(store, |tx| {
        tx.put(Kind::Idempotency, "acct-a", "same", "", b"i")
    });
    assert_eq!(
        r(store, |tx| tx.get(Kind::Test, "acct-a", "same")),
        Some(b"a".to_vec())
    );
    assert_eq!(
        r(store, |tx| tx.get(Kind::Test, "acct-b", "same")),
        Some(b"b".to_vec())
    );
    assert_eq!(
        r(store, |tx| tx.get(Kind::Idempotency, "acct-a", "same")),
        Some(b"i".to_vec())
    );
    assert_eq!(
        r(store, |tx| tx.list(Kind::Test, "acct-a", "", None, 10)).len(),
        1
    );
    assert_eq!(
        r(store, |tx| tx.scopes(Kind::Idempotency)),
        ["acct-a".to_string()]
    );
    let test_scopes = r(store, |tx| tx.scopes(Kind::Test));
    assert!(
        test_scopes.contains(&"acct-a".to_string()) && test_scopes.contains(&"acct-b".to_string())
    );
}

fn message(id: &str, queue: &str, visible_at_ms: i64) -> QueuedMessage {
    QueuedMessage {
        message_id: id.to_string(),
        queue: queue.to_string(),
        body: format!("body of {id}"),
        sent_ms: 1,
        visible_at_ms,
        receive_count: 0,
        first_receive_ms: None,
        receipt: String::new(),
        attributes: if id == "m1" {
            r#"{"a":1}"#.to_string()
        } else {
            String::new()
        },
    }
}

/// A claim takes the messages that became visible first (then those sent first), so messages
/// whose visibility lapsed or that were sent with a delay take their turn by time, and a read
/// or a claim in a read transaction sees the same order.
fn claims_come_in_the_order_messages_became_visible(store: &dyn Store) {
    w(store, |tx| {
        tx.enqueue("order", &message("sent-first-visible-last", "q", 300))?;
        tx.enqueue("order", &message("visible-first", "q", 200))?;
        tx.enqueue("order", &message("visible-first-too", "q", 200))?;
        tx.enqueue("order", &message("not-yet", "q", 5_000))
    });
    let ids = |v: Vec<QueuedMessage>| v.into_iter().map(|m| m.message_id).collect::<Vec<_>>();
    let expected = [
        "visible-first",
        "visible-first-too",
        "sent-first-visible-last",
    ];
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("order", "q", 1_000, 10))),
        expected
    );
    assert_eq!(
        ids(r(store, |tx| tx.claim_messages("order", "q", 1_000, 10))),
        expected
    );
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("order", "q", 1_000, 1))),
        ["visible-first"]
    );
}

fn queue_messages_follow_their_visibility(store: &dyn Store) {
    w(store, |tx| {
        tx.enqueue("q/s", &message("m1", "work", 100))?;
        tx.enqueue("q/s", &message("m2", "work", 100))?;
        tx.enqueue("q/s", &message("m3", "work", 500))?;
        tx.enqueue("q/s", &message("other", "elsewhere", 0))?;
        tx.enqueue("q/other-scope", &message("m4", "work", 0))
    });
    let ids = |v: Vec<QueuedMessage>| v.into_iter().map(|m| m.message_id).collect::<Vec<_>>();
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("q/s", "work", 99, 10))),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("q/s", "work", 100, 10))),
        ["m1", "m2"]
    );
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("q/s", "work", 1000, 2))),
        ["m1", "m2"]
    );
    assert_eq!(r(store, |tx| tx.queue_counts("q/s", "work", 100)), (2, 1));
    assert_eq!(
        r(store, |tx| tx.next_visible_at("q/s", "work", 100)),
        Some(500)
    );
    assert_eq!(r(store, |tx| tx.next_visible_at("q/s", "work", 500)), None);

    let mut m1 = r(store, |tx| tx.message("q/s", "work", "m1")).expect("m1 exists");
    assert_eq!(
        m1.attributes, r#"{"a":1}"#,
        "attributes are kept with their message"
    );
    m1.visible_at_ms = 300;
    m1.receive_count = 1;
    m1.first_receive_ms = Some(100);
    m1.receipt = "nonce".into();
    assert!(w(store, |tx| tx.update_message("q/s", &m1)));
    assert_eq!(
        r(store, |tx| tx.message("q/s", "work", "m1")),
        Some(m1.clone())
    );
    assert_eq!(
        ids(w(store, |tx| tx.claim_messages("q/s", "work", 200, 10))),
        ["m2"]
    );
    // Moving to another queue.
    m1.queue = "work-dlq".into();
    assert!(w(store, |tx| tx.update_message("q/s", &m1)));
    assert_eq!(r(store, |tx| tx.message("q/s", "work", "m1")), None);
    assert!(r(store, |tx| tx.message("q/s", "work-dlq", "m1")).is_some());
    assert!(w(store, |tx| tx.delete_message("q/s", "work-dlq", "m1")));
    assert!(!w(store, |tx| tx.delete_message("q/s", "work-dlq", "m1")));
    // A purge empties one queue of one scope, nothing else.
    assert_eq!(w(store, |tx| tx.purge_messages("q/s", "work")), 2);
    assert_eq!(w(store, |tx| tx.purge_messages("q/s", "work")), 0);
    assert!(r(store, |tx| tx.message("q/s", "elsewhere", "other")).is_some());
    assert!(r(store, |tx| tx.message("q/other-scope", "work", "m4")).is_some());
    assert_eq!(
        r(store, |tx| tx.queue_counts("q/other-scope", "work", 0)),
        (1, 0)
    );
}

fn object(key: &str, body: &[u8]) -> StoredObject {
    StoredObject {
        key: key.to_string(),
        body: body.to_vec(),
        size: body.len() as i64,
        etag: format!("etag-{key}"),
        created_ms: 7,
    }
}

fn objects_are_kept_per_scope_and_bucket(store: &dyn Store) {
    w(store, |tx| {
        tx.put_object("o1", "b", &object("dir/b.txt", b"bb"))?;
        tx.put_object("o1", "b", &object("dir/a.txt", b"a"))?;
        tx.put_object("o1", "b", &object("top.txt", b"t"))?;
        tx.put_object("o1", "other", &object("dir/c.txt", b"c"))?;
        tx.put_object("o2", "b", &object("dir/z.txt", b"z"))
    });
    assert_eq!(
        r(store, |tx| tx.get_object("o1", "b", "dir/a.txt")),
        Some(object("dir/a.txt", b"a"))
    );
    assert_eq!(r(store, |tx| tx.get_object("o2", "b", "dir/a.txt")), None);
    let keys = |v: Vec<StoredObject>| v.into_iter().map(|o| (o.key, o.size)).collect::<Vec<_>>();
    assert_eq!(
        keys(r(store, |tx| tx.list_objects("o1", "b", "dir/", "", 10))),
        [("dir/a.txt".to_string(), 1), ("dir/b.txt".to_string(), 2)]
    );
    assert_eq!(
        keys(r(store, |tx| tx.list_objects(
            "o1",
            "b",
            "",
            "dir/a.txt",
            1
        ))),
        [("dir/b.txt".to_string(), 2)]
    );
    w(store, |tx| {
        tx.put_object("o1", "b", &object("dir/a.txt", b"replaced"))
    });
    assert_eq!(
        r(store, |tx| tx.get_object("o1", "b", "dir/a.txt"))
            .unwrap()
            .body,
        b"replaced"
    );
    assert!(w(store, |tx| tx.delete_object("o1", "b", "dir/a.txt")));
    assert!(!w(store, |tx| tx.delete_object("o1", "b", "dir/a.txt")));

    // Creating only if absent: the first write stands, a second changes nothing.
    assert!(w(store, |tx| tx.insert_object(
        "o1",
        "b",
        &object("once", b"first")
    )));
    assert!(!w(store, |tx| tx.insert_object(
        "o1",
        "b",
        &object("once", b"second")
    )));
    assert_eq!(
        r(store, |tx| tx.get_object("o1", "b", "once"))
            .unwrap()
            .body,
        b"first"
    );
    assert!(w(store, |tx| tx.insert_object(
        "o2",
        "b",
        &object("once", b"other scope")
    )));
}
