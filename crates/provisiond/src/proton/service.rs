//! Services and service instances (SPEC §7.1–7.4). A service's spec
//! (`proton: ServiceSpec`, `instances: [{name, environment, spec}]`) creates one instance per
//! entry; each instance deploys the service template's `instance_infrastructure` into its
//! environment's repository (`<env>/<service>-<instance>/`) with the environment's last
//! successful outputs in its tfvars. Instances have the same deployment bookkeeping as
//! environments; deleting the service deletes every instance through its own deployment, and the
//! service goes with the last one. Services have no pipeline: provisiond does not serve service
//! pipelines yet (`pipeline` is never set).

use super::common::{
    arn, conflict, create_tags, delete_tags, invalid, not_found, page, page_size, parse_next_token,
};
use super::dependents::Dependents;
use super::deployable::{self, deploy, Deployable, Prepared, Rendered};
use super::deployment::ResourceStatus;
use super::environment::{self, Environment};
use super::snapshot::{InstanceSnapshot, Snapshot, Templated};
use super::status::{ServiceStatus, TargetType, VersionStatus};
use super::template::{self, TemplateKind};
use super::{render, schema};
use crate::context::RequestContext;
use crate::paging;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// Name.
    pub name: String,
    /// `…:service/<name>`.
    pub arn: String,
    /// Description.
    pub description: Option<String>,
    /// The service template.
    pub template_name: String,
    /// The spec as given at creation (and extended by updates).
    pub spec: String,
    /// Its state.
    pub status: ServiceStatus,
    /// Source branch (pipelines; stored only).
    pub branch_name: Option<String>,
    /// Source connection (pipelines; stored only).
    pub repository_connection_arn: Option<String>,
    /// Source repository (pipelines; stored only).
    pub repository_id: Option<String>,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last modified, epoch ms.
    pub modified_ms: i64,
}

impl Service {
    fn wire(&self) -> pr::Service {
        pr::Service {
            arn: Some(self.arn.clone()),
            branch_name: self.branch_name.clone(),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            description: self.description.clone(),
            last_modified_at: Some(Timestamp::from_millis(self.modified_ms)),
            name: Some(self.name.clone()),
            pipeline: None,
            repository_connection_arn: self.repository_connection_arn.clone(),
            repository_id: self.repository_id.clone(),
            spec: Some(self.spec.clone()),
            status: Some(self.status.into()),
            status_message: None,
            template_name: Some(self.template_name.clone()),
        }
    }

    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        store::put(tx, Kind::ProtonService, scope, &self.name, "", self)?;
        Ok(())
    }
}

/// What a service instance deploys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceState {
    /// The service template.
    pub template_name: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// The spec as given (YAML).
    pub spec: String,
    /// The validated inputs with defaults.
    pub inputs: Value,
}

impl InstanceState {
    /// The state as a deployment records it, on the environment deployment it runs on.
    pub fn snapshot(&self, environment_deployment: Option<String>) -> Snapshot {
        Snapshot::ServiceInstance(InstanceSnapshot {
            template: Templated {
                template_name: self.template_name.clone(),
                major: self.major,
                minor: self.minor,
                spec: self.spec.clone(),
            },
            environment_deployment,
        })
    }
}

/// A stored service instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// The service.
    pub service_name: String,
    /// The instance's name.
    pub name: String,
    /// `…:service/<service>/service-instance/<name>`.
    pub arn: String,
    /// The environment it runs in.
    pub environment_name: String,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// The last succeeded state (the first target until one succeeds).
    pub state: InstanceState,
    /// The state the deployment in progress deploys.
    pub pending: Option<(String, InstanceState)>,
    /// Deployment bookkeeping.
    pub status: ResourceStatus,
    /// The last `clientToken`.
    pub last_client_request_token: Option<String>,
}

impl ServiceInstance {
    /// The instance on the wire.
    pub fn wire(&self) -> pr::ServiceInstance {
        pr::ServiceInstance {
            arn: Some(self.arn.clone()),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            deployment_status: Some(self.status.status.into()),
            deployment_status_message: self.status.message.clone(),
            environment_name: Some(self.environment_name.clone()),
            last_attempted_deployment_id: self.status.last_attempted_id.clone(),
            last_client_request_token: self.last_client_request_token.clone(),
            last_deployment_attempted_at: Some(Timestamp::from_millis(
                self.status.last_attempted_ms,
            )),
            last_deployment_succeeded_at: Some(Timestamp::from_millis(
                self.status.last_succeeded_ms,
            )),
            last_succeeded_deployment_id: self.status.last_succeeded_id.clone(),
            name: Some(self.name.clone()),
            service_name: Some(self.service_name.clone()),
            spec: Some(self.state.spec.clone()),
            template_major_version: Some(self.state.major.to_string()),
            template_minor_version: Some(self.state.minor.to_string()),
            template_name: Some(self.state.template_name.clone()),
        }
    }

