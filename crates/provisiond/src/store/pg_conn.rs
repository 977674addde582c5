//! One connection of the PostgreSQL store, speaking PostgreSQL's wire protocol itself so that
//! a transaction's statements go out together, behind one another and under one `Sync`: what a
//! transaction can send together costs one round trip and one flush on each side.
//!
//! A general client (`tokio-postgres`) ends every statement with a `Sync`, and PostgreSQL
//! answers each `Sync` with a message and a flush of its socket of its own: a Notify's ten
//! statements cost the database ten writes and ten wake-ups of the client. Here, the statements
//! of one [`Conn::flush`] are one batch: after the first failure PostgreSQL skips the rest until
//! the `Sync`, which is what a transaction wants anyway (they are reported failed with the same
//! error). Every call of the store already runs on a thread of its own (tokio's blocking pool,
//! or the caller's), never on one of the server's tokio workers, so the socket is a blocking
//! one and a call waits in the kernel, not in a runtime.
//!
//! The protocol's messages are `postgres-protocol`'s and the values' encodings
//! `postgres-types`' (both are what `tokio-postgres` is built on); the startup speaks trust,
//! cleartext, MD5 and SCRAM-SHA-256 authentication, over TCP or a Unix socket, and TLS over TCP
//! when the URL says `sslmode=require` (the certificate and host name verified against the
//! machine's trust store; `prefer`, the default, and `disable` connect without TLS).
//! Statements are prepared once per connection (one round trip) and then bound by name,
//! parameters and results in binary.
//!
//! A batch is written before its answers are read, so a large one goes in parts of 64 KiB,
//! each ended by a `Sync` and answered before the next is written: a part fits the sockets'
//! buffers, so writing it never waits for the database, which may be waiting for its answers
//! to be read. A transaction of a few statements is one part.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{self, Message};
use postgres_protocol::message::frontend;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type};

use super::StoreError;

/// A statement's parameters, borrowed.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A parameter kept until a deferred statement is sent.
pub type OwnedParam = Box<dyn ToSql + Sync>;

/// Why a statement did not succeed.
#[derive(Clone, Debug)]
pub enum Error {
    /// The database refused it (or an earlier statement of its batch, which it was skipped for).
    Db { code: SqlState, message: String },
    /// The connection could not be made, or was lost: whether it ran is unknown.
    Closed(String),
    /// Refused on this side: a parameter could not be encoded for its statement (never sent),
    /// or the connection could not be set up as the URL asks (TLS, authentication).
    Client(String),
}

impl Error {
    /// The SQLSTATE the database answered, if it answered.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            Error::Db { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Db { code, message } => write!(f, "{}: {message}", code.code()),
            Error::Closed(why) => write!(f, "the connection to the database was lost: {why}"),
            Error::Client(why) => f.write_str(why),
        }
    }
}

/// The synchronous client's errors (migrations, the listener) in the same terms.
impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        match e.as_db_error() {
            Some(db) => Error::Db {
                code: db.code().clone(),
                message: db.message().to_string(),
            },
            None => Error::Closed(e.to_string()),
        }
    }
}

pub fn describe(e: &Error) -> String {
    e.to_string()
}

/// Whether `e` means the database could not be reached or cannot serve now (rather than
/// refusing a statement): a lost connection, or SQLSTATE class 08 (connection), 53 (out of
/// resources, such as connections) or 57 (shut down by its operator).
pub fn is_unreachable(e: &Error) -> bool {
    match e {
        Error::Closed(_) => true,
        Error::Db { code, .. } => ["08", "53", "57"]
            .iter()
            .any(|class| code.code().starts_with(class)),
        Error::Client(_) => false,
    }
}

pub fn store_error(e: &Error) -> StoreError {
    if is_unreachable(e) {
        StoreError::unavailable(describe(e))
    } else {
        StoreError::new(describe(e))
    }
}

