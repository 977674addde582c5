//! The states of the Proton domain as enums: a deployment's status (which a deployable
//! resource's `deploymentStatus` repeats), the kind of resource a deployment targets, a
//! service's status and a template version's. Each keeps its AWS string in stored documents
//! and on the wire; the rules that read a state live here beside it.

use crate::wire_enum::wire_enum;

wire_enum! {
    /// `DeploymentStatus`.
    pub enum DeploymentStatus {
        /// A create or update deployment is under way.
        InProgress = "IN_PROGRESS",
        /// It succeeded.
        Succeeded = "SUCCEEDED",
        /// It failed.
        Failed = "FAILED",
        /// A cancellation is under way (never entered by provisiond, which cancels at once).
        Cancelling = "CANCELLING",
        /// It was cancelled.
        Cancelled = "CANCELLED",
        /// A delete deployment is under way.
        DeleteInProgress = "DELETE_IN_PROGRESS",
        /// The delete succeeded.
        DeleteComplete = "DELETE_COMPLETE",
        /// The delete failed.
        DeleteFailed = "DELETE_FAILED",
    }
}

impl DeploymentStatus {
    /// The status a deployment starts in.
    pub fn started(is_delete: bool) -> DeploymentStatus {
        if is_delete {
            Self::DeleteInProgress
        } else {
            Self::InProgress
        }
    }

    /// Whether a deployment in this status has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded
                | Self::Failed
                | Self::Cancelled
                | Self::DeleteComplete
                | Self::DeleteFailed
        )
    }

    /// Whether a resource in this status has a deployment under way (updates and deletes of it
    /// must wait).
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            Self::InProgress | Self::DeleteInProgress | Self::Cancelling
        )
    }

    /// Whether the status belongs to a delete deployment.
    pub fn is_delete(self) -> bool {
        matches!(
            self,
            Self::DeleteInProgress | Self::DeleteComplete | Self::DeleteFailed
        )
    }

    /// The status a deployment ends in when a pipeline reports `notified`: `SUCCEEDED` ends a
    /// delete as `DELETE_COMPLETE`, `FAILED` as `DELETE_FAILED`; any other report ends nothing.
    pub fn ended_by(notified: DeploymentStatus, is_delete: bool) -> Option<DeploymentStatus> {
        match (notified, is_delete) {
            (Self::Succeeded, false) => Some(Self::Succeeded),
            (Self::Succeeded, true) => Some(Self::DeleteComplete),
            (Self::Failed, false) => Some(Self::Failed),
            (Self::Failed, true) => Some(Self::DeleteFailed),
            _ => None,
        }
    }
}

wire_enum! {
    /// `DeploymentTargetResourceType`.
    pub enum TargetType {
        /// An environment.
        Environment = "ENVIRONMENT",
        /// A service instance.
        ServiceInstance = "SERVICE_INSTANCE",
        /// A service pipeline (not deployed by provisiond).
        ServicePipeline = "SERVICE_PIPELINE",
        /// A component.
        Component = "COMPONENT",
    }
}

wire_enum! {
    /// `ServiceStatus`, the values provisiond uses: a service is created at once and, once
    /// asked to go, waits for its instances' delete deployments.
    pub enum ServiceStatus {
        /// In use.
        Active = "ACTIVE",
        /// Its instances are being deleted; it goes with the last.
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

wire_enum! {
    /// `TemplateVersionStatus`.
    pub enum VersionStatus {
        /// Never entered by provisiond, which registers within the call.
        RegistrationInProgress = "REGISTRATION_IN_PROGRESS",
        /// Never entered by provisiond, which refuses a bad bundle within the call.
        RegistrationFailed = "REGISTRATION_FAILED",
        /// Registered, not yet usable.
        Draft = "DRAFT",
        /// Usable by new deployments.
        Published = "PUBLISHED",
    }
}

impl VersionStatus {
    /// Whether a version may move from this status to `wanted` (staying is always allowed).
    pub fn may_become(self, wanted: VersionStatus) -> bool {
        self == wanted || (self == Self::Draft && wanted == Self::Published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentStatus::*;

    fn names(filter: impl Fn(DeploymentStatus) -> bool) -> Vec<&'static str> {
        DeploymentStatus::ALL
            .iter()
            .copied()
            .filter(|s| filter(*s))
            .map(DeploymentStatus::as_str)
            .collect()
    }

    #[test]
    fn final_busy_and_delete_statuses_partition_as_proton_documents() {
        assert_eq!(
            names(DeploymentStatus::is_final),
            [
                "SUCCEEDED",
                "FAILED",
                "CANCELLED",
                "DELETE_COMPLETE",
                "DELETE_FAILED"
            ]
        );
        assert_eq!(
            names(DeploymentStatus::is_busy),
            ["IN_PROGRESS", "CANCELLING", "DELETE_IN_PROGRESS"]
        );
        // No status is both ended and under way.
        assert!(DeploymentStatus::ALL
            .iter()
            .all(|s| !(s.is_final() && s.is_busy())));
        assert_eq!(
            names(DeploymentStatus::is_delete),
            ["DELETE_IN_PROGRESS", "DELETE_COMPLETE", "DELETE_FAILED"]
        );
        assert_eq!(DeploymentStatus::started(false), InProgress);
        assert_eq!(DeploymentStatus::started(true), DeleteInProgress);
    }

    #[test]
    fn only_success_and_failure_end_a_deployment_and_a_delete_ends_as_a_delete() {
        assert_eq!(
            DeploymentStatus::ended_by(Succeeded, false),
            Some(Succeeded)
        );
        assert_eq!(
            DeploymentStatus::ended_by(Succeeded, true),
            Some(DeleteComplete)
        );
        assert_eq!(DeploymentStatus::ended_by(Failed, false), Some(Failed));
        assert_eq!(DeploymentStatus::ended_by(Failed, true), Some(DeleteFailed));
        for other in [
            InProgress,
            Cancelling,
            Cancelled,
            DeleteInProgress,
            DeleteComplete,
            DeleteFailed,
        ] {
            assert_eq!(DeploymentStatus::ended_by(other, false), None, "{other}");
            assert_eq!(DeploymentStatus::ended_by(other, true), None, "{other}");
        }
    }

    #[test]
    fn a_draft_may_be_published_and_nothing_goes_back() {
        use VersionStatus::*;
        assert!(Draft.may_become(Published));
        assert!(Published.may_become(Published));
        assert!(!Published.may_become(Draft));
        assert!(!Draft.may_become(RegistrationFailed));
        assert_eq!(
            serde_json::to_string(&TargetType::ServiceInstance).unwrap(),
            "\"SERVICE_INSTANCE\""
        );
    }
}