    /// The instance as a list shows it.
    pub(crate) fn summary(&self) -> pr::ServiceInstanceSummary {
        let w = self.wire();
        pr::ServiceInstanceSummary {
            arn: w.arn,
            created_at: w.created_at,
            deployment_status: w.deployment_status,
            deployment_status_message: w.deployment_status_message,
            environment_name: w.environment_name,
            last_attempted_deployment_id: w.last_attempted_deployment_id,
            last_deployment_attempted_at: w.last_deployment_attempted_at,
            last_deployment_succeeded_at: w.last_deployment_succeeded_at,
            last_succeeded_deployment_id: w.last_succeeded_deployment_id,
            name: w.name,
            service_name: w.service_name,
            template_major_version: w.template_major_version,
            template_minor_version: w.template_minor_version,
            template_name: w.template_name,
        }
    }

    /// Stores the instance.
    pub fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        store::put(
            tx,
            Kind::ProtonServiceInstance,
            scope,
            &instance_id(&self.service_name, &self.name),
            &self.service_name,
            self,
        )?;
        store::index::note(
            tx,
            scope,
            &instance_id(&self.service_name, &self.name),
            self,
        )?;
        Ok(())
    }

    /// Removes the instance (its delete succeeded), and its service when it was the last one
    /// of a service being deleted.
    pub fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        tx.delete(
            Kind::ProtonServiceInstance,
            scope,
            &instance_id(&self.service_name, &self.name),
        )?;
        store::index::forget(
            tx,
            scope,
            &instance_id(&self.service_name, &self.name),
            self,
        )?;
        delete_tags(tx, scope, &self.arn)?;
        if let Some(service) = find(tx, scope, &self.service_name)? {
            if service.status == ServiceStatus::DeleteInProgress
                && tx
                    .list(Kind::ProtonServiceInstance, scope, &service.name, None, 1)?
                    .is_empty()
            {
                tx.delete(Kind::ProtonService, scope, &service.name)?;
                delete_tags(tx, scope, &service.arn)?;
            }
        }
        Ok(())
    }
}

/// Instances by environment, and by the template major version (`<template>/<major>`) they
/// use or are being deployed to.
const BY_ENVIRONMENT: Index = Index::new(Kind::ProtonServiceInstance, "environment");
const BY_TEMPLATE: Index = Index::new(Kind::ProtonServiceInstance, "template");

fn template_key(template: &str, major: u32) -> String {
    format!("{template}/{major}")
}

impl store::index::Indexed for ServiceInstance {
    const KIND: Kind = Kind::ProtonServiceInstance;
    const INDEXES: &'static [Index] = &[BY_ENVIRONMENT, BY_TEMPLATE];
    fn index_values(&self) -> Vec<(Index, String)> {
        let mut out = vec![
            (BY_ENVIRONMENT, self.environment_name.clone()),
            (
                BY_TEMPLATE,
                template_key(&self.state.template_name, self.state.major),
            ),
        ];
        if let Some((_, pending)) = &self.pending {
            out.push((
                BY_TEMPLATE,
                template_key(&pending.template_name, pending.major),
            ));
        }
        out
    }

    /// Instances are stored under their service: a page of services, with all their instances.
    fn stored_page(
        tx: &mut dyn Tx,
        scope: &str,
        after: Option<i64>,
    ) -> Result<(Vec<(String, Self)>, Option<i64>), store::StoreError> {
        let services = tx.list(Kind::ProtonService, scope, "", after, 100)?;
        let next = (services.len() == 100)
            .then(|| services.last().map(|r| r.seq))
            .flatten();
        let mut out = Vec::new();
        for service in services {
            let mut from = None;
            loop {
                let page = store::list::<ServiceInstance>(
                    tx,
                    Kind::ProtonServiceInstance,
                    scope,
                    &service.id,
                    from,
                    store::index::PAGE,
                )?;
                let ended = page.len() < store::index::PAGE;
                from = page.last().map(|(seq, _)| *seq);
                out.extend(
                    page.into_iter()
                        .map(|(_, i)| (instance_id(&i.service_name, &i.name), i)),
                );
                if ended {
                    break;
                }
            }
        }
        Ok((out, next))
    }
}

