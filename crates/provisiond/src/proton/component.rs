//! Components (SPEC §7.1–7.4): directly defined infrastructure (a manifest and one Terraform
//! file given in the call), standalone in an environment or attached to a service instance.
//! Each create, update and delete deploys into the environment's repository
//! (`<env>/<component>/`), with the environment's outputs and, when attached, the instance's
//! inputs in the tfvars. An attached component needs a service template version that supports
//! `DIRECTLY_DEFINED` components and an environment with a `componentRoleArn` [AWS].

use super::common::{
    arn, conflict, create_tags, delete_tags, invalid, not_found, page, page_size, parse_next_token,
};
use super::deployable::{self, deploy, Deployable, Prepared, Rendered};
use super::deployment::ResourceStatus;
use super::environment;
use super::snapshot::{ComponentSnapshot, Snapshot};
use super::status::TargetType;
use super::template::{self, TemplateKind};
use super::{render, schema, service};
use crate::context::RequestContext;
use crate::paging;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a component deploys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComponentState {
    /// The manifest (YAML) as given.
    pub manifest: String,
    /// The Terraform file as given.
    pub template_file: String,
    /// The service instance's spec given with it.
    pub service_spec: Option<String>,
    /// Attached to (service, instance).
    pub attached: Option<(String, String)>,
}

impl ComponentState {
    /// The state as a deployment records it.
    fn snapshot(&self) -> Snapshot {
        Snapshot::Component(ComponentSnapshot {
            template_file: self.template_file.clone(),
            service_spec: self.service_spec.clone(),
            service_name: self.attached.as_ref().map(|(s, _)| s.clone()),
            service_instance_name: self.attached.as_ref().map(|(_, i)| i.clone()),
        })
    }
}

/// A stored component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Component {
    /// Name.
    pub name: String,
    /// `…:component/<name>`.
    pub arn: String,
    /// Description.
    pub description: Option<String>,
    /// The environment it runs in.
    pub environment_name: String,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last modified, epoch ms.
    pub modified_ms: i64,
    /// The last succeeded state (the first target until one succeeds).
    pub state: ComponentState,
    /// The state the deployment in progress deploys.
    pub pending: Option<(String, ComponentState)>,
    /// Deployment bookkeeping.
    pub status: ResourceStatus,
    /// The last `clientToken`.
    pub last_client_request_token: Option<String>,
}

impl Component {
    fn wire(&self) -> pr::Component {
        pr::Component {
            arn: Some(self.arn.clone()),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            deployment_status: Some(self.status.status.into()),
            deployment_status_message: self.status.message.clone(),
            description: self.description.clone(),
            environment_name: Some(self.environment_name.clone()),
            last_attempted_deployment_id: self.status.last_attempted_id.clone(),
            last_client_request_token: self.last_client_request_token.clone(),
            last_deployment_attempted_at: Some(Timestamp::from_millis(
                self.status.last_attempted_ms,
            )),
            last_deployment_succeeded_at: Some(Timestamp::from_millis(
                self.status.last_succeeded_ms,
            )),
            last_modified_at: Some(Timestamp::from_millis(self.modified_ms)),
            last_succeeded_deployment_id: self.status.last_succeeded_id.clone(),
            name: Some(self.name.clone()),
            service_instance_name: self.state.attached.as_ref().map(|(_, i)| i.clone()),
            service_name: self.state.attached.as_ref().map(|(s, _)| s.clone()),
            service_spec: self.state.service_spec.clone(),
        }
    }

    /// Stores the component, noting the environment and instances it is in (or moving to).
    pub fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        store::put(tx, Kind::ProtonComponent, scope, &self.name, "", self)?;
        store::index::note(tx, scope, &self.name, self)?;
        Ok(())
    }

    /// Removes the component (its delete succeeded).
    pub fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        tx.delete(Kind::ProtonComponent, scope, &self.name)?;
        store::index::forget(tx, scope, &self.name, self)?;
        delete_tags(tx, scope, &self.arn)
    }
}

/// Components by environment, and by the service and the instance (`<service>/<instance>`)
/// they are attached to, now or by the deployment in progress.
const BY_ENVIRONMENT: Index = Index::new(Kind::ProtonComponent, "environment");
const BY_SERVICE: Index = Index::new(Kind::ProtonComponent, "service");
const BY_INSTANCE: Index = Index::new(Kind::ProtonComponent, "instance");

