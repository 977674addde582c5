//! The S3 request router: any method, host, path and query (first byte the method; then the
//! host up to a newline, the path, and the query after the first `?`) routes, virtual-hosted or
//! path-style, to a served operation or answers NotImplemented, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond::s3::route;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let method = match which % 6 {
        0 => http::Method::GET,
        1 => http::Method::PUT,
        2 => http::Method::DELETE,
        3 => http::Method::HEAD,
        4 => http::Method::POST,
        _ => http::Method::PATCH,
    };
    let text = String::from_utf8_lossy(rest);
    let (host, target) = text.split_once('\n').unwrap_or(("", &text));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let host = (!host.is_empty()).then_some(host);
    let _ = route(&method, host, "localhost", path, query);
});
