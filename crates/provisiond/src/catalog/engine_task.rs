//! The engine tasks a record causes: the queue each operation of each product type goes to,
//! and the message body (the shape of `provisiond_formats::task`, which the engines read)
//! built from the record's domain values.

use super::workflow_token::EngineOperation;
use provisiond_formats::task::{Artifact, Identity, Pair, TaskMessage};

pub use provisiond_formats::task::queue_name;

/// Everything a task message says.
pub struct Task<'a> {
    /// The sealed workflow token.
    pub token: &'a str,
    /// The operation.
    pub operation: EngineOperation,
    /// `pp-…`
    pub provisioned_product_id: &'a str,
    /// The provisioned product's name.
    pub provisioned_product_name: &'a str,
    /// `prod-…`
    pub product_id: &'a str,
    /// `pa-…`
    pub provisioning_artifact_id: &'a str,
    /// `rec-…`
    pub record_id: &'a str,
    /// The launch role, if the path has a launch constraint.
    pub launch_role_arn: Option<&'a str>,
    /// `s3://provisiond-artifacts/<key>`
    pub artifact_path: String,
    /// The caller's principal ARN.
    pub principal: &'a str,
    /// The caller's account.
    pub account: &'a str,
    /// The fully resolved parameters.
    pub parameters: &'a [(String, String)],
    /// The tags.
    pub tags: &'a [(String, String)],
}

fn pairs(items: &[(String, String)]) -> Vec<Pair> {
    items
        .iter()
        .map(|(key, value)| Pair {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

impl Task<'_> {
    /// The message body.
    pub fn body(&self) -> String {
        let applies = self.operation != EngineOperation::Terminate;
        let message = TaskMessage {
            token: self.token.to_string(),
            operation: self.operation,
            provisioned_product_id: self.provisioned_product_id.to_string(),
            provisioned_product_name: self.provisioned_product_name.to_string(),
            record_id: self.record_id.to_string(),
            launch_role_arn: self.launch_role_arn.map(str::to_string),
            identity: Identity {
                principal: self.principal.to_string(),
                aws_account_id: self.account.to_string(),
                organization_id: String::new(),
            },
            product_id: applies.then(|| self.product_id.to_string()),
            provisioning_artifact_id: applies.then(|| self.provisioning_artifact_id.to_string()),
            artifact: applies.then(|| Artifact {
                path: self.artifact_path.clone(),
                kind: "AWS_S3".to_string(),
            }),
            parameters: applies.then(|| pairs(self.parameters)),
            tags: applies.then(|| pairs(self.tags)),
        };
        serde_json::to_string(&message).expect("task messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn task(operation: EngineOperation) -> Task<'static> {
        Task {
            token: "dG9rZW4=",
            operation,
            provisioned_product_id: "pp-1",
            provisioned_product_name: "my-bucket",
            product_id: "prod-1",
            provisioning_artifact_id: "pa-1",
            record_id: "rec-1",
            launch_role_arn: Some("arn:aws:iam::123456789012:role/LaunchRole"),
            artifact_path: "s3://provisiond-artifacts/prod-1/pa-1.tar.gz".into(),
            principal: "arn:aws:iam::123456789012:role/dev",
            account: "123456789012",
            parameters: &[],
            tags: &[],
        }
    }

    #[test]
    fn provision_messages_carry_everything_the_reference_engine_reads() {
        let params = [("size".to_string(), "3".to_string())];
        let mut t = task(EngineOperation::Provision);
        t.parameters = &params;
        let v: Value = serde_json::from_str(&t.body()).unwrap();
        assert_eq!(v["operation"], "PROVISION_PRODUCT");
        assert_eq!(
            v["artifact"],
            json!({"path": "s3://provisiond-artifacts/prod-1/pa-1.tar.gz", "type": "AWS_S3"})
        );
        assert_eq!(v["parameters"], json!([{"key": "size", "value": "3"}]));
        assert_eq!(v["tags"], json!([]));
        assert_eq!(v["identity"]["awsAccountId"], "123456789012");
        for key in [
            "token",
            "provisionedProductId",
            "provisionedProductName",
            "productId",
            "provisioningArtifactId",
            "recordId",
            "launchRoleArn",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn terminate_messages_carry_no_artifact_parameters_or_tags() {
        let v: Value = serde_json::from_str(&task(EngineOperation::Terminate).body()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "identity",
                "launchRoleArn",
                "operation",
                "provisionedProductId",
                "provisionedProductName",
                "recordId",
                "token"
            ]
        );
        assert_eq!(v["operation"], "TERMINATE_PROVISIONED_PRODUCT");
    }
}
