//! The store conformance and concurrency suites against a real PostgreSQL server that the test
//! starts itself (`scripts/postgres.sh`), plus what only a networked store has: migrations
//! raced by replicas starting together, and an outage answered as one and recovered from.

mod support;

use provisiond::store::postgres::{
    PostgresStore, POINT_STATEMENTS, SCHEMA_VERSION, SCOPES_OF_KIND,
};
use provisiond::store::{conformance, transact, Kind, Mode, Store, StoreError};
use std::sync::Arc;
use support::TestPostgres;

#[test]
fn postgres_passes_the_conformance_and_concurrency_suites() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("conformance");
    let store = PostgresStore::open(&url).unwrap();
    conformance::run_all(&store);
    // The suite wrote and deleted audit entries too; only the counted kinds have counts.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let counted: Vec<String> = client
        .query(
            "SELECT DISTINCT kind FROM document_counts ORDER BY kind",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(counted, ["test"], "counts of the counted kinds only");
    // One connection: nothing in the store holds one while it waits for another.
    let url = pg.database("one_connection");
    let store = PostgresStore::open_with(&url, 1).unwrap();
    conformance::run_all(&store);

    let url = pg.database("concurrency");
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).unwrap());
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).unwrap());
    conformance::run_concurrent(a, b);
}

#[test]
fn replicas_starting_together_migrate_once() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("migrations");
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::open(&url).map(drop))
        })
        .collect();
    for s in starts {
        s.join().unwrap().expect("every replica starts");
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = (1..=SCHEMA_VERSION as i64).collect();
    assert_eq!(versions, expected, "each migration applied exactly once");
}

#[test]
fn an_outage_is_answered_as_unavailable_and_recovered_from() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("outage");
    let store = PostgresStore::open(&url).unwrap();
    let write = |value: &'static [u8]| {
        transact::<_, StoreError>(&store, Mode::Write, |tx| {
            tx.put(Kind::Test, "s", "doc", "", value)
        })
    };
    write(b"1").unwrap();
    pg.stop();
    let down = write(b"2").expect_err("no write succeeds while the database is down");
    assert!(down.is_unavailable(), "{down}");
    let read = transact::<_, StoreError>(&store, Mode::Read, |tx| tx.get(Kind::Test, "s", "doc"));
    assert!(read.expect_err("nor any read").is_unavailable());
    pg.restart();
    // The pool's connections died with the server; the store opens new ones by itself.
    let mut recovered = Err(StoreError::new("not tried"));
    for _ in 0..50 {
        recovered = write(b"3");
        if recovered.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    recovered.expect("writes work again once the database is back");
    let value =
        transact::<_, StoreError>(&store, Mode::Read, |tx| tx.get(Kind::Test, "s", "doc")).unwrap();
    assert_eq!(
        value.as_deref(),
        Some(&b"3"[..]),
        "and the write before the outage was kept"
    );
}

#[test]
fn point_lookups_and_claims_use_their_index_before_any_statistics() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("plans");
    let store = PostgresStore::open(&url).unwrap();
    // Thousands of documents of one kind in one scope and messages in one queue, and no
    // ANALYZE yet: what a young database looks like to the planner.
    transact::<_, StoreError>(&store, Mode::Write, |tx| {
        for i in 0..3000 {
            tx.put(Kind::Test, "s", &format!("doc-{i}"), "", &[b'x'; 200])?;
            tx.enqueue(
                "s",
                &provisiond::store::QueuedMessage {
                    message_id: format!("m-{i}"),
                    queue: "q".into(),
                    body: "t".repeat(200),
                    sent_ms: 0,
                    visible_at_ms: 0,
                    receive_count: 0,
                    first_receive_ms: None,
                    receipt: String::new(),
                    attributes: String::new(),
                },
            )?;
        }
        Ok(())
    })
    .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // The plan for these arguments, and the generic plan PostgreSQL may switch a prepared
    // statement to after a few executions.
    for mode in ["force_custom_plan", "force_generic_plan"] {
        for (i, (sql, args, index)) in POINT_STATEMENTS.iter().enumerate() {
            client
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL plan_cache_mode = {mode}; PREPARE p{i} AS {sql}"
                ))
                .unwrap();
            let plan = plan_of(
                &mut client,
                &format!("EXPLAIN (FORMAT JSON) EXECUTE p{i}({args})"),
            );
            client
                .batch_execute(&format!("ROLLBACK; DEALLOCATE p{i}"))
                .unwrap();
            assert!(
                plan.contains(&format!("\"Index Name\": \"{index}\"")),
                "{sql}\nmust be served by {index} ({mode}), but its plan is\n{plan}"
            );
            assert!(
                !plan.contains("\"Node Type\": \"Sort\""),
                "{sql}\nmust read its rows in the index's order ({mode}), but its plan is\n{plan}"
            );
        }
    }
}

