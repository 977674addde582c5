//! The awsJson codec and the generated validators on the inputs of the five core calls and a
//! sample of others: the first byte picks the input shape, the rest is the body. Any answer but
//! a decoded, checked shape must be SerializationException or ValidationException, and no
//! message may run past a few kilobytes (values are cut, sensitive ones never shown).
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond_model::runtime::{check, AwsError, Codec, Json, JsonType, Validate};
use provisiond_model::{proton, servicecatalog as sc, sqs};
use serde::de::DeserializeOwned;

fn run<T: DeserializeOwned + JsonType + Validate>(body: &[u8]) {
    let outcome: Result<T, AwsError> = Json::decode(body).and_then(check);
    if let Err(e) = outcome {
        assert!(
            e.code == "SerializationException" || e.code == "ValidationException",
            "{e}"
        );
        assert_eq!(e.status, 400);
        // At most 256 characters per echoed value, a bounded number of violations per shape.
        assert!(e.message.len() < 64 * 1024, "{} bytes", e.message.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => run::<sc::ExecuteProvisionedProductPlanInput>(body),
        1 => run::<sc::NotifyProvisionProductEngineWorkflowResultInput>(body),
        2 => run::<sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput>(body),
        3 => run::<sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput>(body),
        4 => run::<proton::NotifyResourceDeploymentStatusChangeInput>(body),
        5 => run::<sc::ProvisionProductInput>(body),
        6 => run::<sc::CreateProductInput>(body),
        7 => run::<sc::SearchProvisionedProductsInput>(body),
        8 => run::<proton::CreateEnvironmentInput>(body),
        9 => run::<sqs::SendMessageRequest>(body),
        10 => run::<sqs::ReceiveMessageRequest>(body),
        _ => run::<sc::UpdateProvisionedProductInput>(body),
    }
});
