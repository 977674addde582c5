//! Deployments (SPEC §7.4): one per create, update or delete of an environment (later service
//! instances and components), with the resource's state before (`initialState`) and wanted
//! (`targetState`). `ResourceStatus` is the deployment bookkeeping every deployable resource
//! carries. GetDeployment, ListDeployments and DeleteDeployment live here.

use super::common::{arn, not_found, page_size, parse_next_token};
use super::snapshot::Snapshot;
use super::status::{DeploymentStatus, TargetType};
use crate::context::RequestContext;
use crate::paging;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};

/// The message a cancelled deployment carries.
pub const CANCELLED_MESSAGE: &str = "User initiated cancellation.";

/// A resource's deployment bookkeeping, as `Environment` & co. show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// `deploymentStatus`: its last attempted deployment's.
    pub status: DeploymentStatus,
    /// `deploymentStatusMessage`.
    pub message: Option<String>,
    /// `lastAttemptedDeploymentId`.
    pub last_attempted_id: Option<String>,
    /// `lastDeploymentAttemptedAt`, epoch ms.
    pub last_attempted_ms: i64,
    /// `lastSucceededDeploymentId`.
    pub last_succeeded_id: Option<String>,
    /// `lastDeploymentSucceededAt`, epoch ms.
    pub last_succeeded_ms: i64,
}

impl ResourceStatus {
    /// The bookkeeping of a resource being created: its first deployment starts with it.
    pub fn creating() -> ResourceStatus {
        ResourceStatus {
            status: DeploymentStatus::InProgress,
            message: None,
            last_attempted_id: None,
            last_attempted_ms: 0,
            last_succeeded_id: None,
            last_succeeded_ms: 0,
        }
    }

    /// Whether a deployment of the resource is under way (updates and deletes must wait).
    pub fn busy(&self) -> bool {
        self.status.is_busy()
    }

    /// Records that `deployment` started.
    pub fn start(&mut self, deployment: &Deployment) {
        self.status = deployment.status;
        self.message = None;
        self.last_attempted_id = Some(deployment.id.clone());
        self.last_attempted_ms = deployment.created_ms;
    }
}

/// A stored deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    /// Lowercase UUID.
    pub id: String,
    /// `…:deployment/<id>`.
    pub arn: String,
    /// The resource deployed.
    pub target_arn: String,
    /// The kind of resource.
    pub target_type: TargetType,
    /// When the target resource was created, epoch ms.
    pub target_created_ms: i64,
    /// The environment involved.
    pub environment_name: String,
    /// The service, for instances and pipelines.
    pub service_name: Option<String>,
    /// The service instance.
    pub service_instance_name: Option<String>,
    /// The component.
    pub component_name: Option<String>,
    /// `deploymentStatus`.
    pub status: DeploymentStatus,
    /// `deploymentStatusMessage` (never logged).
    pub status_message: Option<String>,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last change, epoch ms.
    pub modified_ms: i64,
    /// When it ended, epoch ms.
    pub completed_ms: Option<i64>,
    /// The resource's state before (none for a creation).
    pub initial_state: Option<Snapshot>,
    /// The state it deploys.
    pub target_state: Snapshot,
    /// The resource's `lastAttemptedDeploymentId` before this one.
    pub previous_attempted_id: Option<String>,
    /// The resource's `lastSucceededDeploymentId` when this one started.
    pub previous_succeeded_id: Option<String>,
    /// Whether this deployment deletes the resource.
    pub is_delete: bool,
    /// Outputs reported by the pipeline (never logged).
    pub outputs: Vec<(String, String)>,
    /// The git commit that delivered it, once `delivery` made (or found) it.
    #[serde(default)]
    pub delivered: Option<Delivered>,
}

/// Where a deployment was committed for its pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The registered repository name (`owner/repo`).
    pub repository: String,
    /// The branch.
    pub branch: String,
    /// The commit's id.
    pub commit: String,
}

