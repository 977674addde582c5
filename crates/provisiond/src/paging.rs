//! Opaque page tokens over the store's list order: a token is the position after which the next
//! page starts, so a page costs the same however many items there are.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

/// The token that continues after the item at `seq`.
pub fn token_after(seq: i64) -> String {
    B64.encode(format!("v1:{seq}"))
}

/// The position a token continues after; `None` when it is not a token we issued.
pub fn position(token: &str) -> Option<i64> {
    let raw = B64.decode(token).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.strip_prefix("v1:")?.parse().ok()
}

/// The page size to use: `requested` when in `1..=max`, else `default`.
pub fn page_size(requested: Option<i32>, default: usize, max: usize) -> usize {
    match requested {
        Some(n) if n > 0 => (n as usize).min(max),
        _ => default,
    }
}

/// The position a request's page token continues after; `None` for the first page. A token
/// provisiond did not issue answers Service Catalog's `InvalidParametersException`.
pub fn parse_token(token: Option<&str>) -> Result<Option<i64>, provisiond_model::AwsError> {
    match token {
        None | Some("") => Ok(None),
        Some(t) => position(t).map(Some).ok_or_else(|| {
            provisiond_model::servicecatalog::ErrorCode::InvalidParametersException
                .with("The page token is not valid.")
        }),
    }
}

/// Splits `size + 1` listed rows into the page and the token for the next one.
pub fn split_page<T>(mut rows: Vec<(i64, T)>, size: usize) -> (Vec<T>, Option<String>) {
    let next = if rows.len() > size {
        rows.truncate(size);
        rows.last().map(|(seq, _)| token_after(*seq))
    } else {
        None
    };
    (rows.into_iter().map(|(_, t)| t).collect(), next)
}

/// How many listed items one page may look at for items it keeps: a list narrowed in memory
/// (another principal's records left out, say) answers a short page with a token past what it
/// looked at, rather than reading the whole account for one call.
pub const SCAN_BUDGET: usize = 1_000;

/// One page of up to `size` items that `keep` admits, read in batches from the store by
/// `batch(from, limit)` (items as `(seq, item)` after or before `from`, in list order) starting
/// at `from`; the token continues after the last item returned, or after the last one looked
/// at when [`SCAN_BUDGET`] ran out first. A page whose first `size + 1` items are all kept
/// reads nothing more.
pub fn scan_page<T, E>(
    from: Option<i64>,
    size: usize,
    mut batch: impl FnMut(Option<i64>, usize) -> Result<Vec<(i64, T)>, E>,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), E> {
    let mut page: Vec<(i64, T)> = Vec::with_capacity(size + 1);
    let (mut from, mut looked) = (from, 0usize);
    let mut limit = size + 1;
    loop {
        let rows = batch(from, limit)?;
        let ended = rows.len() < limit;
        for (seq, item) in rows {
            looked += 1;
            from = Some(seq);
            if keep(&item) {
                page.push((seq, item));
                if page.len() > size {
                    return Ok(split_page(page, size));
                }
            }
        }
        if ended {
            return Ok(split_page(page, size));
        }
        if looked >= SCAN_BUDGET {
            let next = from.map(token_after);
            return Ok((page.into_iter().map(|(_, t)| t).collect(), next));
        }
        // The first batch reads no more than a full page needs; later ones, more at a time.
        limit = limit.max(100);
    }
}

/// The token that continues after the item whose sort key is `key`, for a list sorted by a key
/// of its own (a [`TopPage`]); `listing` names the list and its order, so that a token is taken
/// back only by the listing that issued it. Standard base64, the alphabet Proton's `NextToken`
/// admits.
pub fn token_after_key<K: serde::Serialize>(listing: &str, key: &K) -> String {
    let key = serde_json::to_string(key).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(format!("v1k:{listing}:{key}"))
}

/// The sort key a [`token_after_key`] token of `listing` continues after; `None` when the
/// token is not one that listing issued.
pub fn key_of_token<K: serde::de::DeserializeOwned>(listing: &str, token: &str) -> Option<K> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let key = text
        .strip_prefix("v1k:")?
        .strip_prefix(listing)?
        .strip_prefix(':')?;
    serde_json::from_str(key).ok()
}

/// One page of a list sorted by a key, gathered while the whole list streams by in any order:
/// the `size` items with the smallest keys past the cursor `after`, and whether more follow.
/// It holds `size + 1` items at most, however long the list.
pub struct TopPage<K: Ord, T> {
    after: Option<K>,
    size: usize,
    kept: std::collections::BinaryHeap<Keyed<K, T>>,
}

/// An item ordered by its key alone (the largest on top of [`TopPage`]'s heap, evicted first).
struct Keyed<K, T>(K, T);

impl<K: Ord, T> PartialEq for Keyed<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K: Ord, T> Eq for Keyed<K, T> {}
impl<K: Ord, T> PartialOrd for Keyed<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Keyed<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<K: Ord, T> TopPage<K, T> {
    pub fn new(after: Option<K>, size: usize) -> TopPage<K, T> {
        TopPage {
            after,
            size,
            kept: std::collections::BinaryHeap::with_capacity(size + 2),
        }
    }

    /// Considers `item`, whose key is `key`: kept if it is past the cursor and among the
    /// `size + 1` smallest seen.
    pub fn offer(&mut self, key: K, item: T) {
        if self.after.as_ref().is_some_and(|after| key <= *after) {
            return;
        }
        if self.kept.len() > self.size {
            if self.kept.peek().is_some_and(|largest| key >= largest.0) {
                return;
            }
            self.kept.pop();
        }
        self.kept.push(Keyed(key, item));
    }

