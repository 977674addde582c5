//! `wrk` (Debian's package) as a second load generator beside `load.rs`: it replays one
//! prepared request (a signed one stays valid for the 15 minutes of SigV4's clock skew) over
//! keep-alive connections from one thread, costing the client far less than signing each
//! request, so a ratio measured with it shows the server rather than the generator.

use super::load::Prepared;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// What one `wrk` run measured.
#[derive(Debug, Clone)]
pub struct WrkRun {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub per_second: f64,
    /// The 50th and 99th percentile latencies.
    pub p50: Duration,
    pub p99: Duration,
    /// Answers that were not 2xx or 3xx, and socket errors.
    pub errors: u64,
}

/// Whether `wrk` is installed.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// The Lua script that makes `wrk` send `request` (its `host` header is the URL's, which is
/// what was signed).
fn script(request: &Prepared) -> String {
    let (headers, body) = request;
    let mut lua = String::from("wrk.method = \"POST\"\n");
    lua.push_str(&format!(
        "wrk.body = [==[{}]==]\n",
        String::from_utf8_lossy(body)
    ));
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        lua.push_str(&format!(
            "wrk.headers[\"{}\"] = [==[{}]==]\n",
            name.as_str(),
            value.to_str().unwrap_or_default()
        ));
    }
    lua
}

/// A latency as `wrk` prints it (`812.00us`, `3.21ms`, `1.02s`).
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Reads `wrk --latency`'s report.
fn parse(report: &str) -> Result<WrkRun, String> {
    let mut run = WrkRun {
        requests: 0,
        per_second: 0.0,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        errors: 0,
    };
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.per_second = n.parse().map_err(|_| line.to_string())?,
            [n, "requests", "in", ..] => run.requests = n.parse().map_err(|_| line.to_string())?,
            ["50%", d] => run.p50 = duration(d).ok_or_else(|| line.to_string())?,
            ["99%", d] => run.p99 = duration(d).ok_or_else(|| line.to_string())?,
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                run.errors += n.parse::<u64>().map_err(|_| line.to_string())?
            }
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    if run.requests == 0 {
        return Err(format!("wrk reported no requests:\n{report}"));
    }
    Ok(run)
}

/// Runs `wrk` for `seconds` against `addr` with `connections` connections on one thread,
/// replaying `request`.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    request: &Prepared,
) -> Result<WrkRun, String> {
    let dir = std::env::temp_dir().join(format!("provisiond-wrk-{}", crate::ids::uuid()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("request.lua");
    std::fs::write(&path, script(request)).map_err(|e| e.to_string())?;
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&path)
        .arg(format!("http://{addr}/"))
        .output()
        .map_err(|e| format!("running wrk: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrk_report_is_read() {
        let report = "Running 10s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n\
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.51ms  300.00us   9.00ms   80.00%\n\
            Latency Distribution\n     50%    1.44ms\n     75%    1.60ms\n     90%    1.90ms\n     99%  812.00us\n\
            412345 requests in 10.00s, 50.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
            Non-2xx or 3xx responses: 4\nRequests/sec:  41234.50\nTransfer/sec:      5.00MB\n";
        let run = parse(report).unwrap();
        assert_eq!(run.requests, 412_345);
        assert!((run.per_second - 41_234.5).abs() < 1e-9);
        assert_eq!(run.p50, Duration::from_micros(1440));
        assert_eq!(run.p99, Duration::from_micros(812));
        assert_eq!(run.errors, 7);
        assert!(parse("nothing").is_err());
    }

    #[test]
    fn the_script_sends_the_signed_headers_but_the_host() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:9".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=a/b, Signature=c"
                .parse()
                .unwrap(),
        );
        let lua = script(&(headers, b"{\"a\":\"]]\"}".to_vec()));
        assert!(lua.contains("wrk.body = [==[{\"a\":\"]]\"}]==]"));
        assert!(lua.contains(
            "wrk.headers[\"authorization\"] = [==[AWS4-HMAC-SHA256 Credential=a/b, Signature=c]==]"
        ));
        assert!(!lua.contains("host"));
    }
}
