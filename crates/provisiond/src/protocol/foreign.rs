//! Where a request goes, and the answer for services provisiond does not speak. A request names
//! its service in the SigV4 credential scope (`…/<region>/<service>/aws4_request`), its protocol
//! by its shape: an `X-Amz-Target` for awsJson, a form body with `Action=` for the Query
//! protocol (STS, IAM, EC2, SNS, CloudFormation…), anything else REST. Requests for other
//! services than Service Catalog, Proton, SQS and S3 are answered in their own protocol's error
//! form (an XML `ErrorResponse`, EC2's `Response`, or JSON with `x-amzn-ErrorType`), so an SDK
//! raises a readable error instead of failing to parse, and nothing reaches the object store.

use http::HeaderMap;

/// Where a request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// awsJson (Service Catalog, Proton, SQS): `X-Amz-Target`, or `POST /` to one of them.
    AwsJson,
    /// The S3-shaped object store.
    S3,
    /// A service provisiond does not serve.
    Foreign(Foreign),
}

/// A request for a service provisiond does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// The credential scope's service, or `unknown` for an unsigned request.
    pub service: String,
    /// How its errors are written.
    pub style: ErrorStyle,
}

/// The error forms of AWS protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// Query protocol: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.
    Query,
    /// EC2's: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>`.
    Ec2,
    /// JSON and REST-JSON: `{"__type", "message"}` with `x-amzn-ErrorType`.
    Json,
}

/// The services served, by SigV4 signing name.
const SERVED_JSON: [&str; 3] = ["servicecatalog", "proton", "sqs"];

