//! One request, start to finish, in one readable function: health → the console → body limit → route by
//! `X-Amz-Target` → verify the signature → build the context → decode the input and run the
//! operation where its table says (inline, the store's writer or threads, the blocking pool) →
//! render the answer or the error.

use crate::audit;
use crate::auth::KeyRing;
use crate::catalog::ServiceCatalog;
use crate::context::RequestContext;
use crate::protocol::awsjson::{self, Service};
use crate::protocol::foreign::{self, Destination};
use crate::protocol::sigv4::{self, PathStyle, SignedRequest};
use crate::queue::EngineQueues;
use crate::served::Runs;
use crate::store::Store;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use provisiond_model::runtime::{unknown_operation, Json};
use provisiond_model::{proton, servicecatalog, sqs, AwsError, CommonError};
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted: 1 MiB.
pub const BODY_LIMIT: usize = 1 << 20;
/// A body over the limit but under this much is read and dropped before the 413 answer, so the
/// client, still sending, gets the answer rather than a reset connection.
pub const DRAIN_LIMIT: usize = 80 << 20;

/// Reads the body whole, or reads and drops it (up to `DRAIN_LIMIT`) when it is over `limit`.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, ()> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(()) };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > DRAIN_LIMIT {
                return Err(());
            }
            if seen <= limit {
                kept.extend_from_slice(&data);
            }
        }
    }
    if seen > limit {
        Err(())
    } else {
        Ok(Bytes::from(kept))
    }
}

/// What the server serves with.
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Access keys.
    pub keys: Arc<KeyRing>,
    /// Service Catalog.
    pub catalog: ServiceCatalog,
    /// Proton.
    pub proton: crate::proton::Proton,
    /// The in-process engine's status (`serve --engine`), shown by `GET /health`.
    pub engine_status: std::sync::OnceLock<Arc<provisiond_engine::terraform::Status>>,
    /// The SQS-shaped engine queues.
    pub queues: EngineQueues,
    /// The server key (workflow tokens).
    pub server_key: Arc<crate::crypto::ServerKey>,
    /// The S3-shaped object store (its virtual-hosted domain from `serve --s3-domain`).
    pub s3: Arc<crate::s3::ObjectStore>,
    /// The metrics every request is counted in (`serve --metrics-listen`).
    pub metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// The web console at `/console/`.
    pub console: Arc<crate::console::Console>,
}

fn respond(
    status: u16,
    request_id: &str,
    content_type: &str,
    body: Vec<u8>,
    error: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("x-amzn-RequestId", request_id);
    if let Some(code) = error {
        builder = builder.header("x-amzn-ErrorType", code);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

fn error_response(
    service: Option<Service>,
    request_id: &str,
    error: &AwsError,
) -> Response<Full<Bytes>> {
    let content_type = service.map_or("application/x-amz-json-1.1", Service::content_type);
    let mut response = respond(
        error.status,
        request_id,
        content_type,
        awsjson::error_body(service, error),
        Some(error.code),
    );
    if let Some(query_error) = service.and_then(|s| awsjson::query_error(s, error)) {
        if let Ok(value) = query_error.parse() {
            response.headers_mut().insert("x-amzn-query-error", value);
        }
    }
    response
}

/// The answer on a connection the server is closing (shed, or past a deadline) when a request
/// arrives in the same instant: 503 and `Connection: close`, so the client retries elsewhere.
pub fn closing() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        "close".parse().expect("a header value"),
    );
    response
}

/// Serves one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let request_id = crate::ids::uuid();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut account = String::new();
    let mut route = Route::of_target(&target);
    let response = match serve(&app, req, &request_id, &target, &mut account, &mut route).await {
        Ok(response) => response,
        Err((service, error)) => {
            if error.status >= 500 {
                tracing::error!(request_id, target, code = error.code, "request failed");
            }
            error_response(service, &request_id, &error)
        }
    };
    // One line per request: who, what, how it ended, how long it took; never a body.
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        request_id,
        account,
        service = route.service,
        operation = route.operation,
        status,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    if let Some(metrics) = app.metrics.get() {
        metrics.request(route.service, route.operation, status, &account, elapsed);
    }
    response
}

