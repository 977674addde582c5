//! `AwsError`: an AWS error code, its HTTP status and a message. Each service's modeled codes
//! are generated (`<service>::ErrorCode`); the codes every AWS JSON service shares are here.

/// An error answer: rendered by the protocol layer as `__type`, `x-amzn-ErrorType` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The error shape's name, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// A message a person can act on.
    pub message: String,
}

impl AwsError {
    /// An error with an explicit code and status.
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        AwsError {
            code,
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Errors every AWS JSON service answers with, whether or not its model lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommonError {
    /// A constraint of the model is violated.
    ValidationException,
    /// The body is not JSON, or not of the shape's types.
    SerializationException,
    /// The `X-Amz-Target` names no operation this server serves.
    UnknownOperationException,
    /// The caller is authenticated but not allowed to do this.
    AccessDeniedException,
    /// No `Authorization` header (or query signature) at all.
    MissingAuthenticationTokenException,
    /// The `Authorization` header is malformed.
    IncompleteSignatureException,
    /// The signature does not match, is expired, or is scoped to another service.
    InvalidSignatureException,
    /// The access key is unknown.
    UnrecognizedClientException,
    /// The body is larger than the server accepts.
    RequestEntityTooLarge,
    /// Something failed inside the server; the details are in its log.
    InternalFailure,
    /// The server cannot answer now (its database is unreachable); the call may be retried.
    ServiceUnavailable,
}

impl CommonError {
    /// The error's name, as sent in `__type`.
    pub const fn name(self) -> &'static str {
        match self {
            CommonError::ValidationException => "ValidationException",
            CommonError::SerializationException => "SerializationException",
            CommonError::UnknownOperationException => "UnknownOperationException",
            CommonError::AccessDeniedException => "AccessDeniedException",
            CommonError::MissingAuthenticationTokenException => {
                "MissingAuthenticationTokenException"
            }
            CommonError::IncompleteSignatureException => "IncompleteSignatureException",
            CommonError::InvalidSignatureException => "InvalidSignatureException",
            CommonError::UnrecognizedClientException => "UnrecognizedClientException",
            CommonError::RequestEntityTooLarge => "RequestEntityTooLarge",
            CommonError::InternalFailure => "InternalFailure",
            CommonError::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status AWS answers this error with.
    pub const fn status(self) -> u16 {
        match self {
            CommonError::MissingAuthenticationTokenException
            | CommonError::IncompleteSignatureException
            | CommonError::InvalidSignatureException
            | CommonError::UnrecognizedClientException => 403,
            CommonError::RequestEntityTooLarge => 413,
            CommonError::InternalFailure => 500,
            CommonError::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// An error of this code with `message`.
    pub fn with(self, message: impl Into<String>) -> AwsError {
        AwsError::new(self.name(), self.status(), message)
    }
}

/// The answer to an operation this server does not serve.
pub fn unknown_operation(name: &str) -> AwsError {
    CommonError::UnknownOperationException.with(format!(
        "The operation {name} is not served by this endpoint."
    ))
}