    /// The page in key order, and whether an item past it was seen.
    pub fn finish(self) -> (Vec<(K, T)>, bool) {
        let mut rows: Vec<(K, T)> = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|Keyed(k, t)| (k, t))
            .collect();
        let more = rows.len() > self.size;
        rows.truncate(self.size);
        (rows, more)
    }
}

/// One page of a list already in memory: the items after position `after` (as read from a
/// page token; `-1` for the first page), `size` of them, and the token for the next page.
pub fn page_in_memory<T>(
    items: impl IntoIterator<Item = T>,
    after: i64,
    size: usize,
) -> (Vec<T>, Option<String>) {
    let rows: Vec<(i64, T)> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| (i as i64, item))
        .filter(|(i, _)| *i > after)
        .take(size + 1)
        .collect();
    split_page(rows, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items 0..n as a store would list them, `(seq, item)`, oldest first.
    fn listed(n: i64) -> impl FnMut(Option<i64>, usize) -> Result<Vec<(i64, i64)>, ()> {
        move |from, limit| {
            Ok((0..n)
                .filter(|i| from.is_none_or(|f| *i > f))
                .take(limit)
                .map(|i| (i, i))
                .collect())
        }
    }

    #[test]
    fn a_scanned_page_keeps_what_it_admits_and_stops_at_its_budget() {
        let (page, next) = scan_page(None, 3, listed(100), |i| i % 2 == 0).unwrap();
        assert_eq!(page, [0, 2, 4]);
        let (page, next) =
            scan_page(position(&next.unwrap()), 3, listed(100), |i| i % 2 == 0).unwrap();
        assert_eq!((page, next.is_some()), (vec![6, 8, 10], true));
        // The last page ends without a token.
        let (page, next) = scan_page(Some(94), 3, listed(100), |i| i % 2 == 0).unwrap();
        assert_eq!((page, next), (vec![96, 98], None));
        // Nothing admitted in 10,000 items: a short page, a token past what was looked at.
        let (page, next) = scan_page(None, 3, listed(10_000), |i| *i == 9_999).unwrap();
        assert!(page.is_empty());
        let resumed = position(&next.unwrap()).unwrap();
        assert!((SCAN_BUDGET as i64 - 1..2 * SCAN_BUDGET as i64).contains(&resumed));
        let mut from = Some(resumed);
        let mut found = Vec::new();
        while let Some(f) = from {
            let (page, next) = scan_page(Some(f), 3, listed(10_000), |i| *i == 9_999).unwrap();
            found.extend(page);
            from = next.and_then(|t| position(&t));
        }
        assert_eq!(found, [9_999], "following the tokens finds it");
    }

    #[test]
    fn a_keyed_token_is_taken_back_only_by_its_listing() {
        let key = ("b\u{e9}ta/\"quoted\"".to_string(), 42i64);
        let token = token_after_key("things:name:ascending", &key);
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=/".contains(&c)));
        assert_eq!(
            key_of_token::<(String, i64)>("things:name:ascending", &token),
            Some(key)
        );
        assert_eq!(
            key_of_token::<(String, i64)>("things:name:descending", &token),
            None
        );
        assert_eq!(key_of_token::<(String, i64)>("things", &token), None);
        assert_eq!(
            key_of_token::<(String, i64)>("things:name:ascending", "not base64!"),
            None
        );
        assert_eq!(
            key_of_token::<(String, i64)>("things:name:ascending", &token_after(7)),
            None
        );
    }

    #[test]
    fn a_top_page_keeps_the_smallest_keys_past_its_cursor_whatever_the_order_they_come_in() {
        // 1,000 keys in a scrambled order: the page of 3 after 500 is 501..=503, with more.
        let scrambled = (0..1_000u32).map(|i| (i * 7_919) % 1_000);
        let mut page = TopPage::new(Some(500), 3);
        for k in scrambled.clone() {
            page.offer(k, format!("item {k}"));
            assert!(page.kept.len() <= 4, "never more than the page and one");
        }
        let (rows, more) = page.finish();
        assert_eq!(
            rows.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [501, 502, 503]
        );
        assert_eq!(rows[0].1, "item 501");
        assert!(more);
        // The last page: no more.
        let mut page = TopPage::new(Some(997), 3);
        scrambled.for_each(|k| page.offer(k, ()));
        let (rows, more) = page.finish();
        assert_eq!((rows.len(), more), (2, false));
    }

    #[test]
    fn tokens_round_trip_and_reject_strangers() {
        assert_eq!(position(&token_after(42)), Some(42));
        assert_eq!(position("garbage"), None);
        assert_eq!(position(""), None);
        assert_eq!(page_size(None, 20, 100), 20);
        assert_eq!(page_size(Some(0), 20, 100), 20);
        assert_eq!(page_size(Some(5), 20, 100), 5);
        let (first, next) = page_in_memory(0..5, -1, 2);
        assert_eq!(first, [0, 1]);
        let after = position(&next.unwrap()).unwrap();
        let (second, next) = page_in_memory(0..5, after, 2);
        assert_eq!(second, [2, 3]);
        let (last, next) = page_in_memory(0..5, position(&next.unwrap()).unwrap(), 2);
        assert_eq!((last, next), (vec![4], None));
    }
}
