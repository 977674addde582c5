//! Input validation with AWS's framework wording.
//!
//! Every violation of an input is collected (none stops the others), then reported as one
//! `ValidationException`: `N validation error(s) detected: Value '<v>' at '<path>' failed to
//! satisfy constraint: Member must …; …`. Paths name members with their first letter lower-cased
//! and list elements as `<list>.<1-based index>.member`. Lengths count UTF-16 code units, as
//! Java's `String.length()` does. Sensitive values are never echoed (`Value at '<path>' …`).

use super::{AwsError, CommonError};
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;

/// A model pattern: the Java original, quoted in messages, and its Rust translation, which
/// must match the whole value. Compiled once, on first use.
pub struct Pattern {
    /// The pattern as the model writes it.
    pub java: &'static str,
    /// The anchored Rust translation (see `codegen/src/javaregex.rs`).
    pub rust: &'static str,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    /// A pattern that compiles on first use.
    pub const fn new(java: &'static str, rust: &'static str) -> Self {
        Pattern {
            java,
            rust,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled regex; panics only if the generator emitted a pattern that does not compile,
    /// which a test of every pattern rules out.
    pub fn regex(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            Regex::new(self.rust).unwrap_or_else(|e| panic!("pattern {:?}: {e}", self.java))
        })
    }

    /// Whether the whole of `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.regex().is_match(value)
    }
}

/// Constraints of a string shape.
pub struct StringRule {
    /// Minimum length in UTF-16 code units.
    pub min: Option<i64>,
    /// Maximum length in UTF-16 code units.
    pub max: Option<i64>,
    /// A pattern the whole value must match.
    pub pattern: Option<&'static Pattern>,
    /// The enum's values; empty when the shape is no enum.
    pub values: &'static [&'static str],
    /// Whether the model marks the value sensitive (never echoed).
    pub sensitive: bool,
}

/// Bounds of an integer or long shape.
pub struct NumberRule {
    /// Smallest allowed value.
    pub min: Option<i64>,
    /// Largest allowed value.
    pub max: Option<i64>,
}

/// Bounds on the number of items of a list or map.
pub struct LengthRule {
    /// Fewest items.
    pub min: Option<i64>,
    /// Most items.
    pub max: Option<i64>,
}

/// Where a value sits in the input, built without allocating and rendered only on a violation.
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
    redacted: bool,
}

enum Segment<'a> {
    Root,
    /// Marks what lies below as sensitive; renders nothing.
    Redacted,
    Member(&'static str),
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    /// The top of an input.
    pub const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
        redacted: false,
    };

    /// The same place, below which values are sensitive: never echoed in messages (a structure,
    /// list or map the model marks `sensitive`, and everything in it).
    pub fn redacted(&'a self) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Redacted,
            redacted: true,
        }
    }

    /// Whether values at this place are sensitive.
    pub fn is_redacted(&self) -> bool {
        self.redacted
    }

    /// The member `name` (already lower-cased first letter) of this structure.
    pub fn member(&'a self, name: &'static str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Member(name),
            redacted: self.redacted,
        }
    }

    /// Item `index` (0-based) of this list.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
            redacted: self.redacted,
        }
    }

    /// The value under `key` of this map.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
            redacted: self.redacted,
        }
    }

    /// The path as AWS writes it: `outputs.1.member.key`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.render_into(out);
        }
        let sep = if out.is_empty() { "" } else { "." };
        match self.segment {
            Segment::Root | Segment::Redacted => {}
            Segment::Member(name) => {
                let _ = write!(out, "{sep}{name}");
            }
            Segment::Index(i) => {
                let _ = write!(out, "{sep}{}.member", i + 1);
            }
            Segment::Key(k) => {
                let _ = write!(out, "{sep}{}", cut(k, KEY_ECHO_CHARS));
            }
        }
    }
}

