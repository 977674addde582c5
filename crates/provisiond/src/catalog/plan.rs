//! Plans for engine products (SPEC §6): `CreateProvisionedProductPlan` validates a provision (new
//! name: the provisioned product is created `PLAN_IN_PROGRESS`) or an update (existing product,
//! `AVAILABLE`/`TAINTED`, one open plan each) and stores it `CREATE_SUCCESS`;
//! `ExecuteProvisionedProductPlan` turns it, in one transaction, into the record, product change
//! and engine task that ProvisionProduct or UpdateProvisionedProduct would write; the engine's
//! Notify settles the plan (`EXECUTE_SUCCESS` / `EXECUTE_FAILED`).

use super::paging_size;
use super::product::{self, Named, VersionLookup};
use super::provisioning::{self, GivenParameter, NewRecord, ProvisionedProduct};
use super::status::{EngineOutcome, PlanStatus, ProductStatus};
use super::workflow_token::EngineOperation;
use crate::context::RequestContext;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use crate::{idempotency, paging};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};

/// A stored plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// 13 lowercase alphanumerics.
    pub id: String,
    /// `PlanName`.
    pub name: String,
    /// Its state.
    pub status: PlanStatus,
    /// Why execution failed.
    pub status_message: Option<String>,
    /// The provisioned product it provisions or updates.
    pub provisioned_product_id: String,
    /// Its name.
    pub provisioned_product_name: String,
    /// Whether the plan creates the provisioned product.
    pub new_product: bool,
    /// The product.
    pub product_id: String,
    /// The version.
    pub artifact_id: String,
    /// The launch path.
    pub path_id: String,
    /// The fully resolved parameters.
    pub parameters: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// `NotificationArns`, kept and shown.
    pub notification_arns: Vec<String>,
    /// The provisioned product's last record when the plan was made; another record since then
    /// makes the plan stale.
    pub base_record_id: String,
    /// The record that executes it.
    pub execute_record_id: Option<String>,
    /// Who made it.
    pub owner_principal: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Last change, epoch milliseconds.
    pub updated_ms: i64,
}

impl Plan {
    fn summary(&self) -> sc::ProvisionedProductPlanSummary {
        sc::ProvisionedProductPlanSummary {
            plan_name: Some(self.name.clone()),
            plan_id: Some(self.id.clone()),
            provision_product_id: Some(self.provisioned_product_id.clone()),
            provision_product_name: Some(self.provisioned_product_name.clone()),
            plan_type: Some("CLOUDFORMATION".into()),
            provisioning_artifact_id: Some(self.artifact_id.clone()),
        }
    }

    fn details(&self) -> sc::ProvisionedProductPlanDetails {
        sc::ProvisionedProductPlanDetails {
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            path_id: Some(self.path_id.clone()),
            product_id: Some(self.product_id.clone()),
            plan_name: Some(self.name.clone()),
            plan_id: Some(self.id.clone()),
            provision_product_id: Some(self.provisioned_product_id.clone()),
            provision_product_name: Some(self.provisioned_product_name.clone()),
            plan_type: Some("CLOUDFORMATION".into()),
            provisioning_artifact_id: Some(self.artifact_id.clone()),
            status: Some(self.status.into()),
            updated_time: Some(Timestamp::from_millis(self.updated_ms)),
            notification_arns: Some(self.notification_arns.clone()),
            provisioning_parameters: Some(
                self.parameters
                    .iter()
                    .map(|(k, v)| sc::UpdateProvisioningParameter {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                        use_previous_value: None,
                    })
                    .collect(),
            ),
            tags: Some(super::wire_tags(&self.tags)),
            status_message: self.status_message.clone(),
        }
    }
}

/// Whether a plan can be executed on a provisioned product in `status`: a plan that creates
/// the product finds it as the plan left it; one that updates it, healthy.
fn executable(plan: &Plan, status: ProductStatus) -> bool {
    if plan.new_product {
        status == ProductStatus::PlanInProgress
    } else {
        status.plannable()
    }
}

fn invalid_state(message: impl Into<String>) -> AwsError {
    ErrorCode::InvalidStateException.with(message)
}

