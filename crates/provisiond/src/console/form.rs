//! `application/x-www-form-urlencoded` forms and query strings, as browsers send them: `+` is a
//! space, `%XX` a byte, anything malformed kept as written, invalid UTF-8 replaced.

/// The decoded `name=value` pairs of a form body or query string, in order.
pub fn parse(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            (decode(name), decode(value))
        })
        .collect()
}

/// The first value of `name`, if given.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode(part: &[u8]) -> String {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                part.get(i + 1).and_then(|b| hex(*b)),
                part.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_browsers_encode_them() {
        let pairs = parse(b"access_key_id=AKIA&secret=a%2Bb+c%3D&empty=&flag&reason=caf%C3%A9");
        assert_eq!(get(&pairs, "access_key_id"), Some("AKIA"));
        assert_eq!(get(&pairs, "secret"), Some("a+b c="));
        assert_eq!(get(&pairs, "empty"), Some(""));
        assert_eq!(get(&pairs, "flag"), Some(""));
        assert_eq!(get(&pairs, "reason"), Some("café"));
        assert_eq!(get(&pairs, "missing"), None);
    }

    #[test]
    fn malformed_input_is_kept_not_refused() {
        let pairs = parse(b"a=%zz%4&b=%ff&&=x");
        assert_eq!(get(&pairs, "a"), Some("%zz%4"));
        assert_eq!(get(&pairs, "b"), Some("\u{fffd}"));
        assert_eq!(get(&pairs, ""), Some("x"));
    }
}
