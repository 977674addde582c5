//! What every console page shares: the request as pages read it (`Asked`), the answer
//! before it becomes a response (`Reply`, with the headers every page carries), the session
//! and domain context a page reads with, and the status a refusal answers with.

use super::html::{self, Text, Viewer};
use super::session::{self, Session};
use super::Console;
use crate::context::RequestContext;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

/// An answer before it becomes a response.
pub(super) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub cookie: Option<String>,
}

impl Reply {
    pub fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            location: None,
            cookie: None,
        }
    }

    pub fn redirect(location: impl Into<String>) -> Reply {
        Reply {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            location: Some(location.into()),
            cookie: None,
        }
    }

    pub fn with_cookie(mut self, cookie: String) -> Reply {
        self.cookie = Some(cookie);
        self
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", self.content_type)
            .header("cache-control", "no-store")
            .header("x-content-type-options", "nosniff")
            .header("x-frame-options", "DENY")
            .header("referrer-policy", "same-origin")
            .header(
                "content-security-policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            );
        if let Some(location) = self.location {
            builder = builder.header("location", location);
        }
        if let Some(cookie) = self.cookie {
            builder = builder.header("set-cookie", cookie);
        }
        builder
            .body(Full::new(Bytes::from(self.body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// A page of the frame with a message, for refusals and missing things.
pub(super) fn message_page(
    status: u16,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    text: &str,
) -> Reply {
    let body = format!("<p class=\"message\">{}</p>", Text(text));
    Reply::html(status, html::page(title, viewer, "", &body))
}

/// The HTTP status a page answers a refused read or action with: a browser's not found and
/// forbidden, where the API's JSON protocol says 400 for both.
pub(super) fn page_status(e: &provisiond_model::AwsError) -> u16 {
    match e.code {
        "ResourceNotFoundException" => 404,
        "AccessDeniedException" => 403,
        _ => e.status,
    }
}

/// What a request carries that the pages read, taken from it before it moves to a blocking
/// thread.
pub(super) struct Asked {
    pub method: Method,
    /// The path below `/console`, without its leading `/` (`records/rec-…`).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub(super) cookie: Option<String>,
    /// Whether the request came from another origin (`Origin` not this host).
    pub(super) cross_origin: bool,
    pub host: String,
    pub last_event_id: Option<String>,
}

/// The signed-in session a request carries, if any (read on a blocking thread).
pub(super) fn session_of(
    console: &Console,
    asked: &Asked,
) -> Result<Option<Session>, crate::store::StoreError> {
    session::current(
        console.store.as_ref(),
        &console.keys,
        asked.cookie.as_deref(),
        crate::time::now_ms(),
    )
}

/// The context a page's domain reads run under: the session's key and region.
pub(super) fn context(
    console: &Console,
    session: &Session,
    asked: &Asked,
    request_id: &str,
) -> RequestContext {
    RequestContext {
        request_id: request_id.to_string(),
        identity: session.identity.clone(),
        region: session.region.clone(),
        now_ms: crate::time::now_ms(),
        store: console.store.clone(),
        server_key: console.server_key.clone(),
        host: asked.host.clone(),
    }
}

/// The frame's view of who is signed in.
pub(super) fn viewer(session: &Session) -> Viewer<'_> {
    Viewer {
        principal: &session.identity.principal,
        account: &session.identity.account,
        region: &session.region,
        csrf: &session.csrf,
        admin: session.identity.admin,
    }
}