fn get(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Plan, AwsError> {
    store::get(tx, Kind::Plan, scope, id)?
        .ok_or_else(|| ErrorCode::ResourceNotFoundException.with(format!("Plan {id} not found.")))
}

/// Plans by the provisioned product they change.
pub(crate) const PLANS_BY_PROVISIONED_PRODUCT: Index =
    Index::new(Kind::Plan, "provisioned-product");

impl store::index::Indexed for Plan {
    const KIND: Kind = Kind::Plan;
    const INDEXES: &'static [Index] = &[PLANS_BY_PROVISIONED_PRODUCT];
    fn index_values(&self) -> Vec<(Index, String)> {
        vec![(
            PLANS_BY_PROVISIONED_PRODUCT,
            self.provisioned_product_id.clone(),
        )]
    }
}

fn open_plan_of(tx: &mut dyn Tx, scope: &str, pp_id: &str) -> Result<Option<Plan>, AwsError> {
    Ok(PLANS_BY_PROVISIONED_PRODUCT
        .all(tx, scope, pp_id, |p: &Plan| {
            p.provisioned_product_id == pp_id
        })?
        .into_iter()
        .find(|p| p.status.is_open()))
}

/// `CreateProvisionedProductPlan`.
pub fn create(
    ctx: &RequestContext,
    input: sc::CreateProvisionedProductPlanInput,
) -> Result<sc::CreateProvisionedProductPlanOutput, AwsError> {
    let scope = ctx.scope();
    let token = input.idempotency_token.clone().unwrap_or_default();
    let name = input.provisioned_product_name.clone().unwrap_or_default();
    let given = GivenParameter::of_update(input.provisioning_parameters.as_deref());
    let tags = provisioning::tags_of(input.tags.as_deref())?;
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "CreateProvisionedProductPlan", &token, |tx| {
            let lookup = VersionLookup {
                product: input.product_id.clone().map(Named::Id),
                version: input.provisioning_artifact_id.clone().map(Named::Id),
            };
            let (prod, artifact, path) = provisioning::launch_target(
                tx,
                ctx,
                &scope,
                &lookup,
                input.path_id.as_deref(),
                None,
            )?;
            let existing_id: Option<String> =
                store::get(tx, Kind::ProvisionedProductName, &scope, &name)?;
            let (pp, new_product) = match existing_id {
                Some(id) => {
                    let pp = provisioning::get(tx, &scope, &id)?;
                    if pp.product_id != prod.id {
                        return Err(ErrorCode::InvalidParametersException.with(format!(
                            "Provisioned product {name} is of product {}, not {}.",
                            pp.product_id, prod.id
                        )));
                    }
                    if !pp.status.plannable() {
                        return Err(invalid_state(format!("Provisioned product {} is {}; plans are made for AVAILABLE or TAINTED products.", pp.id, pp.status)));
                    }
                    if let Some(open) = open_plan_of(tx, &scope, &pp.id)? {
                        return Err(invalid_state(format!(
                            "Provisioned product {} already has plan {} open.",
                            pp.id, open.id
                        )));
                    }
                    (pp, false)
                }
                None => {
                    let id = crate::ids::catalog_id("pp");
                    store::insert(tx, Kind::ProvisionedProductName, &scope, &name, "", &id)?;
                    let pp = ProvisionedProduct {
                        arn: format!(
                            "arn:aws:servicecatalog:{}:{}:stack/{name}/{id}",
                            ctx.region, ctx.identity.account
                        ),
                        id,
                        name: name.clone(),
                        product_type: prod.product_type.clone(),
                        status: ProductStatus::PlanInProgress,
                        status_message: None,
                        created_ms: ctx.now_ms,
                        idempotency_token: token.clone(),
                        last_record_id: String::new(),
                        last_provisioning_record_id: String::new(),
                        last_successful_provisioning_record_id: None,
                        product_id: prod.id.clone(),
                        artifact_id: artifact.id.clone(),
                        path_id: path.id.clone(),
                        launch_role_arn: provisioning::launch_role(path.launch.as_ref()),
                        parameters: Vec::new(),
                        tags: tags.clone(),
                        outputs: Vec::new(),
                        resource_group_tag: None,
                        owner_principal: ctx.identity.principal.clone(),
                    };
                    store::insert(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
                    (pp, true)
                }
            };
            let parameters = provisioning::resolve_parameters(&artifact, &given, &pp.parameters)?;
            let plan = Plan {
                id: crate::ids::catalog_id("x")[2..].to_string(),
                name: input.plan_name.clone().unwrap_or_default(),
                status: PlanStatus::CreateSuccess,
                status_message: None,
                provisioned_product_id: pp.id.clone(),
                provisioned_product_name: pp.name.clone(),
                new_product,
                product_id: prod.id.clone(),
                artifact_id: artifact.id.clone(),
                path_id: path.id.clone(),
                parameters,
                tags: tags.clone(),
                notification_arns: input.notification_arns.clone().unwrap_or_default(),
                base_record_id: pp.last_record_id.clone(),
                execute_record_id: None,
                owner_principal: ctx.identity.principal.clone(),
                created_ms: ctx.now_ms,
                updated_ms: ctx.now_ms,
            };
            store::insert(tx, Kind::Plan, &scope, &plan.id, "", &plan)?;
            store::index::note(tx, &scope, &plan.id, &plan)?;
            Ok(sc::CreateProvisionedProductPlanOutput {
                plan_name: Some(plan.name.clone()),
                plan_id: Some(plan.id.clone()),
                provision_product_id: Some(pp.id.clone()),
                provisioned_product_name: Some(pp.name.clone()),
                provisioning_artifact_id: Some(artifact.id.clone()),
            })
        })
    })
}

