//! The request context every operation receives: who calls, in which region, when, and the
//! handles it may use. Built by the server after the signature is verified.

use crate::auth::Identity;
use crate::store::Store;
use provisiond_model::{AwsError, CommonError};
use std::sync::Arc;

/// Everything an operation knows about its call besides the input.
pub struct RequestContext {
    /// The `x-amzn-RequestId` of this call.
    pub request_id: String,
    /// The verified caller.
    pub identity: Identity,
    /// The region of the signature's credential scope; every resource is stored per region.
    pub region: String,
    /// The time of the call, in epoch milliseconds.
    pub now_ms: i64,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The server key: seals workflow tokens.
    pub server_key: Arc<crate::crypto::ServerKey>,
    /// The `Host` the caller addressed (`127.0.0.1:8787`), for URLs handed back such as queue URLs.
    pub host: String,
}

impl RequestContext {
    /// The store scope of the caller's regional resources: `<account>/<region>`.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.identity.account, self.region)
    }

    /// The audit entry of this call of `service`'s `operation`, before its outcome and
    /// resources are known (see `audit::audited`).
    pub fn audit_entry(&self, service: &str, operation: &str) -> crate::audit::Entry {
        crate::audit::Entry {
            id: self.request_id.clone(),
            time_ms: self.now_ms,
            account: self.identity.account.clone(),
            principal: self.identity.principal.clone(),
            access_key_id: Some(self.identity.access_key_id.clone()),
            os_user: None,
            service: service.to_string(),
            operation: operation.to_string(),
            resources: Vec::new(),
            outcome: crate::audit::OK.to_string(),
        }
    }

    /// Refuses callers who do not administer the account, naming the action they attempted
    /// (`servicecatalog:CreatePortfolio`) as IAM does.
    pub fn require_admin(&self, action: &str) -> Result<(), AwsError> {
        if self.identity.admin {
            Ok(())
        } else {
            Err(CommonError::AccessDeniedException.with(format!(
                "User: {} is not authorized to perform: {action} because only the account's catalog administrators may",
                self.identity.principal
            )))
        }
    }
}