/// What a request was for, as its log line and metrics name it: names from a fixed set (the
/// services' signing names, the modeled operations), never the caller's text.
struct Route {
    service: &'static str,
    operation: &'static str,
}

impl Route {
    /// The service and operation an `X-Amz-Target` names; an operation no model has is
    /// `unknown`, a request without a target has neither.
    fn of_target(target: &str) -> Route {
        let Some((service, operation)) = awsjson::parse_target(target) else {
            return Route {
                service: "",
                operation: "",
            };
        };
        let modeled = match service {
            Service::ServiceCatalog => {
                servicecatalog::Operation::from_name(operation).map(|o| o.name())
            }
            Service::Sqs => sqs::Operation::from_name(operation).map(|o| o.name()),
            Service::Proton => proton::Operation::from_name(operation).map(|o| o.name()),
        };
        Route {
            service: service.info().signing_name,
            operation: modeled.unwrap_or("unknown"),
        }
    }
}

type Failure = (Option<Service>, AwsError);

async fn serve(
    app: &Arc<App>,
    req: Request<Incoming>,
    request_id: &str,
    target: &str,
    account: &mut String,
    route: &mut Route,
) -> Result<Response<Full<Bytes>>, Failure> {
    if req.uri().path() == "/health" && req.method() == hyper::Method::GET {
        route.operation = "health";
        let mut health = serde_json::json!({"status": "ok"});
        if let Some(engine) = app.engine_status.get() {
            health["engine"] = engine.snapshot();
        }
        return Ok(respond(
            200,
            request_id,
            "application/json",
            health.to_string().into_bytes(),
            None,
        ));
    }
    let path = req.uri().path();
    if path == "/console" || path.starts_with("/console/") {
        route.service = "console";
        route.operation = "page";
        return Ok(crate::console::handle(app.console.clone(), req, request_id.to_string()).await);
    }
    match foreign::destination(req.method(), req.uri().path(), req.headers()) {
        Destination::AwsJson => {}
        Destination::S3 => {
            route.service = "s3";
            // S3 reads its own body, once the request's signature is checked.
            let (parts, body) = req.into_parts();
            return Ok(crate::s3::handle(app.s3.clone(), parts, body, request_id).await);
        }
        Destination::Foreign(service) => {
            // Answered without reading the body: nothing of it is used.
            let (status, content_type, body) = foreign::answer(&service, request_id);
            let json = service.style == foreign::ErrorStyle::Json;
            return Ok(respond(
                status,
                request_id,
                content_type,
                body,
                json.then_some("UnknownOperationException"),
            ));
        }
    }
    let routed = awsjson::parse_target(target);
    let service = routed.map(|(s, _)| s);
    let fail = |e: AwsError| (service, e);

    let too_large = || {
        CommonError::RequestEntityTooLarge.with(format!(
            "The request body is larger than {BODY_LIMIT} bytes."
        ))
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(fail(too_large()));
    }
    let (parts, body) = req.into_parts();
    let body = read_body(body, BODY_LIMIT)
        .await
        .map_err(|()| fail(too_large()))?;

    let Some((service, operation)) = routed else {
        let name = if target.is_empty() {
            "(no X-Amz-Target)"
        } else {
            target
        };
        return Err(fail(unknown_operation(name)));
    };

    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
    };
    let auth = sigv4::parse(&signed).map_err(fail)?;
    let known = app
        .keys
        .signing_key(&auth.access_key_id)
        .await
        .map_err(fail)?;
    let now_ms = crate::time::now_ms();
    sigv4::verify(
        &signed,
        &auth,
        &known.secret,
        service.info().signing_name,
        PathStyle::DoubleEncoded,
        now_ms / 1000,
    )
    .map_err(fail)?;
    account.clone_from(&known.identity.account);

    let ctx = RequestContext {
        request_id: request_id.to_string(),
        identity: known.identity.clone(),
        region: auth.region.clone(),
        now_ms,
        store: app.store.clone(),
        server_key: app.server_key.clone(),
        host: parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
            .to_string(),
    };
    let operation = operation.to_string();
    let result = match runs(service, &operation) {
        Some(Runs::OnWriter) => on_store_writer(app, ctx, service, operation, body).await,
        Some(Runs::Inline) if app.store.local_reads() => {
            // A local read: run here, no hop to a blocking thread and back, the key check and
            // the operation's reads in one snapshot.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::store::reading_only(|| {
                    crate::store::in_one_snapshot(app.store.as_ref(), || {
                        dispatch(app, &ctx, service, &operation, || {
                            run_operation(app, &ctx, service, &operation, &body)
                        })
                    })
                })
            }))
            .map_err(|_| CommonError::InternalFailure.with("the operation panicked"))
        }
        Some(Runs::Inline) => {
            // A read on a store whose reads are round trips: on one of its own threads.
            let app2 = app.clone();
            on_store_thread(app, move || {
                crate::store::reading_only(|| {
                    dispatch(&app2, &ctx, service, &operation, || {
                        run_operation(&app2, &ctx, service, &operation, &body)
                    })
                })
            })
            .await
        }
        _ => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || {
                dispatch(&app, &ctx, service, &operation, || {
                    run_operation(&app, &ctx, service, &operation, &body)
                })
            })
            .await
            .map_err(|e| CommonError::InternalFailure.with(format!("the operation panicked: {e}")))
        }
    }
    .map_err(fail)?;
    match result {
        Ok(out) => Ok(respond(200, request_id, service.content_type(), out, None)),
        Err(e) => Err(fail(e)),
    }
}

