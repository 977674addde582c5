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

/// The JSON body of an error answer.
pub fn error_body(error: &AwsError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "__type": error.code,
        "message": error.message,
    }))
    .expect("a JSON object of two strings encodes")
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
        let body =
            error_body(&CommonError::ValidationException.with("1 validation error detected: x"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "ValidationException");
        assert_eq!(v["message"], "1 validation error detected: x");
    }
}