/// The credential scope's service of a SigV4 `Authorization` header, if it has one.
fn scope_service(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = header.split("Credential=").nth(1)?;
    let credential = credential.split([',', ' ']).next()?;
    credential.split('/').nth(3)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Decides where a request goes from its method, path and headers (the body is not needed).
pub fn destination(method: &http::Method, path: &str, headers: &HeaderMap) -> Destination {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target.is_some_and(|t| super::awsjson::parse_target(t).is_some()) {
        // One of ours, whatever the scope says (a wrong scope is the signature check's to refuse).
        return Destination::AwsJson;
    }
    let has_target = target.is_some();
    let foreign = |service: &str, form: bool| {
        let style = match (service, form) {
            ("ec2", _) => ErrorStyle::Ec2,
            (_, true) => ErrorStyle::Query,
            _ => ErrorStyle::Json,
        };
        Destination::Foreign(Foreign {
            service: service.to_string(),
            style,
        })
    };
    match scope_service(headers) {
        Some("s3") if !has_target => Destination::S3,
        Some(service) if SERVED_JSON.contains(&service) => {
            if !has_target && is_form(headers) {
                // An old SDK speaking SQS's Query protocol: answer in Query's form.
                foreign(service, true)
            } else {
                Destination::AwsJson
            }
        }
        Some(service) if !has_target || service != "s3" => foreign(service, is_form(headers)),
        _ if has_target => Destination::AwsJson,
        _ if is_form(headers) => foreign("unknown", true),
        _ if method == http::Method::POST && path == "/" => Destination::AwsJson,
        _ => Destination::S3,
    }
}

/// The status, content type and body of the answer to a foreign request.
pub fn answer(foreign: &Foreign, request_id: &str) -> (u16, &'static str, Vec<u8>) {
    let message = format!(
        "provisiond does not serve the {} API: this endpoint speaks Service Catalog, Proton, SQS \
         (the engine queues) and S3 (its object store).",
        foreign.service
    );
    match foreign.style {
        ErrorStyle::Query => (
            400,
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Sender</Type>\
                 <Code>InvalidAction</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId>\
                 </ErrorResponse>",
                xml_escape(&message)
            )
            .into_bytes(),
        ),
        ErrorStyle::Ec2 => (
            400,
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                 <Code>InvalidAction</Code><Message>{}</Message></Error></Errors>\
                 <RequestID>{request_id}</RequestID></Response>",
                xml_escape(&message)
            )
            .into_bytes(),
        ),
        ErrorStyle::Json => (
            400,
            "application/json",
            serde_json::to_vec(&serde_json::json!({
                "__type": "UnknownOperationException",
                "message": message,
            }))
            .expect("JSON values serialize"),
        ),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(service: Option<&str>, form: bool, target: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = service {
            let value = format!(
                "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/{s}/aws4_request, SignedHeaders=host, Signature=00"
            );
            h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        if form {
            h.insert(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8"
                    .parse()
                    .unwrap(),
            );
        }
        if target {
            let name = match service {
                Some("servicecatalog") => "AWS242ServiceCatalogService.ListPortfolios",
                Some("sqs") => "AmazonSQS.ListQueues",
                _ => "DynamoDB_20120810.ListTables",
            };
            h.insert("x-amz-target", name.parse().unwrap());
        }
        h
    }

    #[test]
    fn requests_go_where_their_scope_and_shape_say() {
        let post = http::Method::POST;
        let get = http::Method::GET;
        let d = |m: &http::Method, p, s, f, t| destination(m, p, &headers(s, f, t));
        assert_eq!(
            d(&post, "/", Some("servicecatalog"), false, true),
            Destination::AwsJson
        );
        assert_eq!(
            d(&post, "/", Some("sqs"), false, true),
            Destination::AwsJson
        );
        assert_eq!(
            d(&get, "/bucket/key", Some("s3"), false, false),
            Destination::S3
        );
        assert_eq!(d(&get, "/bucket/key", None, false, false), Destination::S3);
        assert_eq!(d(&post, "/", None, false, false), Destination::AwsJson);
        let style = |dest: Destination| match dest {
            Destination::Foreign(f) => Some((f.service, f.style)),
            _ => None,
        };
        assert_eq!(
            style(d(&post, "/", Some("sts"), true, false)),
            Some(("sts".into(), ErrorStyle::Query))
        );
        assert_eq!(
            style(d(&post, "/", Some("ec2"), true, false)),
            Some(("ec2".into(), ErrorStyle::Ec2))
        );
        assert_eq!(
            style(d(
                &post,
                "/2015-03-31/functions/f/invocations",
                Some("lambda"),
                false,
                false
            )),
            Some(("lambda".into(), ErrorStyle::Json))
        );
        assert_eq!(
            style(d(&post, "/", Some("dynamodb"), false, true)),
            Some(("dynamodb".into(), ErrorStyle::Json))
        );
        assert_eq!(
            style(d(&post, "/", Some("sqs"), true, false)),
            Some(("sqs".into(), ErrorStyle::Query)),
            "SQS over the Query protocol"
        );
        assert_eq!(
            style(d(&post, "/", None, true, false)),
            Some(("unknown".into(), ErrorStyle::Query))
        );
        // Our target signed for another service is ours (its signature check refuses it).
        let mut h = headers(Some("ec2"), false, false);
        h.insert(
            "x-amz-target",
            "AWS242ServiceCatalogService.ListPortfolios"
                .parse()
                .unwrap(),
        );
        assert_eq!(destination(&post, "/", &h), Destination::AwsJson);
    }

    #[test]
    fn answers_are_in_the_services_own_error_form() {
        let (status, ty, body) = answer(
            &Foreign {
                service: "sts".into(),
                style: ErrorStyle::Query,
            },
            "r1",
        );
        let body = String::from_utf8(body).unwrap();
        assert_eq!((status, ty), (400, "text/xml"));
        assert!(body.contains("<Code>InvalidAction</Code>") && body.contains("<RequestId>r1<"));
        assert!(body.contains("the sts API"));
        let (_, ty, body) = answer(
            &Foreign {
                service: "lambda".into(),
                style: ErrorStyle::Json,
            },
            "r2",
        );
        assert_eq!(ty, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "UnknownOperationException");
    }
}