fn instance_id(service: &str, instance: &str) -> String {
    format!("{service}/{instance}")
}

/// The service `name`, if any.
pub fn find(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Option<Service>, AwsError> {
    Ok(store::get(tx, Kind::ProtonService, scope, name)?)
}

fn load(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Service, AwsError> {
    find(tx, scope, name)?.ok_or_else(|| not_found("service", name))
}

/// The instance `service`/`name`, if any.
pub fn find_instance(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
    name: &str,
) -> Result<Option<ServiceInstance>, AwsError> {
    Ok(store::get(
        tx,
        Kind::ProtonServiceInstance,
        scope,
        &instance_id(service, name),
    )?)
}

/// The instance `service`/`name`, or `ResourceNotFoundException`.
pub fn load_instance(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
    name: &str,
) -> Result<ServiceInstance, AwsError> {
    find_instance(tx, scope, service, name)?
        .ok_or_else(|| not_found("service instance", &format!("{service}/{name}")))
}

/// The instances of a service, in creation order.
pub fn instances(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
) -> Result<Vec<ServiceInstance>, AwsError> {
    Ok(store::list::<ServiceInstance>(
        tx,
        Kind::ProtonServiceInstance,
        scope,
        service,
        None,
        1_000_000,
    )?
    .into_iter()
    .map(|(_, i)| i)
    .collect())
}

/// Whether an instance runs in the environment `name`.
pub fn environment_has_instances(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
) -> Result<bool, AwsError> {
    Ok(!BY_ENVIRONMENT
        .all(tx, scope, name, |i: &ServiceInstance| {
            i.environment_name == name
        })?
        .is_empty())
}

/// Whether an instance uses (or is deploying) the service template version.
pub fn uses_template_version(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    major: u32,
    minor: u32,
) -> Result<bool, AwsError> {
    let uses = |s: &InstanceState| s.template_name == name && s.major == major && s.minor == minor;
    Ok(!BY_TEMPLATE
        .all(
            tx,
            scope,
            &template_key(name, major),
            |i: &ServiceInstance| {
                uses(&i.state) || i.pending.as_ref().is_some_and(|(_, s)| uses(s))
            },
        )?
        .is_empty())
}

/// One instance's part of a spec: its environment and its inputs.
#[derive(Debug)]
struct InstanceSpec {
    environment: String,
    inputs: Value,
}

/// The instances a service spec lists, by name, in order.
fn instances_of_spec(spec: &str) -> Result<Vec<(String, InstanceSpec)>, AwsError> {
    let doc = parse_spec(spec)?;
    let Some(list) = doc.get("instances") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| invalid("The spec's instances must be a list."))?;
    let mut out = Vec::new();
    for entry in list {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Every instance of the spec needs a name."))?;
        out.push((name.to_string(), instance_spec(entry, name)?));
    }
    Ok(out)
}

fn parse_spec(spec: &str) -> Result<Value, AwsError> {
    let doc =
        schema::yaml_to_json(spec).map_err(|e| invalid(format!("The spec is not YAML: {e}")))?;
    if let Some(kind) = doc.get("proton").and_then(Value::as_str) {
        if kind != "ServiceSpec" {
            return Err(invalid(format!(
                "The spec says proton: {kind}; a service spec says proton: ServiceSpec."
            )));
        }
    }
    Ok(doc)
}

fn instance_spec(entry: &Value, name: &str) -> Result<InstanceSpec, AwsError> {
    let environment = entry
        .get("environment")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("The spec of instance {name} names no environment.")))?;
    Ok(InstanceSpec {
        environment: environment.to_string(),
        inputs: entry.get("spec").cloned().unwrap_or(Value::Null),
    })
}

/// The spec of one instance given to CreateServiceInstance / UpdateServiceInstance: a service
/// spec listing it under `instances`, or `{environment, spec}` for it alone.
fn single_instance_spec(spec: &str, name: &str) -> Result<InstanceSpec, AwsError> {
    let listed = instances_of_spec(spec)?;
    if let Some((_, found)) = listed.into_iter().find(|(n, _)| n == name) {
        return Ok(found);
    }
    instance_spec(&parse_spec(spec)?, name)
}

fn validated(version: &template::Version, inputs: &Value, name: &str) -> Result<Value, AwsError> {
    let schema = version.parsed_schema()?;
    let input_type = schema
        .service_input_type
        .clone()
        .ok_or_else(|| invalid("The template version's schema names no service_input_type."))?;
    schema
        .validate(&input_type, inputs, &format!("instance {name} spec"))
        .map_err(|e| invalid(format!("The spec does not fit the template's schema: {e}")))
}