impl Deployment {
    /// A new deployment `id` of `target_arn`, `IN_PROGRESS` (`DELETE_IN_PROGRESS` for a
    /// delete).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        ctx: &RequestContext,
        id: String,
        target_arn: &str,
        target_type: TargetType,
        target_created_ms: i64,
        environment_name: &str,
        status: &ResourceStatus,
        initial_state: Option<Snapshot>,
        target_state: Snapshot,
        is_delete: bool,
    ) -> Deployment {
        Deployment {
            arn: arn(ctx, &format!("deployment/{id}")),
            id,
            target_arn: target_arn.to_string(),
            target_type,
            target_created_ms,
            environment_name: environment_name.to_string(),
            service_name: None,
            service_instance_name: None,
            component_name: None,
            status: DeploymentStatus::started(is_delete),
            status_message: None,
            created_ms: ctx.now_ms,
            modified_ms: ctx.now_ms,
            completed_ms: None,
            initial_state,
            target_state,
            previous_attempted_id: status.last_attempted_id.clone(),
            previous_succeeded_id: status.last_succeeded_id.clone(),
            is_delete,
            outputs: Vec::new(),
            delivered: None,
        }
    }

    /// Whether the deployment has ended.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// The deployment on the wire.
    pub fn wire(&self) -> pr::Deployment {
        pr::Deployment {
            arn: Some(self.arn.clone()),
            completed_at: self.completed_ms.map(Timestamp::from_millis),
            component_name: self.component_name.clone(),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            deployment_status: Some(self.status.into()),
            deployment_status_message: self.status_message.clone(),
            environment_name: Some(self.environment_name.clone()),
            id: Some(self.id.clone()),
            initial_state: self.initial_state.as_ref().map(Snapshot::wire),
            last_attempted_deployment_id: self.previous_attempted_id.clone(),
            last_modified_at: Some(Timestamp::from_millis(self.modified_ms)),
            last_succeeded_deployment_id: self.previous_succeeded_id.clone(),
            service_instance_name: self.service_instance_name.clone(),
            service_name: self.service_name.clone(),
            target_arn: Some(self.target_arn.clone()),
            target_resource_created_at: Some(Timestamp::from_millis(self.target_created_ms)),
            target_resource_type: Some(self.target_type.into()),
            target_state: Some(self.target_state.wire()),
        }
    }

    fn summary(&self) -> pr::DeploymentSummary {
        let w = self.wire();
        pr::DeploymentSummary {
            arn: w.arn,
            completed_at: w.completed_at,
            component_name: w.component_name,
            created_at: w.created_at,
            deployment_status: w.deployment_status,
            environment_name: w.environment_name,
            id: w.id,
            last_attempted_deployment_id: w.last_attempted_deployment_id,
            last_modified_at: w.last_modified_at,
            last_succeeded_deployment_id: w.last_succeeded_deployment_id,
            service_instance_name: w.service_instance_name,
            service_name: w.service_name,
            target_arn: w.target_arn,
            target_resource_created_at: w.target_resource_created_at,
            target_resource_type: w.target_resource_type,
        }
    }

    /// The outputs on the wire.
    pub fn wire_outputs(&self) -> Vec<pr::Output> {
        self.outputs
            .iter()
            .map(|(k, v)| pr::Output {
                key: Some(k.clone()),
                value_string: Some(v.clone()),
            })
            .collect()
    }

    /// Adds or replaces outputs by key, keeping first-reported order.
    pub fn merge_outputs(&mut self, outputs: &[pr::Output]) {
        for output in outputs {
            let key = output.key.clone().unwrap_or_default();
            let value = output.value_string.clone().unwrap_or_default();
            match self.outputs.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => self.outputs.push((key, value)),
            }
        }
    }
}

/// Stores a new or changed deployment; one that ended is no longer in flight.
pub fn save(tx: &mut dyn Tx, scope: &str, deployment: &Deployment) -> Result<(), AwsError> {
    store::put(
        tx,
        Kind::ProtonDeployment,
        scope,
        &deployment.id,
        "",
        deployment,
    )?;
    if deployment.is_final() {
        crate::in_flight::forget(tx, &deployment.id)?;
    }
    Ok(())
}

