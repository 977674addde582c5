//! Proton's per-operation table: every operation provisiond serves, who may call it and where
//! it runs. Operations not in it answer `UnknownOperationException`. `docs/compatibility.md`
//! says the same (a test holds them together).
//!
//! Templates, repositories, account settings and environments are the platform team's: their
//! writes are for administrators. Services, instances, components, deployments, tags and the
//! pipeline's `NotifyResourceDeploymentStatusChange` are open to any key of the account, and so,
//! today, is `CancelEnvironmentDeployment` (docs/decisions.md).

use crate::served::{Facts, ADMIN, ANY_KEY, ANY_KEY_WRITES};
use provisiond_model::proton::Operation::{self, *};

/// The served operations; every one runs on the pool (a call that makes a deployment also
/// commits it to git before it answers).
pub const TABLE: &[(Operation, Facts)] = &[
    (CreateRepository, ADMIN),
    (GetRepository, ANY_KEY),
    (ListRepositories, ANY_KEY),
    (DeleteRepository, ADMIN),
    (CreateEnvironmentTemplate, ADMIN),
    (GetEnvironmentTemplate, ANY_KEY),
    (UpdateEnvironmentTemplate, ADMIN),
    (ListEnvironmentTemplates, ANY_KEY),
    (DeleteEnvironmentTemplate, ADMIN),
    (CreateEnvironmentTemplateVersion, ADMIN),
    (GetEnvironmentTemplateVersion, ANY_KEY),
    (UpdateEnvironmentTemplateVersion, ADMIN),
    (ListEnvironmentTemplateVersions, ANY_KEY),
    (DeleteEnvironmentTemplateVersion, ADMIN),
    (CreateServiceTemplate, ADMIN),
    (GetServiceTemplate, ANY_KEY),
    (UpdateServiceTemplate, ADMIN),
    (ListServiceTemplates, ANY_KEY),
    (DeleteServiceTemplate, ADMIN),
    (CreateServiceTemplateVersion, ADMIN),
    (GetServiceTemplateVersion, ANY_KEY),
    (UpdateServiceTemplateVersion, ADMIN),
    (ListServiceTemplateVersions, ANY_KEY),
    (DeleteServiceTemplateVersion, ADMIN),
    (CreateEnvironment, ADMIN),
    (GetEnvironment, ANY_KEY),
    (UpdateEnvironment, ADMIN),
    (ListEnvironments, ANY_KEY),
    (DeleteEnvironment, ADMIN),
    (ListEnvironmentOutputs, ANY_KEY),
    (CancelEnvironmentDeployment, ANY_KEY_WRITES),
    (CreateService, ANY_KEY_WRITES),
    (GetService, ANY_KEY),
    (UpdateService, ANY_KEY_WRITES),
    (ListServices, ANY_KEY),
    (DeleteService, ANY_KEY_WRITES),
    (CreateServiceInstance, ANY_KEY_WRITES),
    (GetServiceInstance, ANY_KEY),
    (UpdateServiceInstance, ANY_KEY_WRITES),
    (ListServiceInstances, ANY_KEY),
    (ListServiceInstanceOutputs, ANY_KEY),
    (CancelServiceInstanceDeployment, ANY_KEY_WRITES),
    (ListServicePipelineOutputs, ANY_KEY),
    (CreateComponent, ANY_KEY_WRITES),
    (GetComponent, ANY_KEY),
    (UpdateComponent, ANY_KEY_WRITES),
    (ListComponents, ANY_KEY),
    (DeleteComponent, ANY_KEY_WRITES),
    (ListComponentOutputs, ANY_KEY),
    (CancelComponentDeployment, ANY_KEY_WRITES),
    (GetDeployment, ANY_KEY),
    (ListDeployments, ANY_KEY),
    (DeleteDeployment, ANY_KEY_WRITES),
    (NotifyResourceDeploymentStatusChange, ANY_KEY_WRITES),
    (TagResource, ANY_KEY_WRITES),
    (UntagResource, ANY_KEY_WRITES),
    (ListTagsForResource, ANY_KEY),
    (GetAccountSettings, ANY_KEY),
    (UpdateAccountSettings, ADMIN),
];

/// What the table says of `operation`; `None` when it is not served.
pub fn facts(operation: Operation) -> Option<Facts> {
    TABLE
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, facts)| *facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_is_audited_and_no_read() {
        let named: Vec<(&str, Facts)> = TABLE.iter().map(|(op, f)| (op.name(), *f)).collect();
        let wrong = crate::served::audit_mistakes(&named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_table_and_the_compatibility_doc_agree() {
        let named: Vec<(&str, Facts)> = TABLE.iter().map(|(op, f)| (op.name(), *f)).collect();
        let wrong = crate::served::disagreements("Proton", &named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn each_operation_is_in_the_table_once() {
        for (i, (op, _)) in TABLE.iter().enumerate() {
            assert!(!TABLE[i + 1..].iter().any(|(o, _)| o == op), "{op:?} twice");
        }
    }
}