/// The environment an instance may run in: it exists, is not being deleted, and its template
/// is one the service template version is compatible with.
fn compatible_environment(
    tx: &mut dyn Tx,
    scope: &str,
    version: &template::Version,
    name: &str,
) -> Result<Environment, AwsError> {
    let env = environment::load(tx, scope, name)?;
    if env.status.status.is_delete() {
        return Err(conflict(format!(
            "The environment {name} is being deleted."
        )));
    }
    let fits = version
        .compatible_environment_templates
        .iter()
        .any(|(t, major)| *t == env.state.template_name && *major == env.state.major.to_string());
    if !fits {
        return Err(invalid(format!(
            "The environment {name} uses environment template {}:{}, which service template {}:{}.{} is not compatible with.",
            env.state.template_name, env.state.major, version.template_name, version.major, version.minor
        )));
    }
    Ok(env)
}

impl Deployable for ServiceInstance {
    type State = InstanceState;
    const TARGET_TYPE: TargetType = TargetType::ServiceInstance;

    fn arn(&self) -> &str {
        &self.arn
    }

    fn created_ms(&self) -> i64 {
        self.created_ms
    }

    fn environment_name(&self) -> &str {
        &self.environment_name
    }

    fn status(&self) -> &ResourceStatus {
        &self.status
    }

    fn status_mut(&mut self) -> &mut ResourceStatus {
        &mut self.status
    }

    fn state_mut(&mut self) -> &mut InstanceState {
        &mut self.state
    }

    fn pending_mut(&mut self) -> &mut Option<(String, InstanceState)> {
        &mut self.pending
    }

    fn prepare(
        &self,
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        target: &InstanceState,
        deployment_id: &str,
        is_delete: bool,
    ) -> Result<Prepared, AwsError> {
        let scope = ctx.scope();
        let env = environment::load(tx, &scope, &self.environment_name)?;
        let outputs = environment::current_outputs(tx, &scope, &env)?;
        let version = template::get_version(
            tx,
            &scope,
            TemplateKind::Service,
            &target.template_name,
            target.major,
            target.minor,
        )?;
        let files = render::service_instance(&render::InstanceBundle {
            environment: render::EnvironmentView {
                account: &ctx.identity.account,
                name: &env.name,
                arn: &env.arn,
                outputs: &outputs,
            },
            service_name: &self.service_name,
            instance_name: &self.name,
            instance_arn: &self.arn,
            template_arn: &arn(ctx, &format!("service-template/{}", target.template_name)),
            major: target.major,
            minor: target.minor,
            inputs: &target.inputs,
            deployment_id,
            is_delete,
            template_files: &version.files(tx, &ctx.identity.account)?,
        });
        Ok(Prepared {
            target_state: target.snapshot(env.status.last_succeeded_id.clone()),
            service_name: Some(self.service_name.clone()),
            service_instance_name: Some(self.name.clone()),
            component_name: None,
            rendered: Rendered {
                repository: env.repository.name.clone(),
                branch: env.repository.branch.clone(),
                folder: format!("{}/{}-{}", env.name, self.service_name, self.name),
                files,
            },
        })
    }

    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        ServiceInstance::save(self, tx, scope)
    }

    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        ServiceInstance::remove(self, tx, scope)
    }
}

/// Creates one instance of `service` with its first deployment.
#[allow(clippy::too_many_arguments)]
fn create_instance_in(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    service: &Service,
    version: &template::Version,
    name: &str,
    spec_text: &str,
    spec: InstanceSpec,
    client_token: Option<String>,
    tags: Option<&Vec<pr::Tag>>,
) -> Result<ServiceInstance, AwsError> {
    let scope = ctx.scope();
    if find_instance(tx, &scope, &service.name, name)?.is_some() {
        return Err(conflict(format!(
            "The service instance {}/{name} already exists.",
            service.name
        )));
    }
    compatible_environment(tx, &scope, version, &spec.environment)?;
    let state = InstanceState {
        template_name: version.template_name.clone(),
        major: version.major,
        minor: version.minor,
        spec: spec_text.to_string(),
        inputs: validated(version, &spec.inputs, name)?,
    };
    let mut instance = ServiceInstance {
        service_name: service.name.clone(),
        name: name.to_string(),
        arn: arn(
            ctx,
            &format!("service/{}/service-instance/{name}", service.name),
        ),
        environment_name: spec.environment.clone(),
        created_ms: ctx.now_ms,
        state: state.clone(),
        pending: None,
        status: ResourceStatus::creating(),
        last_client_request_token: client_token,
    };
    deploy(tx, ctx, &mut instance, state, None, false)?;
    instance.save(tx, &scope)?;
    create_tags(tx, &scope, &instance.arn, tags)?;
    Ok(instance)
}

