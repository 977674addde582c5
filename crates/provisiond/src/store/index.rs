//! Secondary indexes kept as documents of the store: the documents of one kind that hold a
//! value (the records of a provisioned product, the deployments of a resource), found without
//! listing the whole kind, so a filtered list or a check costs what it finds, not what the
//! account holds.
//!
//! An entry is a [`Kind::Index`] document under the parent `<kind>/<index>/<value>`, its body
//! the indexed document's id, written in the transaction that writes the document. Entries
//! are added when a document takes a value and may outlive it (a document deleted, or moved
//! to another value): readers get the document and check the value again, so a stale entry is
//! skipped, never wrong. [`build_missing`] writes the entries of documents stored before an
//! index existed, once per database.

use super::{decode, transact, Kind, Mode, Store, StoreError, Tx};
use serde::de::DeserializeOwned;

/// One index: documents of `kind` by the value `name` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub kind: Kind,
    pub name: &'static str,
}

impl Index {
    pub const fn new(kind: Kind, name: &'static str) -> Index {
        Index { kind, name }
    }

    /// The list the entries of `value` sit under. A value longer than [`LONGEST_VALUE_KEPT`]
    /// bytes is named by its SHA-256 instead (PostgreSQL refuses index rows over about 2.7 kB;
    /// readers check the value again, so two values sharing a list would still be told apart).
    fn parent(&self, value: &str) -> String {
        if value.len() > LONGEST_VALUE_KEPT {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
            return format!("{}/{}/#sha256:{digest}", self.kind.as_str(), self.name);
        }
        format!("{}/{}/{value}", self.kind.as_str(), self.name)
    }

    /// Notes that document `id` holds `value` (again is no error).
    pub fn add(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        value: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let parent = self.parent(value);
        tx.add(
            Kind::Index,
            scope,
            &format!("{parent}\n{id}"),
            &parent,
            id.as_bytes(),
        )
    }

    /// Forgets that document `id` holds `value`.
    pub fn remove(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        value: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let parent = self.parent(value);
        tx.discard(Kind::Index, scope, &format!("{parent}\n{id}"))
    }

    /// Up to `limit` documents noted under `value`, as `(entry seq, document)`, in the order
    /// they were noted (`newest` first if asked) after (or before) the entry `from`. Entries
    /// whose document is gone are skipped; the caller checks the value still holds.
    pub fn documents<T: DeserializeOwned>(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        value: &str,
        from: Option<i64>,
        newest: bool,
        limit: usize,
    ) -> Result<Vec<(i64, T)>, StoreError> {
        let parent = self.parent(value);
        let entries = if newest {
            tx.list_newest(Kind::Index, scope, &parent, from, limit)?
        } else {
            tx.list(Kind::Index, scope, &parent, from, limit)?
        };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = String::from_utf8_lossy(&entry.body).into_owned();
            if let Some(body) = tx.get(self.kind, scope, &id)? {
                out.push((entry.seq, decode(self.kind, &body)?));
            }
        }
        Ok(out)
    }

    /// Every document noted under `value` that `holds` says still holds it, in the order noted.
    /// For checks and lists whose matches are few (one resource's deployments); pages of the
    /// index are read until it ends.
    pub fn all<T: DeserializeOwned>(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        value: &str,
        holds: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut from = None;
        loop {
            let page = self.documents::<T>(tx, scope, value, from, false, PAGE)?;
            let ended = page.len() < PAGE;
            from = page.last().map(|(seq, _)| *seq).or(from);
            out.extend(page.into_iter().map(|(_, d)| d).filter(|d| holds(d)));
            if ended {
                return Ok(out);
            }
        }
    }
}

/// The longest indexed value kept as it is in its entries' list name, in bytes.
pub const LONGEST_VALUE_KEPT: usize = 128;

/// Entries read (and written by [`build_missing`]) per round trip.
pub const PAGE: usize = 500;

