//! Provisioned products and their records: `ProvisionProduct`, `UpdateProvisionedProduct` and
//! `TerminateProvisionedProduct` each write, in one transaction, a record `IN_PROGRESS`, the
//! provisioned product `UNDER_CHANGE` and the engine task on the product type's queue (with a
//! sealed workflow token). The engine settles the record through the Notify calls (`notify.rs`).
//! Reads: DescribeProvisionedProduct, DescribeRecord, GetProvisionedProductOutputs,
//! ScanProvisionedProducts (`SearchProvisionedProducts` is `provisioned_search.rs`).

use super::constraint::Constraint;
use super::engine_task::{self, Task};
use super::product::{self, Artifact, Named, VersionLookup, ARTIFACT_BUCKET, ENGINE_PRODUCT_TYPES};
use super::status::{ProductStatus, RecordStatus, RecordType};
use super::workflow_token::{self as token, EngineOperation, WorkflowClaims};
use super::{launch_path, paging_size};
use crate::context::RequestContext;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use crate::{idempotency, paging, queue};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};

/// A provisioned product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionedProduct {
    /// `pp-…`
    pub id: String,
    /// Unique among the account's live provisioned products in the region.
    pub name: String,
    /// `arn:aws:servicecatalog:<region>:<account>:stack/<name>/<id>`
    pub arn: String,
    /// The product type (`TERRAFORM_OPEN_SOURCE`, …).
    pub product_type: String,
    /// Its state.
    pub status: ProductStatus,
    /// Why the last change failed.
    pub status_message: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// The `ProvisionToken` it was created with.
    pub idempotency_token: String,
    /// The latest record of any type.
    pub last_record_id: String,
    /// The latest provision, update or terminate record.
    pub last_provisioning_record_id: String,
    /// The latest of those that succeeded.
    pub last_successful_provisioning_record_id: Option<String>,
    /// The product.
    pub product_id: String,
    /// The version in effect.
    pub artifact_id: String,
    /// The launch path used.
    pub path_id: String,
    /// The launch role of the path's constraint.
    pub launch_role_arn: Option<String>,
    /// The parameters in effect, fully resolved.
    pub parameters: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// The outputs of the last successful change.
    pub outputs: Vec<Output>,
    /// The engine's resource-group tag (`ResourceIdentifier.UniqueTag`).
    pub resource_group_tag: Option<(String, String)>,
    /// Who provisioned it.
    pub owner_principal: String,
}

/// An output of an engine run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Key.
    pub key: String,
    /// Value.
    pub value: Option<String>,
    /// Description.
    pub description: Option<String>,
}

impl Output {
    /// The output on the wire.
    pub fn wire(&self) -> sc::RecordOutput {
        sc::RecordOutput {
            output_key: Some(self.key.clone()),
            output_value: self.value.clone(),
            description: self.description.clone(),
        }
    }
}

/// A record of one request on a provisioned product. Records are listed account-wide in creation
/// order (parent `""`), and outlive their provisioned product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `rec-…`
    pub id: String,
    /// The provisioned product.
    pub provisioned_product_id: String,
    /// Its name.
    pub provisioned_product_name: String,
    /// Its type.
    pub product_type: String,
    /// The request it records.
    pub record_type: RecordType,
    /// Its state.
    pub status: RecordStatus,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Last change, epoch milliseconds.
    pub updated_ms: i64,
    /// The product.
    pub product_id: String,
    /// The version this request applies.
    pub artifact_id: String,
    /// The launch path.
    pub path_id: String,
    /// The launch role.
    pub launch_role_arn: Option<String>,
    /// The fully resolved parameters this request applies.
    pub parameters: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// `(code, description)` of what went wrong.
    pub errors: Vec<(String, String)>,
    /// The engine's outputs.
    pub outputs: Vec<Output>,
    /// A terminate with `IgnoreErrors`.
    pub ignore_errors: bool,
    /// The queue and message id of the engine task, to settle it with the result.
    pub task: Option<(String, String)>,
    /// Notify idempotency tokens already accepted.
    pub accepted_tokens: Vec<String>,
    /// The generation of the only workflow token that settles the record (see
    /// `WorkflowClaims::generation`).
    #[serde(default)]
    pub token_generation: u32,
    /// Who made the request.
    #[serde(default)]
    pub owner_principal: Option<String>,
    /// The plan this record executes, if any.
    #[serde(default)]
    pub plan_id: Option<String>,
}