impl store::index::Indexed for Component {
    const KIND: Kind = Kind::ProtonComponent;
    const INDEXES: &'static [Index] = &[BY_ENVIRONMENT, BY_SERVICE, BY_INSTANCE];
    fn index_values(&self) -> Vec<(Index, String)> {
        let mut out = vec![(BY_ENVIRONMENT, self.environment_name.clone())];
        let pending = self.pending.as_ref().map(|(_, s)| s);
        for (service, instance) in [Some(&self.state), pending]
            .into_iter()
            .flatten()
            .filter_map(|s| s.attached.as_ref())
        {
            out.push((BY_SERVICE, service.clone()));
            out.push((BY_INSTANCE, format!("{service}/{instance}")));
        }
        out
    }
}

/// The component `name`, if any.
pub fn find(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Option<Component>, AwsError> {
    Ok(store::get(tx, Kind::ProtonComponent, scope, name)?)
}

fn load(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Component, AwsError> {
    find(tx, scope, name)?.ok_or_else(|| not_found("component", name))
}

/// The components attached to the instance.
fn attached(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
    instance: &str,
) -> Result<Vec<Component>, AwsError> {
    Ok(
        BY_INSTANCE.all(tx, scope, &format!("{service}/{instance}"), |c| {
            is_attached(c, service, instance)
        })?,
    )
}

fn is_attached(c: &Component, service: &str, instance: &str) -> bool {
    c.state
        .attached
        .as_ref()
        .is_some_and(|(s, i)| s == service && i == instance)
}

/// Whether a component is attached to the instance.
pub fn attached_to(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
    instance: &str,
) -> Result<bool, AwsError> {
    Ok(!attached(tx, scope, service, instance)?.is_empty())
}

/// Whether a component attached to the instance is being deployed.
pub fn attached_busy(
    tx: &mut dyn Tx,
    scope: &str,
    service: &str,
    instance: &str,
) -> Result<bool, AwsError> {
    Ok(attached(tx, scope, service, instance)?
        .iter()
        .any(|c| c.status.busy()))
}

/// Whether a component runs in the environment.
pub fn in_environment(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<bool, AwsError> {
    let first = BY_ENVIRONMENT.documents::<Component>(tx, scope, name, None, false, 1)?;
    if first.iter().any(|(_, c)| c.environment_name == name) {
        return Ok(true);
    }
    // The first entry may be stale (the component was deleted): look at all.
    Ok(!BY_ENVIRONMENT
        .all(tx, scope, name, |c: &Component| c.environment_name == name)?
        .is_empty())
}

/// The Terraform file's name, from the manifest's first template (`*` → `main.tf`).
fn template_file_name(manifest: &str) -> Result<String, AwsError> {
    let doc = schema::yaml_to_json(manifest)
        .map_err(|e| invalid(format!("The manifest is not YAML: {e}")))?;
    let first = doc
        .get("infrastructure")
        .and_then(|i| i.get("templates"))
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .ok_or_else(|| invalid("The manifest has no infrastructure.templates list."))?;
    let language = first.get("template_language").and_then(Value::as_str);
    if language != Some("terraform") {
        return Err(invalid(format!(
            "The manifest's template_language {} is not served; provisiond provisions terraform components.",
            language.unwrap_or("(missing)")
        )));
    }
    let file = first.get("file").and_then(Value::as_str).unwrap_or("*");
    if file == "*" {
        return Ok("main.tf".into());
    }
    if file.contains('/') || file == ".." || !file.ends_with(".tf") {
        return Err(invalid(format!(
            "The manifest's file {file} must be a .tf file name."
        )));
    }
    Ok(file.to_string())
}

/// Checks where a component may go: its environment (needs a `componentRoleArn`) and, when
/// attached, an instance whose template supports directly defined components.
fn placement(
    tx: &mut dyn Tx,
    scope: &str,
    environment_name: Option<&str>,
    attached: Option<&(String, String)>,
) -> Result<String, AwsError> {
    let environment_name = match attached {
        Some((service_name, instance_name)) => {
            let instance = service::load_instance(tx, scope, service_name, instance_name)?;
            if environment_name.is_some_and(|e| e != instance.environment_name) {
                return Err(invalid(format!(
                    "The service instance {service_name}/{instance_name} runs in environment {}.",
                    instance.environment_name
                )));
            }
            let version = template::get_version(
                tx,
                scope,
                TemplateKind::Service,
                &instance.state.template_name,
                instance.state.major,
                instance.state.minor,
            )?;
            if !version
                .supported_component_sources
                .iter()
                .any(|s| s == "DIRECTLY_DEFINED")
            {
                return Err(invalid(format!(
                    "The service template {}:{}.{} does not support directly defined components.",
                    version.template_name, version.major, version.minor
                )));
            }
            instance.environment_name
        }
        None => environment_name
            .ok_or_else(|| {
                invalid("Give environmentName, or serviceName and serviceInstanceName.")
            })?
            .to_string(),
    };
    let env = environment::load(tx, scope, &environment_name)?;
    if env.component_role_arn.is_none() {
        return Err(invalid(format!(
            "The environment {environment_name} has no componentRoleArn; components need one."
        )));
    }
    Ok(environment_name)
}

impl Deployable for Component {
    type State = ComponentState;
    const TARGET_TYPE: TargetType = TargetType::Component;

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

    fn state_mut(&mut self) -> &mut ComponentState {
        &mut self.state
    }

    fn pending_mut(&mut self) -> &mut Option<(String, ComponentState)> {
        &mut self.pending
    }

    fn prepare(
        &self,
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        target: &ComponentState,
        deployment_id: &str,
        is_delete: bool,
    ) -> Result<Prepared, AwsError> {
        let scope = ctx.scope();
        let env = environment::load(tx, &scope, &self.environment_name)?;
        let outputs = environment::current_outputs(tx, &scope, &env)?;
        let file_name = template_file_name(&target.manifest)?;
        let instance = match &target.attached {
            Some((s, i)) => Some(service::load_instance(tx, &scope, s, i)?),
            None => None,
        };
        let files = render::component(&render::ComponentBundle {
            environment: render::EnvironmentView {
                account: &ctx.identity.account,
                name: &env.name,
                arn: &env.arn,
                outputs: &outputs,
            },
            component_name: &self.name,
            component_arn: &self.arn,
            attached: instance
                .as_ref()
                .map(|i| (i.service_name.as_str(), i.name.as_str(), &i.state.inputs)),
            template_file: (&file_name, &target.template_file),
            deployment_id,
            is_delete,
        });
        Ok(Prepared {
            target_state: target.snapshot(),
            service_name: target.attached.as_ref().map(|(s, _)| s.clone()),
            service_instance_name: target.attached.as_ref().map(|(_, i)| i.clone()),
            component_name: Some(self.name.clone()),
            rendered: Rendered {
                repository: env.repository.name.clone(),
                branch: env.repository.branch.clone(),
                folder: format!("{}/{}", env.name, self.name),
                files,
            },
        })
    }

    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Component::save(self, tx, scope)
    }

    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Component::remove(self, tx, scope)
    }
}

fn attachment(
    service: Option<String>,
    instance: Option<String>,
) -> Result<Option<(String, String)>, AwsError> {
    match (
        service.filter(|s| !s.is_empty()),
        instance.filter(|i| !i.is_empty()),
    ) {
        (Some(s), Some(i)) => Ok(Some((s, i))),
        (None, None) => Ok(None),
        _ => Err(invalid(
            "Give both serviceName and serviceInstanceName, or neither.",
        )),
    }
}

/// `CreateComponent`. Idempotent on `clientToken`.
pub fn create(
    ctx: &RequestContext,
    input: pr::CreateComponentInput,
) -> Result<pr::CreateComponentOutput, AwsError> {
    let name = input.name.clone().unwrap_or_default();
    let attached = attachment(
        input.service_name.clone(),
        input.service_instance_name.clone(),
    )?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let work = |tx: &mut dyn Tx| {
            let environment_name = placement(
                tx,
                &scope,
                input.environment_name.as_deref(),
                attached.as_ref(),
            )?;
            if find(tx, &scope, &name)?.is_some() {
                return Err(conflict(format!("The component {name} already exists.")));
            }
            let state = ComponentState {
                manifest: input.manifest.clone().unwrap_or_default(),
                template_file: input.template_file.clone().unwrap_or_default(),
                service_spec: input.service_spec.clone(),
                attached: attached.clone(),
            };
            template_file_name(&state.manifest)?;
            let mut component = Component {
                arn: arn(ctx, &format!("component/{name}")),
                name: name.clone(),
                description: input.description.clone(),
                environment_name,
                created_ms: ctx.now_ms,
                modified_ms: ctx.now_ms,
                state: state.clone(),
                pending: None,
                status: ResourceStatus::creating(),
                last_client_request_token: input.client_token.clone(),
            };
            deploy(tx, ctx, &mut component, state, None, false)?;
            component.save(tx, &scope)?;
            create_tags(tx, &scope, &component.arn, input.tags.as_ref())?;
            Ok(pr::CreateComponentOutput {
                component: Some(component.wire()),
            })
        };
        match input.client_token.as_deref() {
            Some(token) => crate::idempotency::remember(
                tx,
                &scope,
                &format!("CreateComponent/{name}"),
                token,
                work,
            ),
            None => work(tx),
        }
    })
}