/// `DescribeProvisionedProductPlan` (no engine fills `ResourceChanges` yet: always empty).
pub fn describe(
    ctx: &RequestContext,
    input: sc::DescribeProvisionedProductPlanInput,
) -> Result<sc::DescribeProvisionedProductPlanOutput, AwsError> {
    let scope = ctx.scope();
    let id = input.plan_id.unwrap_or_default();
    let plan = transact(ctx.store.as_ref(), Mode::Read, |tx| get(tx, &scope, &id))?;
    Ok(sc::DescribeProvisionedProductPlanOutput {
        provisioned_product_plan_details: Some(plan.details()),
        resource_changes: Some(Vec::new()),
        next_page_token: None,
    })
}

/// `ListProvisionedProductPlans`, in creation order, optionally of one provisioned product;
/// `AccessLevelFilter` `User` keeps the caller's plans.
pub fn list(
    ctx: &RequestContext,
    input: sc::ListProvisionedProductPlansInput,
) -> Result<sc::ListProvisionedProductPlansOutput, AwsError> {
    let scope = ctx.scope();
    let access = super::access_level::AccessLevel::of(
        ctx,
        input.access_level_filter.as_ref(),
        super::access_level::Default::User,
    )?;
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging_size(input.page_size);
    let pp_filter = input.provision_product_id.clone();
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            after,
            size,
            |from, limit| match &pp_filter {
                Some(pp) => {
                    PLANS_BY_PROVISIONED_PRODUCT.documents(tx, &scope, pp, from, false, limit)
                }
                None => store::list(tx, Kind::Plan, &scope, "", from, limit),
            },
            |p: &Plan| {
                pp_filter
                    .as_ref()
                    .is_none_or(|id| &p.provisioned_product_id == id)
                    && access.admits(&p.owner_principal)
            },
        )
    })?;
    Ok(sc::ListProvisionedProductPlansOutput {
        provisioned_product_plans: Some(page.iter().map(Plan::summary).collect()),
        next_page_token: next,
    })
}

/// `DeleteProvisionedProductPlan`: the plan goes; so does a provisioned product the plan created
/// and that was never provisioned (`PLAN_IN_PROGRESS`). A plan being executed stays unless
/// `IgnoreErrors`.
pub fn delete(
    ctx: &RequestContext,
    input: sc::DeleteProvisionedProductPlanInput,
) -> Result<sc::DeleteProvisionedProductPlanOutput, AwsError> {
    let scope = ctx.scope();
    let id = input.plan_id.unwrap_or_default();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let plan = get(tx, &scope, &id)?;
        if plan.status == PlanStatus::ExecuteInProgress && input.ignore_errors != Some(true) {
            return Err(invalid_state(format!(
                "Plan {id} is being executed; delete it with IgnoreErrors or when it has ended."
            )));
        }
        if let Ok(pp) = provisioning::get(tx, &scope, &plan.provisioned_product_id) {
            if pp.status == ProductStatus::PlanInProgress {
                tx.delete(Kind::ProvisionedProduct, &scope, &pp.id)?;
                tx.delete(Kind::ProvisionedProductName, &scope, &pp.name)?;
            }
        }
        tx.delete(Kind::Plan, &scope, &id)?;
        store::index::forget(tx, &scope, &id, &plan)?;
        Ok(sc::DeleteProvisionedProductPlanOutput {})
    })
}