/// Implemented (by generated code) for every structure of a model.
pub trait Validate {
    /// Adds every violation of this value, found at `path`, to `v`.
    fn validate(&self, path: &Path<'_>, v: &mut Violations);
}

/// Validates a whole input: `Ok(input)` or the `ValidationException` listing every violation.
pub fn check<T: Validate>(input: T) -> Result<T, AwsError> {
    let mut v = Violations::default();
    input.validate(&Path::ROOT, &mut v);
    match v.into_error() {
        Some(e) => Err(e),
        None => Ok(input),
    }
}

/// The violations found so far.
#[derive(Debug, Default)]
pub struct Violations {
    messages: Vec<String>,
}

fn utf16_len(s: &str) -> i64 {
    if s.is_ascii() {
        s.len() as i64
    } else {
        s.encode_utf16().count() as i64
    }
}

/// The reasons `value` breaks `rule`, in AWS's words (length, then pattern, then enum).
fn string_reasons(value: &str, rule: &StringRule) -> Vec<String> {
    let mut reasons = Vec::new();
    let len = utf16_len(value);
    if let Some(max) = rule.max {
        if len > max {
            reasons.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
    }
    if let Some(min) = rule.min {
        if len < min {
            reasons.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
    }
    if let Some(p) = rule.pattern {
        if !p.matches(value) {
            reasons.push(format!(
                "Member must satisfy regular expression pattern: {}",
                p.java
            ));
        }
    }
    if !rule.values.is_empty() && !rule.values.contains(&value) {
        reasons.push(format!(
            "Member must satisfy enum value set: [{}]",
            rule.values.join(", ")
        ));
    }
    reasons
}

fn length_reasons(len: usize, rule: &LengthRule) -> Vec<String> {
    let len = len as i64;
    let mut reasons = Vec::new();
    if let Some(max) = rule.max {
        if len > max {
            reasons.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
    }
    if let Some(min) = rule.min {
        if len < min {
            reasons.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
    }
    reasons
}

fn java_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// The most characters of a value a message echoes; longer values are cut and end in `...`
/// (docs/decisions.md).
pub const VALUE_ECHO_CHARS: usize = 256;

/// The most characters of a map key a path shows.
pub const KEY_ECHO_CHARS: usize = 64;

/// `text` cut to `max` characters, `...` marking a cut.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}...", &text[..end])),
    }
}

impl Violations {
    fn push(&mut self, value: Option<&str>, path: &Path<'_>, reason: &str) {
        let value = match value.filter(|_| !path.is_redacted()) {
            Some(v) => format!("Value '{}' at", cut(v, VALUE_ECHO_CHARS)),
            None => "Value at".to_string(),
        };
        self.messages.push(format!(
            "{value} '{}' failed to satisfy constraint: {reason}",
            path.render()
        ));
    }

    /// A required member is absent.
    pub fn missing(&mut self, path: &Path<'_>) {
        self.messages.push(format!(
            "Value null at '{}' failed to satisfy constraint: Member must not be null",
            path.render()
        ));
    }

    /// Checks a string member against its shape's rule.
    pub fn string(
        &mut self,
        path: &Path<'_>,
        value: Option<&str>,
        required: bool,
        rule: &StringRule,
    ) {
        match value {
            None if required => self.missing(path),
            None => {}
            Some(value) => {
                let shown = (!rule.sensitive).then_some(value);
                for reason in string_reasons(value, rule) {
                    self.push(shown, path, &reason);
                }
            }
        }
    }

    /// Checks an integer or long member against its shape's bounds.
    pub fn number(
        &mut self,
        path: &Path<'_>,
        value: Option<i64>,
        required: bool,
        rule: &NumberRule,
    ) {
        match value {
            None if required => self.missing(path),
            None => {}
            Some(n) => {
                let shown = n.to_string();
                if let Some(max) = rule.max {
                    if n > max {
                        self.push(
                            Some(&shown),
                            path,
                            &format!("Member must have value less than or equal to {max}"),
                        );
                    }
                }
                if let Some(min) = rule.min {
                    if n < min {
                        self.push(
                            Some(&shown),
                            path,
                            &format!("Member must have value greater than or equal to {min}"),
                        );
                    }
                }
            }
        }
    }

    /// Checks the number of items of a list.
    pub fn list_len<T: Serialize>(&mut self, path: &Path<'_>, items: &[T], rule: &LengthRule) {
        let reasons = length_reasons(items.len(), rule);
        if !reasons.is_empty() {
            let shown = serde_json::to_string(items).unwrap_or_default();
            for reason in reasons {
                self.push(Some(&shown), path, &reason);
            }
        }
    }

    /// Checks every item of a list of strings; all broken constraints form one violation.
    pub fn string_items(&mut self, path: &Path<'_>, items: &[String], rule: &StringRule) {
        let mut reasons: Vec<String> = Vec::new();
        for item in items {
            for r in string_reasons(item, rule) {
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
        }
        if !reasons.is_empty() {
            let shown = (!rule.sensitive).then(|| java_list(items.iter().map(String::as_str)));
            self.push(
                shown.as_deref(),
                path,
                &format!("Member must satisfy constraint: [{}]", reasons.join(", ")),
            );
        }
    }

    /// Checks the number of entries of a map.
    pub fn map_len<T: Serialize>(
        &mut self,
        path: &Path<'_>,
        map: &BTreeMap<String, T>,
        rule: &LengthRule,
    ) {
        let reasons = length_reasons(map.len(), rule);
        if !reasons.is_empty() {
            let shown = serde_json::to_string(map).unwrap_or_default();
            for reason in reasons {
                self.push(Some(&shown), path, &reason);
            }
        }
    }

    /// Checks every key of a map; all broken constraints form one violation.
    pub fn map_keys<T: Serialize>(
        &mut self,
        path: &Path<'_>,
        map: &BTreeMap<String, T>,
        rule: &StringRule,
    ) {
        self.map_strings(path, map, map.keys().map(String::as_str), rule, "Map keys");
    }

    /// Checks every value of a map of strings; all broken constraints form one violation.
    pub fn map_values(
        &mut self,
        path: &Path<'_>,
        map: &BTreeMap<String, String>,
        rule: &StringRule,
    ) {
        self.map_strings(
            path,
            map,
            map.values().map(String::as_str),
            rule,
            "Map value",
        );
    }

    fn map_strings<'m, T: Serialize>(
        &mut self,
        path: &Path<'_>,
        map: &BTreeMap<String, T>,
        strings: impl Iterator<Item = &'m str>,
        rule: &StringRule,
        what: &str,
    ) {
        let mut reasons: Vec<String> = Vec::new();
        for s in strings {
            for r in string_reasons(s, rule) {
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
        }
        if !reasons.is_empty() {
            let shown = (!rule.sensitive).then(|| serde_json::to_string(map).unwrap_or_default());
            self.push(
                shown.as_deref(),
                path,
                &format!("{what} must satisfy constraint: [{}]", reasons.join(", ")),
            );
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages found, in order.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// One `ValidationException` that lists every violation, or `None`.
    pub fn into_error(self) -> Option<AwsError> {
        let n = self.messages.len();
        if n == 0 {
            return None;
        }
        let noun = if n == 1 { "error" } else { "errors" };
        Some(CommonError::ValidationException.with(format!(
            "{n} validation {noun} detected: {}",
            self.messages.join("; ")
        )))
    }
}