/// `CreateService`: the service and one instance (with its deployment) per spec entry, in one
/// transaction. The service is `ACTIVE` at once [ours: instances carry the deployment state].
pub fn create(
    ctx: &RequestContext,
    input: pr::CreateServiceInput,
) -> Result<pr::CreateServiceOutput, AwsError> {
    if input.repository_connection_arn.is_some()
        || input.repository_id.is_some()
        || input.branch_name.is_some()
    {
        return Err(invalid(
            "provisiond does not serve service pipelines yet: create the service without repositoryConnectionArn, repositoryId and branchName.",
        ));
    }
    let name = input.name.clone().unwrap_or_default();
    let spec = input.spec.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let version = template::published_version(
            tx,
            &scope,
            TemplateKind::Service,
            input.template_name.as_deref().unwrap_or_default(),
            input.template_major_version.as_deref().unwrap_or_default(),
            input.template_minor_version.as_deref(),
        )?;
        if find(tx, &scope, &name)?.is_some() {
            return Err(conflict(format!("The service {name} already exists.")));
        }
        let service = Service {
            arn: arn(ctx, &format!("service/{name}")),
            name: name.clone(),
            description: input.description.clone(),
            template_name: version.template_name.clone(),
            spec: spec.clone(),
            status: ServiceStatus::Active,
            branch_name: None,
            repository_connection_arn: None,
            repository_id: None,
            created_ms: ctx.now_ms,
            modified_ms: ctx.now_ms,
        };
        service.save(tx, &scope)?;
        create_tags(tx, &scope, &service.arn, input.tags.as_ref())?;
        for (instance, instance_spec) in instances_of_spec(&spec)? {
            create_instance_in(
                tx,
                ctx,
                &service,
                &version,
                &instance,
                &spec,
                instance_spec,
                None,
                None,
            )?;
        }
        Ok(pr::CreateServiceOutput {
            service: Some(service.wire()),
        })
    })
}

/// `GetService`.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetServiceInput,
) -> Result<pr::GetServiceOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let service = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load(tx, &ctx.scope(), &name)
    })?;
    Ok(pr::GetServiceOutput {
        service: Some(service.wire()),
    })
}

/// `ListServices`, in creation order.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListServicesInput,
) -> Result<pr::ListServicesOutput, AwsError> {
    let scope = ctx.scope();
    let after = parse_next_token(input.next_token.as_deref())?;
    let (services, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            after,
            page_size(input.max_results),
            |from, limit| store::list(tx, Kind::ProtonService, &scope, "", from, limit),
            |_: &Service| true,
        )
    })?;
    let page: Vec<_> = services
        .into_iter()
        .map(|s| {
            let w = s.wire();
            pr::ServiceSummary {
                arn: w.arn,
                created_at: w.created_at,
                description: w.description,
                last_modified_at: w.last_modified_at,
                name: w.name,
                status: w.status,
                status_message: w.status_message,
                template_name: w.template_name,
            }
        })
        .collect();
    Ok(pr::ListServicesOutput {
        services: Some(page),
        next_token: next,
    })
}

/// `UpdateService`: the description, and a spec that may add instances (each created with its
/// deployment, on the service template's recommended version); existing instances change
/// through UpdateServiceInstance.
pub fn update(
    ctx: &RequestContext,
    input: pr::UpdateServiceInput,
) -> Result<pr::UpdateServiceOutput, AwsError> {
    let name = input.name.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut service = load(tx, &scope, &name)?;
        if service.status != ServiceStatus::Active {
            return Err(conflict(format!(
                "The service {name} is {}.",
                service.status
            )));
        }
        if input.description.is_some() {
            service.description = input.description.clone();
        }
        if let Some(spec) = input.spec.clone() {
            let existing: Vec<String> = instances(tx, &scope, &name)?
                .into_iter()
                .map(|i| i.name)
                .collect();
            let listed = instances_of_spec(&spec)?;
            if let Some(gone) = existing
                .iter()
                .find(|e| !listed.iter().any(|(n, _)| n == *e))
            {
                return Err(invalid(format!(
                    "The spec leaves out instance {gone}; instances cannot be removed by UpdateService."
                )));
            }
            let newest =
                template::versions(tx, &scope, TemplateKind::Service, &service.template_name)?
                    .into_iter()
                    .filter(|v| v.status == VersionStatus::Published)
                    .max_by_key(|v| (v.major, v.minor))
                    .ok_or_else(|| {
                        invalid(format!(
                            "The service template {} has no published version.",
                            service.template_name
                        ))
                    })?;
            for (instance, instance_spec) in listed {
                if !existing.contains(&instance) {
                    create_instance_in(
                        tx,
                        ctx,
                        &service,
                        &newest,
                        &instance,
                        &spec,
                        instance_spec,
                        None,
                        None,
                    )?;
                }
            }
            service.spec = spec;
        }
        service.modified_ms = ctx.now_ms;
        service.save(tx, &scope)?;
        Ok(pr::UpdateServiceOutput {
            service: Some(service.wire()),
        })
    })
}

