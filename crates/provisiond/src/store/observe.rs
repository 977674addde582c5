//! Watching what a call writes: while [`observing_writes`] runs a call on this thread, every
//! write transaction it commits through [`super::transact`] tells the observer which documents,
//! messages and objects it wrote, and lets it write too, before the commit, in the same
//! transaction (the audit log's entry of a write call commits with the change it describes).

use super::{Kind, QueuedMessage, Row, StoreError, StoredObject, Tx};
use std::cell::RefCell;
use std::sync::Arc;

/// What wants to know a call's writes.
pub trait WriteObserver: Send + Sync {
    /// Called in each write transaction of the observed call that is about to commit, with what
    /// it wrote (`<kind>/<id>`, `message/<id>`, `object/<bucket>/<key>`, in order, without
    /// repeats and without the store's own bookkeeping); an error rolls the transaction back.
    fn before_commit(&self, tx: &mut dyn Tx, written: &[String]) -> Result<(), StoreError>;
}

thread_local! {
    static OBSERVER: RefCell<Option<Arc<dyn WriteObserver>>> = const { RefCell::new(None) };
}

/// Runs `call` with `observer` told of every write transaction `call` commits on this thread.
pub fn observing_writes<R>(observer: Arc<dyn WriteObserver>, call: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn WriteObserver>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            OBSERVER.with(|o| *o.borrow_mut() = previous);
        }
    }
    let _restore = Restore(OBSERVER.with(|o| o.borrow_mut().replace(observer)));
    call()
}

/// The observer of the call running on this thread, if any.
pub(super) fn current() -> Option<Arc<dyn WriteObserver>> {
    OBSERVER.with(|o| o.borrow().clone())
}

/// Whether writes of `kind` are the store's or the domain's own bookkeeping rather than a
/// resource a caller changed.
fn is_bookkeeping(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Index
            | Kind::Idempotency
            | Kind::Lease
            | Kind::InFlight
            | Kind::Audit
            | Kind::ProvisionedProductName
            | Kind::ProtonDelivery
            | Kind::ServerKeyCheck
            | Kind::Test
    )
}

/// A transaction that notes what it writes and passes everything on.
pub(super) struct Recording<'a> {
    pub(super) inner: &'a mut dyn Tx,
    pub(super) written: Vec<String>,
}

impl Recording<'_> {
    fn note(&mut self, what: String) {
        if !self.written.contains(&what) {
            self.written.push(what);
        }
    }

    fn note_document(&mut self, kind: Kind, id: &str) {
        if !is_bookkeeping(kind) {
            self.note(format!("{}/{id}", kind.as_str()));
        }
    }
}

impl Tx for Recording<'_> {
    fn get(&mut self, kind: Kind, scope: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(kind, scope, id)
    }
    fn exists(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.exists(kind, scope, id)
    }
    fn get_for_update(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_for_update(kind, scope, id)
    }
    fn insert(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        let inserted = self.inner.insert(kind, scope, id, parent, body)?;
        if inserted {
            self.note_document(kind, id);
        }
        Ok(inserted)
    }
    fn put(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.put(kind, scope, id, parent, body)?;
        self.note_document(kind, id);
        Ok(())
    }
    fn delete(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(kind, scope, id)?;
        if deleted {
            self.note_document(kind, id);
        }
        Ok(deleted)
    }
    fn create(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        // It takes effect, or the transaction fails.
        self.inner.create(kind, scope, id, parent, body)?;
        self.note_document(kind, id);
        Ok(())
    }
    // A quiet write of a resource is made loud here, to learn whether it changed anything;
    // the store's bookkeeping is not noted, so it stays quiet.
    fn add(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        if is_bookkeeping(kind) {
            return self.inner.add(kind, scope, id, parent, body);
        }
        self.insert(kind, scope, id, parent, body).map(drop)
    }
    fn lock_ahead(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        self.inner.lock_ahead(kind, scope, id)
    }
    fn discard(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        if is_bookkeeping(kind) {
            return self.inner.discard(kind, scope, id);
        }
        self.delete(kind, scope, id).map(drop)
    }
    fn list(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        self.inner.list(kind, scope, parent, after, limit)
    }
    fn list_newest(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        self.inner.list_newest(kind, scope, parent, before, limit)
    }
    fn scopes(&mut self, kind: Kind) -> Result<Vec<String>, StoreError> {
        self.inner.scopes(kind)
    }
    fn count(&mut self, kind: Kind, scope: &str, parent: &str) -> Result<u64, StoreError> {
        self.inner.count(kind, scope, parent)
    }
    fn enqueue(&mut self, scope: &str, message: &QueuedMessage) -> Result<(), StoreError> {
        self.inner.enqueue(scope, message)?;
        self.note(format!("message/{}", message.message_id));
        Ok(())
    }
    fn claim_messages(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        self.inner.claim_messages(scope, queue, now_ms, limit)
    }
    fn message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<Option<QueuedMessage>, StoreError> {
        self.inner.message(scope, queue, message_id)
    }
    fn update_message(&mut self, scope: &str, message: &QueuedMessage) -> Result<bool, StoreError> {
        let updated = self.inner.update_message(scope, message)?;
        if updated {
            self.note(format!("message/{}", message.message_id));
        }
        Ok(updated)
    }
    /// Noted as removed whether or not it was still there: asking would cost the round trip
    /// the quiet removal saves, and the call did mean to remove it.
    fn discard_message(
        &mut self,
        scope: &str,
        queues: &[&str],
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.inner.discard_message(scope, queues, message_id)?;
        self.note(format!("message/{message_id}"));
        Ok(())
    }
    fn delete_message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_message(scope, queue, message_id)?;
        if deleted {
            self.note(format!("message/{message_id}"));
        }
        Ok(deleted)
    }
    fn purge_messages(&mut self, scope: &str, queue: &str) -> Result<u64, StoreError> {
        let purged = self.inner.purge_messages(scope, queue)?;
        self.note(format!("queue/{queue}"));
        Ok(purged)
    }
    fn queue_counts(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        self.inner.queue_counts(scope, queue, now_ms)
    }
    fn next_visible_at(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.next_visible_at(scope, queue, now_ms)
    }
    fn wake_waiters(&mut self) -> Result<(), StoreError> {
        self.inner.wake_waiters()
    }
    fn put_object(
        &mut self,
        scope: &str,
        bucket: &str,
        object: &StoredObject,
    ) -> Result<(), StoreError> {
        self.inner.put_object(scope, bucket, object)?;
        self.note(format!("object/{bucket}/{}", object.key));
        Ok(())
    }
    fn insert_object(
        &mut self,
        scope: &str,
        bucket: &str,
        object: &StoredObject,
    ) -> Result<bool, StoreError> {
        let inserted = self.inner.insert_object(scope, bucket, object)?;
        if inserted {
            self.note(format!("object/{bucket}/{}", object.key));
        }
        Ok(inserted)
    }
    fn get_object(
        &mut self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        self.inner.get_object(scope, bucket, key)
    }
    fn delete_object(&mut self, scope: &str, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_object(scope, bucket, key)?;
        if deleted {
            self.note(format!("object/{bucket}/{key}"));
        }
        Ok(deleted)
    }
    fn list_objects(
        &mut self,
        scope: &str,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.inner
            .list_objects(scope, bucket, prefix, start_after, limit)
    }
}