/// Deployments by the resource they deploy (its ARN), and by the names that `ListDeployments`
/// filters on.
const BY_TARGET: Index = Index::new(Kind::ProtonDeployment, "target");
const BY_ENVIRONMENT: Index = Index::new(Kind::ProtonDeployment, "environment");
const BY_SERVICE: Index = Index::new(Kind::ProtonDeployment, "service");
const BY_COMPONENT: Index = Index::new(Kind::ProtonDeployment, "component");

impl store::index::Indexed for Deployment {
    const KIND: Kind = Kind::ProtonDeployment;
    const INDEXES: &'static [Index] = &[BY_TARGET, BY_ENVIRONMENT, BY_SERVICE, BY_COMPONENT];
    fn index_values(&self) -> Vec<(Index, String)> {
        let mut out = vec![
            (BY_TARGET, self.target_arn.clone()),
            (BY_ENVIRONMENT, self.environment_name.clone()),
        ];
        out.extend(self.service_name.clone().map(|s| (BY_SERVICE, s)));
        out.extend(self.component_name.clone().map(|c| (BY_COMPONENT, c)));
        out
    }
}

/// Stores a new deployment with its index entries (what it deploys never changes after).
pub fn create(tx: &mut dyn Tx, scope: &str, deployment: &Deployment) -> Result<(), AwsError> {
    save(tx, scope, deployment)?;
    store::index::note(tx, scope, &deployment.id, deployment)?;
    if !deployment.is_final() {
        crate::in_flight::note(
            tx,
            crate::in_flight::Work::Deployment,
            scope,
            &deployment.id,
            deployment.created_ms,
        )?;
    }
    Ok(())
}

/// The deployment `id`, if this account and region have it.
pub fn find(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Option<Deployment>, AwsError> {
    Ok(store::get(tx, Kind::ProtonDeployment, scope, id)?)
}

/// The deployment `id`, or `ResourceNotFoundException`.
pub fn load(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Deployment, AwsError> {
    find(tx, scope, id)?.ok_or_else(|| not_found("deployment", id))
}

/// [`load`], for a transaction that will change it (`Tx::get_for_update`).
pub fn load_for_update(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Deployment, AwsError> {
    store::get_for_update(tx, Kind::ProtonDeployment, scope, id)?
        .ok_or_else(|| not_found("deployment", id))
}

/// The deployments of one resource, oldest first.
pub fn of_target(
    tx: &mut dyn Tx,
    scope: &str,
    target_arn: &str,
) -> Result<Vec<Deployment>, AwsError> {
    Ok(BY_TARGET.all(tx, scope, target_arn, |d: &Deployment| {
        d.target_arn == target_arn
    })?)
}

fn matches_names(
    d: &Deployment,
    environment: Option<&str>,
    service: Option<&str>,
    instance: Option<&str>,
    component: Option<&str>,
) -> bool {
    environment.is_none_or(|e| d.environment_name == e)
        && service.is_none_or(|s| d.service_name.as_deref() == Some(s))
        && instance.is_none_or(|i| d.service_instance_name.as_deref() == Some(i))
        && component.is_none_or(|c| d.component_name.as_deref() == Some(c))
}

/// `GetDeployment`: by id; the optional names must match the deployment.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetDeploymentInput,
) -> Result<pr::GetDeploymentOutput, AwsError> {
    let id = input.id.clone().unwrap_or_default();
    let deployment = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load(tx, &ctx.scope(), &id)
    })?;
    if !matches_names(
        &deployment,
        input.environment_name.as_deref(),
        input.service_name.as_deref(),
        input.service_instance_name.as_deref(),
        input.component_name.as_deref(),
    ) {
        return Err(not_found("deployment", &id));
    }
    Ok(pr::GetDeploymentOutput {
        deployment: Some(deployment.wire()),
    })
}