/// `DeleteService`: each instance gets a delete deployment; the service is
/// `DELETE_IN_PROGRESS` and goes when the last instance is deleted (at once without instances).
/// Refused while an instance is being deployed or has components attached.
pub fn delete(
    ctx: &RequestContext,
    input: pr::DeleteServiceInput,
    dependents: &dyn Dependents,
) -> Result<pr::DeleteServiceOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut service = load(tx, &scope, &name)?;
        let all = instances(tx, &scope, &name)?;
        for i in &all {
            if i.status.busy() {
                return Err(conflict(format!(
                    "The service instance {name}/{} has a deployment in progress.",
                    i.name
                )));
            }
            if dependents.instance_has_components(tx, &scope, &name, &i.name)? {
                return Err(conflict(format!(
                    "The service instance {name}/{} has components attached; delete them first.",
                    i.name
                )));
            }
        }
        service.status = ServiceStatus::DeleteInProgress;
        service.modified_ms = ctx.now_ms;
        if all.is_empty() {
            tx.delete(Kind::ProtonService, &scope, &name)?;
            delete_tags(tx, &scope, &service.arn)?;
        } else {
            service.save(tx, &scope)?;
            for mut instance in all {
                let current = instance.state.clone();
                deploy(
                    tx,
                    ctx,
                    &mut instance,
                    current.clone(),
                    Some(current.snapshot(None)),
                    true,
                )?;
                instance.save(tx, &scope)?;
            }
        }
        Ok(pr::DeleteServiceOutput {
            service: Some(service.wire()),
        })
    })
}

/// `CreateServiceInstance`: on the given version of the service's template, or its
/// recommended one. Idempotent on `clientToken`.
pub fn create_instance(
    ctx: &RequestContext,
    input: pr::CreateServiceInstanceInput,
) -> Result<pr::CreateServiceInstanceOutput, AwsError> {
    let service_name = input.service_name.clone().unwrap_or_default();
    let name = input.name.clone().unwrap_or_default();
    let spec = input.spec.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let work = |tx: &mut dyn Tx| {
            let service = load(tx, &scope, &service_name)?;
            if service.status != ServiceStatus::Active {
                return Err(conflict(format!(
                    "The service {service_name} is {}.",
                    service.status
                )));
            }
            let version = match input.template_major_version.as_deref() {
                Some(major) => template::published_version(
                    tx,
                    &scope,
                    TemplateKind::Service,
                    &service.template_name,
                    major,
                    input.template_minor_version.as_deref(),
                )?,
                None => {
                    template::versions(tx, &scope, TemplateKind::Service, &service.template_name)?
                        .into_iter()
                        .filter(|v| v.status == VersionStatus::Published)
                        .max_by_key(|v| (v.major, v.minor))
                        .ok_or_else(|| invalid("The service template has no published version."))?
                }
            };
            let instance_spec = single_instance_spec(&spec, &name)?;
            let instance = create_instance_in(
                tx,
                ctx,
                &service,
                &version,
                &name,
                &spec,
                instance_spec,
                input.client_token.clone(),
                input.tags.as_ref(),
            )?;
            Ok(pr::CreateServiceInstanceOutput {
                service_instance: Some(instance.wire()),
            })
        };
        match input.client_token.as_deref() {
            Some(token) => crate::idempotency::remember(
                tx,
                &scope,
                &format!("CreateServiceInstance/{service_name}/{name}"),
                token,
                work,
            ),
            None => work(tx),
        }
    })
}

/// `GetServiceInstance`.
pub fn get_instance(
    ctx: &RequestContext,
    input: pr::GetServiceInstanceInput,
) -> Result<pr::GetServiceInstanceOutput, AwsError> {
    let instance = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load_instance(
            tx,
            &ctx.scope(),
            input.service_name.as_deref().unwrap_or_default(),
            input.name.as_deref().unwrap_or_default(),
        )
    })?;
    Ok(pr::GetServiceInstanceOutput {
        service_instance: Some(instance.wire()),
    })
}

