//! Which page a console request is for, who asks (the session, or the sign-in page when there
//! is none), the CSRF check every form post passes, sign-in and sign-out.

use super::html::{self, Text};
use super::page::{context, message_page, page_status, session_of, viewer, Asked, Reply};
use super::session::{self, SignInError};
use super::{
    assets, audit_log, dead_letters, events, form, overview, portfolios, proton_resources,
    provisioned_product, record, records, Console,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::Arc;

/// Largest form body a console page posts: 16 KiB.
const FORM_LIMIT: usize = 16 << 10;

/// Serves one request under `/console`.
pub async fn handle(
    console: Arc<Console>,
    req: Request<Incoming>,
    request_id: String,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/console" {
        return Reply::redirect("/console/").into_response();
    }
    let below = path
        .strip_prefix("/console/")
        .unwrap_or_default()
        .to_string();
    if let Some(asset) = below.strip_prefix("assets/") {
        return assets::serve(asset, req.method());
    }
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = header(hyper::header::HOST).unwrap_or_default();
    let cross_origin = header(hyper::header::ORIGIN)
        .is_some_and(|origin| origin.split_once("://").map(|(_, h)| h) != Some(host.as_str()));
    let mut asked = Asked {
        method: req.method().clone(),
        path: below,
        query: form::parse(req.uri().query().unwrap_or_default().as_bytes()),
        form: Vec::new(),
        cookie: header(hyper::header::COOKIE),
        cross_origin,
        host,
        last_event_id: req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    if asked.method == Method::POST {
        match Limited::new(req.into_body(), FORM_LIMIT).collect().await {
            Ok(body) => asked.form = form::parse(&body.to_bytes()),
            Err(_) => {
                return message_page(
                    413,
                    "Too large",
                    None,
                    "The form is larger than a console form can be.",
                )
                .into_response()
            }
        }
    }
    if asked.method == Method::GET && asked.path.ends_with("/events") {
        return events::stream(console, asked).await;
    }
    let reply = tokio::task::spawn_blocking(move || route(&console, &asked, &request_id))
        .await
        .unwrap_or_else(|_| {
            message_page(
                500,
                "Something went wrong",
                None,
                "The page failed; the server's log says why.",
            )
        });
    reply.into_response()
}

fn route(console: &Console, asked: &Asked, request_id: &str) -> Reply {
    let segments: Vec<&str> = asked.path.split('/').collect();
    let post = asked.method == Method::POST;
    if !post && asked.method != Method::GET && asked.method != Method::HEAD {
        return message_page(
            405,
            "Not allowed",
            None,
            "The console answers GET and POST only.",
        );
    }
    if post && asked.cross_origin {
        return message_page(
            403,
            "Refused",
            None,
            "A console form must be posted from the console itself.",
        );
    }
    let session = match session_of(console, asked) {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(request_id, error = %e, "reading a console session");
            return message_page(
                503,
                "Unavailable",
                None,
                "The store cannot be read now; try again.",
            );
        }
    };
    if segments == ["sign-in"] {
        return if post {
            sign_in(console, asked, request_id)
        } else if session.is_some() {
            Reply::redirect("/console/")
        } else {
            sign_in_page(200, None)
        };
    }
    let Some(session) = session else {
        return if post {
            message_page(
                403,
                "Signed out",
                None,
                "Your session has ended; sign in again.",
            )
        } else {
            Reply::redirect("/console/sign-in")
        };
    };
    let viewer = viewer(&session);
    if post && !session::csrf_matches(&session, form::get(&asked.form, "csrf")) {
        return message_page(
            403,
            "Refused",
            Some(&viewer),
            "The form's CSRF token is missing or wrong; reload the page and try again.",
        );
    }
    let ctx = context(console, &session, asked, request_id);
    let reply = match (post, segments.as_slice()) {
        (true, ["sign-out"]) => {
            if let Err(e) = session::end(console.store.as_ref(), &session.id) {
                tracing::error!(request_id, error = %e, "ending a console session");
            }
            return Reply::redirect("/console/sign-in").with_cookie(session::clear_cookie());
        }
        (false, [""]) => overview::page(console, &ctx, &viewer),
        (false, ["records"]) => records::page(&ctx, &viewer, &asked.query),
        (false, ["records", id]) => record::page(console, &ctx, &viewer, id, &asked.query),
        (false, ["provisioned-products", id]) => provisioned_product::page(&ctx, &viewer, id),
        (false, ["audit"]) => audit_log::page(&ctx, &viewer, &asked.query),
        (false, ["portfolios"]) => portfolios::page(&ctx, &viewer),
        (false, ["proton"]) => proton_resources::page(&ctx, &viewer),
        (false, ["dead-letters"]) => dead_letters::page(&ctx, &viewer, &asked.query),
        (true, ["dead-letters", "redrive"]) => dead_letters::redrive(&ctx, &asked.form),
        (true, ["records", id, action @ ("fail" | "retry")]) => {
            record::act(console, &ctx, &viewer, id, action, &asked.form)
        }
        _ => Ok(message_page(
            404,
            "Not found",
            Some(&viewer),
            "There is no such console page.",
        )),
    };
    reply.unwrap_or_else(|e| {
        if e.status >= 500 {
            tracing::error!(request_id, code = e.code, "a console page failed");
        }
        message_page(
            page_status(&e),
            "Refused",
            Some(&viewer),
            &format!("{}: {}", e.code, e.message),
        )
    })
}

fn sign_in(console: &Console, asked: &Asked, request_id: &str) -> Reply {
    let field = |name| form::get(&asked.form, name).unwrap_or_default().trim();
    let region = match field("region") {
        "" => "us-east-1",
        given => given,
    };
    match session::sign_in(
        console.store.as_ref(),
        &console.keys,
        field("access_key_id"),
        form::get(&asked.form, "secret_access_key").unwrap_or_default(),
        region,
        crate::time::now_ms(),
    ) {
        Ok((_, cookie)) => Reply::redirect("/console/").with_cookie(session::set_cookie(&cookie)),
        Err(SignInError::Refused) => sign_in_page(
            401,
            Some("That access key id and secret access key do not sign in (or the region is not a region's name)."),
        ),
        Err(SignInError::Store(e)) => {
            tracing::error!(request_id, error = %e, "signing in to the console");
            sign_in_page(503, Some("The store cannot be read now; try again."))
        }
    }
}

fn sign_in_page(status: u16, error: Option<&str>) -> Reply {
    let mut body = String::new();
    if let Some(error) = error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            Text(error)
        ));
    }
    body.push_str(
        "<form class=\"sign-in\" method=\"post\" action=\"/console/sign-in\">\
         <label>Access key id <input name=\"access_key_id\" autocomplete=\"username\" required \
         spellcheck=\"false\"></label>\
         <label>Secret access key <input name=\"secret_access_key\" type=\"password\" \
         autocomplete=\"current-password\" required></label>\
         <label>Region <input name=\"region\" value=\"us-east-1\" spellcheck=\"false\"></label>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Use a key made by <code>provisiond admin create-key</code>; the secret \
         is checked and forgotten: the browser keeps only a session cookie.</p>",
    );
    Reply::html(status, html::page("Sign in", None, "", &body))
}
