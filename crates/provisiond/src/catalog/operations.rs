//! Service Catalog's per-operation table: every operation provisiond serves, who may call it
//! and where it runs. Operations not in it answer `UnknownOperationException`.
//! `docs/compatibility.md` says the same (a test holds them together).

use crate::served::{
    Facts, ADMIN, ANY_KEY, ANY_KEY_LONG_READ, ANY_KEY_ON_WRITER, ANY_KEY_WRITES,
    WORKFLOW_TOKEN_ON_WRITER,
};
use provisiond_model::servicecatalog::Operation::{self, *};

/// The served operations. On the writer: the engine callbacks and the calls that start engine
/// work, which engines and pipelines make in tight loops (see `served::Runs::OnWriter`).
pub const TABLE: &[(Operation, Facts)] = &[
    (CreatePortfolio, ADMIN),
    (DescribePortfolio, ANY_KEY),
    (UpdatePortfolio, ADMIN),
    (DeletePortfolio, ADMIN),
    (ListPortfolios, ANY_KEY),
    (AssociatePrincipalWithPortfolio, ADMIN),
    (DisassociatePrincipalFromPortfolio, ADMIN),
    (ListPrincipalsForPortfolio, ANY_KEY),
    (CreateProduct, ADMIN),
    (DescribeProductAsAdmin, ANY_KEY),
    (DeleteProduct, ADMIN),
    (UpdateProduct, ADMIN),
    (SearchProductsAsAdmin, ANY_KEY),
    (AssociateProductWithPortfolio, ADMIN),
    (DisassociateProductFromPortfolio, ADMIN),
    (ListPortfoliosForProduct, ANY_KEY),
    (CreateProvisioningArtifact, ADMIN),
    (DescribeProvisioningArtifact, ANY_KEY),
    (ListProvisioningArtifacts, ANY_KEY),
    (DeleteProvisioningArtifact, ADMIN),
    (UpdateProvisioningArtifact, ADMIN),
    (CreateConstraint, ADMIN),
    (DescribeConstraint, ANY_KEY),
    (DeleteConstraint, ADMIN),
    (ListConstraintsForPortfolio, ANY_KEY),
    (ListLaunchPaths, ANY_KEY),
    (DescribeProvisioningParameters, ANY_KEY),
    (DescribeProduct, ANY_KEY),
    (SearchProducts, ANY_KEY),
    (ProvisionProduct, ANY_KEY_ON_WRITER),
    (UpdateProvisionedProduct, ANY_KEY_ON_WRITER),
    (TerminateProvisionedProduct, ANY_KEY_ON_WRITER),
    (DescribeProvisionedProduct, ANY_KEY),
    (DescribeRecord, ANY_KEY),
    (GetProvisionedProductOutputs, ANY_KEY),
    (ScanProvisionedProducts, ANY_KEY),
    (ListRecordHistory, ANY_KEY),
    (SearchProvisionedProducts, ANY_KEY_LONG_READ),
    (UpdateProvisionedProductProperties, ANY_KEY_WRITES),
    (
        NotifyProvisionProductEngineWorkflowResult,
        WORKFLOW_TOKEN_ON_WRITER,
    ),
    (
        NotifyUpdateProvisionedProductEngineWorkflowResult,
        WORKFLOW_TOKEN_ON_WRITER,
    ),
    (
        NotifyTerminateProvisionedProductEngineWorkflowResult,
        WORKFLOW_TOKEN_ON_WRITER,
    ),
    (CreateProvisionedProductPlan, ANY_KEY_WRITES),
    (DescribeProvisionedProductPlan, ANY_KEY),
    (ListProvisionedProductPlans, ANY_KEY),
    (DeleteProvisionedProductPlan, ANY_KEY_WRITES),
    (ExecuteProvisionedProductPlan, ANY_KEY_ON_WRITER),
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
        let wrong = crate::served::disagreements("Service Catalog", &named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_search_that_may_read_the_whole_account_never_holds_a_request_thread() {
        // A sorted search of a million provisioned products takes seconds (BENCHMARKS.md).
        assert_eq!(
            facts(SearchProvisionedProducts).map(|f| f.runs),
            Some(crate::served::Runs::OnPool)
        );
    }

    #[test]
    fn each_operation_is_in_the_table_once() {
        for (i, (op, _)) in TABLE.iter().enumerate() {
            assert!(!TABLE[i + 1..].iter().any(|(o, _)| o == op), "{op:?} twice");
        }
    }
}