/// A kind of document with indexes: which they are, and the values one document holds.
pub trait Indexed: DeserializeOwned {
    const KIND: Kind;
    /// Every index of the kind.
    const INDEXES: &'static [Index];
    /// The `(index, value)` pairs this document is found by now.
    fn index_values(&self) -> Vec<(Index, String)>;
    /// One page of the kind's documents in `scope`, as `(id, document)`, after the cursor
    /// returned last (`None` to start), and the cursor to go on from (`None` when done). The
    /// default lists the documents with the parent `""`.
    #[allow(clippy::type_complexity)]
    fn stored_page(
        tx: &mut dyn Tx,
        scope: &str,
        after: Option<i64>,
    ) -> Result<(Vec<(String, Self)>, Option<i64>), StoreError> {
        let rows = tx.list(Self::KIND, scope, "", after, PAGE)?;
        let next = (rows.len() == PAGE)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        let docs = rows
            .into_iter()
            .map(|row| Ok((row.id, decode(Self::KIND, &row.body)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((docs, next))
    }
}

/// Notes every value `doc` (stored as `id`) holds now; in the transaction that stores it.
pub fn note<T: Indexed>(tx: &mut dyn Tx, scope: &str, id: &str, doc: &T) -> Result<(), StoreError> {
    for (index, value) in doc.index_values() {
        index.add(tx, scope, &value, id)?;
    }
    Ok(())
}

/// Forgets the values `doc` (stored as `id`) holds; in the transaction that deletes it.
pub fn forget<T: Indexed>(
    tx: &mut dyn Tx,
    scope: &str,
    id: &str,
    doc: &T,
) -> Result<(), StoreError> {
    for (index, value) in doc.index_values() {
        index.remove(tx, scope, &value, id)?;
    }
    Ok(())
}

/// How the entries of documents stored before their indexes existed are found.
pub struct Backfill {
    kind: Kind,
    indexes: &'static [Index],
    #[allow(clippy::type_complexity)]
    page: fn(
        &mut dyn Tx,
        &str,
        Option<i64>,
    ) -> Result<(Vec<(Index, String, String)>, Option<i64>), StoreError>,
}

/// The [`Backfill`] of the kind `T`.
pub fn backfill<T: Indexed>() -> Backfill {
    Backfill {
        kind: T::KIND,
        indexes: T::INDEXES,
        page: |tx, scope, after| {
            let (docs, next) = T::stored_page(tx, scope, after)?;
            let entries = docs
                .iter()
                .flat_map(|(id, doc)| {
                    doc.index_values()
                        .into_iter()
                        .map(move |(index, value)| (index, value, id.clone()))
                })
                .collect();
            Ok((entries, next))
        },
    }
}

fn marker(index: &Index) -> String {
    format!("built/{}/{}", index.kind.as_str(), index.name)
}

/// Writes, once per database, the entries of every index in `backfills` for the documents
/// stored before it existed; the marker `built/<kind>/<index>` says it was done. Several
/// replicas starting together may each do it: entries are idempotent.
pub fn build_missing(store: &dyn Store, backfills: &[Backfill]) -> Result<(), StoreError> {
    for b in backfills {
        let missing: Vec<Index> = transact(store, Mode::Read, |tx| {
            let mut missing = Vec::new();
            for index in b.indexes {
                if tx.get(Kind::Index, "", &marker(index))?.is_none() {
                    missing.push(*index);
                }
            }
            Ok(missing)
        })?;
        if missing.is_empty() {
            continue;
        }
        let scopes = transact(store, Mode::Read, |tx| tx.scopes(b.kind))?;
        let mut noted = 0usize;
        for scope in &scopes {
            let mut after = None;
            loop {
                let (entries, next) = transact(store, Mode::Read, |tx| (b.page)(tx, scope, after))?;
                transact(store, Mode::Write, |tx| {
                    for (index, value, id) in entries.iter().filter(|(i, _, _)| missing.contains(i))
                    {
                        index.add(tx, scope, value, id)?;
                    }
                    Ok(())
                })?;
                noted += entries.len();
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        transact(store, Mode::Write, |tx| {
            for index in &missing {
                tx.insert(Kind::Index, "", &marker(index), "built", b"1")?;
            }
            Ok(())
        })?;
        tracing::info!(
            kind = b.kind.as_str(),
            indexes = missing.len(),
            scopes = scopes.len(),
            entries = noted,
            "indexes built over the documents stored before them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    const BY_COLOUR: Index = Index::new(Kind::Test, "colour");

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn documents_are_found_by_value_and_stale_entries_are_skipped() {
        let (_dir, store) = store();
        transact(&store, Mode::Write, |tx| {
            for (id, c) in [("a", "red"), ("b", "blue"), ("c", "red"), ("d", "red")] {
                tx.put(Kind::Test, "s", id, "", format!("\"{c}\"").as_bytes())?;
                BY_COLOUR.add(tx, "s", c, id)?;
            }
            // `c` turns blue; its red entry stays behind. `d` is deleted.
            tx.put(Kind::Test, "s", "c", "", b"\"blue\"")?;
            BY_COLOUR.add(tx, "s", "blue", "c")?;
            tx.delete(Kind::Test, "s", "d").map(drop)
        })
        .unwrap();
        let red: Vec<String> = transact(&store, Mode::Read, |tx| {
            BY_COLOUR.all(tx, "s", "red", |c: &String| c == "red")
        })
        .unwrap();
        assert_eq!(red, ["red"], "only a: c is blue now and d is gone");
        let newest_blue: Vec<(i64, String)> = transact(&store, Mode::Read, |tx| {
            BY_COLOUR.documents(tx, "s", "blue", None, true, 10)
        })
        .unwrap();
        assert_eq!(newest_blue.len(), 2);
        assert!(newest_blue[0].0 > newest_blue[1].0, "newest first");
        let other_scope: Vec<String> = transact(&store, Mode::Read, |tx| {
            BY_COLOUR.all(tx, "t", "red", |_: &String| true)
        })
        .unwrap();
        assert!(other_scope.is_empty());
    }

    #[test]
    fn long_values_are_listed_under_their_digest_and_still_told_apart() {
        let (_dir, store) = store();
        let long = |last: char| format!("{}{last}", "x".repeat(8_000));
        transact(&store, Mode::Write, |tx| {
            for (id, c) in [
                ("a", long('a')),
                ("b", long('b')),
                ("c", "short".to_string()),
            ] {
                tx.put(
                    Kind::Test,
                    "s",
                    id,
                    "",
                    serde_json::to_vec(&c).unwrap().as_slice(),
                )?;
                BY_COLOUR.add(tx, "s", &c, id)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
        for last in ['a', 'b'] {
            let found: Vec<String> = transact(&store, Mode::Read, |tx| {
                BY_COLOUR.all(tx, "s", &long(last), |c: &String| *c == long(last))
            })
            .unwrap();
            assert_eq!(found, [long(last)]);
        }
        let hashed = BY_COLOUR.parent(&long('a'));
        assert!(
            hashed.len() < 100 && hashed.contains("#sha256:"),
            "{hashed}"
        );
        assert_eq!(BY_COLOUR.parent("short"), "test/colour/short");
    }

    #[derive(serde::Deserialize)]
    struct Painted(String);

    impl Indexed for Painted {
        const KIND: Kind = Kind::Test;
        const INDEXES: &'static [Index] = &[BY_COLOUR];
        fn index_values(&self) -> Vec<(Index, String)> {
            vec![(BY_COLOUR, self.0.clone())]
        }
    }

    #[test]
    fn documents_stored_before_the_index_are_noted_once() {
        let (_dir, store) = store();
        transact(&store, Mode::Write, |tx| {
            for i in 0..(PAGE + 3) {
                let c = if i % 2 == 0 { "red" } else { "blue" };
                tx.put(
                    Kind::Test,
                    &format!("s{}", i % 3),
                    &format!("doc{i}"),
                    "",
                    format!("\"{c}\"").as_bytes(),
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
        build_missing(&store, &[backfill::<Painted>()]).unwrap();
        let count = |scope: &str, c: &str| {
            transact(&store, Mode::Read, |tx| {
                BY_COLOUR.all(tx, scope, c, |d: &String| d == c)
            })
            .unwrap()
            .len()
        };
        let red: usize = (0..3).map(|s| count(&format!("s{s}"), "red")).sum();
        let blue: usize = (0..3).map(|s| count(&format!("s{s}"), "blue")).sum();
        assert_eq!((red, blue), (PAGE.div_ceil(2) + 2, PAGE / 2 + 1));
        // Built: a document stored without its entry now is not noted by a second start.
        transact(&store, Mode::Write, |tx| {
            tx.put(Kind::Test, "s0", "late", "", b"\"red\"")
        })
        .unwrap();
        build_missing(&store, &[backfill::<Painted>()]).unwrap();
        assert_eq!(
            count("s0", "red") + count("s1", "red") + count("s2", "red"),
            red
        );
        // And `note` is how a writer keeps it.
        transact(&store, Mode::Write, |tx| {
            note(tx, "s0", "late", &Painted("red".into()))
        })
        .unwrap();
        assert_eq!(
            count("s0", "red") + count("s1", "red") + count("s2", "red"),
            red + 1
        );
    }
}
