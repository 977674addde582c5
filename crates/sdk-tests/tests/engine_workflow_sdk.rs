//! The engine workflow with the AWS SDK for Rust: a product published from a Terraform archive is
//! provisioned with `aws-sdk-servicecatalog`, the task received with `aws-sdk-sqs` from the
//! reference engine's queue, and the result notified back.

mod common;

use aws_sdk_servicecatalog::types::{
    EngineWorkflowResourceIdentifier, PrincipalType, ProductType, ProvisioningArtifactProperties,
    ProvisioningParameter, RecordOutput, UniqueTagResourceIdentifier,
};

fn tar_gz(path: &std::path::Path, name: &str, text: &str) {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, name, text.as_bytes())
        .unwrap();
    std::fs::write(path, builder.into_inner().unwrap().finish().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_receive_notify() {
    let running = common::start().await;
    let sc = running.servicecatalog();
    let sqs = running.sqs();
    let archive = running.data.join("module.tar.gz");
    tar_gz(
        &archive,
        "main.tf",
        "variable \"name\" {}\nvariable \"size\" { default = 3 }\n",
    );

    let product = sc
        .create_product()
        .name("bucket")
        .owner("platform")
        .product_type(ProductType::TerraformOpenSource)
        .provisioning_artifact_parameters(
            ProvisioningArtifactProperties::builder()
                .name("v1")
                .info(
                    "LoadTemplateFromURL",
                    format!("file://{}", archive.display()),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let product_id = product
        .product_view_detail()
        .unwrap()
        .product_view_summary()
        .unwrap()
        .product_id()
        .unwrap()
        .to_string();
    let artifact_id = product
        .provisioning_artifact_detail()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let portfolio = sc
        .create_portfolio()
        .display_name("p")
        .provider_name("p")
        .send()
        .await
        .unwrap();
    let portfolio_id = portfolio
        .portfolio_detail()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    sc.associate_product_with_portfolio()
        .product_id(&product_id)
        .portfolio_id(&portfolio_id)
        .send()
        .await
        .unwrap();
    sc.associate_principal_with_portfolio()
        .portfolio_id(&portfolio_id)
        .principal_arn("arn:aws:iam::000000000000:role/provisiond-admin")
        .principal_type(PrincipalType::Iam)
        .send()
        .await
        .unwrap();

    let record = sc
        .provision_product()
        .product_id(&product_id)
        .provisioning_artifact_id(&artifact_id)
        .provisioned_product_name("rust-sdk")
        .provisioning_parameters(
            ProvisioningParameter::builder()
                .key("name")
                .value("n1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let record = record.record_detail().unwrap();
    let record_id = record.record_id().unwrap().to_string();
    let pp_id = record.provisioned_product_id().unwrap().to_string();

    let url = sqs
        .get_queue_url()
        .queue_name("ServiceCatalogTerraformOSProvisionOperationQueue")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    let task: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(task["recordId"], record_id.as_str());
    assert_eq!(task["operation"], "PROVISION_PRODUCT");
    assert_eq!(
        task["parameters"],
        serde_json::json!([{"key": "name", "value": "n1"}, {"key": "size", "value": "3"}])
    );

    sc.notify_provision_product_engine_workflow_result()
        .workflow_token(task["token"].as_str().unwrap())
        .record_id(&record_id)
        .status("SUCCEEDED".into())
        .outputs(
            RecordOutput::builder()
                .output_key("size")
                .output_value("3")
                .build(),
        )
        .resource_identifier(
            EngineWorkflowResourceIdentifier::builder()
                .unique_tag(
                    UniqueTagResourceIdentifier::builder()
                        .key("SERVICE_CATALOG_TERRAFORM_INTEGRATION-DO_NOT_DELETE")
                        .value(&pp_id)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let described = sc.describe_record().id(&record_id).send().await.unwrap();
    assert_eq!(
        described
            .record_detail()
            .unwrap()
            .status()
            .map(|s| s.as_str()),
        Some("SUCCEEDED")
    );
    assert_eq!(described.record_outputs()[0].output_value(), Some("3"));
    let pp = sc
        .describe_provisioned_product()
        .id(&pp_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pp.provisioned_product_detail()
            .unwrap()
            .status()
            .map(|s| s.as_str()),
        Some("AVAILABLE")
    );

    // A forged token is refused with the modeled error.
    let forged = sc
        .notify_provision_product_engine_workflow_result()
        .workflow_token("QUJDREVGR0g=")
        .record_id(&record_id)
        .status("FAILED".into())
        .send()
        .await
        .unwrap_err();
    assert!(forged
        .into_service_error()
        .is_invalid_parameters_exception());
}