#[test]
fn listing_the_scopes_of_a_kind_steps_from_scope_to_scope() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("scopes");
    let store = PostgresStore::open(&url).unwrap();
    conformance::fill_three_scopes(&store);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute("ANALYZE documents").unwrap();
    client
        .batch_execute(&format!("PREPARE scopes AS {SCOPES_OF_KIND}"))
        .unwrap();
    let plan = plan_of(
        &mut client,
        "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE scopes('test')",
    );
    // Rows the scans of the table or its indexes returned, over all their loops: about one per
    // scope, not one per document.
    fn table_rows(node: &serde_json::Value) -> f64 {
        let own = match node["Node Type"].as_str() {
            Some("Seq Scan" | "Index Scan" | "Index Only Scan" | "Bitmap Heap Scan") => {
                node["Actual Rows"].as_f64().unwrap_or(0.0)
                    * node["Actual Loops"].as_f64().unwrap_or(1.0)
            }
            _ => 0.0,
        };
        let children = node["Plans"]
            .as_array()
            .map_or(0.0, |plans| plans.iter().map(table_rows).sum::<f64>());
        own + children
    }
    let value: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let read = table_rows(&value[0]["Plan"]);
    assert!(read <= 20.0, "{read} rows read for 3 scopes:\n{plan}");
}

/// What `explain` (an `EXPLAIN (FORMAT JSON) …` statement) answers.
fn plan_of(client: &mut postgres::Client, explain: &str) -> String {
    client
        .simple_query(explain)
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a plan")
}

/// A store on `url` keeps a document and reads it back.
fn round_trip(url: &str) {
    let store = PostgresStore::open(url).unwrap_or_else(|e| panic!("opening {url}: {e}"));
    transact::<_, StoreError>(&store, Mode::Write, |tx| {
        tx.put(Kind::Test, "s", "doc", "", b"kept")
    })
    .unwrap();
    let read =
        transact::<_, StoreError>(&store, Mode::Read, |tx| tx.get(Kind::Test, "s", "doc")).unwrap();
    assert_eq!(read.as_deref(), Some(&b"kept"[..]));
}

#[test]
fn the_store_authenticates_by_each_method_postgres_asks_for_and_over_a_unix_socket() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let port = pg.port();
    // scripts/postgres.sh's pg_hba.conf asks each of these roles for its method.
    for (role, stored_as) in [
        ("provisiond_scram", "scram-sha-256"),
        ("provisiond_md5", "md5"),
        ("provisiond_cleartext", "scram-sha-256"),
    ] {
        pg.admin(&format!(
            "SET password_encryption = '{stored_as}'; CREATE ROLE {role} LOGIN PASSWORD 'secret'"
        ));
        pg.admin(&format!("CREATE DATABASE {role} OWNER {role}"));
        round_trip(&format!("postgres://{role}:secret@127.0.0.1:{port}/{role}"));

        let wrong = PostgresStore::open(&format!(
            "postgres://{role}:not-the-secret@127.0.0.1:{port}/{role}"
        ))
        .err()
        .expect("a wrong password is refused");
        assert!(
            !wrong.is_unavailable(),
            "a refusal is no outage, nor retried as one: {wrong}"
        );
        assert!(wrong.to_string().contains("28P01"), "{wrong}");
        assert!(!wrong.to_string().contains("not-the-secret"), "{wrong}");

        let none = PostgresStore::open(&format!("postgres://{role}@127.0.0.1:{port}/{role}"))
            .err()
            .expect("no password is refused");
        assert!(none.to_string().contains("password"), "{none}");
    }

    let tls = PostgresStore::open(&format!("{}?sslmode=require", pg.url))
        .err()
        .expect("a URL that requires TLS is refused, not served unencrypted");
    assert!(tls.to_string().contains("TLS"), "{tls}");

    let url = pg.database("over_a_socket");
    let socket_url = format!(
        "host={} port={port} user=postgres dbname=over_a_socket",
        pg.socket_dir().display()
    );
    round_trip(&socket_url);
    // What went over the socket is in the database the TCP URL names.
    let store = PostgresStore::open(&url).unwrap();
    let read =
        transact::<_, StoreError>(&store, Mode::Read, |tx| tx.get(Kind::Test, "s", "doc")).unwrap();
    assert_eq!(read.as_deref(), Some(&b"kept"[..]));
}