impl Record {
    /// The record as `RecordDetail`.
    pub fn detail(&self) -> sc::RecordDetail {
        sc::RecordDetail {
            record_id: Some(self.id.clone()),
            provisioned_product_name: Some(self.provisioned_product_name.clone()),
            status: Some(self.status.into()),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            updated_time: Some(Timestamp::from_millis(self.updated_ms)),
            provisioned_product_type: Some(self.product_type.clone()),
            record_type: Some(self.record_type.into()),
            provisioned_product_id: Some(self.provisioned_product_id.clone()),
            product_id: Some(self.product_id.clone()),
            provisioning_artifact_id: Some(self.artifact_id.clone()),
            path_id: Some(self.path_id.clone()),
            record_errors: Some(
                self.errors
                    .iter()
                    .map(|(c, d)| sc::RecordError {
                        code: Some(c.clone()),
                        description: Some(d.clone()),
                    })
                    .collect(),
            ),
            record_tags: Some(
                self.tags
                    .iter()
                    .map(|(k, v)| sc::RecordTag {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                    .collect(),
            ),
            launch_role_arn: self.launch_role_arn.clone(),
        }
    }
}

impl ProvisionedProduct {
    /// Its `PhysicalId`: the engine's resource group tag, `key=value`.
    pub fn physical_id(&self) -> Option<String> {
        self.resource_group_tag
            .as_ref()
            .map(|(k, v)| format!("{k}={v}"))
    }

    /// The provisioned product as a search lists it (`ProvisionedProductAttribute`), with the
    /// names of its product and version.
    pub fn attribute(
        &self,
        product_name: String,
        version_name: Option<String>,
    ) -> sc::ProvisionedProductAttribute {
        sc::ProvisionedProductAttribute {
            name: Some(self.name.clone()),
            arn: Some(self.arn.clone()),
            r#type: Some(self.product_type.clone()),
            id: Some(self.id.clone()),
            status: Some(self.status.into()),
            status_message: self.status_message.clone(),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            idempotency_token: Some(self.idempotency_token.clone()),
            last_record_id: Some(self.last_record_id.clone()),
            last_provisioning_record_id: Some(self.last_provisioning_record_id.clone()),
            last_successful_provisioning_record_id: self
                .last_successful_provisioning_record_id
                .clone(),
            tags: Some(super::wire_tags(&self.tags)),
            physical_id: self.physical_id(),
            product_id: Some(self.product_id.clone()),
            product_name: Some(product_name),
            provisioning_artifact_id: Some(self.artifact_id.clone()),
            provisioning_artifact_name: version_name,
            user_arn: Some(self.owner_principal.clone()),
            user_arn_session: None,
        }
    }

    /// The provisioned product as `ProvisionedProductDetail`.
    pub fn detail(&self) -> sc::ProvisionedProductDetail {
        sc::ProvisionedProductDetail {
            name: Some(self.name.clone()),
            arn: Some(self.arn.clone()),
            r#type: Some(self.product_type.clone()),
            id: Some(self.id.clone()),
            status: Some(self.status.into()),
            status_message: self.status_message.clone(),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            idempotency_token: Some(self.idempotency_token.clone()),
            last_record_id: Some(self.last_record_id.clone()),
            last_provisioning_record_id: Some(self.last_provisioning_record_id.clone()),
            last_successful_provisioning_record_id: self
                .last_successful_provisioning_record_id
                .clone(),
            product_id: Some(self.product_id.clone()),
            provisioning_artifact_id: Some(self.artifact_id.clone()),
            launch_role_arn: self.launch_role_arn.clone(),
        }
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    ErrorCode::InvalidParametersException.with(message)
}

/// The provisioned product `id`, or `ResourceNotFoundException`.
pub fn get(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<ProvisionedProduct, AwsError> {
    store::get(tx, Kind::ProvisionedProduct, scope, id)?.ok_or_else(|| pp_not_found(id))
}

/// [`get`], for a transaction that will change it (`Tx::get_for_update`).
pub fn get_for_update(
    tx: &mut dyn Tx,
    scope: &str,
    id: &str,
) -> Result<ProvisionedProduct, AwsError> {
    store::get_for_update(tx, Kind::ProvisionedProduct, scope, id)?.ok_or_else(|| pp_not_found(id))
}

fn pp_not_found(id: &str) -> AwsError {
    ErrorCode::ResourceNotFoundException.with(format!("Provisioned product {id} not found."))
}

/// [`find`], for a transaction that will change it (`Tx::get_for_update`).
fn find_for_update(
    tx: &mut dyn Tx,
    scope: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<ProvisionedProduct, AwsError> {
    let id = find(tx, scope, id, name)?.id;
    get_for_update(tx, scope, &id)
}

/// The provisioned product named by id or name.
pub fn find(
    tx: &mut dyn Tx,
    scope: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<ProvisionedProduct, AwsError> {
    match (id, name) {
        (Some(id), _) => get(tx, scope, id),
        (None, Some(name)) => {
            let id: Option<String> = store::get(tx, Kind::ProvisionedProductName, scope, name)?;
            match id {
                Some(id) => get(tx, scope, &id),
                None => Err(ErrorCode::ResourceNotFoundException
                    .with(format!("Provisioned product named {name} not found."))),
            }
        }
        (None, None) => Err(invalid(
            "Either the provisioned product's id or its name must be given.",
        )),
    }
}

/// The record `id`, or `ResourceNotFoundException`.
pub fn get_record(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Record, AwsError> {
    store::get(tx, Kind::Record, scope, id)?.ok_or_else(|| record_not_found(id))
}

/// [`get_record`], for a transaction that will change it (`Tx::get_for_update`).
pub fn get_record_for_update(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Record, AwsError> {
    store::get_for_update(tx, Kind::Record, scope, id)?.ok_or_else(|| record_not_found(id))
}

fn record_not_found(id: &str) -> AwsError {
    ErrorCode::ResourceNotFoundException.with(format!("Record {id} not found."))
}

/// A parameter as a request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenParameter {
    /// The variable it sets.
    pub key: String,
    /// The value given, if any.
    pub value: Option<String>,
    /// `UsePreviousValue`: keep the value in effect.
    pub use_previous: bool,
}

impl GivenParameter {
    /// The parameters of `ProvisionProduct` (no previous value to use).
    pub fn of_provision(params: Option<&[sc::ProvisioningParameter]>) -> Vec<GivenParameter> {
        params
            .unwrap_or_default()
            .iter()
            .map(|p| GivenParameter {
                key: p.key.clone().unwrap_or_default(),
                value: p.value.clone(),
                use_previous: false,
            })
            .collect()
    }

    /// The parameters of an update-style request (update, plan).
    pub fn of_update(params: Option<&[sc::UpdateProvisioningParameter]>) -> Vec<GivenParameter> {
        params
            .unwrap_or_default()
            .iter()
            .map(|p| GivenParameter {
                key: p.key.clone().unwrap_or_default(),
                value: p.value.clone(),
                use_previous: p.use_previous_value == Some(true),
            })
            .collect()
    }
}

/// Resolves a request's parameters against the version's variables: every key must be a
/// variable; each variable takes the value given, else the previous value (`UsePreviousValue`),
/// else its default; a variable with none of these is an error.
pub fn resolve_parameters(
    artifact: &Artifact,
    given: &[GivenParameter],
    previous: &[(String, String)],
) -> Result<Vec<(String, String)>, AwsError> {
    for p in given {
        if !artifact.variables.iter().any(|v| v.name == p.key) {
            return Err(invalid(format!(
                "Parameter {} is not a variable of provisioning artifact {}.",
                p.key, artifact.id
            )));
        }
    }
    let mut resolved = Vec::new();
    for variable in &artifact.variables {
        let entry = given.iter().find(|p| p.key == variable.name);
        let value = match entry {
            Some(p) if p.use_previous => match previous.iter().find(|(k, _)| *k == variable.name) {
                Some((_, v)) => Some(v.clone()),
                None => {
                    return Err(invalid(format!(
                        "Parameter {} has no previous value to use.",
                        variable.name
                    )))
                }
            },
            Some(GivenParameter { value: Some(v), .. }) => Some(v.clone()),
            _ => variable.default.clone(),
        };
        match value {
            Some(v) => resolved.push((variable.name.clone(), v)),
            None => {
                return Err(invalid(format!(
                    "Parameter {} has no default value and must be given.",
                    variable.name
                )))
            }
        }
    }
    Ok(resolved)
}

/// The product, version and launch path a provision, update or plan uses, checked the same way
/// for all three: an engine product type, an active version, a path open to the caller, and a
/// LAUNCH constraint for `EXTERNAL` products.
pub(crate) fn launch_target(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    lookup: &VersionLookup,
    path_id: Option<&str>,
    path_name: Option<&str>,
) -> Result<(product::Product, Artifact, launch_path::LaunchPath), AwsError> {
    let (prod, artifact) = product::resolve_version(tx, scope, lookup)?;
    if !ENGINE_PRODUCT_TYPES.contains(&prod.product_type.as_str()) {
        return Err(invalid(format!(
            "Product {} is of type {}; provisiond provisions only engine product types ({}).",
            prod.id,
            prod.product_type,
            ENGINE_PRODUCT_TYPES.join(", ")
        )));
    }
    if !artifact.active {
        return Err(invalid(format!(
            "Provisioning artifact {} is not active.",
            artifact.id
        )));
    }
    let path = launch_path::resolve(tx, ctx, scope, &prod.id, path_id, path_name)?;
    if prod.product_type == "EXTERNAL" && path.launch.is_none() {
        return Err(invalid(format!(
            "EXTERNAL product {} needs a LAUNCH constraint in portfolio {}.",
            prod.id, path.portfolio.id
        )));
    }
    Ok((prod, artifact, path))
}

pub(crate) fn tags_of(tags: Option<&[sc::Tag]>) -> Result<Vec<(String, String)>, AwsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags.unwrap_or_default() {
        let key = t.key.clone().unwrap_or_default();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(invalid(format!("Tag key {key} is given more than once.")));
        }
        out.push((key, t.value.clone().unwrap_or_default()));
    }
    Ok(out)
}

/// What a new record needs to become an engine task.
pub(crate) struct NewRecord<'a> {
    pub(crate) pp: &'a ProvisionedProduct,
    pub(crate) operation: EngineOperation,
    pub(crate) artifact: Option<&'a Artifact>,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) ignore_errors: bool,
}

/// Writes a record `IN_PROGRESS` and its engine task in the caller's transaction.
pub(crate) fn start_record(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    new: NewRecord<'_>,
) -> Result<Record, AwsError> {
    let pp = new.pp;
    let record_id = crate::ids::catalog_id("rec");
    let artifact_id = new
        .artifact
        .map_or(pp.artifact_id.clone(), |a| a.id.clone());
    let queue_name = engine_task::queue_name(&pp.product_type, new.operation).ok_or_else(|| {
        invalid(format!(
            "Provisioned products of type {} are not provisioned by an engine.",
            pp.product_type
        ))
    })?;
    let token = token::issue(
        &ctx.server_key,
        &WorkflowClaims {
            account: ctx.identity.account.clone(),
            region: ctx.region.clone(),
            record_id: record_id.clone(),
            provisioned_product_id: pp.id.clone(),
            operation: new.operation,
            issued_ms: ctx.now_ms,
            generation: 0,
        },
    );
    let object_key = new
        .artifact
        .map(|a| a.object_key.as_str())
        .unwrap_or_default();
    let mut record = Record {
        id: record_id,
        provisioned_product_id: pp.id.clone(),
        provisioned_product_name: pp.name.clone(),
        product_type: pp.product_type.clone(),
        record_type: RecordType::from(new.operation),
        status: RecordStatus::InProgress,
        created_ms: ctx.now_ms,
        updated_ms: ctx.now_ms,
        product_id: pp.product_id.clone(),
        artifact_id,
        path_id: pp.path_id.clone(),
        launch_role_arn: pp.launch_role_arn.clone(),
        parameters: new.parameters,
        tags: new.tags,
        errors: Vec::new(),
        outputs: Vec::new(),
        ignore_errors: new.ignore_errors,
        task: None,
        accepted_tokens: Vec::new(),
        token_generation: 0,
        owner_principal: Some(ctx.identity.principal.clone()),
        plan_id: None,
    };
    let body = task_body(
        &record,
        new.operation,
        object_key,
        &token,
        &ctx.identity.account,
    );
    let message_id = queue::enqueue(tx, scope, &queue_name, &body, ctx.now_ms, 0)?;
    record.task = Some((queue_name, message_id));
    insert_record(tx, scope, &record)?;
    Ok(record)
}

/// The engine task message of `record`, carrying `token`; `object_key` is the key of the
/// version's template in the artifact bucket (unused by a terminate).
pub(crate) fn task_body(
    record: &Record,
    operation: EngineOperation,
    object_key: &str,
    token: &str,
    account: &str,
) -> String {
    Task {
        token,
        operation,
        provisioned_product_id: &record.provisioned_product_id,
        provisioned_product_name: &record.provisioned_product_name,
        product_id: &record.product_id,
        provisioning_artifact_id: &record.artifact_id,
        record_id: &record.id,
        launch_role_arn: record.launch_role_arn.as_deref(),
        artifact_path: format!("s3://{ARTIFACT_BUCKET}/{object_key}"),
        principal: record.owner_principal.as_deref().unwrap_or_default(),
        account,
        parameters: &record.parameters,
        tags: &record.tags,
    }
    .body()
}

/// Records by the provisioned product they change, and by its product.
pub(crate) const RECORDS_BY_PROVISIONED_PRODUCT: Index =
    Index::new(Kind::Record, "provisioned-product");
pub(crate) const RECORDS_BY_PRODUCT: Index = Index::new(Kind::Record, "product");

impl store::index::Indexed for Record {
    const KIND: Kind = Kind::Record;
    const INDEXES: &'static [Index] = &[RECORDS_BY_PROVISIONED_PRODUCT, RECORDS_BY_PRODUCT];
    fn index_values(&self) -> Vec<(Index, String)> {
        vec![
            (
                RECORDS_BY_PROVISIONED_PRODUCT,
                self.provisioned_product_id.clone(),
            ),
            (RECORDS_BY_PRODUCT, self.product_id.clone()),
        ]
    }
}

/// Stores a new record with its index entries (what it changes never changes after), noted
/// in flight while it is in progress.
pub(crate) fn insert_record(tx: &mut dyn Tx, scope: &str, record: &Record) -> Result<(), AwsError> {
    store::insert(tx, Kind::Record, scope, &record.id, "", record)?;
    store::index::note(tx, scope, &record.id, record)?;
    if record.status == RecordStatus::InProgress {
        crate::in_flight::note(
            tx,
            crate::in_flight::Work::Record,
            scope,
            &record.id,
            record.created_ms,
        )?;
    }
    Ok(())
}

pub(crate) fn launch_role(constraint: Option<&Constraint>) -> Option<String> {
    constraint.map(|c| c.role_arn.clone())
}

/// `ProvisionProduct`.
pub fn provision(
    ctx: &RequestContext,
    input: sc::ProvisionProductInput,
) -> Result<sc::ProvisionProductOutput, AwsError> {
    let scope = ctx.scope();
    let name = input.provisioned_product_name.clone().unwrap_or_default();
    let token = input.provision_token.clone().unwrap_or_default();
    let given = GivenParameter::of_provision(input.provisioning_parameters.as_deref());
    let tags = tags_of(input.tags.as_deref())?;
    let output = transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "ProvisionProduct", &token, |tx| {
            let lookup = VersionLookup {
                product: Named::of(input.product_id.clone(), input.product_name.clone()),
                version: Named::of(
                    input.provisioning_artifact_id.clone(),
                    input.provisioning_artifact_name.clone(),
                ),
            };
            let (prod, artifact, path) = launch_target(
                tx,
                ctx,
                &scope,
                &lookup,
                input.path_id.as_deref(),
                input.path_name.as_deref(),
            )?;
            let parameters = resolve_parameters(&artifact, &given, &[])?;
            let id = crate::ids::catalog_id("pp");
            if !store::insert(tx, Kind::ProvisionedProductName, &scope, &name, "", &id)? {
                return Err(ErrorCode::DuplicateResourceException.with(format!(
                    "A provisioned product named {name} already exists."
                )));
            }
            let mut pp = ProvisionedProduct {
                arn: format!(
                    "arn:aws:servicecatalog:{}:{}:stack/{name}/{id}",
                    ctx.region, ctx.identity.account
                ),
                id: id.clone(),
                name: name.clone(),
                product_type: prod.product_type.clone(),
                status: ProductStatus::UnderChange,
                status_message: None,
                created_ms: ctx.now_ms,
                idempotency_token: token.clone(),
                last_record_id: String::new(),
                last_provisioning_record_id: String::new(),
                last_successful_provisioning_record_id: None,
                product_id: prod.id.clone(),
                artifact_id: artifact.id.clone(),
                path_id: path.id.clone(),
                launch_role_arn: launch_role(path.launch.as_ref()),
                parameters: Vec::new(),
                tags: tags.clone(),
                outputs: Vec::new(),
                resource_group_tag: None,
                owner_principal: ctx.identity.principal.clone(),
            };
            let record = start_record(
                tx,
                ctx,
                &scope,
                NewRecord {
                    pp: &pp,
                    operation: EngineOperation::Provision,
                    artifact: Some(&artifact),
                    parameters,
                    tags: tags.clone(),
                    ignore_errors: false,
                },
            )?;
            pp.last_record_id = record.id.clone();
            pp.last_provisioning_record_id = record.id.clone();
            store::insert(tx, Kind::ProvisionedProduct, &scope, &id, "", &pp)?;
            Ok(sc::ProvisionProductOutput {
                record_detail: Some(record.detail()),
            })
        })
    })?;
    Ok(output)
}

/// `UpdateProvisionedProduct`.
pub fn update(
    ctx: &RequestContext,
    input: sc::UpdateProvisionedProductInput,
) -> Result<sc::UpdateProvisionedProductOutput, AwsError> {
    let scope = ctx.scope();
    let token = input.update_token.clone().unwrap_or_default();
    let given = GivenParameter::of_update(input.provisioning_parameters.as_deref());
    let new_tags = input
        .tags
        .as_deref()
        .map(|t| tags_of(Some(t)))
        .transpose()?;
    let output = transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "UpdateProvisionedProduct", &token, |tx| {
            let mut pp = find_for_update(
                tx,
                &scope,
                input.provisioned_product_id.as_deref(),
                input.provisioned_product_name.as_deref(),
            )?;
            if !pp.status.accepts_change() {
                return Err(invalid(format!(
                    "Provisioned product {} is {}; it can be updated when AVAILABLE, TAINTED or ERROR.",
                    pp.id, pp.status
                )));
            }
            // What the request does not name stays as it is.
            let lookup = VersionLookup {
                product: Named::of(input.product_id.clone(), input.product_name.clone())
                    .or_else(|| Some(Named::Id(pp.product_id.clone()))),
                version: Named::of(
                    input.provisioning_artifact_id.clone(),
                    input.provisioning_artifact_name.clone(),
                )
                .or_else(|| Some(Named::Id(pp.artifact_id.clone()))),
            };
            let path_id = input
                .path_id
                .clone()
                .or_else(|| input.path_name.is_none().then(|| pp.path_id.clone()));
            let (prod, artifact, path) = launch_target(
                tx,
                ctx,
                &scope,
                &lookup,
                path_id.as_deref(),
                input.path_name.as_deref(),
            )?;
            if prod.id != pp.product_id {
                return Err(invalid(format!(
                    "Provisioned product {} is of product {}, not {}.",
                    pp.id, pp.product_id, prod.id
                )));
            }
            let parameters = resolve_parameters(&artifact, &given, &pp.parameters)?;
            // A launch role set with UpdateProvisionedProductProperties stays until the path changes.
            if path.id != pp.path_id || pp.launch_role_arn.is_none() {
                pp.launch_role_arn = launch_role(path.launch.as_ref());
            }
            pp.path_id = path.id.clone();
            let tags = new_tags.clone().unwrap_or_else(|| pp.tags.clone());
            let record = start_record(
                tx,
                ctx,
                &scope,
                NewRecord {
                    pp: &pp,
                    operation: EngineOperation::Update,
                    artifact: Some(&artifact),
                    parameters,
                    tags,
                    ignore_errors: false,
                },
            )?;
            pp.status = ProductStatus::UnderChange;
            pp.last_record_id = record.id.clone();
            pp.last_provisioning_record_id = record.id.clone();
            store::put(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
            Ok(sc::UpdateProvisionedProductOutput {
                record_detail: Some(record.detail()),
            })
        })
    })?;
    Ok(output)
}

