//! The store alone: Notify-shaped write transactions straight against a fresh store in this
//! process (SQLite, or a PostgreSQL database), from 1, 8 or 64 threads, with no HTTP,
//! signature or JSON request in the way. It shows what the store can commit durably, so the
//! server's figures can be read against it. Its CPU column is this process's, seeding left out.

use super::load::Stats;
use crate::store::{sqlite::SqliteStore, transact, Kind, Mode, QueuedMessage, Store, StoreError};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const SCOPE: &str = "000000000000/us-east-1";

fn record_id(i: usize) -> String {
    format!("rec-{i:013}")
}

fn product_id(i: usize) -> String {
    format!("pp-{i:013}")
}

/// Seeds `total` records, provisioned products and tasks of the sizes the server stores
/// (≈700-byte documents, a 600-byte task), then settles each once from `threads` threads: read
/// the record, delete its task, write the record, read and write the provisioned product, as
/// `NotifyProvisionProductEngineWorkflowResult` does.
pub fn notify_shaped_sqlite(dir: &Path, threads: usize, total: usize) -> Result<Stats, String> {
    let store = Arc::new(SqliteStore::open(&dir.join("store.db")).map_err(|e| e.to_string())?);
    notify_shaped(store, threads, total)
}

/// [`notify_shaped_sqlite`] on any store, which must be empty.
pub fn notify_shaped(store: Arc<dyn Store>, threads: usize, total: usize) -> Result<Stats, String> {
    let document = vec![b'x'; 700];
    for chunk in (0..total).collect::<Vec<_>>().chunks(1_000) {
        transact::<_, StoreError>(store.as_ref(), Mode::Write, |tx| {
            for &i in chunk {
                tx.put(Kind::Record, SCOPE, &record_id(i), "", &document)?;
                tx.put(
                    Kind::ProvisionedProduct,
                    SCOPE,
                    &product_id(i),
                    "",
                    &document,
                )?;
                tx.enqueue(
                    SCOPE,
                    &QueuedMessage {
                        message_id: format!("task-{i}"),
                        queue: "bench".into(),
                        body: "t".repeat(600),
                        sent_ms: 0,
                        visible_at_ms: 0,
                        receive_count: 1,
                        first_receive_ms: Some(0),
                        receipt: String::new(),
                        attributes: String::new(),
                    },
                )?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = super::CpuClock::start(std::process::id());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (store, next) = (store.clone(), next.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, String>(latencies);
                    }
                    let t = Instant::now();
                    transact::<_, StoreError>(store.as_ref(), Mode::Write, |tx| {
                        let record = tx.get(Kind::Record, SCOPE, &record_id(i))?;
                        let record = record.ok_or_else(|| StoreError::new("no record"))?;
                        tx.delete_message(SCOPE, "bench", &format!("task-{i}"))?;
                        tx.put(Kind::Record, SCOPE, &record_id(i), "", &record)?;
                        let product = tx.get(Kind::ProvisionedProduct, SCOPE, &product_id(i))?;
                        let product = product.ok_or_else(|| StoreError::new("no product"))?;
                        tx.put(
                            Kind::ProvisionedProduct,
                            SCOPE,
                            &product_id(i),
                            "",
                            &product,
                        )
                    })
                    .map_err(|e| e.to_string())?;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.join().map_err(|_| "a store worker panicked")??);
    }
    let elapsed = started.elapsed();
    let mut stats = Stats::new(latencies, 0, elapsed);
    stats.server_cpu = Some(cpu.elapsed());
    Ok(stats)
}
