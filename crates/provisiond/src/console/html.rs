//! HTML for the console: `Text` escapes every value that came from a user (names,
//! descriptions, parameters, outputs, log lines) for element content and quoted attributes
//! alike, `PathPart` for a URL path segment, and `page` is the frame every view shares.

use std::fmt::{self, Display, Write};

/// A user's value, escaped for HTML text and double- or single-quoted attribute values.
pub struct Text<'a>(pub &'a str);

impl Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'', '\0']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => "\u{fffd}",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// A value placed in a URL path segment or query value: everything but unreserved characters
/// percent-encoded, so it cannot end the segment, start a query or leave the attribute.
pub struct PathPart<'a>(pub &'a str);

impl Display for PathPart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                f.write_char(b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// Who is signed in, as the frame shows them.
pub struct Viewer<'a> {
    /// The key's principal ARN.
    pub principal: &'a str,
    /// Its account.
    pub account: &'a str,
    /// The session's region.
    pub region: &'a str,
    /// The session's CSRF token, carried by every form.
    pub csrf: &'a str,
    /// Whether the key administers the account.
    pub admin: bool,
}

/// The console's sections, in the navigation's order: (path, label, for admin keys only).
pub const SECTIONS: &[(&str, &str, bool)] = &[
    ("/console/", "Overview", false),
    ("/console/records", "Records", false),
    ("/console/portfolios", "Portfolios", false),
    ("/console/proton", "Proton", false),
    ("/console/dead-letters", "Dead letters", false),
    ("/console/audit", "Audit", true),
];

/// A whole page: the frame (navigation, who is signed in, sign-out) around `body`, which the
/// view built with every user value passed through [`Text`].
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, current: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · provisiond</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>",
        Text(title)
    );
    out.push_str("<header><a class=\"brand\" href=\"/console/\">provisiond</a>");
    if let Some(v) = viewer {
        out.push_str("<nav>");
        for (path, label, _) in SECTIONS.iter().filter(|(_, _, admin)| v.admin || !admin) {
            let here = if *path == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<a href=\"{path}\"{here}>{label}</a>");
        }
        let _ = write!(
            out,
            "</nav><div class=\"who\"><span title=\"{p}\">{p}</span> · {a} · {r}{admin}\
             <form method=\"post\" action=\"/console/sign-out\">{csrf}\
             <button type=\"submit\">Sign out</button></form></div>",
            p = Text(v.principal),
            a = Text(v.account),
            r = Text(v.region),
            admin = if v.admin { " · admin" } else { "" },
            csrf = csrf_field(v.csrf),
        );
    }
    let _ = write!(out, "</header><main><h1>{}</h1>", Text(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// The hidden form field carrying the session's CSRF token.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        Text(csrf)
    )
}

/// Epoch milliseconds as `2026-12-04 10:11:12Z`.
pub fn when(ms: i64) -> String {
    let iso = crate::time::format_iso8601(ms);
    iso.get(..19)
        .map_or(iso.clone(), |s| format!("{}Z", s.replace('T', " ")))
}

/// A duration in milliseconds as people say it: `42s`, `3m 5s`, `2h 10m`, `3d 4h`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A status as a badge whose class (its lowercase name) colors it.
pub fn badge(status: &str) -> String {
    let class: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    format!("<span class=\"badge s-{class}\">{}</span>", Text(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_what_could_end_an_element_or_an_attribute() {
        let hostile = "<script>alert('x')</script> & \"quoted\"\0";
        let out = Text(hostile).to_string();
        assert_eq!(
            out,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;\u{fffd}"
        );
        assert_eq!(Text("plain ünïcode").to_string(), "plain ünïcode");
    }

    #[test]
    fn a_path_part_cannot_leave_its_segment() {
        assert_eq!(PathPart("rec-abc").to_string(), "rec-abc");
        assert_eq!(
            PathPart("a/../b?c=\"d\" e").to_string(),
            "a%2F..%2Fb%3Fc%3D%22d%22%20e"
        );
    }

    #[test]
    fn the_frame_escapes_the_title_and_who_is_signed_in() {
        let viewer = Viewer {
            principal: "arn:aws:iam::111122223333:role/<b>",
            account: "111122223333",
            region: "us-east-1",
            csrf: "tok\"en",
            admin: true,
        };
        let html = page("<i>x</i>", Some(&viewer), "/console/", "<p>body</p>");
        assert!(html.contains("<title>&lt;i&gt;x&lt;/i&gt; · provisiond</title>"));
        assert!(html.contains("role/&lt;b&gt;"));
        assert!(!html.contains("role/<b>"));
        assert!(html.contains("value=\"tok&quot;en\""));
        assert!(html.contains("<a href=\"/console/\" aria-current=\"page\">Overview</a>"));
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(185_000), "3m 5s");
        assert_eq!(age(7_800_000), "2h 10m");
        assert_eq!(age(273_600_000), "3d 4h");
        assert_eq!(
            badge("IN_PROGRESS\"><x"),
            "<span class=\"badge s-in_progressx\">IN_PROGRESS&quot;&gt;&lt;x</span>"
        );
    }
}
