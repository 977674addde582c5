//! The behaviour every `Store` must have, as one suite that each implementation's tests run.

use super::{transact, Kind, Mode, Store, StoreError};

/// Runs every check against `store`, which must be empty.
pub fn run_all(store: &dyn Store) {
    insert_get_put_delete(store);
    lists_keep_insertion_order_and_page(store);
    a_failed_transaction_leaves_nothing(store);
    scopes_and_kinds_are_separate(store);
}

fn w<R>(store: &dyn Store, f: impl FnMut(&mut dyn super::Tx) -> Result<R, StoreError>) -> R {
    transact(store, Mode::Write, f).expect("write transaction")
}

fn r<R>(store: &dyn Store, f: impl FnMut(&mut dyn super::Tx) -> Result<R, StoreError>) -> R {
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
    assert!(w(store, |tx| tx.delete(Kind::Test, "s1", "a")));
    assert!(!w(store, |tx| tx.delete(Kind::Test, "s1", "a")));
    assert_eq!(r(store, |tx| tx.get(Kind::Test, "s1", "a")), None);
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
}

fn a_failed_transaction_leaves_nothing(store: &dyn Store) {
    let result: Result<(), StoreError> = transact(store, Mode::Write, |tx| {
        tx.put(Kind::Test, "s3", "x", "", b"1")?;
        Err(StoreError("the domain said no".into()))
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
}
