//! One connection of the PostgreSQL store, and how it sends statements: pipelined, several
//! written to the socket before the first answer is awaited, so that what a transaction can
//! send together costs one round trip.
//!
//! The client is `tokio-postgres`, driven by a single-threaded runtime of the connection's own
//! while a call waits: every call of the store already runs on a thread of its own (tokio's
//! blocking pool, or the caller's), never on one of the server's tokio workers.

use postgres::error::SqlState;
use postgres::types::ToSql;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::StoreError;

/// A statement's parameters, borrowed.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A parameter kept until a deferred statement is sent.
pub type OwnedParam = Box<dyn ToSql + Sync>;

/// A connection with its prepared statements.
pub struct Conn {
    client: Client,
    /// Drives the connection's socket while a call of this thread waits for it.
    runtime: tokio::runtime::Runtime,
    statements: HashMap<&'static str, Statement>,
}

/// A statement whose answer nobody waits for: sent with the next one that is awaited, its
/// answer (a row count, or the rows of one made with [`Conn::defer_query`]) read after that.
pub struct Deferred {
    statement: Statement,
    params: Vec<OwnedParam>,
    rows: bool,
}

/// The statement whose answer a flush waits for, behind what was deferred.
pub enum Last<'a> {
    Query(Statement, &'a Params<'a>),
    Execute(Statement, &'a Params<'a>),
    /// A statement without parameters or rows (`COMMIT`), and one sent after it whose outcome
    /// does not matter (a `NOTIFY` once the transaction is over).
    Finish(&'static str, Option<&'static str>),
}

/// What the statement of a [`Last`] answered.
pub enum Answer {
    Rows(Vec<Row>),
    Count(u64),
    Done,
}

/// The outcome of one flush: each deferred statement's, in order (after a failure, a later one
/// only says the transaction had already failed), and the last statement's own.
pub struct Flushed {
    pub deferred: Vec<Result<Answer, tokio_postgres::Error>>,
    pub last: Result<Answer, tokio_postgres::Error>,
}

impl Flushed {
    /// The first failure among the deferred statements.
    pub fn deferred_failure(&mut self) -> Result<(), tokio_postgres::Error> {
        match self.deferred.iter().position(Result::is_err) {
            Some(at) => self.deferred.swap_remove(at).map(drop),
            None => Ok(()),
        }
    }
}

pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Whether `e` means the database could not be reached or cannot serve now (rather than
/// refusing a statement): a lost connection, or SQLSTATE class 08 (connection), 53 (out of
/// resources, such as connections) or 57 (shut down by its operator).
pub fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => ["08", "53", "57"]
            .iter()
            .any(|class| code.code().starts_with(class)),
        None => e.as_db_error().is_none(),
    }
}

pub fn store_error(e: &tokio_postgres::Error) -> StoreError {
    if is_unreachable(e) {
        StoreError::unavailable(describe(e))
    } else {
        StoreError::new(describe(e))
    }
}

/// Whether `e` is a conflict with a concurrent transaction, cured by running it again.
pub fn is_conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