#[test]
fn sslmode_require_connects_over_tls_and_verifies_the_certificate() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let Some(authority) = pg.tls_authority() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the PostgreSQL TLS test needs openssl under CI=true");
        }
        eprintln!("SKIPPED: the PostgreSQL TLS test needs openssl to make a certificate");
        return;
    };
    // scripts/postgres.sh's pg_hba.conf lets this role in over TLS only.
    pg.admin("CREATE ROLE provisiond_tls LOGIN PASSWORD 'secret'");
    pg.admin("CREATE DATABASE provisiond_tls OWNER provisiond_tls");
    let port = pg.port();
    let url = |mode: &str| {
        format!("postgres://provisiond_tls:secret@127.0.0.1:{port}/provisiond_tls?sslmode={mode}")
    };
    // `provisiond migrate` in a process of its own, trusting what `SSL_CERT_FILE` names (the
    // trust store is read once per process).
    let migrate = |url: &str, trusted: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisiond"))
            .args(["migrate", "--database-url", url])
            .env("SSL_CERT_FILE", trusted)
            .env_remove("SSL_CERT_DIR")
            .output()
            .expect("running provisiond migrate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, stderr) = migrate(&url("require"), &authority);
    assert!(ok, "over TLS, the certificate verified: {stderr}");

    let (ok, stderr) = migrate(&url("require"), &pg.tls_certificate());
    assert!(!ok, "a certificate no trusted authority signed is refused");
    assert!(stderr.contains("TLS with the database failed"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");

    let (ok, stderr) = migrate(&url("disable"), &authority);
    assert!(
        !ok,
        "without TLS this role is turned away: the first run did use TLS"
    );
    assert!(stderr.contains("28000"), "{stderr}");
}

#[test]
fn a_lock_asked_for_ahead_never_waits_for_another_transaction() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("lock_ahead");
    let (a, b) = (
        PostgresStore::open(&url).unwrap(),
        PostgresStore::open(&url).unwrap(),
    );
    transact::<_, StoreError>(&a, Mode::Write, |tx| tx.put(Kind::Test, "s", "x", "", b"0"))
        .unwrap();
    let (locked, is_locked) = std::sync::mpsc::channel();
    let (sent, was_sent) = std::sync::mpsc::channel();
    let was_sent = std::sync::Mutex::new(was_sent);
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            transact::<_, StoreError>(&a, Mode::Write, |tx| {
                tx.get_for_update(Kind::Test, "s", "x")?;
                locked.send(()).unwrap();
                // The other transaction's lock ahead went out without waiting for this lock
                // (else it would wait for this commit, and this for it).
                was_sent
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .expect("the lock ahead waited for another transaction's lock");
                tx.put(Kind::Test, "s", "x", "", b"1")
            })
        });
        is_locked.recv().unwrap();
        let seen = transact::<_, StoreError>(&b, Mode::Write, |tx| {
            tx.lock_ahead(Kind::Test, "s", "x")?;
            tx.get(Kind::Test, "s", "other")?;
            let _ = sent.send(());
            // Skipped ahead, so read here in turn: after the holder's commit, its value.
            tx.get_for_update(Kind::Test, "s", "x")
        })
        .unwrap();
        holder.join().unwrap().unwrap();
        assert_eq!(seen.as_deref(), Some(&b"1"[..]));
    });
}

