//! A record's engine log as server-sent events (`GET /console/records/<id>/events`): each
//! answer waits until the log has new complete lines (up to 10 s), sends them as one event
//! whose id is the byte offset after them, and ends; the browser's `EventSource` reconnects
//! with `Last-Event-ID`, so no connection is held open past a wait and the stream resumes where
//! it was after any drop. Once the record is settled the rest of the log goes out with an
//! `end` event.

use super::page::{self, Asked};
use super::Console;
use crate::catalog::provisioning;
use crate::store::{transact, Mode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one answer waits for new lines.
const WAIT: Duration = Duration::from_secs(10);
/// How often the log file is looked at while waiting.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// The most of the log one answer carries.
const CHUNK: u64 = 64 << 10;

fn answer(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(
            "content-type",
            if status == 200 {
                "text/event-stream"
            } else {
                "text/plain; charset=utf-8"
            },
        )
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A refusal: its status and text.
type Refused = (u16, String);

/// Whether the record `id` is still in progress, read with the request's session; `Err` is
/// the answer when there is no session or no such record.
fn record_open(console: &Console, asked: &Asked, id: &str) -> Result<bool, Refused> {
    let session = page::session_of(console, asked)
        .map_err(|_| (503, "the store cannot be read now\n".to_string()))?
        .ok_or_else(|| (403, "sign in first\n".to_string()))?;
    let ctx = page::context(console, &session, asked, "");
    let scope = ctx.scope();
    let record = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        provisioning::get_record(tx, &scope, id)
    })
    .map_err(|e| (page::page_status(&e), format!("{}\n", e.message)))?;
    Ok(record.status.in_progress())
}

/// The bytes of `path` from `offset`, up to `CHUNK`, cut after the last complete line unless
/// `whole` (the run is over: a last line without its newline goes too).
fn read_from(path: &Path, offset: u64, whole: bool) -> std::io::Result<Vec<u8>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() <= offset {
        return Ok(Vec::new());
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(CHUNK).read_to_end(&mut bytes)?;
    if !whole || bytes.len() as u64 == CHUNK {
        let end = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        bytes.truncate(end);
    }
    Ok(bytes)
}

/// The lines of `bytes` as one event whose id is `next`.
pub fn event(bytes: &[u8], next: u64) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = format!("id: {next}\n");
    for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Serves `records/<id>/events`.
pub async fn stream(console: Arc<Console>, asked: Asked) -> Response<Full<Bytes>> {
    let segments: Vec<&str> = asked.path.split('/').collect();
    let ["records", id, "events"] = segments.as_slice() else {
        return answer(404, "no such console page\n".into());
    };
    let id = id.to_string();
    let offset: u64 = asked
        .last_event_id
        .as_deref()
        .or_else(|| super::form::get(&asked.query, "from"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let path = provisiond_engine::terraform::log_path(&console.data_dir, &id);
    let asked = Arc::new(asked);
    let check = {
        let (console, asked, id) = (console.clone(), asked.clone(), id.clone());
        move || {
            let (console, asked, id) = (console.clone(), asked.clone(), id.clone());
            async move {
                tokio::task::spawn_blocking(move || record_open(&console, &asked, &id))
                    .await
                    .unwrap_or_else(|_| Err((500, "the check failed\n".to_string())))
            }
        }
    };
    let mut open = match check().await {
        Ok(open) => open,
        Err((status, text)) => return answer(status, text),
    };
    let started = Instant::now();
    let mut checked = Instant::now();
    loop {
        let bytes = match read_from(&path, offset, !open) {
            Ok(bytes) => bytes,
            Err(e) => return answer(500, format!("reading the log: {e}\n")),
        };
        let mut body = String::from("retry: 500\n\n");
        if !bytes.is_empty() {
            body.push_str(&event(&bytes, offset + bytes.len() as u64));
            if open || bytes.len() as u64 == CHUNK {
                return answer(200, body);
            }
        }
        if !open {
            body.push_str("event: end\ndata: settled\n\n");
            return answer(200, body);
        }
        if started.elapsed() >= WAIT {
            return answer(200, body);
        }
        tokio::time::sleep(LOOK_EVERY).await;
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            open = match check().await {
                Ok(open) => open,
                Err((status, text)) => return answer(status, text),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_one_event_with_the_next_offset() {
        assert_eq!(event(b"one\r\ntwo\n", 9), "id: 9\ndata: one\ndata: two\n\n");
        assert_eq!(
            event(b"<b>\n", 4),
            "id: 4\ndata: <b>\n\n",
            "the page sets it as text, never as HTML"
        );
    }

    #[test]
    fn only_complete_lines_are_sent_while_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        assert!(read_from(&path, 0, false).unwrap().is_empty());
        std::fs::write(&path, "a\nb\npartial").unwrap();
        assert_eq!(read_from(&path, 0, false).unwrap(), b"a\nb\n");
        assert_eq!(read_from(&path, 2, false).unwrap(), b"b\n");
        assert_eq!(read_from(&path, 4, false).unwrap(), b"");
        assert_eq!(read_from(&path, 4, true).unwrap(), b"partial");
        assert!(read_from(&path, 99, true).unwrap().is_empty());
    }
}