/// Whether `e` is a conflict with a concurrent transaction, cured by running it again.
pub fn is_conflict(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A statement prepared on one connection: its name there, and the types of its parameters and
/// of its result's columns.
#[derive(Clone)]
pub struct Statement(Arc<Prepared>);

struct Prepared {
    name: String,
    params: Vec<Type>,
    columns: Arc<[Type]>,
}

/// One row of a result, its values still encoded.
pub struct Row {
    columns: Arc<[Type]>,
    body: backend::DataRowBody,
    ranges: Vec<Option<Range<usize>>>,
}

impl Row {
    /// The value of column `idx`. Like a slice index, a column that is not there or not of a
    /// type `T` reads is a bug of the statement's caller, and panics.
    pub fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> T {
        match self.try_get(idx) {
            Ok(value) => value,
            Err(e) => panic!("reading column {idx} of a row: {e}"),
        }
    }

    fn try_get<'a, T: FromSql<'a>>(
        &'a self,
        idx: usize,
    ) -> Result<T, Box<dyn std::error::Error + Sync + Send>> {
        let (Some(ty), Some(range)) = (self.columns.get(idx), self.ranges.get(idx)) else {
            return Err(format!("the row has {} columns", self.columns.len()).into());
        };
        if !T::accepts(ty) {
            return Err(format!(
                "a {ty} column cannot be read as {}",
                std::any::type_name::<T>()
            )
            .into());
        }
        let raw = range.clone().map(|r| &self.body.buffer()[r]);
        T::from_sql_nullable(ty, raw)
    }
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
/// was skipped and reports that failure again), and the last statement's own.
pub struct Flushed {
    pub deferred: Vec<Result<Answer, Error>>,
    pub last: Result<Answer, Error>,
}

impl Flushed {
    /// The first failure among the deferred statements.
    pub fn deferred_failure(&mut self) -> Result<(), Error> {
        match self.deferred.iter().position(Result::is_err) {
            Some(at) => self.deferred.swap_remove(at).map(drop),
            None => Ok(()),
        }
    }
}

/// How many bytes of statements a batch sends before it reads their answers: well under what
/// a socket buffers (Linux starts a connection with 128 KiB for reading), so writing a part
/// never waits for the database to be read from.
const PART_BYTES: usize = 64 * 1024;

/// Statements composed in `out`, sent in parts.
struct Batch {
    /// What each statement's answer is read as.
    expected: Vec<(Option<Statement>, Expect)>,
    /// Where each part ends, in bytes of `out` and in statements; the last ends both.
    parts: Vec<Part>,
}

struct Part {
    bytes: usize,
    statements: usize,
}

/// What a statement's answer is read as.
#[derive(Clone, Copy)]
enum Expect {
    Rows,
    Count,
    Done,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TCP with TLS (`sslmode=require`).
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Socket {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(timeout),
            Socket::Unix(s) => s.set_read_timeout(timeout),
            Socket::Tls(s) => s.sock.set_read_timeout(timeout),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
            Socket::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
            Socket::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Socket::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// The transaction status the last `ReadyForQuery` reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Idle,
    InTransaction,
    Failed,
}

/// A connection with its prepared statements.
pub struct Conn {
    socket: Socket,
    /// Messages being composed, written at once.
    out: BytesMut,
    /// What was read and not parsed yet.
    input: BytesMut,
    closed: bool,
    status: Status,
    statements: HashMap<&'static str, Statement>,
    /// How many statements were prepared on this connection: the next one's name.
    prepared: u32,
}

fn client_error(e: impl std::fmt::Display) -> Error {
    Error::Client(e.to_string())
}

/// The error an `ErrorResponse` carries.
fn db_error(body: &backend::ErrorResponseBody) -> Error {
    let mut fields = body.fields();
    let (mut code, mut message) = (None, String::new());
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes());
        match field.type_() {
            b'C' => code = Some(SqlState::from_code(&value)),
            b'M' => message = value.into_owned(),
            _ => {}
        }
    }
    Error::Db {
        code: code.unwrap_or(SqlState::INTERNAL_ERROR),
        message,
    }
}

/// The type of `oid`: one of PostgreSQL's own, or one this client knows nothing about (a value
/// of it reads as no Rust type).
fn type_of(oid: u32) -> Type {
    Type::from_oid(oid)
        .unwrap_or_else(|| Type::new(format!("oid {oid}"), oid, Kind::Simple, String::new()))
}

impl Conn {
    /// Connects and authenticates within the config's connect timeout; the server refusing us
    /// (a wrong role, password or database) is a failure, not reaching it an outage.
    pub fn connect(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let refused = |e: Error| {
            let message = format!("connecting to the database: {}", describe(&e));
            if is_unreachable(&e) {
                StoreError::unavailable(message)
            } else {
                StoreError::new(message)
            }
        };
        let timeout = config.get_connect_timeout().copied();
        let (socket, host) = open_socket(config).map_err(refused)?;
        // As libpq, TLS only over TCP: a Unix socket stays on this machine.
        let socket = match (config.get_ssl_mode(), socket) {
            (SslMode::Require, Socket::Tcp(tcp)) => {
                Socket::Tls(Box::new(start_tls(tcp, &host, timeout).map_err(refused)?))
            }
            (_, socket) => socket,
        };
        let mut conn = Conn {
            socket,
            out: BytesMut::with_capacity(4096),
            input: BytesMut::with_capacity(8192),
            closed: false,
            status: Status::Idle,
            statements: HashMap::new(),
            prepared: 0,
        };
        // The startup must not wait longer than the connect timeout for a silent server.
        let _ = conn.socket.set_read_timeout(timeout);
        conn.start(config).map_err(refused)?;
        let _ = conn.socket.set_read_timeout(None);
        // A replica that dies mid-transaction must not hold its locks for long.
        conn.simple("SET idle_in_transaction_session_timeout = '60s'")
            .map_err(|e| store_error(&e))?;
        Ok(conn)
    }

    /// The startup message, the authentication exchange, and the server's parameters up to
    /// its first `ReadyForQuery`.
    fn start(&mut self, config: &tokio_postgres::Config) -> Result<(), Error> {
        let user = match config.get_user() {
            Some(user) => user.to_string(),
            None => {
                std::env::var("USER").map_err(|_| client_error("the database URL names no user"))?
            }
        };
        let mut params = vec![("client_encoding", "UTF8"), ("user", user.as_str())];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        if let Some(options) = config.get_options() {
            params.push(("options", options));
        }
        if let Some(name) = config.get_application_name() {
            params.push(("application_name", name));
        }
        self.out.clear();
        frontend::startup_message(params, &mut self.out).map_err(client_error)?;
        self.send()?;
        let password = || {
            config
                .get_password()
                .ok_or_else(|| client_error("the database asks for a password; the URL has none"))
        };
        loop {
            match self.read_message()? {
                Message::AuthenticationOk => break,
                Message::AuthenticationCleartextPassword => {
                    self.out.clear();
                    frontend::password_message(password()?, &mut self.out).map_err(client_error)?;
                    self.send()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hashed = md5_hash(user.as_bytes(), password()?, body.salt());
                    self.out.clear();
                    frontend::password_message(hashed.as_bytes(), &mut self.out)
                        .map_err(client_error)?;
                    self.send()?;
                }
                Message::AuthenticationSasl(body) => self.scram(&body, password()?)?,
                Message::ErrorResponse(body) => return Err(db_error(&body)),
                _ => {
                    return Err(client_error(
                        "the database asks for an authentication provisiond does not speak",
                    ))
                }
            }
        }
        loop {
            match self.read_message()? {
                Message::ReadyForQuery(_) => return Ok(()),
                Message::BackendKeyData(_) => {}
                Message::ErrorResponse(body) => return Err(db_error(&body)),
                _ => return Err(self.confused("starting")),
            }
        }
    }

    /// SCRAM-SHA-256, without channel binding (there is no TLS to bind to).
    fn scram(
        &mut self,
        offer: &backend::AuthenticationSaslBody,
        password: &[u8],
    ) -> Result<(), Error> {
        const MECHANISM: &str = "SCRAM-SHA-256";
        let mut mechanisms = offer.mechanisms();
        let mut offered = false;
        while let Some(mechanism) = mechanisms.next().map_err(client_error)? {
            offered |= mechanism == MECHANISM;
        }
        if !offered {
            return Err(client_error(
                "the database offers no SASL mechanism provisiond speaks",
            ));
        }
        let mut scram = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
        self.out.clear();
        frontend::sasl_initial_response(MECHANISM, scram.message(), &mut self.out)
            .map_err(client_error)?;
        self.send()?;
        let Message::AuthenticationSaslContinue(body) = self.answer("authenticating")? else {
            return Err(self.confused("authenticating"));
        };
        scram.update(body.data()).map_err(client_error)?;
        self.out.clear();
        frontend::sasl_response(scram.message(), &mut self.out).map_err(client_error)?;
        self.send()?;
        let Message::AuthenticationSaslFinal(body) = self.answer("authenticating")? else {
            return Err(self.confused("authenticating"));
        };
        scram.finish(body.data()).map_err(client_error)
    }

    /// The next message, an `ErrorResponse` turned into its error.
    fn answer(&mut self, doing: &str) -> Result<Message, Error> {
        match self.read_message()? {
            Message::ErrorResponse(body) => Err(db_error(&body)),
            Message::ReadyForQuery(_) => Err(self.confused(doing)),
            message => Ok(message),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a transaction block is open on this connection (or failed and not ended yet).
    pub fn in_transaction(&self) -> bool {
        self.status != Status::Idle
    }

    /// Writes what was composed.
    fn send(&mut self) -> Result<(), Error> {
        self.send_part(0..self.out.len())
    }

    /// Writes part of what was composed.
    fn send_part(&mut self, part: Range<usize>) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed("closed earlier".into()));
        }
        match self
            .socket
            .write_all(&self.out[part])
            .and_then(|()| self.socket.flush())
        {
            Ok(()) => Ok(()),
            Err(e) => Err(self.lost(e)),
        }
    }

    fn lost(&mut self, why: impl std::fmt::Display) -> Error {
        self.closed = true;
        Error::Closed(why.to_string())
    }

    /// A message the protocol does not allow here: the connection's state is unknown, so it
    /// is given up.
    fn confused(&mut self, doing: &str) -> Error {
        self.lost(format!(
            "an unexpected message from the database while {doing}"
        ))
    }

    /// The next message that is not a notice, a parameter's new value or a notification.
    fn read_message(&mut self) -> Result<Message, Error> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match Message::parse(&mut self.input) {
                Ok(Some(
                    Message::NoticeResponse(_)
                    | Message::ParameterStatus(_)
                    | Message::NotificationResponse(_),
                )) => continue,
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => return Err(self.lost(e)),
            }
            match self.socket.read(&mut chunk) {
                Ok(0) => return Err(self.lost("the database closed the connection")),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    /// Notes the transaction status a `ReadyForQuery` reports.
    fn note_status(&mut self, body: &backend::ReadyForQueryBody) {
        self.status = match body.status() {
            b'T' => Status::InTransaction,
            b'E' => Status::Failed,
            _ => Status::Idle,
        };
    }

    /// Waits up to `timeout` for a notification of a channel this connection `LISTEN`s on:
    /// whether one came (several that came together count as one).
    pub fn notified(&mut self, timeout: Duration) -> Result<bool, Error> {
        if self.closed {
            return Err(Error::Closed("closed earlier".into()));
        }
        let _ = self.socket.set_read_timeout(Some(timeout));
        let outcome = self.await_notification();
        let _ = self.socket.set_read_timeout(None);
        outcome
    }

    fn await_notification(&mut self) -> Result<bool, Error> {
        let mut chunk = [0u8; 4096];
        let mut came = false;
        loop {
            match Message::parse(&mut self.input) {
                Ok(Some(Message::NotificationResponse(_))) => {
                    came = true;
                    continue;
                }
                // Outside a statement, an error is the server ending the session.
                Ok(Some(Message::ErrorResponse(body))) => {
                    let e = db_error(&body);
                    self.closed = true;
                    return Err(e);
                }
                Ok(Some(_)) => continue,
                Ok(None) if came => return Ok(true),
                Ok(None) => {}
                Err(e) => return Err(self.lost(e)),
            }
            match self.socket.read(&mut chunk) {
                Ok(0) => return Err(self.lost("the database closed the connection")),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(false)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    /// Reads up to the `ReadyForQuery` that ends a batch, and notes the transaction's status.
    fn ready(&mut self) -> Result<(), Error> {
        loop {
            // What a statement skipped after an error would have answered never comes;
            // anything else before the end of the batch is left unread.
            if let Message::ReadyForQuery(body) = self.read_message()? {
                self.note_status(&body);
                return Ok(());
            }
        }
    }

    /// `sql` prepared on this connection (once; then from the cache).
    pub fn statement(&mut self, sql: &'static str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        // Never a name used before on this connection, even by a preparation that failed.
        self.prepared += 1;
        let name = format!("p{}", self.prepared);
        self.out.clear();
        frontend::parse(&name, sql, std::iter::empty(), &mut self.out).map_err(client_error)?;
        frontend::describe(b'S', &name, &mut self.out).map_err(client_error)?;
        frontend::sync(&mut self.out);
        self.send()?;
        let (mut params, mut columns) = (Vec::new(), Vec::new());
        let mut failure = None;
        loop {
            match self.read_message()? {
                Message::ParseComplete | Message::NoData => {}
                Message::ParameterDescription(body) => {
                    params = body
                        .parameters()
                        .map(|oid| Ok(type_of(oid)))
                        .collect()
                        .map_err(|e| self.lost(e))?;
                }
                Message::RowDescription(body) => {
                    columns = body
                        .fields()
                        .map(|f| Ok(type_of(f.type_oid())))
                        .collect()
                        .map_err(|e| self.lost(e))?;
                }
                Message::ErrorResponse(body) => failure = Some(db_error(&body)),
                Message::ReadyForQuery(body) => {
                    self.note_status(&body);
                    break;
                }
                _ => return Err(self.confused("preparing a statement")),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let statement = Statement(Arc::new(Prepared {
            name,
            params,
            columns: columns.into(),
        }));
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Composes the binding and execution of `statement` with `params`.
    fn bind<'p>(
        &mut self,
        statement: &Statement,
        params: impl ExactSizeIterator<Item = &'p (dyn ToSql + Sync)>,
    ) -> Result<(), Error> {
        let types = &statement.0.params;
        if params.len() != types.len() {
            return Err(Error::Client(format!(
                "the statement takes {} parameters, not {}",
                types.len(),
                params.len()
            )));
        }
        frontend::bind(
            "",
            &statement.0.name,
            Some(1),
            params.zip(types),
            |(param, ty), buf| match param.to_sql_checked(ty, buf)? {
                IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
                IsNull::No => Ok(postgres_protocol::IsNull::No),
            },
            Some(1),
            &mut self.out,
        )
        .map_err(|e| {
            let why = match e {
                frontend::BindError::Conversion(e) => e.to_string(),
                frontend::BindError::Serialization(e) => e.to_string(),
            };
            client_error(format!(
                "a statement's parameter could not be encoded: {why}"
            ))
        })?;
        frontend::execute("", 0, &mut self.out).map_err(client_error)
    }

    /// Reads the answer of one statement of a batch.
    fn read_answer(
        &mut self,
        statement: Option<&Statement>,
        expect: Expect,
    ) -> Result<Answer, Error> {
        let mut rows = Vec::new();
        loop {
            match self.read_message()? {
                Message::BindComplete => {}
                Message::DataRow(body) => {
                    // Rows of a statement run for its effect (`SELECT f(…)`) are not read.
                    let Some(statement) = statement else {
                        continue;
                    };
                    let ranges = body.ranges().collect().map_err(|e| self.lost(e))?;
                    rows.push(Row {
                        columns: statement.0.columns.clone(),
                        body,
                        ranges,
                    });
                }
                Message::CommandComplete(body) => {
                    return Ok(match expect {
                        Expect::Rows => Answer::Rows(rows),
                        Expect::Done => Answer::Done,
                        Expect::Count => {
                            let tag = body.tag().map_err(|e| self.lost(e))?;
                            Answer::Count(
                                tag.rsplit(' ')
                                    .next()
                                    .and_then(|n| n.parse().ok())
                                    .unwrap_or(0),
                            )
                        }
                    })
                }
                Message::EmptyQueryResponse => return Ok(Answer::Done),
                Message::ErrorResponse(body) => return Err(db_error(&body)),
                _ => return Err(self.confused("reading a statement's answer")),
            }
        }
    }

    /// Sends the batch composed in `out` part by part (each ends with its `Sync`), reading each
    /// part's answers before the next part goes out, and returns every statement's answer in
    /// order: after the first failure, the rest of its part was skipped by the database and
    /// later parts are not sent; they all answer that failure.
    fn exchange(&mut self, batch: &Batch) -> Vec<Result<Answer, Error>> {
        let mut answers = Vec::with_capacity(batch.expected.len());
        let mut failure: Option<Error> = None;
        let (mut sent, mut read) = (0, 0);
        for part in &batch.parts {
            let sending = failure.is_none();
            if sending {
                failure = self.send_part(sent..part.bytes).err();
                sent = part.bytes;
            }
            for (statement, expect) in &batch.expected[read..part.statements] {
                if let Some(e) = &failure {
                    answers.push(Err(e.clone()));
                    continue;
                }
                let answer = self.read_answer(statement.as_ref(), *expect);
                if let Err(e) = &answer {
                    failure = Some(e.clone());
                }
                answers.push(answer);
            }
            read = part.statements;
            if sending && !self.closed {
                if let Err(e) = self.ready() {
                    // The answers stand; the connection is given up.
                    tracing::debug!(error = %e, "a database connection ended after a batch");
                }
            }
        }
        answers
    }

    /// A statement without parameters or rows, alone (`ROLLBACK`).
    pub fn simple(&mut self, sql: &str) -> Result<(), Error> {
        self.out.clear();
        frontend::query(sql, &mut self.out).map_err(client_error)?;
        self.send()?;
        let mut failure = None;
        loop {
            match self.read_message()? {
                Message::ErrorResponse(body) => failure = Some(db_error(&body)),
                Message::ReadyForQuery(body) => {
                    self.note_status(&body);
                    break;
                }
                _ => {}
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// `sql`, prepared, with `params`: its first row, if any, alone.
    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql)?;
        self.out.clear();
        self.bind(&statement, params.iter().copied())?;
        frontend::sync(&mut self.out);
        let batch = Batch {
            expected: vec![(Some(statement), Expect::Rows)],
            parts: vec![Part {
                bytes: self.out.len(),
                statements: 1,
            }],
        };
        let mut answers = self.exchange(&batch);
        match answers.pop() {
            Some(Ok(Answer::Rows(rows))) => Ok(rows.into_iter().next()),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }

    /// A statement to send later, with its parameters.
    pub fn defer(&mut self, sql: &'static str, params: Vec<OwnedParam>) -> Result<Deferred, Error> {
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
    ) -> Result<Deferred, Error> {
        Ok(Deferred {
            rows: true,
            ..self.defer(sql, params)?
        })
    }

    /// Sends `first` (a `BEGIN`), then `deferred`, then `last`, as one batch under one `Sync`
    /// (in parts, when it is large), and reads every answer.
    pub fn flush(
        &mut self,
        first: Option<&'static str>,
        deferred: &[Deferred],
        last: Last<'_>,
    ) -> Flushed {
        let count = deferred.len() + usize::from(first.is_some());
        let composed = self.compose(first, deferred, &last);
        let (batch, after) = match composed {
            Ok(composed) => composed,
            Err(e) => {
                // Nothing was sent.
                return Flushed {
                    deferred: (0..count).map(|_| Err(e.clone())).collect(),
                    last: Err(e),
                };
            }
        };
        let mut answers = self.exchange(&batch);
        if after {
            // The statement behind the finishing one: its outcome does not matter.
            if let Some(Err(e)) = answers.pop() {
                if !e.is_closed() {
                    tracing::warn!(error = %describe(&e), "a statement after the transaction failed");
                }
            }
        }
        let last = answers.pop().unwrap_or(Ok(Answer::Done));
        if first.is_some() {
            // The BEGIN's own outcome: a later statement failing says if it mattered.
            let _ = answers.remove(0);
        }
        Flushed {
            deferred: answers,
            last,
        }
    }

    /// Composes a batch in `out`, and whether a statement follows the finishing one.
    fn compose(
        &mut self,
        first: Option<&'static str>,
        deferred: &[Deferred],
        last: &Last<'_>,
    ) -> Result<(Batch, bool), Error> {
        // Prepared before the batch is composed, since preparing is a batch of its own.
        let first = first.map(|sql| self.statement(sql)).transpose()?;
        let finish = match last {
            Last::Finish(sql, after) => Some((
                self.statement(sql)?,
                after.map(|sql| self.statement(sql)).transpose()?,
            )),
            _ => None,
        };
        self.out.clear();
        let mut expected = Vec::with_capacity(deferred.len() + 3);
        let mut parts = Vec::new();
        if let Some(begin) = first {
            self.bind(&begin, std::iter::empty())?;
            expected.push((None, Expect::Done));
        }
        for d in deferred {
            self.end_part_if_full(&mut parts, expected.len());
            self.bind(&d.statement, d.params.iter().map(|p| &**p))?;
            if d.rows {
                expected.push((Some(d.statement.clone()), Expect::Rows));
            } else {
                expected.push((None, Expect::Count));
            }
        }
        let mut after_it = false;
        self.end_part_if_full(&mut parts, expected.len());
        match (last, finish) {
            (Last::Query(statement, params), _) => {
                self.bind(statement, params.iter().copied())?;
                expected.push((Some(statement.clone()), Expect::Rows));
            }
            (Last::Execute(statement, params), _) => {
                self.bind(statement, params.iter().copied())?;
                expected.push((None, Expect::Count));
            }
            (Last::Finish(..), Some((finishing, after))) => {
                self.bind(&finishing, std::iter::empty())?;
                expected.push((None, Expect::Done));
                if let Some(after) = after {
                    self.bind(&after, std::iter::empty())?;
                    expected.push((None, Expect::Done));
                    after_it = true;
                }
            }
            (Last::Finish(..), None) => unreachable!("a finishing statement is prepared above"),
        }
        frontend::sync(&mut self.out);
        parts.push(Part {
            bytes: self.out.len(),
            statements: expected.len(),
        });
        Ok((Batch { expected, parts }, after_it))
    }

    /// Ends the part of the batch composed so far with a `Sync` once it holds
    /// [`PART_BYTES`]: a part is written whole before its answers are read, and one that fits
    /// the sockets' buffers cannot wait on its own answers however many follow.
    fn end_part_if_full(&mut self, parts: &mut Vec<Part>, statements: usize) {
        let from = parts.last().map_or(0, |p| p.bytes);
        if self.out.len() - from >= PART_BYTES {
            frontend::sync(&mut self.out);
            parts.push(Part {
                bytes: self.out.len(),
                statements,
            });
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.closed {
            self.out.clear();
            frontend::terminate(&mut self.out);
            let _ = self
                .socket
                .write_all(&self.out)
                .and_then(|()| self.socket.flush());
        }
    }
}

/// A socket to the first of the config's hosts that answers, and the name it was reached by
/// (what a TLS certificate must name).
fn open_socket(config: &tokio_postgres::Config) -> Result<(Socket, String), Error> {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    let ports = config.get_ports();
    let count = hosts.len().max(addrs.len());
    if count == 0 {
        return Err(client_error("the database URL names no host"));
    }
    let mut last = None;
    for i in 0..count {
        let port = match ports {
            [] => 5432,
            [port] => *port,
            ports => ports.get(i).copied().unwrap_or(5432),
        };
        let name = match (hosts.get(i), addrs.get(i)) {
            (Some(Host::Tcp(name)), _) => name.clone(),
            (Some(Host::Unix(dir)), _) => dir.display().to_string(),
            (None, Some(addr)) => addr.to_string(),
            (None, None) => continue,
        };
        let opened = match (addrs.get(i), hosts.get(i)) {
            (Some(addr), _) => tcp(&[(*addr, port).into()], config),
            (None, Some(Host::Tcp(name))) => match (name.as_str(), port).to_socket_addrs() {
                Ok(found) => tcp(&found.collect::<Vec<_>>(), config),
                Err(e) => Err(e),
            },
            (None, Some(Host::Unix(dir))) => {
                UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).map(Socket::Unix)
            }
            (None, None) => continue,
        };
        match opened {
            Ok(socket) => return Ok((socket, name)),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Closed(last.map_or_else(
        || "no address".to_string(),
        |e| e.to_string(),
    )))
}

/// A TCP connection to the first of `addrs` that answers within the config's connect timeout,
/// with the config's keepalive settings.
fn tcp(addrs: &[std::net::SocketAddr], config: &tokio_postgres::Config) -> std::io::Result<Socket> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        let stream = match config.get_connect_timeout() {
            Some(timeout) => TcpStream::connect_timeout(addr, *timeout),
            None => TcpStream::connect(addr),
        };
        match stream {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                keep_alive(&stream, config)?;
                return Ok(Socket::Tcp(stream));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Sets TCP keepalive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`) and
/// `TCP_USER_TIMEOUT` on `stream` as the config says, so a peer that vanished is found.
pub(super) fn keep_alive(
    stream: &TcpStream,
    config: &tokio_postgres::Config,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let set = |level: libc::c_int, name: libc::c_int, value: u64| {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid socket descriptor and a pointer to a c_int of the size given.
        let done = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    if config.get_keepalives() {
        set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        set(
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            config.get_keepalives_idle().as_secs().max(1),
        )?;
        if let Some(interval) = config.get_keepalives_interval() {
            set(
                libc::IPPROTO_TCP,
                libc::TCP_KEEPINTVL,
                interval.as_secs().max(1),
            )?;
        }
        if let Some(retries) = config.get_keepalives_retries() {
            set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, u64::from(retries))?;
        }
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, millis)?;
    }
    Ok(())
}

/// Asks the server for TLS (`SSLRequest`) and completes the handshake, verifying its
/// certificate and `host` against the machine's trust store ([`crate::tls::client_config`]).
/// A server that refuses TLS, or a certificate that does not verify, is a refusal, not an
/// outage: connecting again would meet the same.
fn start_tls(
    mut tcp: TcpStream,
    host: &str,
    timeout: Option<Duration>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, Error> {
    let lost = |e: std::io::Error| Error::Closed(e.to_string());
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    tcp.set_read_timeout(timeout).map_err(lost)?;
    tcp.write_all(&request).map_err(lost)?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).map_err(lost)?;
    if answer[0] != b'S' {
        return Err(client_error(
            "the URL requires TLS (sslmode=require) and the database does not offer it",
        ));
    }
    let config = crate::tls::client_config().map_err(Error::Client)?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| client_error(format!("{host} is not a name TLS can verify: {e}")))?;
    let mut tls = rustls::ClientConnection::new(config, name).map_err(client_error)?;
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut tcp) {
            return Err(if e.kind() == std::io::ErrorKind::InvalidData {
                client_error(format!("TLS with the database failed: {e}"))
            } else {
                lost(e)
            });
        }
    }
    Ok(rustls::StreamOwned::new(tls, tcp))
}
