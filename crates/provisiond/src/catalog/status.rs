//! The states of the Service Catalog domain as enums: a provisioned product's status, a
//! record's status and type, a plan's status and the outcome an engine reports. Each keeps its
//! AWS string in stored documents and on the wire; the rules that read a state (may it change,
//! may it be planned) live here beside it.

use super::workflow_token::EngineOperation;
use crate::wire_enum::wire_enum;

/// The `Status` of a product, a version or a constraint: each is created within its call, so
/// it is `AVAILABLE` once the call returns.
pub const CREATED: &str = "AVAILABLE";

wire_enum! {
    /// `ProvisionedProductStatus`, the values provisiond uses.
    pub enum ProductStatus {
        /// The last change succeeded.
        Available = "AVAILABLE",
        /// A record is in progress.
        UnderChange = "UNDER_CHANGE",
        /// The last update or terminate failed; the previous resources may be partly changed.
        Tainted = "TAINTED",
        /// The first provision failed.
        Error = "ERROR",
        /// Created by a plan and never provisioned.
        PlanInProgress = "PLAN_IN_PROGRESS",
    }
}

impl ProductStatus {
    /// Whether an update, a terminate or a property change may start: nothing is under way and
    /// the product exists beyond a plan.
    pub fn accepts_change(self) -> bool {
        matches!(self, Self::Available | Self::Tainted | Self::Error)
    }

    /// Whether a plan may be made to update it (SPEC §6: `AVAILABLE` or `TAINTED`).
    pub fn plannable(self) -> bool {
        matches!(self, Self::Available | Self::Tainted)
    }
}

wire_enum! {
    /// `RecordStatus`, the values provisiond uses.
    pub enum RecordStatus {
        /// The engine has not reported yet.
        InProgress = "IN_PROGRESS",
        /// The engine reported success (or the change needed no engine).
        Succeeded = "SUCCEEDED",
        /// The engine reported failure.
        Failed = "FAILED",
    }
}

impl RecordStatus {
    /// Whether the record waits for its engine (neither succeeded nor failed).
    pub fn in_progress(self) -> bool {
        self == Self::InProgress
    }
}

wire_enum! {
    /// The `RecordType` of a record.
    pub enum RecordType {
        /// `ProvisionProduct`, or the execution of a plan for a new product.
        Provision = "PROVISION_PRODUCT",
        /// `UpdateProvisionedProduct`, or the execution of a plan for an existing one.
        Update = "UPDATE_PROVISIONED_PRODUCT",
        /// `TerminateProvisionedProduct`.
        Terminate = "TERMINATE_PROVISIONED_PRODUCT",
        /// `UpdateProvisionedProductProperties`: settled at once, no engine task.
        UpdateProperties = "UPDATE_PROVISIONED_PRODUCT_PROPERTIES",
    }
}

impl RecordType {
    /// The engine operation a record of this type asks for; none for a property change.
    pub fn engine_operation(self) -> Option<EngineOperation> {
        match self {
            Self::Provision => Some(EngineOperation::Provision),
            Self::Update => Some(EngineOperation::Update),
            Self::Terminate => Some(EngineOperation::Terminate),
            Self::UpdateProperties => None,
        }
    }
}

impl From<EngineOperation> for RecordType {
    fn from(operation: EngineOperation) -> RecordType {
        match operation {
            EngineOperation::Provision => Self::Provision,
            EngineOperation::Update => Self::Update,
            EngineOperation::Terminate => Self::Terminate,
        }
    }
}

wire_enum! {
    /// `ProvisionedProductPlanStatus`, the values provisiond uses.
    pub enum PlanStatus {
        /// Made and waiting to be executed.
        CreateSuccess = "CREATE_SUCCESS",
        /// Its record is in progress.
        ExecuteInProgress = "EXECUTE_IN_PROGRESS",
        /// Its record succeeded.
        ExecuteSuccess = "EXECUTE_SUCCESS",
        /// Its record failed.
        ExecuteFailed = "EXECUTE_FAILED",
    }
}

impl PlanStatus {
    /// Whether the plan still holds its provisioned product (one open plan per product).
    pub fn is_open(self) -> bool {
        matches!(self, Self::CreateSuccess | Self::ExecuteInProgress)
    }

    /// The status an execution ends in.
    pub fn executed(outcome: EngineOutcome) -> PlanStatus {
        match outcome {
            EngineOutcome::Succeeded => Self::ExecuteSuccess,
            EngineOutcome::Failed => Self::ExecuteFailed,
        }
    }
}

wire_enum! {
    /// `EngineWorkflowStatus`: what an engine reports in a Notify call.
    pub enum EngineOutcome {
        /// The run succeeded.
        Succeeded = "SUCCEEDED",
        /// The run failed.
        Failed = "FAILED",
    }
}

impl EngineOutcome {
    /// The status a record settled with this outcome has.
    pub fn record_status(self) -> RecordStatus {
        match self {
            Self::Succeeded => RecordStatus::Succeeded,
            Self::Failed => RecordStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settled_products_accept_a_change_and_only_healthy_ones_a_plan() {
        let changeable: Vec<_> = ProductStatus::ALL
            .iter()
            .filter(|s| s.accepts_change())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(changeable, ["AVAILABLE", "TAINTED", "ERROR"]);
        let plannable: Vec<_> = ProductStatus::ALL
            .iter()
            .filter(|s| s.plannable())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(plannable, ["AVAILABLE", "TAINTED"]);
    }

    #[test]
    fn record_types_map_to_engine_operations_and_back() {
        for op in [
            EngineOperation::Provision,
            EngineOperation::Update,
            EngineOperation::Terminate,
        ] {
            let record_type = RecordType::from(op);
            assert_eq!(record_type.engine_operation(), Some(op));
            // The task's operation and the record's type are the same wire string.
            assert_eq!(
                serde_json::to_value(op).unwrap(),
                serde_json::Value::from(record_type.as_str())
            );
        }
        assert_eq!(RecordType::UpdateProperties.engine_operation(), None);
    }

    #[test]
    fn outcomes_settle_records_and_plans() {
        assert_eq!(
            EngineOutcome::Succeeded.record_status(),
            RecordStatus::Succeeded
        );
        assert_eq!(EngineOutcome::Failed.record_status(), RecordStatus::Failed);
        assert_eq!(
            PlanStatus::executed(EngineOutcome::Succeeded),
            PlanStatus::ExecuteSuccess
        );
        assert_eq!(
            PlanStatus::executed(EngineOutcome::Failed),
            PlanStatus::ExecuteFailed
        );
        let open: Vec<_> = PlanStatus::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(
            open,
            [&PlanStatus::CreateSuccess, &PlanStatus::ExecuteInProgress]
        );
    }

    #[test]
    fn stored_strings_are_the_wire_strings() {
        assert_eq!(
            serde_json::to_string(&ProductStatus::UnderChange).unwrap(),
            "\"UNDER_CHANGE\""
        );
        assert_eq!(
            serde_json::from_str::<RecordType>("\"UPDATE_PROVISIONED_PRODUCT_PROPERTIES\"")
                .unwrap(),
            RecordType::UpdateProperties
        );
        assert_eq!(
            EngineOutcome::parse("SUCCEEDED"),
            Some(EngineOutcome::Succeeded)
        );
        assert_eq!(EngineOutcome::parse("IN_PROGRESS"), None);
    }
}
