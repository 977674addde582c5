//! The XML of S3's answers: errors, bucket lists and object lists.

use crate::store::StoredObject;
use std::fmt::Write;

/// Escapes text for XML content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// `<Error><Code>…</Code><Message>…</Message>[<Resource>…</Resource>]<RequestId>…</RequestId></Error>`
pub fn error(code: &str, message: &str, resource: Option<&str>, request_id: &str) -> String {
    let resource = resource
        .map(|r| format!("<Resource>{}</Resource>", escape(r)))
        .unwrap_or_default();
    format!(
        "{HEADER}<Error><Code>{}</Code><Message>{}</Message>{resource}<RequestId>{}</RequestId></Error>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

/// ListBuckets.
pub fn list_buckets(owner: &str, buckets: &[(String, i64)]) -> String {
    let mut out = format!("{HEADER}<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Owner><Buckets>");
    for (name, created_ms) in buckets {
        let _ = write!(
            out,
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
            escape(name),
            crate::time::format_iso8601(*created_ms)
        );
    }
    out.push_str("</Buckets></ListAllMyBucketsResult>");
    out
}

/// What a ListObjectsV2 page says besides its objects.
pub struct ListV2<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The prefix asked for.
    pub prefix: &'a str,
    /// `max-keys`.
    pub max_keys: usize,
    /// Whether more objects follow.
    pub truncated: bool,
    /// The token of the next page.
    pub next_token: Option<String>,
    /// The continuation token given.
    pub continuation_token: Option<&'a str>,
    /// `start-after`, as given.
    pub start_after: Option<&'a str>,
}

/// ListObjectsV2.
pub fn list_objects_v2(page: &ListV2<'_>, objects: &[StoredObject]) -> String {
    let mut out = format!(
        "{HEADER}<ListBucketResult xmlns=\"{NS}\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys><IsTruncated>{}</IsTruncated>",
        escape(page.bucket),
        escape(page.prefix),
        objects.len(),
        page.max_keys,
        page.truncated
    );
    if let Some(t) = page.continuation_token {
        let _ = write!(out, "<ContinuationToken>{}</ContinuationToken>", escape(t));
    }
    if let Some(t) = &page.next_token {
        let _ = write!(
            out,
            "<NextContinuationToken>{}</NextContinuationToken>",
            escape(t)
        );
    }
    if let Some(s) = page.start_after {
        let _ = write!(out, "<StartAfter>{}</StartAfter>", escape(s));
    }
    for o in objects {
        let _ = write!(
            out,
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            escape(&o.key),
            crate::time::format_iso8601(o.created_ms),
            o.etag,
            o.size
        );
    }
    out.push_str("</ListBucketResult>");
    out
}
