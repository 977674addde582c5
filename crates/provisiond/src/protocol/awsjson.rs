//! The awsJson 1.0 / 1.1 protocols: a request names its service and operation in
//! `X-Amz-Target: <TargetPrefix>.<Operation>`; an answer is the output shape as JSON, or an
//! error as `{"__type": <Name>, "message": <text>}` with `x-amzn-ErrorType: <Name>`.

use provisiond_model::runtime::ServiceInfo;
use provisiond_model::{proton, servicecatalog, sqs, AwsError};

/// The services served over awsJson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// AWS Service Catalog (awsJson 1.1).
    ServiceCatalog,
    /// AWS Proton (awsJson 1.0).
    Proton,
    /// The SQS-shaped engine queues (awsJson 1.0).
    Sqs,
}

impl Service {
    /// Every service, for routing.
    pub const ALL: [Service; 3] = [Service::ServiceCatalog, Service::Proton, Service::Sqs];

    /// The model's facts about the service.
    pub fn info(self) -> &'static ServiceInfo {
        match self {
            Service::ServiceCatalog => &servicecatalog::SERVICE,
            Service::Proton => &proton::SERVICE,
            Service::Sqs => &sqs::SERVICE,
        }
    }

    /// The `Content-Type` of its bodies.
    pub fn content_type(self) -> &'static str {
        match self.info().json_version {
            "1.1" => "application/x-amz-json-1.1",
            _ => "application/x-amz-json-1.0",
        }
    }
}

/// Splits `X-Amz-Target` into the service and the operation name; `None` when the prefix
/// names no service we serve.
pub fn parse_target(target: &str) -> Option<(Service, &str)> {
    let (prefix, operation) = target.split_once('.')?;
    Service::ALL
        .into_iter()
        .find(|s| s.info().target_prefix == prefix)
        .map(|s| (s, operation))
}

/// The JSON body of an error answer: `{"__type": <Name>, "message": <text>}`. SQS, being
/// query-compatible, qualifies the name with its namespace: `com.amazonaws.sqs#QueueDoesNotExist`.
pub fn error_body(service: Option<Service>, error: &AwsError) -> Vec<u8> {
    let name = match service {
        Some(Service::Sqs) => format!("com.amazonaws.sqs#{}", error.code),
        _ => error.code.to_string(),
    };
    serde_json::to_vec(&serde_json::json!({
        "__type": name,
        "message": error.message,
    }))
    .expect("a JSON object of two strings encodes")
}

/// SQS's `x-amzn-query-error: <code>;<Sender|Receiver>` header, which query-compatible SDKs read
/// for the error code of the older Query protocol.
pub fn query_error(service: Service, error: &AwsError) -> Option<String> {
    if service != Service::Sqs {
        return None;
    }
    let code = match error.code {
        "QueueDoesNotExist" => "AWS.SimpleQueueService.NonExistentQueue",
        "EmptyBatchRequest" => "AWS.SimpleQueueService.EmptyBatchRequest",
        "TooManyEntriesInBatchRequest" => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "BatchEntryIdsNotDistinct" => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        "InvalidBatchEntryId" => "AWS.SimpleQueueService.InvalidBatchEntryId",
        "MessageNotInflight" => "AWS.SimpleQueueService.MessageNotInflight",
        other => other,
    };
    let fault = if error.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    Some(format!("{code};{fault}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisiond_model::CommonError;

    #[test]
    fn targets_route_to_their_service() {
        assert_eq!(
            parse_target("AWS242ServiceCatalogService.ListPortfolios"),
            Some((Service::ServiceCatalog, "ListPortfolios"))
        );
        assert_eq!(
            parse_target("AwsProton20200720.GetEnvironment"),
            Some((Service::Proton, "GetEnvironment"))
        );
        assert_eq!(
            parse_target("AmazonSQS.ReceiveMessage"),
            Some((Service::Sqs, "ReceiveMessage"))
        );
        assert_eq!(parse_target("DynamoDB_20120810.GetItem"), None);
        assert_eq!(parse_target("nodot"), None);
        assert_eq!(
            Service::ServiceCatalog.content_type(),
            "application/x-amz-json-1.1"
        );
        assert_eq!(Service::Proton.content_type(), "application/x-amz-json-1.0");
    }

    #[test]
    fn errors_render_type_and_message() {
        let body = error_body(
            Some(Service::ServiceCatalog),
            &CommonError::ValidationException.with("1 validation error detected: x"),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "ValidationException");
        assert_eq!(v["message"], "1 validation error detected: x");
    }

    #[test]
    fn sqs_errors_are_query_compatible() {
        let e = provisiond_model::sqs::ErrorCode::QueueDoesNotExist
            .with("The specified queue does not exist.");
        let v: serde_json::Value =
            serde_json::from_slice(&error_body(Some(Service::Sqs), &e)).unwrap();
        assert_eq!(v["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(
            query_error(Service::Sqs, &e).as_deref(),
            Some("AWS.SimpleQueueService.NonExistentQueue;Sender")
        );
        assert_eq!(query_error(Service::Proton, &e), None);
    }
}