/// `UpdateServiceInstance`: `NONE` changes nothing; `CURRENT_VERSION` a new spec on the same
/// version; `MINOR_VERSION` / `MAJOR_VERSION` another version of the service's template.
/// Refused while the instance or a component attached to it is being deployed.
pub fn update_instance(
    ctx: &RequestContext,
    input: pr::UpdateServiceInstanceInput,
    dependents: &dyn Dependents,
) -> Result<pr::UpdateServiceInstanceOutput, AwsError> {
    let service_name = input.service_name.clone().unwrap_or_default();
    let name = input.name.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut instance = load_instance(tx, &scope, &service_name, &name)?;
        if instance.status.busy()
            || dependents.instance_components_busy(tx, &scope, &service_name, &name)?
        {
            return Err(conflict(format!(
                "The service instance {service_name}/{name} (or a component attached to it) has a deployment in progress."
            )));
        }
        instance.last_client_request_token = input
            .client_token
            .clone()
            .or(instance.last_client_request_token.take());
        let deployment_type = input.deployment_type.as_deref().unwrap_or("NONE");
        if deployment_type == "NONE" {
            instance.save(tx, &scope)?;
            return Ok(pr::UpdateServiceInstanceOutput {
                service_instance: Some(instance.wire()),
            });
        }
        let current = instance.state.clone();
        let version = match deployment_type {
            "CURRENT_VERSION" => {
                if input.template_major_version.is_some() || input.template_minor_version.is_some()
                {
                    return Err(invalid(
                        "deploymentType CURRENT_VERSION keeps the template version; do not give templateMajorVersion or templateMinorVersion.",
                    ));
                }
                template::get_version(
                    tx,
                    &scope,
                    TemplateKind::Service,
                    &current.template_name,
                    current.major,
                    current.minor,
                )?
            }
            other => {
                let major = input
                    .template_major_version
                    .clone()
                    .unwrap_or_else(|| current.major.to_string());
                let same_major = major == current.major.to_string();
                if (other == "MINOR_VERSION") != same_major {
                    return Err(invalid(format!(
                        "deploymentType {other} does not fit templateMajorVersion {major} (the instance is on major version {}).",
                        current.major
                    )));
                }
                template::published_version(
                    tx,
                    &scope,
                    TemplateKind::Service,
                    &current.template_name,
                    &major,
                    input.template_minor_version.as_deref(),
                )?
            }
        };
        let spec_text = input.spec.clone().unwrap_or_else(|| current.spec.clone());
        let spec = match &input.spec {
            Some(text) => single_instance_spec(text, &name)?,
            None => InstanceSpec {
                environment: instance.environment_name.clone(),
                inputs: current.inputs.clone(),
            },
        };
        if spec.environment != instance.environment_name {
            return Err(invalid(format!(
                "The service instance {service_name}/{name} runs in environment {}; it cannot move.",
                instance.environment_name
            )));
        }
        compatible_environment(tx, &scope, &version, &instance.environment_name)?;
        let target = InstanceState {
            template_name: version.template_name.clone(),
            major: version.major,
            minor: version.minor,
            spec: spec_text,
            inputs: validated(&version, &spec.inputs, &name)?,
        };
        deploy(
            tx,
            ctx,
            &mut instance,
            target,
            Some(current.snapshot(None)),
            false,
        )?;
        instance.save(tx, &scope)?;
        Ok(pr::UpdateServiceInstanceOutput {
            service_instance: Some(instance.wire()),
        })
    })
}

/// `ListServiceInstanceOutputs`: the last succeeded deployment's outputs, or `deploymentId`'s.
pub fn instance_outputs(
    ctx: &RequestContext,
    input: pr::ListServiceInstanceOutputsInput,
) -> Result<pr::ListServiceInstanceOutputsOutput, AwsError> {
    let scope = ctx.scope();
    let outputs = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let instance = load_instance(
            tx,
            &scope,
            input.service_name.as_deref().unwrap_or_default(),
            input.service_instance_name.as_deref().unwrap_or_default(),
        )?;
        deployable::outputs(tx, &scope, &instance, input.deployment_id.as_deref())
    })?;
    let (page, next) = page(outputs, input.next_token.as_deref(), None)?;
    Ok(pr::ListServiceInstanceOutputsOutput {
        outputs: Some(page),
        next_token: next,
    })
}