/// `TerminateProvisionedProduct`.
pub fn terminate(
    ctx: &RequestContext,
    input: sc::TerminateProvisionedProductInput,
) -> Result<sc::TerminateProvisionedProductOutput, AwsError> {
    let scope = ctx.scope();
    let token = input.terminate_token.clone().unwrap_or_default();
    let ignore_errors = input.ignore_errors == Some(true);
    let output = transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "TerminateProvisionedProduct", &token, |tx| {
            let mut pp = find_for_update(
                tx,
                &scope,
                input.provisioned_product_id.as_deref(),
                input.provisioned_product_name.as_deref(),
            )?;
            if !pp.status.accepts_change() && !ignore_errors {
                return Err(invalid(format!(
                    "Provisioned product {} is {}; terminate it when AVAILABLE, TAINTED or ERROR, or with IgnoreErrors.",
                    pp.id, pp.status
                )));
            }
            let record = start_record(
                tx,
                ctx,
                &scope,
                NewRecord {
                    pp: &pp,
                    operation: EngineOperation::Terminate,
                    artifact: None,
                    parameters: Vec::new(),
                    tags: Vec::new(),
                    ignore_errors,
                },
            )?;
            pp.status = ProductStatus::UnderChange;
            pp.last_record_id = record.id.clone();
            pp.last_provisioning_record_id = record.id.clone();
            store::put(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
            Ok(sc::TerminateProvisionedProductOutput {
                record_detail: Some(record.detail()),
            })
        })
    })?;
    Ok(output)
}