/// What its service's table says of an operation; `None` when it is not served.
fn facts(service: Service, operation: &str) -> Option<crate::served::Facts> {
    match service {
        Service::ServiceCatalog => servicecatalog::Operation::from_name(operation)
            .and_then(crate::catalog::operations::facts),
        Service::Sqs => {
            sqs::Operation::from_name(operation).and_then(crate::queue::operations::facts)
        }
        Service::Proton => {
            proton::Operation::from_name(operation).and_then(crate::proton::operations::facts)
        }
    }
}

/// Where an operation runs, as its service's table says; `None` when it is not served.
fn runs(service: Service, operation: &str) -> Option<Runs> {
    facts(service, operation).map(|f| f.runs)
}

/// Runs `work` on one of the store's own threads (`Store::run_on_store_thread`), or on a
/// blocking thread when the store keeps none, and waits for its answer without holding a thread.
async fn on_store_thread<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AwsError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: crate::store::StoreThreadWork = Box::new(move || {
        let _ = answer.send(work());
    });
    if let Err(job) = app.store.run_on_store_thread(job) {
        tokio::task::spawn_blocking(job).await.map_err(|e| {
            CommonError::InternalFailure.with(format!("the operation panicked: {e}"))
        })?;
    }
    // The answer is dropped unsent when the work panicked (logged where it happened).
    answered.await.map_err(|_| {
        CommonError::InternalFailure.with("The server failed to process the request; see its log.")
    })
}