/// `CancelServiceInstanceDeployment`: the instance's `IN_PROGRESS` deployment is cancelled.
pub fn cancel_instance(
    ctx: &RequestContext,
    input: pr::CancelServiceInstanceDeploymentInput,
) -> Result<pr::CancelServiceInstanceDeploymentOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut instance = load_instance(
            tx,
            &scope,
            input.service_name.as_deref().unwrap_or_default(),
            input.service_instance_name.as_deref().unwrap_or_default(),
        )?;
        deployable::cancel(tx, ctx, &mut instance)?;
        Ok(pr::CancelServiceInstanceDeploymentOutput {
            service_instance: Some(instance.wire()),
        })
    })
}

/// `ListServicePipelineOutputs`: provisiond's services have no pipeline.
pub fn pipeline_outputs(
    ctx: &RequestContext,
    input: pr::ListServicePipelineOutputsInput,
) -> Result<pr::ListServicePipelineOutputsOutput, AwsError> {
    let name = input.service_name.unwrap_or_default();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load(tx, &ctx.scope(), &name)
    })?;
    Err(not_found("pipeline of service", &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_spec_lists_its_instances_in_order_each_with_an_environment() {
        let spec = "proton: ServiceSpec\ninstances:\n  - name: one\n    environment: dev\n    spec: {size: 1}\n  - name: two\n    environment: prod\n";
        let listed = instances_of_spec(spec).unwrap();
        let names: Vec<_> = listed
            .iter()
            .map(|(n, s)| (n.as_str(), s.environment.as_str()))
            .collect();
        assert_eq!(names, [("one", "dev"), ("two", "prod")]);
        assert_eq!(listed[0].1.inputs, serde_json::json!({"size": 1}));
        assert_eq!(listed[1].1.inputs, Value::Null);
        assert!(instances_of_spec("proton: ServiceSpec\n")
            .unwrap()
            .is_empty());

        let err = instances_of_spec("proton: EnvironmentSpec\n").unwrap_err();
        assert!(err
            .message
            .contains("a service spec says proton: ServiceSpec"));
        let err = instances_of_spec("instances:\n  - environment: dev\n").unwrap_err();
        assert_eq!(err.message, "Every instance of the spec needs a name.");
        let err = instances_of_spec("instances:\n  - name: one\n").unwrap_err();
        assert_eq!(
            err.message,
            "The spec of instance one names no environment."
        );
        let err = instances_of_spec("instances: one").unwrap_err();
        assert_eq!(err.message, "The spec's instances must be a list.");
    }

    #[test]
    fn one_instance_is_found_in_a_service_spec_or_given_alone() {
        let spec = "instances:\n  - name: one\n    environment: dev\n";
        assert_eq!(
            single_instance_spec(spec, "one").unwrap().environment,
            "dev"
        );
        let alone = "environment: prod\nspec: {size: 3}\n";
        let found = single_instance_spec(alone, "two").unwrap();
        assert_eq!(found.environment, "prod");
        assert_eq!(found.inputs, serde_json::json!({"size": 3}));
        assert!(single_instance_spec(spec, "two").is_err());
    }

    #[test]
    fn an_instance_snapshot_names_the_environment_deployment_it_runs_on() {
        let state = InstanceState {
            template_name: "web".into(),
            major: 2,
            minor: 1,
            spec: "size: 1".into(),
            inputs: Value::Null,
        };
        let wire = state
            .snapshot(Some("d-env".into()))
            .wire()
            .service_instance
            .unwrap();
        assert_eq!(
            wire.last_successful_environment_deployment_id.as_deref(),
            Some("d-env")
        );
        assert_eq!(wire.template_major_version.as_deref(), Some("2"));
        assert_eq!(wire.template_minor_version.as_deref(), Some("1"));
        assert_eq!(wire.template_name.as_deref(), Some("web"));
    }

    #[test]
    fn a_service_stores_its_status_as_the_wire_string() {
        let service = Service {
            name: "web".into(),
            arn: "arn:aws:proton:us-east-1:123456789012:service/web".into(),
            description: None,
            template_name: "web".into(),
            spec: String::new(),
            status: ServiceStatus::DeleteInProgress,
            branch_name: None,
            repository_connection_arn: None,
            repository_id: None,
            created_ms: 0,
            modified_ms: 0,
        };
        assert_eq!(service.wire().status.as_deref(), Some("DELETE_IN_PROGRESS"));
        let stored = serde_json::to_value(&service).unwrap();
        assert_eq!(stored["status"], "DELETE_IN_PROGRESS");
        let back: Service = serde_json::from_value(stored).unwrap();
        assert_eq!(back.status, ServiceStatus::DeleteInProgress);
    }
}