/// `DescribeProvisionedProduct`, by id or name.
pub fn describe(
    ctx: &RequestContext,
    input: sc::DescribeProvisionedProductInput,
) -> Result<sc::DescribeProvisionedProductOutput, AwsError> {
    let scope = ctx.scope();
    let pp = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        find(tx, &scope, input.id.as_deref(), input.name.as_deref())
    })?;
    Ok(sc::DescribeProvisionedProductOutput {
        provisioned_product_detail: Some(pp.detail()),
        cloud_watch_dashboards: Some(Vec::new()),
    })
}

/// `DescribeRecord`, with the record's outputs.
pub fn describe_record(
    ctx: &RequestContext,
    input: sc::DescribeRecordInput,
) -> Result<sc::DescribeRecordOutput, AwsError> {
    let scope = ctx.scope();
    let id = input.id.unwrap_or_default();
    let record = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_record(tx, &scope, &id)
    })?;
    Ok(sc::DescribeRecordOutput {
        record_outputs: Some(record.outputs.iter().map(Output::wire).collect()),
        record_detail: Some(record.detail()),
        next_page_token: None,
    })
}

/// `GetProvisionedProductOutputs`: the outputs of the last successful change, optionally only
/// the keys asked for.
pub fn outputs(
    ctx: &RequestContext,
    input: sc::GetProvisionedProductOutputsInput,
) -> Result<sc::GetProvisionedProductOutputsOutput, AwsError> {
    let scope = ctx.scope();
    let pp = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        find(
            tx,
            &scope,
            input.provisioned_product_id.as_deref(),
            input.provisioned_product_name.as_deref(),
        )
    })?;
    let wanted = input.output_keys.unwrap_or_default();
    let after = paging::parse_token(input.page_token.as_deref())?.unwrap_or(-1);
    let size = paging_size(input.page_size);
    let (page, next) = paging::page_in_memory(
        pp.outputs
            .into_iter()
            .filter(|o| wanted.is_empty() || wanted.contains(&o.key)),
        after,
        size,
    );
    Ok(sc::GetProvisionedProductOutputsOutput {
        outputs: Some(page.iter().map(Output::wire).collect()),
        next_page_token: next,
    })
}