/// `ExecuteProvisionedProductPlan`.
pub fn execute(
    ctx: &RequestContext,
    input: sc::ExecuteProvisionedProductPlanInput,
) -> Result<sc::ExecuteProvisionedProductPlanOutput, AwsError> {
    let scope = ctx.scope();
    let id = input.plan_id.clone().unwrap_or_default();
    let token = input.idempotency_token.clone().unwrap_or_default();
    let output = transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(
            tx,
            &scope,
            &format!("ExecuteProvisionedProductPlan/{id}"),
            &token,
            |tx| {
                let mut plan = get(tx, &scope, &id)?;
                if plan.status != PlanStatus::CreateSuccess {
                    return Err(invalid_state(format!(
                        "Plan {id} is {}; only a plan in CREATE_SUCCESS can be executed.",
                        plan.status
                    )));
                }
                let mut pp =
                    provisioning::get(tx, &scope, &plan.provisioned_product_id).map_err(|_| {
                        invalid_state(format!(
                            "The provisioned product of plan {id} no longer exists."
                        ))
                    })?;
                if pp.last_record_id != plan.base_record_id {
                    return Err(invalid_state(format!(
                    "Provisioned product {} has changed since plan {id} was made (record {}); make a new plan.",
                    pp.id, pp.last_record_id
                )));
                }
                let expected = if plan.new_product {
                    ProductStatus::PlanInProgress.as_str()
                } else {
                    "AVAILABLE|TAINTED"
                };
                if !executable(&plan, pp.status) {
                    return Err(invalid_state(format!(
                        "Provisioned product {} is {}, not {expected}.",
                        pp.id, pp.status
                    )));
                }
                let artifact =
                    product::get_artifact(tx, &scope, &plan.product_id, &plan.artifact_id)?;
                let operation = if plan.new_product {
                    EngineOperation::Provision
                } else {
                    EngineOperation::Update
                };
                let mut record = provisioning::start_record(
                    tx,
                    ctx,
                    &scope,
                    NewRecord {
                        pp: &pp,
                        operation,
                        artifact: Some(&artifact),
                        parameters: plan.parameters.clone(),
                        tags: plan.tags.clone(),
                        ignore_errors: false,
                    },
                )?;
                record.plan_id = Some(plan.id.clone());
                store::put(tx, Kind::Record, &scope, &record.id, "", &record)?;
                pp.status = ProductStatus::UnderChange;
                pp.last_record_id = record.id.clone();
                pp.last_provisioning_record_id = record.id.clone();
                store::put(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
                plan.status = PlanStatus::ExecuteInProgress;
                plan.execute_record_id = Some(record.id.clone());
                plan.updated_ms = ctx.now_ms;
                store::put(tx, Kind::Plan, &scope, &plan.id, "", &plan)?;
                Ok(sc::ExecuteProvisionedProductPlanOutput {
                    record_detail: Some(record.detail()),
                })
            },
        )
    })?;
    Ok(output)
}

/// Settles the plan a record executed, in the Notify call's transaction.
pub fn settle(
    tx: &mut dyn Tx,
    scope: &str,
    plan_id: &str,
    outcome: EngineOutcome,
    message: Option<String>,
    now_ms: i64,
) -> Result<(), AwsError> {
    let Some(mut plan) = store::get_for_update::<Plan>(tx, Kind::Plan, scope, plan_id)? else {
        return Ok(());
    };
    plan.status = PlanStatus::executed(outcome);
    plan.status_message = match outcome {
        EngineOutcome::Succeeded => None,
        EngineOutcome::Failed => message,
    };
    plan.updated_ms = now_ms;
    store::put(tx, Kind::Plan, scope, plan_id, "", &plan)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    fn plan(new_product: bool, status: PlanStatus) -> Plan {
        Plan {
            id: "abcdefghijklm".into(),
            name: "p".into(),
            status,
            status_message: None,
            provisioned_product_id: "pp-1".into(),
            provisioned_product_name: "bucket".into(),
            new_product,
            product_id: "prod-1".into(),
            artifact_id: "pa-1".into(),
            path_id: "lpv3-1".into(),
            parameters: Vec::new(),
            tags: Vec::new(),
            notification_arns: Vec::new(),
            base_record_id: String::new(),
            execute_record_id: None,
            owner_principal: "arn:aws:iam::123456789012:role/dev".into(),
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn a_plan_executes_on_the_product_state_it_was_made_for() {
        use ProductStatus::*;
        let creating = plan(true, PlanStatus::CreateSuccess);
        let updating = plan(false, PlanStatus::CreateSuccess);
        for status in ProductStatus::ALL {
            assert_eq!(
                executable(&creating, *status),
                *status == PlanInProgress,
                "{status}"
            );
            assert_eq!(
                executable(&updating, *status),
                matches!(status, Available | Tainted),
                "{status}"
            );
        }
    }

    #[test]
    fn settling_an_execution_records_its_outcome_and_keeps_the_reason_only_for_failure() {
        let fx = Fixture::new();
        let scope = fx.ctx("dev", false).scope();
        for (outcome, status, message) in [
            (EngineOutcome::Succeeded, PlanStatus::ExecuteSuccess, None),
            (
                EngineOutcome::Failed,
                PlanStatus::ExecuteFailed,
                Some("boom".to_string()),
            ),
        ] {
            let stored = transact(fx.store.as_ref(), Mode::Write, |tx| {
                let p = plan(false, PlanStatus::ExecuteInProgress);
                store::put(tx, Kind::Plan, &scope, &p.id, "", &p)?;
                settle(tx, &scope, &p.id, outcome, Some("boom".into()), 42)?;
                get(tx, &scope, &p.id)
            })
            .unwrap();
            assert_eq!(stored.status, status);
            assert_eq!(stored.status_message, message);
            assert_eq!(stored.updated_ms, 42);
            assert!(!stored.status.is_open());
        }
        // A plan deleted meanwhile: settling it is no error.
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            settle(tx, &scope, "nosuchplan123", EngineOutcome::Failed, None, 0)
        })
        .unwrap();
    }
}
