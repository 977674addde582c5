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