/// Runs an operation on the store's writer (`Store::run_on_writer`) and answers once the commit
/// that carries its transaction is over: no thread waits for it. Its input is decoded and
/// validated here first, so the writer, which every write waits for, spends no time on it (nor
/// on a malformed body: a refused call's audit entry is all it writes). A store without a
/// writer runs it on a blocking thread instead, where its transactions commit as they go.
async fn on_store_writer(
    app: &Arc<App>,
    ctx: RequestContext,
    service: Service,
    operation: String,
    body: Bytes,
) -> Result<Result<Vec<u8>, AwsError>, AwsError> {
    let decoded = decode(app, service, &operation, &body);
    drop(body);
    let (answer, answered) = tokio::sync::oneshot::channel();
    let app2 = app.clone();
    let work: crate::store::WriterWork = Box::new(move || {
        let result = dispatch(&app2, &ctx, service, &operation, || {
            decoded.and_then(|input| run_decoded(&app2, &ctx, input))
        });
        Box::new(move |committed| {
            let _ = answer.send(committed.map_err(AwsError::from).and(result));
        })
    });
    if let Err(work) = app.store.run_on_writer(work) {
        tokio::task::spawn_blocking(move || work()(Ok(())))
            .await
            .map_err(|e| {
                CommonError::InternalFailure.with(format!("the operation panicked: {e}"))
            })?;
    }
    // The answer is dropped unsent when the work panicked or the store could not run it (both
    // logged where they happened).
    answered.await.map_err(|_| {
        CommonError::InternalFailure.with("The server failed to process the request; see its log.")
    })
}

/// Runs an operation (`run`); a write call (its table says `audited`) leaves an audit entry in
/// the transaction of each change it makes, or, when it changed nothing, one of its own after it.
fn dispatch(
    app: &App,
    ctx: &RequestContext,
    service: Service,
    operation: &str,
    run: impl FnOnce() -> Result<Vec<u8>, AwsError>,
) -> Result<Vec<u8>, AwsError> {
    // The signature was checked with a possibly cached key: the call stands only if the key
    // was not deleted since.
    let call = || {
        if !facts(service, operation).is_some_and(|f| f.audited) {
            return run();
        }
        let entry = ctx.audit_entry(service.info().signing_name, operation);
        audit::audited(app.store.as_ref(), entry, run)
    };
    app.keys
        .while_key_exists(&ctx.identity.access_key_id, call)?
        .unwrap_or_else(|| Err(crate::auth::revoked_key()))
}

/// An operation's input, decoded and validated against its service's model.
enum Input {
    ServiceCatalog(servicecatalog::Request),
    Proton(proton::Request),
    Sqs(sqs::Request),
}

/// Decodes and validates the input of `operation`; one its service does not serve answers
/// `UnknownOperationException` before its input is read.
fn decode(app: &App, service: Service, operation: &str, body: &[u8]) -> Result<Input, AwsError> {
    use proton::Handler as _;
    use servicecatalog::Handler as _;
    use sqs::Handler as _;
    match service {
        Service::ServiceCatalog => {
            let op = servicecatalog::Operation::from_name(operation)
                .filter(|&op| app.catalog.implements(op))
                .ok_or_else(|| unknown_operation(operation))?;
            servicecatalog::decode::<Json>(op, body).map(Input::ServiceCatalog)
        }
        Service::Proton => {
            let op = proton::Operation::from_name(operation)
                .filter(|&op| app.proton.implements(op))
                .ok_or_else(|| unknown_operation(operation))?;
            proton::decode::<Json>(op, body).map(Input::Proton)
        }
        Service::Sqs => {
            let op = sqs::Operation::from_name(operation)
                .filter(|&op| app.queues.implements(op))
                .ok_or_else(|| unknown_operation(operation))?;
            sqs::decode::<Json>(op, body).map(Input::Sqs)
        }
    }
}

/// Runs the operation `input` is the input of and encodes its answer.
fn run_decoded(app: &App, ctx: &RequestContext, input: Input) -> Result<Vec<u8>, AwsError> {
    match input {
        Input::ServiceCatalog(r) => servicecatalog::handle::<_, Json>(&app.catalog, ctx, r),
        Input::Proton(r) => proton::handle::<_, Json>(&app.proton, ctx, r),
        Input::Sqs(r) => sqs::handle::<_, Json>(&app.queues, ctx, r),
    }
}

fn run_operation(
    app: &App,
    ctx: &RequestContext,
    service: Service,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, AwsError> {
    run_decoded(app, ctx, decode(app, service, operation, body)?)
}
