//! Parses `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
//! SignedHeaders=host;x-amz-date, Signature=<64 hex>`.

use provisiond_model::{AwsError, CommonError};

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id of the credential.
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope's region.
    pub region: String,
    /// The credential scope's service (signing name).
    pub service: String,
    /// The signed header names, lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature, 64 lower-case hex digits.
    pub signature: String,
}

fn incomplete(message: String) -> AwsError {
    CommonError::IncompleteSignatureException.with(message)
}

/// Parses the header value.
pub fn parse(header: &str) -> Result<Authorization, AwsError> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm.".into())
    })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing =
        |name: &str| incomplete(format!("Authorization header requires '{name}' parameter."));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;

    let fields: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = fields[..] else {
        return Err(incomplete(format!(
            "Credential should have 5 parts (AKID/date/region/service/aws4_request), got {}.",
            fields.len()
        )));
    };
    if terminator != "aws4_request" {
        return Err(incomplete(
            "Credential should be terminated with 'aws4_request'.".into(),
        ));
    }
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete("Credential has an empty part.".into()));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential date {date:?} is not YYYYMMDD."
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete(
            "Signature should be 64 hexadecimal digits.".into(),
        ));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(incomplete("SignedHeaders has an empty name.".into()));
    }
    Ok(Authorization {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_standard_header() {
        let a = parse("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31").unwrap();
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.date, "20150830");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.service, "service");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
    }

    #[test]
    fn malformed_headers_are_incomplete_signatures() {
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, Signature=ab",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/s/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=zz",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, "IncompleteSignatureException", "{bad}");
            assert_eq!(e.status, 403);
        }
    }
}
