//! The engine queues every account has from the start, named as the AWS reference Terraform
//! engine expects: `ServiceCatalog{TerraformOS|TerraformCloud|External}{Provision|Update|Terminate}OperationQueue`,
//! each with a `-dlq` dead-letter queue.

/// The product types whose operations an external engine performs, as queue name parts.
pub const ENGINE_TYPES: [&str; 3] = ["TerraformOS", "TerraformCloud", "External"];
/// The operations, as queue name parts.
pub const OPERATIONS: [&str; 3] = ["Provision", "Update", "Terminate"];
/// The suffix of a dead-letter queue's name.
pub const DLQ_SUFFIX: &str = "-dlq";

/// Every queue name, work queues first then their dead-letter queues, in a fixed order.
pub fn all() -> Vec<String> {
    let work: Vec<String> = ENGINE_TYPES
        .iter()
        .flat_map(|t| {
            OPERATIONS
                .iter()
                .map(move |o| format!("ServiceCatalog{t}{o}OperationQueue"))
        })
        .collect();
    let dlq = work.iter().map(|q| format!("{q}{DLQ_SUFFIX}"));
    work.iter().cloned().chain(dlq).collect()
}

/// Whether `name` is one of the engine queues.
pub fn exists(name: &str) -> bool {
    all().iter().any(|q| q == name)
}

/// The dead-letter queue of a work queue; `None` for a dead-letter queue.
pub fn dead_letter_queue(name: &str) -> Option<String> {
    (!name.ends_with(DLQ_SUFFIX)).then(|| format!("{name}{DLQ_SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_engine_queue_names_exist() {
        let names = all();
        assert_eq!(names.len(), 18);
        for name in [
            "ServiceCatalogTerraformOSProvisionOperationQueue",
            "ServiceCatalogTerraformOSUpdateOperationQueue",
            "ServiceCatalogTerraformOSTerminateOperationQueue",
            "ServiceCatalogTerraformCloudProvisionOperationQueue",
            "ServiceCatalogExternalTerminateOperationQueue",
            "ServiceCatalogExternalProvisionOperationQueue-dlq",
        ] {
            assert!(exists(name), "{name}");
        }
        assert!(!exists(
            "ServiceCatalogTerraformOSProvisionOperationQueue-dlq-dlq"
        ));
        assert_eq!(
            dead_letter_queue("ServiceCatalogExternalUpdateOperationQueue").as_deref(),
            Some("ServiceCatalogExternalUpdateOperationQueue-dlq")
        );
        assert_eq!(
            dead_letter_queue("ServiceCatalogExternalUpdateOperationQueue-dlq"),
            None
        );
    }
}
