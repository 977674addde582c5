//! The engine task messages, exactly as the AWS reference Terraform engine reads them: the
//! queue each operation of each product type goes to, and the JSON body (`token`, `operation`,
//! `provisionedProductId`, … `parameters`, `tags`; terminate carries no artifact, parameters or
//! tags).

use super::token::EngineOperation;
use serde_json::{json, Value};

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

fn pairs(items: &[(String, String)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

impl Task<'_> {
    /// The message body.
    pub fn body(&self) -> String {
        let operation = serde_json::to_value(self.operation).expect("operations serialize");
        let identity = json!({"principal": self.principal, "awsAccountId": self.account, "organizationId": ""});
        let mut body = json!({
            "token": self.token,
            "operation": operation,
            "provisionedProductId": self.provisioned_product_id,
            "provisionedProductName": self.provisioned_product_name,
            "recordId": self.record_id,
            "launchRoleArn": self.launch_role_arn,
            "identity": identity,
        });
        if self.operation != EngineOperation::Terminate {
            let map = body.as_object_mut().expect("an object");
            map.insert("productId".into(), json!(self.product_id));
            map.insert(
                "provisioningArtifactId".into(),
                json!(self.provisioning_artifact_id),
            );
            map.insert(
                "artifact".into(),
                json!({"path": self.artifact_path, "type": "AWS_S3"}),
            );
            map.insert("parameters".into(), pairs(self.parameters));
            map.insert("tags".into(), pairs(self.tags));
        }
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