/// `GetComponent`.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetComponentInput,
) -> Result<pr::GetComponentOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let component = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load(tx, &ctx.scope(), &name)
    })?;
    Ok(pr::GetComponentOutput {
        component: Some(component.wire()),
    })
}

/// `ListComponents`, in creation order, filtered by environment, service and instance.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListComponentsInput,
) -> Result<pr::ListComponentsOutput, AwsError> {
    let scope = ctx.scope();
    let after = parse_next_token(input.next_token.as_deref())?;
    let size = page_size(input.max_results);
    let index = match (
        input.service_name.as_deref(),
        input.service_instance_name.as_deref(),
        input.environment_name.as_deref(),
    ) {
        (Some(s), Some(i), _) => Some((BY_INSTANCE, format!("{s}/{i}"))),
        (Some(s), None, _) => Some((BY_SERVICE, s.to_string())),
        (None, _, Some(e)) => Some((BY_ENVIRONMENT, e.to_string())),
        (None, _, None) => None,
    };
    let (components, next) =
        transact(ctx.store.as_ref(), Mode::Read, |tx| {
            paging::scan_page(
                after,
                size,
                |from, limit| match &index {
                    Some((index, value)) => index.documents(tx, &scope, value, from, false, limit),
                    None => store::list(tx, Kind::ProtonComponent, &scope, "", from, limit),
                },
                |c: &Component| {
                    input
                        .environment_name
                        .as_ref()
                        .is_none_or(|e| &c.environment_name == e)
                        && input.service_name.as_ref().is_none_or(|s| {
                            c.state.attached.as_ref().is_some_and(|(cs, _)| cs == s)
                        })
                        && input.service_instance_name.as_ref().is_none_or(|i| {
                            c.state.attached.as_ref().is_some_and(|(_, ci)| ci == i)
                        })
                },
            )
        })?;
    let page: Vec<_> = components
        .into_iter()
        .map(|c| {
            let w = c.wire();
            pr::ComponentSummary {
                arn: w.arn,
                created_at: w.created_at,
                deployment_status: w.deployment_status,
                deployment_status_message: w.deployment_status_message,
                environment_name: w.environment_name,
                last_attempted_deployment_id: w.last_attempted_deployment_id,
                last_deployment_attempted_at: w.last_deployment_attempted_at,
                last_deployment_succeeded_at: w.last_deployment_succeeded_at,
                last_modified_at: w.last_modified_at,
                last_succeeded_deployment_id: w.last_succeeded_deployment_id,
                name: w.name,
                service_instance_name: w.service_instance_name,
                service_name: w.service_name,
            }
        })
        .collect();
    Ok(pr::ListComponentsOutput {
        components: Some(page),
        next_token: next,
    })
}