/// Large answers early in a batch (40 MiB of documents read ahead) and many statements behind
/// them (60 MiB of writes): the database's answers and the statements still to send both
/// outgrow what the sockets buffer. A client that wrote it all before reading would wait for
/// the database to read while the database waited for it to read (it did, before batches went
/// in parts).
#[test]
fn large_answers_and_many_statements_in_one_transaction_never_wait_on_each_other() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("large_answers");
    let store = PostgresStore::open(&url).unwrap();
    const DOCS: usize = 40;
    const WRITES: usize = 60_000;
    for i in 0..DOCS {
        transact::<_, StoreError>(&store, Mode::Write, |tx| {
            tx.put(
                Kind::Test,
                "big",
                &format!("b{i}"),
                "",
                &vec![b'b'; 1 << 20],
            )
        })
        .unwrap();
    }
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let counted = transact::<_, StoreError>(&store, Mode::Write, |tx| {
            for i in 0..DOCS {
                tx.lock_ahead(Kind::Test, "big", &format!("b{i}"))?;
            }
            for i in 0..WRITES {
                tx.add(Kind::Test, "writes", &format!("w{i}"), "p", &[b'w'; 1024])?;
            }
            let count = tx.count(Kind::Test, "writes", "p")?;
            let first = tx.get_for_update(Kind::Test, "big", "b0")?.map(|b| b.len());
            Ok((count, first))
        });
        let _ = done.send(counted);
    });
    let (count, first) = finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the transaction hung: its statements and its answers waited on each other")
        .unwrap();
    assert_eq!((count, first), (WRITES as u64, Some(1 << 20)));
}

#[test]
fn requests_work_runs_on_as_many_store_threads_as_connections() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("store_threads");
    let store = Arc::new(PostgresStore::open_with(&url, 3).unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    for _ in 0..60 {
        let (store2, done) = (store.clone(), done.clone());
        let work: provisiond::store::StoreThreadWork = Box::new(move || {
            // Work there opens its own transactions, as a request's does.
            transact::<_, StoreError>(store2.as_ref(), Mode::Read, |tx| {
                tx.get(Kind::Test, "s", "a")
            })
            .unwrap();
            let name = std::thread::current().name().map(str::to_string);
            done.send(name).unwrap();
        });
        assert!(
            store.run_on_store_thread(work).is_ok(),
            "PostgreSQL keeps threads"
        );
    }
    drop(done);
    let names: std::collections::BTreeSet<String> =
        finished.iter().map(|n| n.unwrap_or_default()).collect();
    assert!(!names.is_empty() && names.len() <= 3, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("store-worker-")),
        "{names:?}"
    );
}

#[test]
fn work_queued_behind_a_stuck_pool_is_answered_unavailable_within_the_checkout_timeout() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.database("stuck_pool");
    let store = Arc::new(PostgresStore::open_with(&url, 1).unwrap());
    // The pool's only connection, held for 8 s by a transaction on a thread of its own, as by a
    // database that stopped answering.
    let (started, holding) = std::sync::mpsc::channel();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            transact::<_, StoreError>(store.as_ref(), Mode::Write, |tx| {
                let _ = started.send(());
                std::thread::sleep(std::time::Duration::from_secs(8));
                tx.put(Kind::Test, "s", "held", "", b"{}")
            })
            .unwrap();
        })
    };
    holding.recv().unwrap();
    // Three requests' work for the one store thread: the first waits for a connection until
    // the checkout timeout (5 s); the others waited as long for the thread, which counts.
    let (done, answered) = std::sync::mpsc::channel();
    for _ in 0..3 {
        let (store2, done) = (store.clone(), done.clone());
        let work: provisiond::store::StoreThreadWork = Box::new(move || {
            let read = transact::<_, StoreError>(store2.as_ref(), Mode::Read, |tx| {
                tx.get(Kind::Test, "s", "a")
            });
            done.send(read.map_err(|e| e.is_unavailable())).unwrap();
        });
        assert!(store.run_on_store_thread(work).is_ok());
    }
    drop(done);
    let answers: Vec<_> = answered.iter().collect();
    assert_eq!(
        answers,
        vec![Err(true), Err(true), Err(true)],
        "each answered unavailable, none served late once the connection came back"
    );
    holder.join().unwrap();
}
