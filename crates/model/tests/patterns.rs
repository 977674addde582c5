//! Every pattern of the three models compiles, and the translated patterns accept and reject
//! what the Java originals do.

use provisiond_model::runtime::Pattern;
use provisiond_model::{proton, servicecatalog, sqs};

fn all_patterns() -> Vec<&'static Pattern> {
    let mut all: Vec<&Pattern> = Vec::new();
    all.extend(servicecatalog::PATTERNS.iter().copied());
    all.extend(proton::PATTERNS.iter().copied());
    all.extend(sqs::PATTERNS.iter().copied());
    all
}

fn pattern(java: &str) -> &'static Pattern {
    all_patterns()
        .into_iter()
        .find(|p| p.java == java)
        .unwrap_or_else(|| panic!("no model pattern {java:?}"))
}

#[test]
fn every_model_pattern_compiles() {
    let all = all_patterns();
    assert!(
        all.len() >= 29,
        "expected the patterns of all three models, got {}",
        all.len()
    );
    for p in all {
        assert!(
            regex::Regex::new(p.rust).is_ok(),
            "{} does not compile",
            p.java
        );
        let _ = p.regex();
    }
}

#[test]
fn failure_reason_pattern_accepts_xml_characters_only() {
    let p = pattern(r"[\u0009\u000a\u000d\u0020-\uD7FF\uE000-\uFFFD]*");
    assert!(p.matches("terraform apply failed:\n\tError: bad\r\n"));
    assert!(p.matches("émoji-free text ✓ \u{D7FF} \u{E000} \u{FFFD}"));
    assert!(p.matches(""));
    assert!(!p.matches("bell \u{7}"));
    assert!(!p.matches("nul \u{0}"));
    // Java sees U+1F600 as two surrogates, neither in the class.
    assert!(!p.matches("smile \u{1F600}"));
    assert!(!p.matches("\u{FFFE}"));
}

#[test]
fn proton_arn_pattern_matches_like_java() {
    let p = pattern(
        r"^arn:(aws|aws-cn|aws-us-gov):[a-zA-Z0-9-]+:[a-zA-Z0-9-]*:\d{12}:([\w+=,.@-]+[/:])*[\w+=,.@-]+$",
    );
    assert!(p.matches("arn:aws:proton:us-east-1:123456789012:environment/dev"));
    assert!(p.matches("arn:aws:proton:us-east-1:123456789012:service/api/service-instance/one"));
    assert!(
        !p.matches("arn:aws:proton:us-east-1:12345678901:environment/dev"),
        "11-digit account"
    );
    assert!(
        !p.matches("arn:aws:proton:us-east-1:123456789012:environment/dév"),
        "\\w is ASCII in Java"
    );
    assert!(
        !p.matches("arn:aws:proton:us-east-1:١٢٣٤٥٦٧٨٩٠١٢:environment/dev"),
        "\\d is ASCII in Java"
    );
    assert!(!p.matches("arn:other:proton:us-east-1:123456789012:environment/dev"));
    assert!(!p.matches("arn:aws:proton:us-east-1:123456789012:environment/dev\n"));
}

#[test]
fn patterns_must_match_the_whole_value() {
    let record_id = pattern(r"^[a-zA-Z0-9_\-]*");
    assert!(record_id.matches("rec-abc_123"));
    assert!(
        !record_id.matches("rec-x y"),
        "an unanchored search would accept this"
    );
    let token = pattern("[a-zA-Z0-9][a-zA-Z0-9_-]*");
    assert!(token.matches("a-b_c"));
    assert!(!token.matches("-abc"));
    assert!(!token.matches("abc!"));
    let workflow = pattern(r"[0-9A-Za-z+\/=]+");
    assert!(workflow.matches("QUJD+/=="));
    assert!(!workflow.matches("QUJD.ZZ"));
}

#[test]
fn unicode_property_classes_stay_unicode() {
    let p = pattern(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
    assert!(p.matches("Équipe plateforme 2"));
    assert!(p.matches("データ"));
    assert!(!p.matches("semi;colon"));
}

#[test]
fn proton_template_versions_use_java_dot() {
    let p = pattern(r"^(0|([1-9]{1}\d*)).(0|([1-9]{1}\d*))$");
    assert!(p.matches("1.0"));
    assert!(
        p.matches("1x0"),
        "the model's unescaped dot matches any character, as in Java"
    );
    assert!(!p.matches("1\n0"), "but not a line terminator");
}