impl Conn {
    /// Connects; the server refusing us (a wrong role or database) is a failure, not reaching
    /// it an outage.
    pub fn connect(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("starting a connection's runtime: {e}")))?;
        let (client, connection) = runtime.block_on(config.connect(NoTls)).map_err(|e| {
            let message = format!("connecting to the database: {}", describe(&e));
            if is_unreachable(&e) {
                StoreError::unavailable(message)
            } else {
                StoreError::new(message)
            }
        })?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a database connection ended");
            }
        });
        let conn = Conn {
            client,
            runtime,
            statements: HashMap::new(),
        };
        // A replica that dies mid-transaction must not hold its locks for long.
        conn.runtime
            .block_on(
                conn.client
                    .batch_execute("SET idle_in_transaction_session_timeout = '60s'"),
            )
            .map_err(|e| store_error(&e))?;
        Ok(conn)
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// `sql` prepared on this connection (once; then from the cache).
    pub fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.runtime.block_on(self.client.prepare(sql))?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// A statement without parameters or rows, alone (`ROLLBACK`).
    pub fn simple(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    /// `sql`, prepared, with `params`: its first row, if any, alone.
    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql)?;
        self.runtime
            .block_on(self.client.query_opt(&statement, params))
    }

    /// A statement to send later, with its parameters.
    pub fn defer(
        &mut self,
        sql: &'static str,
        params: Vec<OwnedParam>,
    ) -> Result<Deferred, tokio_postgres::Error> {
        Ok(Deferred {
            statement: self.statement(sql)?,
            params,
            rows: false,
        })
    }

    /// A query to send later, with its parameters, whose rows are kept for after the flush.
    pub fn defer_query(
        &mut self,
        sql: &'static str,
        params: Vec<OwnedParam>,
    ) -> Result<Deferred, tokio_postgres::Error> {
        Ok(Deferred {
            rows: true,
            ..self.defer(sql, params)?
        })
    }

    /// Sends `first` (a `BEGIN`), then `deferred`, then `last`, all before awaiting any answer,
    /// and waits for every answer.
    pub fn flush(
        &self,
        first: Option<&'static str>,
        deferred: &[Deferred],
        last: Last<'_>,
    ) -> Flushed {
        let client = &self.client;
        type Call<'c> = Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + 'c>>;
        let mut ahead: Vec<Call<'_>> = Vec::with_capacity(deferred.len() + 1);
        if let Some(sql) = first {
            ahead.push(Box::pin(async move {
                client.batch_execute(sql).await.map(|()| Answer::Done)
            }));
        }
        for d in deferred {
            ahead.push(Box::pin(async move {
                let params: Vec<&(dyn ToSql + Sync)> = d.params.iter().map(|p| &**p).collect();
                if d.rows {
                    client.query(&d.statement, &params).await.map(Answer::Rows)
                } else {
                    client
                        .execute(&d.statement, &params)
                        .await
                        .map(Answer::Count)
                }
            }));
        }
        let last: Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + '_>> =
            match last {
                Last::Query(statement, params) => {
                    Box::pin(
                        async move { client.query(&statement, params).await.map(Answer::Rows) },
                    )
                }
                Last::Execute(statement, params) => {
                    Box::pin(
                        async move { client.execute(&statement, params).await.map(Answer::Count) },
                    )
                }
                Last::Finish(sql, after) => Box::pin(async move {
                    let finished = client.batch_execute(sql);
                    let Some(after) = after else {
                        return finished.await.map(|()| Answer::Done);
                    };
                    // Sent behind the finishing statement, in the same write.
                    let (finished, after_it) =
                        in_order(finished, client.batch_execute(after)).await;
                    if let Err(e) = after_it {
                        tracing::warn!(error = %describe(&e), "a statement after the transaction failed");
                    }
                    finished.map(|()| Answer::Done)
                }),
            };
        let (mut ahead, last) = self.runtime.block_on(in_order(all_in_order(ahead), last));
        if first.is_some() {
            // The BEGIN's own outcome: a later statement failing says if it mattered.
            let _ = ahead.remove(0);
        }
        Flushed {
            deferred: ahead,
            last,
        }
    }
}

/// Polls `a` then `b` until both are done. Each is polled first in that order, which is when a
/// client call sends its statement: `a`'s goes out before `b`'s.
async fn in_order<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(move |cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready((out_a.take().unwrap(), out_b.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Polls every call, in order, until all are done; their outcomes in that order.
async fn all_in_order<T>(mut calls: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut outcomes: Vec<Option<T>> = calls.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        for (call, outcome) in calls.iter_mut().zip(outcomes.iter_mut()) {
            if outcome.is_none() {
                if let Poll::Ready(v) = call.as_mut().poll(cx) {
                    *outcome = Some(v);
                }
            }
        }
        if outcomes.iter().all(Option::is_some) {
            Poll::Ready(outcomes.iter_mut().map(|o| o.take().unwrap()).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
