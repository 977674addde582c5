//! The body of an engine task message, exactly as the AWS reference Terraform engine reads it:
//! `token`, `operation`, `provisionedProductId`, `provisionedProductName`, `recordId`,
//! `launchRoleArn`, `identity`, and, for every operation but terminate, `productId`,
//! `provisioningArtifactId`, `artifact`, `parameters` and `tags`.

use serde::{Deserialize, Serialize};

/// The engine operation of a task (and of the workflow token it carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EngineOperation {
    /// `PROVISION_PRODUCT`, answered with NotifyProvisionProductEngineWorkflowResult.
    #[serde(rename = "PROVISION_PRODUCT")]
    Provision,
    /// `UPDATE_PROVISIONED_PRODUCT`, answered with NotifyUpdateProvisionedProductEngineWorkflowResult.
    #[serde(rename = "UPDATE_PROVISIONED_PRODUCT")]
    Update,
    /// `TERMINATE_PROVISIONED_PRODUCT`, answered with NotifyTerminateProvisionedProductEngineWorkflowResult.
    #[serde(rename = "TERMINATE_PROVISIONED_PRODUCT")]
    Terminate,
}

impl EngineOperation {
    /// Every operation.
    pub const ALL: [EngineOperation; 3] = [
        EngineOperation::Provision,
        EngineOperation::Update,
        EngineOperation::Terminate,
    ];

    /// The Notify operation that reports this operation's result.
    pub fn notify_operation(self) -> &'static str {
        match self {
            EngineOperation::Provision => "NotifyProvisionProductEngineWorkflowResult",
            EngineOperation::Update => "NotifyUpdateProvisionedProductEngineWorkflowResult",
            EngineOperation::Terminate => "NotifyTerminateProvisionedProductEngineWorkflowResult",
        }
    }
}

/// The queue that receives `operation` for products of `product_type`.
pub fn queue_name(product_type: &str, operation: EngineOperation) -> Option<String> {
    let kind = match product_type {
        "TERRAFORM_OPEN_SOURCE" => "TerraformOS",
        "TERRAFORM_CLOUD" => "TerraformCloud",
        "EXTERNAL" => "External",
        _ => return None,
    };
    let op = match operation {
        EngineOperation::Provision => "Provision",
        EngineOperation::Update => "Update",
        EngineOperation::Terminate => "Terminate",
    };
    Some(format!("ServiceCatalog{kind}{op}OperationQueue"))
}

/// Who asked for the operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The caller's principal ARN.
    pub principal: String,
    /// The caller's account.
    pub aws_account_id: String,
    /// Always empty: provisiond has no organizations.
    pub organization_id: String,
}

/// Where the artifact is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// `s3://bucket/key`
    pub path: String,
    /// Always `AWS_S3`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Artifact {
    /// The artifact's bucket and key, if its path is `s3://bucket/key`.
    pub fn bucket_and_key(&self) -> Option<(&str, &str)> {
        self.path.strip_prefix("s3://")?.split_once('/')
    }
}

/// One parameter or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The name.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A task message's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    /// The sealed workflow token to send back with the Notify call.
    pub token: String,
    /// The operation.
    pub operation: EngineOperation,
    /// `pp-…`
    pub provisioned_product_id: String,
    /// The provisioned product's name.
    pub provisioned_product_name: String,
    /// `rec-…`
    pub record_id: String,
    /// The launch role, if the launch path has a launch constraint (`null` otherwise).
    pub launch_role_arn: Option<String>,
    /// Who asked.
    pub identity: Identity,
    /// `prod-…` (absent for terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// `pa-…` (absent for terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_artifact_id: Option<String>,
    /// The artifact to apply (absent for terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The fully resolved parameters (absent for terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<Pair>>,
    /// The tags (absent for terminate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Pair>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_the_reference_engine_wrote_reads_back() {
        let text = r#"{"token":"dG9rZW4=","operation":"UPDATE_PROVISIONED_PRODUCT",
            "provisionedProductId":"pp-1","provisionedProductName":"b","recordId":"rec-1",
            "launchRoleArn":null,"identity":{"principal":"arn:aws:iam::1:root",
            "awsAccountId":"123456789012","organizationId":""},"productId":"prod-1",
            "provisioningArtifactId":"pa-1",
            "artifact":{"path":"s3://provisiond-artifacts/prod-1/pa-1.tar.gz","type":"AWS_S3"},
            "parameters":[{"key":"size","value":"3"}],"tags":[]}"#;
        let task: TaskMessage = serde_json::from_str(text).unwrap();
        assert_eq!(task.operation, EngineOperation::Update);
        assert_eq!(
            task.artifact.as_ref().and_then(Artifact::bucket_and_key),
            Some(("provisiond-artifacts", "prod-1/pa-1.tar.gz"))
        );
        assert_eq!(task.launch_role_arn, None);
        let again: TaskMessage =
            serde_json::from_str(&serde_json::to_string(&task).unwrap()).unwrap();
        assert_eq!(again, task);
    }

    #[test]
    fn operations_name_their_notify_call() {
        let op: EngineOperation =
            serde_json::from_str("\"TERMINATE_PROVISIONED_PRODUCT\"").unwrap();
        assert_eq!(
            op.notify_operation(),
            "NotifyTerminateProvisionedProductEngineWorkflowResult"
        );
        assert!(serde_json::from_str::<EngineOperation>("\"DELETE\"").is_err());
    }

    #[test]
    fn queues_follow_the_product_type() {
        assert_eq!(
            queue_name("TERRAFORM_OPEN_SOURCE", EngineOperation::Provision).as_deref(),
            Some("ServiceCatalogTerraformOSProvisionOperationQueue")
        );
        assert_eq!(
            queue_name("EXTERNAL", EngineOperation::Terminate).as_deref(),
            Some("ServiceCatalogExternalTerminateOperationQueue")
        );
        assert_eq!(
            queue_name("TERRAFORM_CLOUD", EngineOperation::Update).as_deref(),
            Some("ServiceCatalogTerraformCloudUpdateOperationQueue")
        );
        assert_eq!(
            queue_name("CLOUD_FORMATION_TEMPLATE", EngineOperation::Provision),
            None
        );
    }
}