/// `ScanProvisionedProducts`: the account's provisioned products (`AccessLevelFilter` `User`:
/// only the caller's), in creation order.
pub fn scan(
    ctx: &RequestContext,
    input: sc::ScanProvisionedProductsInput,
) -> Result<sc::ScanProvisionedProductsOutput, AwsError> {
    let scope = ctx.scope();
    let access = super::access_level::AccessLevel::of(
        ctx,
        input.access_level_filter.as_ref(),
        super::access_level::Default::User,
    )?;
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging_size(input.page_size);
    // Narrowed to the caller's own, a page looks at no more than `paging::SCAN_BUDGET` of the
    // account's provisioned products.
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            after,
            size,
            |from, limit| store::list(tx, Kind::ProvisionedProduct, &scope, "", from, limit),
            |pp: &ProvisionedProduct| access.admits(&pp.owner_principal),
        )
    })?;
    Ok(sc::ScanProvisionedProductsOutput {
        provisioned_products: Some(page.iter().map(ProvisionedProduct::detail).collect()),
        next_page_token: next,
    })
}

/// `ListRecordHistory`: the account's records, newest first, optionally of one provisioned
/// product (`SearchFilter` `provisionedproduct`) or product (`product`); `AccessLevelFilter`
/// `User` keeps the caller's own provisioned products' records.
pub fn record_history(
    ctx: &RequestContext,
    input: sc::ListRecordHistoryInput,
) -> Result<sc::ListRecordHistoryOutput, AwsError> {
    let scope = ctx.scope();
    let access = super::access_level::AccessLevel::of(
        ctx,
        input.access_level_filter.as_ref(),
        super::access_level::Default::User,
    )?;
    let filter = input
        .search_filter
        .clone()
        .map(|f| (f.key.unwrap_or_default(), f.value.unwrap_or_default()));
    let before = paging::parse_token(input.page_token.as_deref())?;
    let size = paging_size(input.page_size);
    let index = match &filter {
        Some((k, v)) if k == "provisionedproduct" => Some((RECORDS_BY_PROVISIONED_PRODUCT, v)),
        Some((k, v)) if k == "product" => Some((RECORDS_BY_PRODUCT, v)),
        _ => None,
    };
    let admitted = |r: &Record| {
        let filtered = match &filter {
            Some((k, v)) if k == "provisionedproduct" => &r.provisioned_product_id == v,
            Some((k, v)) if k == "product" => &r.product_id == v,
            _ => true,
        };
        filtered
            && r.owner_principal
                .as_deref()
                .is_none_or(|o| access.admits(o))
    };
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            before,
            size,
            |from, limit| match &index {
                Some((index, value)) => index.documents(tx, &scope, value, from, true, limit),
                None => store::list_newest(tx, Kind::Record, &scope, "", from, limit),
            },
            admitted,
        )
    })?;
    Ok(sc::ListRecordHistoryOutput {
        record_details: Some(page.iter().map(Record::detail).collect()),
        next_page_token: next,
    })
}

