//! Translates the Java regular expressions of the botocore models into Rust `regex` syntax with
//! the same meaning, anchored so that the pattern must match the whole value (as AWS validates).
//!
//! Java and Rust disagree on a few classes: `\w`, `\d` and `\s` are ASCII-only in Java and
//! Unicode-aware in Rust; `.` excludes every Java line terminator; `\uXXXX` escapes (and UTF-16
//! surrogate pairs written as two of them) become `\x{…}` code points. Anything this translator
//! does not know is an error, so a new construct in a model cannot slip through unnoticed.

/// Translates `java` into an anchored Rust regex, or says which construct is unknown.
pub fn translate(java: &str) -> Result<String, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = *chars
                    .get(i + 1)
                    .ok_or_else(|| format!("trailing backslash in {java:?}"))?;
                i += 2;
                match next {
                    'd' => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                    'w' => out.push_str(if in_class {
                        "0-9A-Za-z_"
                    } else {
                        "[0-9A-Za-z_]"
                    }),
                    's' => out.push_str(if in_class {
                        "\\t\\n\\x0B\\x0C\\r "
                    } else {
                        "[\\t\\n\\x0B\\x0C\\r ]"
                    }),
                    'p' | 'P' => {
                        // \p{L}, \p{Z}, \p{N}: the same general categories in both engines.
                        let end = chars[i..]
                            .iter()
                            .position(|&c| c == '}')
                            .ok_or_else(|| format!("unterminated \\p in {java:?}"))?;
                        let class: String = chars[i..=i + end].iter().collect();
                        if !matches!(class.as_str(), "{L}" | "{Z}" | "{N}") {
                            return Err(format!("unknown property class \\p{class} in {java:?}"));
                        }
                        out.push('\\');
                        out.push(next);
                        out.push_str(&class);
                        i += end + 1;
                    }
                    'u' => {
                        let (code, used) = read_utf16_escape(&chars, i, java)?;
                        i += used;
                        out.push_str(&format!("\\x{{{code:X}}}"));
                    }
                    '/' => out.push('/'),
                    '-' if !in_class => out.push('-'),
                    '\\' | '-' | '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}'
                    | '|' | '^' | '$' => {
                        out.push('\\');
                        out.push(next);
                    }
                    other => return Err(format!("unknown escape \\{other} in {java:?}")),
                }
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            '[' => return Err(format!("nested character class in {java:?}")),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '.' if !in_class => out.push_str("[^\\n\\r\\x{85}\\x{2028}\\x{2029}]"),
            '&' if in_class && chars.get(i + 1) == Some(&'&') => {
                return Err(format!("class intersection in {java:?}"))
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err(format!("unterminated character class in {java:?}"));
    }
    Ok(format!("\\A(?:{out})\\z"))
}

/// Reads the hex digits after `\u` at `chars[at..]`; a high surrogate followed by `\u` and a low
/// surrogate combines into one code point. Returns the code point and the characters consumed.
fn read_utf16_escape(chars: &[char], at: usize, java: &str) -> Result<(u32, usize), String> {
    let hex = |from: usize| -> Result<u32, String> {
        let digits: String = chars
            .get(from..from + 4)
            .ok_or_else(|| format!("short \\u escape in {java:?}"))?
            .iter()
            .collect();
        u32::from_str_radix(&digits, 16).map_err(|_| format!("bad \\u escape in {java:?}"))
    };
    let unit = hex(at)?;
    if (0xD800..0xDC00).contains(&unit) {
        let low_at = at + 4;
        if chars.get(low_at) == Some(&'\\') && chars.get(low_at + 1) == Some(&'u') {
            let low = hex(low_at + 2)?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return Ok((code, 10));
            }
        }
        return Err(format!("lone high surrogate in {java:?}"));
    }
    if (0xDC00..0xE000).contains(&unit) {
        return Err(format!("lone low surrogate in {java:?}"));
    }
    Ok((unit, 4))
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn check(java: &str, rust: &str) {
        assert_eq!(translate(java).unwrap(), rust, "translating {java}");
    }

    #[test]
    fn classes_become_ascii_like_java() {
        check(r"^\d{12}$", r"\A(?:^[0-9]{12}$)\z");
        check(r"[\w+=,.@-]+", r"\A(?:[0-9A-Za-z_+=,.@-]+)\z");
        check(r"[0-9A-Za-z+\/=]+", r"\A(?:[0-9A-Za-z+/=]+)\z");
        check(r"^[a-zA-Z0-9_\-]*", r"\A(?:^[a-zA-Z0-9_\-]*)\z");
    }

    #[test]
    fn utf16_escapes_become_code_points() {
        check(
            r"[\u0009\u000a\u000d\u0020-\uD7FF\uE000-\uFFFD]*",
            r"\A(?:[\x{9}\x{A}\x{D}\x{20}-\x{D7FF}\x{E000}-\x{FFFD}]*)\z",
        );
        check(
            r"[\uD800\uDC00-\uDBFF\uDFFF]",
            r"\A(?:[\x{10000}-\x{10FFFF}])\z",
        );
    }

    #[test]
    fn dot_excludes_java_line_terminators() {
        check("a.b", r"\A(?:a[^\n\r\x{85}\x{2028}\x{2029}]b)\z");
        check("[.]", r"\A(?:[.])\z");
    }

    #[test]
    fn unknown_constructs_are_refused() {
        assert!(translate(r"\bword").is_err());
        assert!(translate(r"[a&&b]").is_err());
        assert!(translate(r"\uD800").is_err());
        assert!(translate(r"\p{Lu}").is_err());
    }
}