/// `UpdateComponent`: `NONE` changes the description; `CURRENT_VERSION` deploys a new template
/// file, service spec or attachment (an empty `serviceName` detaches).
pub fn update(
    ctx: &RequestContext,
    input: pr::UpdateComponentInput,
) -> Result<pr::UpdateComponentOutput, AwsError> {
    let name = input.name.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut component = load(tx, &scope, &name)?;
        if component.status.busy() {
            return Err(conflict(format!(
                "The component {name} has a deployment in progress."
            )));
        }
        if input.description.is_some() {
            component.description = input.description.clone();
        }
        component.modified_ms = ctx.now_ms;
        component.last_client_request_token = input
            .client_token
            .clone()
            .or(component.last_client_request_token.take());
        if input.deployment_type.as_deref() != Some("CURRENT_VERSION") {
            component.save(tx, &scope)?;
            return Ok(pr::UpdateComponentOutput {
                component: Some(component.wire()),
            });
        }
        let current = component.state.clone();
        let attached = if input.service_name.is_some() || input.service_instance_name.is_some() {
            attachment(
                input.service_name.clone(),
                input.service_instance_name.clone(),
            )?
        } else {
            current.attached.clone()
        };
        let environment_name = placement(
            tx,
            &scope,
            Some(&component.environment_name),
            attached.as_ref(),
        )?;
        if environment_name != component.environment_name {
            return Err(invalid("A component cannot move to another environment."));
        }
        let target = ComponentState {
            manifest: current.manifest.clone(),
            template_file: input
                .template_file
                .clone()
                .unwrap_or_else(|| current.template_file.clone()),
            service_spec: input
                .service_spec
                .clone()
                .or_else(|| current.service_spec.clone()),
            attached,
        };
        deploy(
            tx,
            ctx,
            &mut component,
            target,
            Some(current.snapshot()),
            false,
        )?;
        component.save(tx, &scope)?;
        Ok(pr::UpdateComponentOutput {
            component: Some(component.wire()),
        })
    })
}