/// `UpdateProvisionedProductProperties`: `OWNER` (an IAM user or role ARN of the account) and
/// `LAUNCH_ROLE` (a role ARN of the account) change at once, for the account's admins or the
/// product's owner, on a product that is not under change. The change is recorded as an
/// `UPDATE_PROVISIONED_PRODUCT_PROPERTIES` record that succeeds immediately (no engine runs).
pub fn update_properties(
    ctx: &RequestContext,
    input: sc::UpdateProvisionedProductPropertiesInput,
) -> Result<sc::UpdateProvisionedProductPropertiesOutput, AwsError> {
    let scope = ctx.scope();
    let id = input.provisioned_product_id.clone().unwrap_or_default();
    let properties = input
        .provisioned_product_properties
        .clone()
        .unwrap_or_default();
    let token = input.idempotency_token.clone().unwrap_or_default();
    let account = ctx.identity.account.clone();
    for (key, value) in &properties {
        let ok = match key.as_str() {
            "OWNER" => crate::auth::check_principal(&account, value).is_ok(),
            "LAUNCH_ROLE" => {
                value.starts_with(&format!("arn:aws:iam::{account}:role/"))
                    && value.len() > format!("arn:aws:iam::{account}:role/").len()
            }
            _ => false,
        };
        if !ok {
            return Err(invalid(format!("{key} {value} is not an IAM principal of account {account} that this property accepts.")));
        }
    }
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(
            tx,
            &scope,
            "UpdateProvisionedProductProperties",
            &token,
            |tx| {
                let mut pp = get_for_update(tx, &scope, &id)?;
                if !ctx.identity.admin && pp.owner_principal != ctx.identity.principal {
                    return Err(provisiond_model::CommonError::AccessDeniedException.with(format!(
                    "User: {} is not authorized to perform: servicecatalog:UpdateProvisionedProductProperties on {}",
                    ctx.identity.principal, pp.arn
                )));
                }
                if !pp.status.accepts_change() {
                    return Err(invalid(format!("Provisioned product {} is {}; its properties change when it is not under change.", pp.id, pp.status)));
                }
                if let Some(owner) = properties.get("OWNER") {
                    pp.owner_principal = owner.clone();
                }
                if let Some(role) = properties.get("LAUNCH_ROLE") {
                    pp.launch_role_arn = Some(role.clone());
                }
                let record = Record {
                    id: crate::ids::catalog_id("rec"),
                    provisioned_product_id: pp.id.clone(),
                    provisioned_product_name: pp.name.clone(),
                    product_type: pp.product_type.clone(),
                    record_type: RecordType::UpdateProperties,
                    status: RecordStatus::Succeeded,
                    created_ms: ctx.now_ms,
                    updated_ms: ctx.now_ms,
                    product_id: pp.product_id.clone(),
                    artifact_id: pp.artifact_id.clone(),
                    path_id: pp.path_id.clone(),
                    launch_role_arn: pp.launch_role_arn.clone(),
                    parameters: pp.parameters.clone(),
                    tags: pp.tags.clone(),
                    errors: Vec::new(),
                    outputs: Vec::new(),
                    ignore_errors: false,
                    task: None,
                    accepted_tokens: Vec::new(),
                    token_generation: 0,
                    owner_principal: Some(ctx.identity.principal.clone()),
                    plan_id: None,
                };
                insert_record(tx, &scope, &record)?;
                pp.last_record_id = record.id.clone();
                store::put(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
                Ok(sc::UpdateProvisionedProductPropertiesOutput {
                    provisioned_product_id: Some(pp.id.clone()),
                    provisioned_product_properties: Some(properties.clone()),
                    record_id: Some(record.id.clone()),
                    status: Some(RecordStatus::Succeeded.into()),
                })
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::product::StoredVariable;

    fn variable(name: &str, default: Option<&str>) -> StoredVariable {
        StoredVariable {
            name: name.into(),
            default: default.map(Into::into),
            type_expr: None,
            description: None,
            sensitive: false,
        }
    }

    fn artifact(variables: Vec<StoredVariable>) -> Artifact {
        Artifact {
            id: "pa-unittest0001".into(),
            product_id: "prod-unittest0001".into(),
            name: Some("v1".into()),
            description: None,
            artifact_type: "TERRAFORM_OPEN_SOURCE".into(),
            created_ms: 0,
            active: true,
            guidance: "DEFAULT".into(),
            source_url: String::new(),
            object_key: String::new(),
            variables,
        }
    }

    fn given(key: &str, value: Option<&str>, use_previous: bool) -> GivenParameter {
        GivenParameter {
            key: key.into(),
            value: value.map(Into::into),
            use_previous,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_variable_takes_the_value_given_else_the_previous_else_its_default() {
        let a = artifact(vec![
            variable("name", None),
            variable("size", Some("3")),
            variable("zone", Some("a")),
        ]);
        let previous = pairs(&[("name", "old"), ("size", "5"), ("zone", "b")]);
        let resolved = resolve_parameters(
            &a,
            &[given("name", Some("new"), false), given("size", None, true)],
            &previous,
        )
        .unwrap();
        // `zone` is not given: its default, not its previous value (SPEC §5.1).
        assert_eq!(
            resolved,
            pairs(&[("name", "new"), ("size", "5"), ("zone", "a")])
        );
        // UsePreviousValue wins over a value given with it.
        let resolved = resolve_parameters(&a, &[given("name", Some("x"), true)], &previous);
        assert_eq!(resolved.unwrap()[0], ("name".into(), "old".into()));
    }

    #[test]
    fn unknown_keys_missing_values_and_missing_previous_values_are_refused() {
        let a = artifact(vec![variable("name", None), variable("size", Some("3"))]);
        let err = resolve_parameters(&a, &[given("colour", Some("red"), false)], &[]).unwrap_err();
        assert_eq!(
            err.message,
            "Parameter colour is not a variable of provisioning artifact pa-unittest0001."
        );
        let err = resolve_parameters(&a, &[], &[]).unwrap_err();
        assert_eq!(
            err.message,
            "Parameter name has no default value and must be given."
        );
        let err = resolve_parameters(&a, &[given("name", None, true)], &[]).unwrap_err();
        assert_eq!(err.message, "Parameter name has no previous value to use.");
        assert_eq!(err.code, "InvalidParametersException");
    }

    #[test]
    fn request_parameters_become_given_parameters() {
        let provision = GivenParameter::of_provision(Some(&[sc::ProvisioningParameter {
            key: Some("name".into()),
            value: Some("n".into()),
        }]));
        assert_eq!(provision, [given("name", Some("n"), false)]);
        let update = GivenParameter::of_update(Some(&[
            sc::UpdateProvisioningParameter {
                key: Some("name".into()),
                value: None,
                use_previous_value: Some(true),
            },
            sc::UpdateProvisioningParameter {
                key: Some("size".into()),
                value: Some("4".into()),
                use_previous_value: Some(false),
            },
        ]));
        assert_eq!(
            update,
            [given("name", None, true), given("size", Some("4"), false)]
        );
        assert!(GivenParameter::of_update(None).is_empty());
    }

    #[test]
    fn tags_keep_their_order_and_a_key_given_twice_is_refused() {
        let tag = |k: &str, v: &str| sc::Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        assert_eq!(
            tags_of(Some(&[tag("b", "1"), tag("a", "2")])).unwrap(),
            pairs(&[("b", "1"), ("a", "2")])
        );
        let err = tags_of(Some(&[tag("a", "1"), tag("a", "2")])).unwrap_err();
        assert_eq!(err.message, "Tag key a is given more than once.");
    }

    #[test]
    fn a_record_shows_its_type_and_status_as_aws_strings() {
        let record = Record {
            id: "rec-1".into(),
            provisioned_product_id: "pp-1".into(),
            provisioned_product_name: "bucket".into(),
            product_type: "TERRAFORM_OPEN_SOURCE".into(),
            record_type: RecordType::Terminate,
            status: RecordStatus::Failed,
            created_ms: 0,
            updated_ms: 0,
            product_id: "prod-1".into(),
            artifact_id: "pa-1".into(),
            path_id: "lpv3-1".into(),
            launch_role_arn: None,
            parameters: Vec::new(),
            tags: Vec::new(),
            errors: vec![("ENGINE_WORKFLOW_FAILURE".into(), "boom".into())],
            outputs: Vec::new(),
            ignore_errors: false,
            task: None,
            accepted_tokens: Vec::new(),
            token_generation: 0,
            owner_principal: None,
            plan_id: None,
        };
        let detail = record.detail();
        assert_eq!(
            detail.record_type.as_deref(),
            Some("TERMINATE_PROVISIONED_PRODUCT")
        );
        assert_eq!(detail.status.as_deref(), Some("FAILED"));
        assert_eq!(
            detail.record_errors.unwrap()[0].description.as_deref(),
            Some("boom")
        );
        // Stored as the same strings: documents written before the enums still read.
        let stored = serde_json::to_value(&record).unwrap();
        assert_eq!(stored["record_type"], "TERMINATE_PROVISIONED_PRODUCT");
        assert_eq!(stored["status"], "FAILED");
        let back: Record = serde_json::from_value(stored).unwrap();
        assert_eq!(back.status, RecordStatus::Failed);
    }
}
