//! The generated validators report every violation with AWS's framework wording.

use provisiond_model::runtime::{check, Codec, Json};
use provisiond_model::{proton, servicecatalog as sc};

fn message<T: provisiond_model::runtime::Validate>(input: T) -> String {
    let err = check(input).err().expect("a violation");
    assert_eq!(err.code, "ValidationException");
    assert_eq!(err.status, 400);
    err.message
}

#[test]
fn a_missing_required_member_reads_value_null() {
    let input: sc::NotifyProvisionProductEngineWorkflowResultInput =
        Json::decode(br#"{"WorkflowToken":"abc","RecordId":"rec-1","Status":"SUCCEEDED"}"#)
            .unwrap();
    assert_eq!(
        message(input),
        "1 validation error detected: Value null at 'idempotencyToken' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn every_violation_is_counted_in_member_order() {
    let input: sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput = Json::decode(
        br#"{"WorkflowToken":"not a token!","RecordId":"rec x","Status":"DONE","IdempotencyToken":"-x"}"#,
    )
    .unwrap();
    assert_eq!(
        message(input),
        "4 validation errors detected: \
         Value 'not a token!' at 'workflowToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z+\\/=]+; \
         Value 'rec x' at 'recordId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-]*; \
         Value 'DONE' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, FAILED]; \
         Value '-x' at 'idempotencyToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][a-zA-Z0-9_-]*"
    );
}

#[test]
fn length_limits_count_utf16_units() {
    let mut input = sc::NotifyProvisionProductEngineWorkflowResultInput {
        workflow_token: Some("abc".into()),
        record_id: Some("rec-1".into()),
        status: Some("FAILED".into()),
        idempotency_token: Some("t1".into()),
        failure_reason: Some("é".repeat(2048)),
        ..Default::default()
    };
    assert!(
        check(input.clone()).is_ok(),
        "2048 BMP characters are 2048 units"
    );
    input.failure_reason = Some(String::new());
    assert!(message(input.clone()).contains(
        "Value '' at 'failureReason' failed to satisfy constraint: Member must have length greater than or equal to 1"
    ));
    input.failure_reason = Some("x".repeat(2049));
    assert!(message(input).contains("Member must have length less than or equal to 2048"));
}

#[test]
fn nested_list_members_have_indexed_paths() {
    let input: proton::NotifyResourceDeploymentStatusChangeInput = Json::decode(
        br#"{"resourceArn":"arn:aws:proton:us-east-1:123456789012:environment/dev",
             "outputs":[{"key":"ok","valueString":"v"},{"key":"","valueString":"v"}]}"#,
    )
    .unwrap();
    assert_eq!(
        message(input),
        "1 validation error detected: Value at 'outputs.2.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1",
        "Output is sensitive in the model: its values are never echoed"
    );
}

#[test]
fn sensitive_values_are_never_echoed() {
    let input = proton::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some("arn:aws:proton:us-east-1:123456789012:environment/dev".into()),
        status_message: Some("s3cr3t".repeat(1000)),
        ..Default::default()
    };
    let msg = message(input.clone());
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(msg.starts_with("1 validation error detected: Value at 'statusMessage' failed"));
    assert!(
        !format!("{input:?}").contains("s3cr3t"),
        "Debug redacts sensitive members"
    );
    // Output is a sensitive structure: nothing in it, and no list of them, is echoed.
    let outputs = |value: &str, count: usize| {
        (0..count)
            .map(|i| proton::Output {
                key: Some(format!("k{i}")),
                value_string: Some(value.into()),
            })
            .collect()
    };
    let input = proton::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some("arn:aws:proton:us-east-1:123456789012:environment/dev".into()),
        outputs: Some(outputs(&"s3cr3t".repeat(200), 1)),
        ..Default::default()
    };
    assert_eq!(
        message(input),
        "1 validation error detected: Value at 'outputs.1.member.valueString' failed to satisfy constraint: Member must have length less than or equal to 1024"
    );
    let input = proton::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some("arn:aws:proton:us-east-1:123456789012:environment/dev".into()),
        outputs: Some(outputs("s3cr3t", 51)),
        ..Default::default()
    };
    let msg = message(input);
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(msg.contains("Value at 'outputs' failed"), "{msg}");
}

#[test]
fn numbers_and_lists_have_bounds() {
    let input = sc::ListPortfoliosInput {
        page_size: Some(101),
        ..Default::default()
    };
    assert_eq!(
        message(input),
        "1 validation error detected: Value '101' at 'pageSize' failed to satisfy constraint: Member must have value less than or equal to 100"
    );
    let outputs = (0..51)
        .map(|i| proton::Output {
            key: Some(format!("k{i}")),
            value_string: Some("v".into()),
        })
        .collect();
    let input = proton::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some("arn:aws:proton:us-east-1:123456789012:environment/dev".into()),
        outputs: Some(outputs),
        ..Default::default()
    };
    assert!(message(input).contains("at 'outputs' failed to satisfy constraint: Member must have length less than or equal to 50"));
}

#[test]
fn wrong_json_types_are_serialization_errors() {
    let err = Json::decode::<sc::ListPortfoliosInput>(br#"{"PageSize":"ten"}"#).unwrap_err();
    assert_eq!(err.code, "SerializationException");
    let err = Json::decode::<sc::ListPortfoliosInput>(b"{not json").unwrap_err();
    assert_eq!(err.code, "SerializationException");
    assert!(
        Json::decode::<sc::ListPortfoliosInput>(b"").is_ok(),
        "an empty body is {{}}"
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = format!("{}é{}", "r".repeat(250), "x".repeat(5000));
    let input = sc::NotifyProvisionProductEngineWorkflowResultInput {
        workflow_token: Some("abc".into()),
        record_id: Some(format!("rec {long}")),
        status: Some("SUCCEEDED".into()),
        idempotency_token: Some("t".into()),
        ..Default::default()
    };
    let text = message(input);
    let shown = text
        .split("Value '")
        .nth(1)
        .and_then(|rest| rest.split("' at 'recordId'").next())
        .expect("the value is echoed");
    assert_eq!(shown.chars().count(), 256 + 3, "{text}");
    assert!(
        shown.starts_with("rec rrr") && shown.ends_with("éx..."),
        "{shown}"
    );
    assert!(text.len() < 1024, "{} bytes", text.len());
}