/// `ListDeployments`: newest first, filtered by the names given.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListDeploymentsInput,
) -> Result<pr::ListDeploymentsOutput, AwsError> {
    let scope = ctx.scope();
    let before = parse_next_token(input.next_token.as_deref())?;
    let size = page_size(input.max_results);
    // The narrowest index the names given allow; every name is checked on what it finds.
    let index = [
        (BY_COMPONENT, input.component_name.as_deref()),
        (BY_SERVICE, input.service_name.as_deref()),
        (BY_ENVIRONMENT, input.environment_name.as_deref()),
    ]
    .into_iter()
    .find_map(|(index, name)| name.map(|n| (index, n.to_string())));
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            before,
            size,
            |from, limit| match &index {
                Some((index, value)) => index.documents(tx, &scope, value, from, true, limit),
                None => store::list_newest(tx, Kind::ProtonDeployment, &scope, "", from, limit),
            },
            |d: &Deployment| {
                matches_names(
                    d,
                    input.environment_name.as_deref(),
                    input.service_name.as_deref(),
                    input.service_instance_name.as_deref(),
                    input.component_name.as_deref(),
                )
            },
        )
    })?;
    let page: Vec<_> = page.iter().map(Deployment::summary).collect();
    Ok(pr::ListDeploymentsOutput {
        deployments: Some(page),
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proton::snapshot::{ComponentSnapshot, Snapshot};
    use crate::testing::Fixture;

    fn component() -> Snapshot {
        Snapshot::Component(ComponentSnapshot {
            template_file: "main.tf".into(),
            service_spec: None,
            service_name: None,
            service_instance_name: None,
        })
    }

    #[test]
    fn a_deployment_starts_in_progress_or_deleting_and_shows_its_kind_and_states() {
        let fx = Fixture::new();
        let ctx = fx.ctx("platform", true);
        let mut status = ResourceStatus::creating();
        status.last_succeeded_id = Some("d-0".into());
        let arn = "arn:aws:proton:us-east-1:123456789012:component/cache";
        let d = Deployment::start(
            &ctx,
            "d-1".into(),
            arn,
            TargetType::Component,
            5,
            "dev",
            &status,
            None,
            component(),
            false,
        );
        assert_eq!(d.status, DeploymentStatus::InProgress);
        assert!(!d.is_final());
        assert_eq!(d.previous_succeeded_id.as_deref(), Some("d-0"));
        let wire = d.wire();
        assert_eq!(wire.deployment_status.as_deref(), Some("IN_PROGRESS"));
        assert_eq!(wire.target_resource_type.as_deref(), Some("COMPONENT"));
        assert_eq!(
            wire.target_state
                .unwrap()
                .component
                .unwrap()
                .template_file
                .as_deref(),
            Some("main.tf")
        );
        assert!(wire.initial_state.is_none());
        assert!(wire.arn.unwrap().ends_with(":deployment/d-1"));

        let delete = Deployment::start(
            &ctx,
            "d-2".into(),
            arn,
            TargetType::Component,
            5,
            "dev",
            &status,
            Some(component()),
            component(),
            true,
        );
        assert_eq!(delete.status, DeploymentStatus::DeleteInProgress);
        status.start(&delete);
        assert!(status.busy());
        assert_eq!(status.last_attempted_id.as_deref(), Some("d-2"));
    }

    #[test]
    fn reported_outputs_replace_by_key_in_first_reported_order() {
        let fx = Fixture::new();
        let mut d = Deployment::start(
            &fx.ctx("platform", true),
            "d-1".into(),
            "arn",
            TargetType::Environment,
            0,
            "dev",
            &ResourceStatus::creating(),
            None,
            component(),
            false,
        );
        let out = |k: &str, v: &str| pr::Output {
            key: Some(k.into()),
            value_string: Some(v.into()),
        };
        d.merge_outputs(&[out("a", "1"), out("b", "2")]);
        d.merge_outputs(&[out("b", "3"), out("c", "4")]);
        assert_eq!(
            d.outputs,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "3".to_string()),
                ("c".to_string(), "4".to_string())
            ]
        );
        assert_eq!(d.wire_outputs()[1].value_string.as_deref(), Some("3"));
    }
}