/// `DeleteComponent`: a `DELETE_IN_PROGRESS` deployment; the component goes when the pipeline
/// reports success.
pub fn delete(
    ctx: &RequestContext,
    input: pr::DeleteComponentInput,
) -> Result<pr::DeleteComponentOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut component = load(tx, &scope, &name)?;
        if component.status.busy() {
            return Err(conflict(format!(
                "The component {name} has a deployment in progress."
            )));
        }
        let current = component.state.clone();
        deploy(
            tx,
            ctx,
            &mut component,
            current.clone(),
            Some(current.snapshot()),
            true,
        )?;
        component.save(tx, &scope)?;
        Ok(pr::DeleteComponentOutput {
            component: Some(component.wire()),
        })
    })
}

/// `ListComponentOutputs`.
pub fn outputs(
    ctx: &RequestContext,
    input: pr::ListComponentOutputsInput,
) -> Result<pr::ListComponentOutputsOutput, AwsError> {
    let name = input.component_name.unwrap_or_default();
    let scope = ctx.scope();
    let outputs = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let component = load(tx, &scope, &name)?;
        deployable::outputs(tx, &scope, &component, input.deployment_id.as_deref())
    })?;
    let (page, next) = page(outputs, input.next_token.as_deref(), None)?;
    Ok(pr::ListComponentOutputsOutput {
        outputs: Some(page),
        next_token: next,
    })
}

/// `CancelComponentDeployment`.
pub fn cancel(
    ctx: &RequestContext,
    input: pr::CancelComponentDeploymentInput,
) -> Result<pr::CancelComponentDeploymentOutput, AwsError> {
    let name = input.component_name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut component = load(tx, &scope, &name)?;
        deployable::cancel(tx, ctx, &mut component)?;
        Ok(pr::CancelComponentDeploymentOutput {
            component: Some(component.wire()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(templates: &str) -> String {
        format!("infrastructure:\n  templates:\n{templates}")
    }

    #[test]
    fn the_manifest_names_one_terraform_file_or_main_tf() {
        let any = manifest("    - file: \"*\"\n      template_language: terraform\n");
        assert_eq!(template_file_name(&any).unwrap(), "main.tf");
        let named = manifest("    - file: cache.tf\n      template_language: terraform\n");
        assert_eq!(template_file_name(&named).unwrap(), "cache.tf");
        for bad in ["../x.tf", "dir/x.tf", "x.yaml"] {
            let m = manifest(&format!(
                "    - file: {bad}\n      template_language: terraform\n"
            ));
            let err = template_file_name(&m).unwrap_err();
            assert!(
                err.message.contains("must be a .tf file name"),
                "{bad}: {}",
                err.message
            );
        }
        let cfn = manifest("    - file: x.yaml\n      template_language: cloudformation\n");
        assert!(template_file_name(&cfn)
            .unwrap_err()
            .message
            .contains("cloudformation is not served"));
        assert!(template_file_name("infrastructure: {}").is_err());
        assert!(template_file_name(": : :").is_err());
    }

    #[test]
    fn an_attached_component_records_its_instance_in_its_snapshot() {
        let state = ComponentState {
            manifest: String::new(),
            template_file: "resource \"terraform_data\" \"x\" {}".into(),
            service_spec: Some("size: 2".into()),
            attached: Some(("web".into(), "one".into())),
        };
        let wire = state.snapshot().wire().component.unwrap();
        assert_eq!(wire.service_name.as_deref(), Some("web"));
        assert_eq!(wire.service_instance_name.as_deref(), Some("one"));
        assert_eq!(wire.service_spec.as_deref(), Some("size: 2"));
        let detached = ComponentState {
            attached: None,
            ..state
        };
        let wire = detached.snapshot().wire().component.unwrap();
        assert_eq!(wire.service_name, None);
        assert_eq!(wire.service_instance_name, None);
    }
}
