//! The console's stylesheet and script, embedded in the binary: no CDN, no build step.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Serves `name` (`console.css`, `console.js`), or 404.
pub fn serve(name: &str, method: &Method) -> Response<Full<Bytes>> {
    let found = match name {
        "console.css" => Some(("text/css; charset=utf-8", CSS)),
        "console.js" => Some(("text/javascript; charset=utf-8", JS)),
        _ => None,
    };
    let (status, content_type, body) = match (method, found) {
        (&Method::GET | &Method::HEAD, Some((content_type, body))) => (200, content_type, body),
        (&Method::GET | &Method::HEAD, None) => (404, "text/plain; charset=utf-8", "not found\n"),
        _ => (405, "text/plain; charset=utf-8", "method not allowed\n"),
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND))
        .header("content-type", content_type)
        .header("cache-control", "public, max-age=300")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
