//! Products and their versions (provisioning artifacts). A version's template is fetched from
//! its `LoadTemplateFromURL` once, at creation, and kept as an immutable copy in provisiond's
//! object store (bucket `provisiond-artifacts`, scoped to the account); engine product types
//! must be a `.tar.gz` of `.tf` files whose variables become the version's parameters.
//! A product in a portfolio (`membership.rs`) cannot be deleted, nor can a product's last
//! version; what end users see of products is `product_view.rs`.

use super::{artifact_source, portfolio, terraform};
use crate::context::RequestContext;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, StoredObject, Tx};
use crate::{idempotency, paging};
use md5::{Digest, Md5};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bucket holding the immutable copies of every version's template.
pub const ARTIFACT_BUCKET: &str = "provisiond-artifacts";

/// The product types whose operations an external engine performs.
pub const ENGINE_PRODUCT_TYPES: [&str; 3] =
    ["TERRAFORM_OPEN_SOURCE", "TERRAFORM_CLOUD", "EXTERNAL"];

/// A stored product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    /// `prod-…`
    pub id: String,
    /// `arn:aws:catalog:<region>:<account>:product/<id>`
    pub arn: String,
    /// `prodview-…`
    pub view_id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Description.
    pub description: Option<String>,
    /// Distributor.
    pub distributor: Option<String>,
    /// Support description.
    pub support_description: Option<String>,
    /// Support email.
    pub support_email: Option<String>,
    /// Support URL.
    pub support_url: Option<String>,
    /// `TERRAFORM_OPEN_SOURCE`, `EXTERNAL`, …
    pub product_type: String,
    /// Tags in the order given.
    pub tags: Vec<(String, String)>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// A Terraform variable as stored with a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVariable {
    /// Name.
    pub name: String,
    /// Default as text.
    pub default: Option<String>,
    /// Type expression.
    pub type_expr: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Sensitive.
    pub sensitive: bool,
}

/// A stored product version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    /// `pa-…`
    pub id: String,
    /// The product.
    pub product_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// `TERRAFORM_OPEN_SOURCE`, …
    pub artifact_type: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Whether new provisioning may use it.
    pub active: bool,
    /// `DEFAULT` or `DEPRECATED`.
    pub guidance: String,
    /// Where the template was loaded from.
    pub source_url: String,
    /// The key of the immutable copy in `ARTIFACT_BUCKET`.
    pub object_key: String,
    /// The template's variables, sorted by name.
    pub variables: Vec<StoredVariable>,
}

impl Product {
    pub(super) fn summary(&self) -> sc::ProductViewSummary {
        sc::ProductViewSummary {
            id: Some(self.view_id.clone()),
            product_id: Some(self.id.clone()),
            name: Some(self.name.clone()),
            owner: Some(self.owner.clone()),
            short_description: self.description.clone(),
            r#type: Some(self.product_type.clone()),
            distributor: self.distributor.clone(),
            has_default_path: Some(false),
            support_email: self.support_email.clone(),
            support_description: self.support_description.clone(),
            support_url: self.support_url.clone(),
        }
    }

    /// The product as `ProductViewDetail`.
    pub fn view_detail(&self) -> sc::ProductViewDetail {
        sc::ProductViewDetail {
            product_view_summary: Some(self.summary()),
            status: Some(super::status::CREATED.into()),
            product_arn: Some(self.arn.clone()),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            source_connection: None,
        }
    }

    fn wire_tags(&self) -> Vec<sc::Tag> {
        super::wire_tags(&self.tags)
    }
}

impl Artifact {
    /// The version as `ProvisioningArtifactDetail`.
    pub fn detail(&self) -> sc::ProvisioningArtifactDetail {
        sc::ProvisioningArtifactDetail {
            id: Some(self.id.clone()),
            name: self.name.clone(),
            description: self.description.clone(),
            r#type: Some(self.artifact_type.clone()),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            active: Some(self.active),
            guidance: Some(self.guidance.clone()),
            source_revision: None,
        }
    }

    /// What `Info` shows: where the template came from and where provisiond keeps its copy.
    pub fn info(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("LoadTemplateFromURL".to_string(), self.source_url.clone()),
            (
                "TemplateUrl".to_string(),
                format!("s3://{ARTIFACT_BUCKET}/{}", self.object_key),
            ),
        ])
    }

    /// The variables as `ProvisioningArtifactParameters`.
    pub fn parameters(&self) -> Vec<sc::ProvisioningArtifactParameter> {
        self.variables
            .iter()
            .map(|v| sc::ProvisioningArtifactParameter {
                // As the reference parser answers: every field present, empty when the source
                // has none.
                parameter_key: Some(v.name.clone()),
                default_value: Some(v.default.clone().unwrap_or_default()),
                parameter_type: Some(v.type_expr.clone().unwrap_or_default()),
                is_no_echo: Some(v.sensitive),
                description: Some(v.description.clone().unwrap_or_default()),
                parameter_constraints: Some(sc::ParameterConstraints {
                    allowed_values: Some(Vec::new()),
                    ..Default::default()
                }),
            })
            .collect()
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    ErrorCode::InvalidParametersException.with(message)
}

pub(super) fn product_not_found(id: &str) -> AwsError {
    ErrorCode::ResourceNotFoundException.with(format!("Product {id} not found."))
}

/// The product `id` of `scope`, or `ResourceNotFoundException`.
pub fn get(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Product, AwsError> {
    store::get(tx, Kind::Product, scope, id)?.ok_or_else(|| product_not_found(id))
}

/// Products by name (names need not be unique).
pub(crate) const PRODUCTS_BY_NAME: Index = Index::new(Kind::Product, "name");

impl store::index::Indexed for Product {
    const KIND: Kind = Kind::Product;
    const INDEXES: &'static [Index] = &[PRODUCTS_BY_NAME];
    fn index_values(&self) -> Vec<(Index, String)> {
        vec![(PRODUCTS_BY_NAME, self.name.clone())]
    }
}

/// The product named `name`, found through its index; of several with the name, the one
/// created first.
pub(super) fn find_by_name(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Product, AwsError> {
    PRODUCTS_BY_NAME
        .all(tx, scope, name, |p: &Product| p.name == name)?
        .into_iter()
        .min_by_key(|p| p.created_ms)
        .ok_or_else(|| {
            ErrorCode::ResourceNotFoundException.with(format!("Product named {name} not found."))
        })
}

/// The versions of a product, oldest first.
pub fn artifacts(
    tx: &mut dyn Tx,
    scope: &str,
    product_id: &str,
) -> Result<Vec<Artifact>, AwsError> {
    Ok(store::list_all::<Artifact>(
        tx,
        Kind::Artifact,
        scope,
        product_id,
    )?)
}

/// The version `artifact_id` of `product_id`, or `ResourceNotFoundException`.
pub fn get_artifact(
    tx: &mut dyn Tx,
    scope: &str,
    product_id: &str,
    artifact_id: &str,
) -> Result<Artifact, AwsError> {
    store::get::<Artifact>(tx, Kind::Artifact, scope, artifact_id)?
        .filter(|a| a.product_id == product_id)
        .ok_or_else(|| {
            ErrorCode::ResourceNotFoundException.with(format!(
                "Provisioning artifact {artifact_id} of product {product_id} not found."
            ))
        })
}

/// Fetches, checks and parses a version's template: everything but the store writes, so no
/// transaction waits on the network.
fn prepare_artifact(
    ctx: &RequestContext,
    product_id: &str,
    product_type: &str,
    props: &sc::ProvisioningArtifactProperties,
) -> Result<(Artifact, StoredObject), AwsError> {
    let info = props.info.clone().unwrap_or_default();
    let url = info.get("LoadTemplateFromURL").cloned().ok_or_else(|| {
        invalid("Info must contain LoadTemplateFromURL (ImportFromPhysicalId is not supported).")
    })?;
    let default_type = match product_type {
        "CLOUD_FORMATION_TEMPLATE" => "CLOUD_FORMATION_TEMPLATE",
        "MARKETPLACE" => "MARKETPLACE_AMI",
        other => other,
    };
    let artifact_type = props
        .r#type
        .clone()
        .unwrap_or_else(|| default_type.to_string());
    let engine = ENGINE_PRODUCT_TYPES.contains(&product_type);
    if engine && artifact_type != product_type {
        return Err(invalid(format!(
            "A {product_type} product's provisioning artifacts must be of type {product_type}, not {artifact_type}."
        )));
    }
    let bytes = artifact_source::fetch(ctx.store.as_ref(), &ctx.identity.account, &url)?;
    let skip_checks = props.disable_template_validation == Some(true);
    let variables = if engine {
        match terraform::read_archive(&bytes) {
            Ok(files) => match terraform::variables(&files) {
                Ok(vars) => vars,
                Err(_) if skip_checks => Vec::new(),
                Err(reason) => {
                    return Err(invalid(format!(
                        "Error occurred during parameter parsing: {reason}"
                    )))
                }
            },
            Err(_) if skip_checks => Vec::new(),
            Err(reason) => {
                return Err(invalid(format!(
                    "The provisioning artifact at {url} is not valid: {reason}"
                )))
            }
        }
    } else {
        Vec::new()
    };
    let id = crate::ids::catalog_id("pa");
    let object_key = format!("{product_id}/{id}{}", if engine { ".tar.gz" } else { "" });
    let object = StoredObject {
        key: object_key.clone(),
        size: bytes.len() as i64,
        etag: hex::encode(Md5::digest(&bytes)),
        body: bytes,
        created_ms: ctx.now_ms,
    };
    let artifact = Artifact {
        id,
        product_id: product_id.to_string(),
        name: props.name.clone(),
        description: props.description.clone(),
        artifact_type,
        created_ms: ctx.now_ms,
        active: true,
        guidance: "DEFAULT".into(),
        source_url: url,
        object_key,
        variables: variables
            .into_iter()
            .map(|v| StoredVariable {
                name: v.name,
                default: v.default,
                type_expr: v.type_expr,
                description: v.description,
                sensitive: v.sensitive,
            })
            .collect(),
    };
    Ok((artifact, object))
}

fn save_artifact(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    artifact: &Artifact,
    object: &StoredObject,
) -> Result<(), AwsError> {
    tx.put_object(&ctx.identity.account, ARTIFACT_BUCKET, object)?;
    store::insert(
        tx,
        Kind::Artifact,
        scope,
        &artifact.id,
        &artifact.product_id,
        artifact,
    )?;
    Ok(())
}

/// `CreateProduct`.
pub fn create(
    ctx: &RequestContext,
    input: sc::CreateProductInput,
) -> Result<sc::CreateProductOutput, AwsError> {
    let scope = ctx.scope();
    let id = crate::ids::catalog_id("prod");
    let product_type = input.product_type.clone().unwrap_or_default();
    let prepared = match &input.provisioning_artifact_parameters {
        Some(props) => Some(prepare_artifact(ctx, &id, &product_type, props)?),
        None => None,
    };
    let mut tags = Vec::new();
    for t in input.tags.as_deref().unwrap_or_default() {
        let key = t.key.clone().unwrap_or_default();
        if tags.iter().any(|(k, _): &(String, String)| *k == key) {
            return Err(invalid(format!("Tag key {key} is given more than once.")));
        }
        tags.push((key, t.value.clone().unwrap_or_default()));
    }
    let product = Product {
        arn: format!(
            "arn:aws:catalog:{}:{}:product/{id}",
            ctx.region, ctx.identity.account
        ),
        view_id: crate::ids::catalog_id("prodview"),
        id,
        name: input.name.clone().unwrap_or_default(),
        owner: input.owner.clone().unwrap_or_default(),
        description: input.description.clone(),
        distributor: input.distributor.clone(),
        support_description: input.support_description.clone(),
        support_email: input.support_email.clone(),
        support_url: input.support_url.clone(),
        product_type,
        tags,
        created_ms: ctx.now_ms,
    };
    let token = input.idempotency_token.clone().unwrap_or_default();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "CreateProduct", &token, |tx| {
            store::insert(tx, Kind::Product, &scope, &product.id, "", &product)?;
            store::index::note(tx, &scope, &product.id, &product)?;
            if let Some((artifact, object)) = &prepared {
                save_artifact(tx, ctx, &scope, artifact, object)?;
            }
            Ok(sc::CreateProductOutput {
                product_view_detail: Some(product.view_detail()),
                provisioning_artifact_detail: prepared.as_ref().map(|(a, _)| a.detail()),
                tags: Some(product.wire_tags()),
            })
        })
    })
}

pub(super) fn resolve(
    tx: &mut dyn Tx,
    scope: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Product, AwsError> {
    match (id, name) {
        (Some(id), _) => get(tx, scope, id),
        (None, Some(name)) => find_by_name(tx, scope, name),
        (None, None) => Err(invalid("Either Id or Name must be given.")),
    }
}

/// `DescribeProductAsAdmin`.
pub fn describe_as_admin(
    ctx: &RequestContext,
    input: sc::DescribeProductAsAdminInput,
) -> Result<sc::DescribeProductAsAdminOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let product = resolve(tx, &scope, input.id.as_deref(), input.name.as_deref())?;
        let summaries = artifacts(tx, &scope, &product.id)?
            .into_iter()
            .map(|a| sc::ProvisioningArtifactSummary {
                id: Some(a.id.clone()),
                name: a.name.clone(),
                description: a.description.clone(),
                created_time: Some(Timestamp::from_millis(a.created_ms)),
                provisioning_artifact_metadata: None,
            })
            .collect();
        Ok(sc::DescribeProductAsAdminOutput {
            product_view_detail: Some(product.view_detail()),
            provisioning_artifact_summaries: Some(summaries),
            tags: Some(product.wire_tags()),
            tag_options: Some(Vec::new()),
            budgets: Some(Vec::new()),
        })
    })
}

/// `DeleteProduct`: refused while the product is in a portfolio; removes its versions and
/// their template copies.
pub fn delete(
    ctx: &RequestContext,
    input: sc::DeleteProductInput,
) -> Result<sc::DeleteProductOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let product = get(tx, &scope, &id)?;
        if !tx
            .list(Kind::ProductPortfolio, &scope, &id, None, 1)?
            .is_empty()
        {
            return Err(ErrorCode::ResourceInUseException.with(format!(
                "Product {id} is associated with a portfolio; disassociate it first."
            )));
        }
        for artifact in artifacts(tx, &scope, &id)? {
            tx.delete_object(&ctx.identity.account, ARTIFACT_BUCKET, &artifact.object_key)?;
            tx.delete(Kind::Artifact, &scope, &artifact.id)?;
        }
        tx.delete(Kind::Product, &scope, &id)?;
        store::index::forget(tx, &scope, &id, &product)?;
        Ok(sc::DeleteProductOutput {})
    })
}

/// Products listed per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// `SearchProductsAsAdmin`: every product of the account (or of one portfolio), narrowed by
/// `Filters` and ordered by `SortBy`/`SortOrder` as [`ProductQuery`] does; creation order when
/// no `SortBy` is given.
pub fn search_as_admin(
    ctx: &RequestContext,
    input: sc::SearchProductsAsAdminInput,
) -> Result<sc::SearchProductsAsAdminOutput, AwsError> {
    let after = paging::parse_token(input.page_token.as_deref())?.unwrap_or(-1);
    let size = paging::page_size(input.page_size, DEFAULT_PAGE_SIZE, 100);
    let scope = ctx.scope();
    let query = ProductQuery::new(
        input.filters.as_ref(),
        input.sort_by.clone(),
        input.sort_order.as_deref(),
    );
    let found = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let products: Vec<Product> = match input.portfolio_id.as_deref() {
            Some(portfolio_id) => {
                portfolio::get(tx, &scope, portfolio_id)?;
                let links = store::list_all::<ProductLink>(
                    tx,
                    Kind::PortfolioProduct,
                    &scope,
                    portfolio_id,
                )?;
                let mut products = Vec::new();
                for link in links {
                    products.push(get(tx, &scope, &link.product_id)?);
                }
                products
            }
            None => store::list_all::<Product>(tx, Kind::Product, &scope, "")?,
        };
        query.apply(tx, &scope, products)
    })?;
    let (page, next) = paging::page_in_memory(found, after, size);
    Ok(sc::SearchProductsAsAdminOutput {
        product_view_details: Some(page.iter().map(Product::view_detail).collect()),
        next_page_token: next,
    })
}

/// The `Filters`, `SortBy` and `SortOrder` of `SearchProducts` and `SearchProductsAsAdmin`.
///
/// Filters: `FullTextSearch` (case-insensitive substring of name, owner or description),
/// `Owner` and `ProductType` (exact), `SourceProductId` (exact product id: provisiond does not
/// copy products, so a product is its own source). A product matches when, for every filter
/// key, one of its values matches. Sort: `Title` (name), `CreationDate`, `VersionCount`
/// (number of provisioning artifacts), ties kept in creation order.
pub struct ProductQuery {
    /// Filter key → accepted values, each once (`FullTextSearch`'s lowercased).
    filters: std::collections::BTreeMap<String, Vec<String>>,
    /// `Title`, `VersionCount` or `CreationDate`.
    sort_by: Option<String>,
    /// `SortOrder` `DESCENDING`.
    descending: bool,
}

impl ProductQuery {
    /// The query a search call asks: its filters' values each once, however often a request
    /// repeats them (every product is checked against each), `FullTextSearch`'s lowercased.
    pub fn new(
        filters: Option<&std::collections::BTreeMap<String, Vec<String>>>,
        sort_by: Option<String>,
        sort_order: Option<&str>,
    ) -> ProductQuery {
        let filters = filters
            .into_iter()
            .flatten()
            .map(|(key, values)| {
                let mut values: Vec<String> = if key == "FullTextSearch" {
                    values.iter().map(|v| v.to_lowercase()).collect()
                } else {
                    values.clone()
                };
                values.sort_unstable();
                values.dedup();
                (key.clone(), values)
            })
            .collect();
        ProductQuery {
            filters,
            sort_by,
            descending: sort_order == Some("DESCENDING"),
        }
    }

    /// Whether `p` passes every filter.
    pub fn matches(&self, p: &Product) -> bool {
        self.filters.iter().all(|(key, values)| match key.as_str() {
            "FullTextSearch" => {
                // The product's text lowercased once, for all the needles.
                let text: Vec<String> = [Some(&p.name), Some(&p.owner), p.description.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|f| f.to_lowercase())
                    .collect();
                values
                    .iter()
                    .any(|needle| text.iter().any(|f| f.contains(needle.as_str())))
            }
            "Owner" => values.contains(&p.owner),
            "ProductType" => values.contains(&p.product_type),
            "SourceProductId" => values.contains(&p.id),
            _ => true,
        })
    }

    /// The products that match, in the requested order.
    pub fn apply(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        products: Vec<Product>,
    ) -> Result<Vec<Product>, AwsError> {
        let mut found: Vec<Product> = products.into_iter().filter(|p| self.matches(p)).collect();
        match self.sort_by.as_deref() {
            Some("Title") => found.sort_by(|a, b| a.name.cmp(&b.name)),
            Some("CreationDate") => found.sort_by_key(|p| p.created_ms),
            Some("VersionCount") => {
                let mut counted = Vec::with_capacity(found.len());
                for p in found {
                    counted.push((artifacts(tx, scope, &p.id)?.len(), p));
                }
                counted.sort_by_key(|(count, _)| *count);
                found = counted.into_iter().map(|(_, p)| p).collect();
            }
            _ => {}
        }
        if self.descending {
            found.reverse();
        }
        Ok(found)
    }
}

/// A product's membership in a portfolio, stored from both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductLink {
    /// The portfolio.
    pub portfolio_id: String,
    /// The product.
    pub product_id: String,
}

/// `CreateProvisioningArtifact`.
pub fn create_artifact(
    ctx: &RequestContext,
    input: sc::CreateProvisioningArtifactInput,
) -> Result<sc::CreateProvisioningArtifactOutput, AwsError> {
    let product_id = input.product_id.clone().unwrap_or_default();
    let scope = ctx.scope();
    let product = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get(tx, &scope, &product_id)
    })?;
    let props = input.parameters.clone().unwrap_or_default();
    let token = input.idempotency_token.clone().unwrap_or_default();
    let (artifact, object) = prepare_artifact(ctx, &product_id, &product.product_type, &props)?;
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "CreateProvisioningArtifact", &token, |tx| {
            get(tx, &scope, &product_id)?;
            save_artifact(tx, ctx, &scope, &artifact, &object)?;
            Ok(sc::CreateProvisioningArtifactOutput {
                provisioning_artifact_detail: Some(artifact.detail()),
                info: Some(artifact.info()),
                status: Some(super::status::CREATED.into()),
            })
        })
    })
}

/// `DescribeProvisioningArtifact`, by ids or names; with `IncludeProvisioningArtifactParameters`
/// the template's variables come along.
pub fn describe_artifact(
    ctx: &RequestContext,
    input: sc::DescribeProvisioningArtifactInput,
) -> Result<sc::DescribeProvisioningArtifactOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let lookup = VersionLookup {
            product: Named::of(input.product_id.clone(), input.product_name.clone()),
            version: Named::of(
                input.provisioning_artifact_id.clone(),
                input.provisioning_artifact_name.clone(),
            ),
        };
        let (_, artifact) = resolve_version(tx, &scope, &lookup)?;
        Ok(sc::DescribeProvisioningArtifactOutput {
            provisioning_artifact_detail: Some(artifact.detail()),
            info: Some(artifact.info()),
            status: Some(super::status::CREATED.into()),
            provisioning_artifact_parameters: (input.include_provisioning_artifact_parameters
                == Some(true))
            .then(|| artifact.parameters()),
        })
    })
}

/// One thing a call names by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

impl Named {
    /// What a call's `…Id` and `…Name` members name: the id when both are given, as AWS reads
    /// them; none when neither is.
    pub fn of(id: Option<String>, name: Option<String>) -> Option<Named> {
        match (id, name) {
            (Some(id), _) => Some(Named::Id(id)),
            (None, Some(name)) => Some(Named::Name(name)),
            (None, None) => None,
        }
    }
}

/// The product and version a call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionLookup {
    /// The product.
    pub product: Option<Named>,
    /// Its version (provisioning artifact).
    pub version: Option<Named>,
}

/// The product and version a call names, by ids or by names.
pub fn resolve_version(
    tx: &mut dyn Tx,
    scope: &str,
    lookup: &VersionLookup,
) -> Result<(Product, Artifact), AwsError> {
    let product = match &lookup.product {
        Some(Named::Id(id)) => get(tx, scope, id)?,
        Some(Named::Name(name)) => find_by_name(tx, scope, name)?,
        None => return Err(invalid("Either Id or Name must be given.")),
    };
    let artifact = match &lookup.version {
        Some(Named::Id(id)) => get_artifact(tx, scope, &product.id, id)?,
        Some(Named::Name(name)) => artifacts(tx, scope, &product.id)?
            .into_iter()
            .find(|a| a.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| {
                ErrorCode::ResourceNotFoundException
                    .with(format!("Provisioning artifact named {name} not found."))
            })?,
        None => {
            return Err(invalid(
                "Either ProvisioningArtifactId or ProvisioningArtifactName must be given.",
            ))
        }
    };
    Ok((product, artifact))
}

/// `ListProvisioningArtifacts`.
pub fn list_artifacts(
    ctx: &RequestContext,
    input: sc::ListProvisioningArtifactsInput,
) -> Result<sc::ListProvisioningArtifactsOutput, AwsError> {
    let product_id = input.product_id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get(tx, &scope, &product_id)?;
        Ok(sc::ListProvisioningArtifactsOutput {
            provisioning_artifact_details: Some(
                artifacts(tx, &scope, &product_id)?
                    .iter()
                    .map(Artifact::detail)
                    .collect(),
            ),
            next_page_token: None,
        })
    })
}

/// `DeleteProvisioningArtifact`: never the product's last version.
pub fn delete_artifact(
    ctx: &RequestContext,
    input: sc::DeleteProvisioningArtifactInput,
) -> Result<sc::DeleteProvisioningArtifactOutput, AwsError> {
    let product_id = input.product_id.unwrap_or_default();
    let artifact_id = input.provisioning_artifact_id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        get(tx, &scope, &product_id)?;
        let artifact = get_artifact(tx, &scope, &product_id, &artifact_id)?;
        if artifacts(tx, &scope, &product_id)?.len() == 1 {
            return Err(invalid(format!("{artifact_id} is the last provisioning artifact of product {product_id}; a product keeps at least one.")));
        }
        tx.delete_object(&ctx.identity.account, ARTIFACT_BUCKET, &artifact.object_key)?;
        tx.delete(Kind::Artifact, &scope, &artifact_id)?;
        Ok(sc::DeleteProvisioningArtifactOutput {})
    })
}

/// `UpdateProduct`: the fields given change; `AddTags` and `RemoveTags` edit the tags.
pub fn update(
    ctx: &RequestContext,
    input: sc::UpdateProductInput,
) -> Result<sc::UpdateProductOutput, AwsError> {
    let id = input.id.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut p = get(tx, &scope, &id)?;
        let set = |field: &mut Option<String>, value: &Option<String>| {
            if value.is_some() {
                field.clone_from(value);
            }
        };
        if let Some(name) = input.name.as_ref().filter(|n| **n != p.name) {
            store::index::forget(tx, &scope, &id, &p)?;
            p.name = name.clone();
            store::index::note(tx, &scope, &id, &p)?;
        }
        if let Some(owner) = &input.owner {
            p.owner = owner.clone();
        }
        set(&mut p.description, &input.description);
        set(&mut p.distributor, &input.distributor);
        set(&mut p.support_description, &input.support_description);
        set(&mut p.support_email, &input.support_email);
        set(&mut p.support_url, &input.support_url);
        let remove = input.remove_tags.as_deref().unwrap_or_default();
        p.tags.retain(|(k, _)| !remove.contains(k));
        for t in input.add_tags.as_deref().unwrap_or_default() {
            let key = t.key.clone().unwrap_or_default();
            let value = t.value.clone().unwrap_or_default();
            match p.tags.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => p.tags.push((key, value)),
            }
        }
        if p.tags.len() > 50 {
            return Err(
                ErrorCode::LimitExceededException.with("A product may have at most 50 tags.")
            );
        }
        store::put(tx, Kind::Product, &scope, &id, "", &p)?;
        Ok(sc::UpdateProductOutput {
            product_view_detail: Some(p.view_detail()),
            tags: Some(p.wire_tags()),
        })
    })
}

/// `UpdateProvisioningArtifact`: name, description, `Active` and `Guidance`.
pub fn update_artifact(
    ctx: &RequestContext,
    input: sc::UpdateProvisioningArtifactInput,
) -> Result<sc::UpdateProvisioningArtifactOutput, AwsError> {
    let product_id = input.product_id.clone().unwrap_or_default();
    let artifact_id = input.provisioning_artifact_id.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        get(tx, &scope, &product_id)?;
        let mut a = get_artifact(tx, &scope, &product_id, &artifact_id)?;
        if input.name.is_some() {
            a.name.clone_from(&input.name);
        }
        if input.description.is_some() {
            a.description.clone_from(&input.description);
        }
        if let Some(active) = input.active {
            a.active = active;
        }
        if let Some(guidance) = &input.guidance {
            a.guidance = guidance.clone();
        }
        store::put(tx, Kind::Artifact, &scope, &a.id, &product_id, &a)?;
        Ok(sc::UpdateProvisioningArtifactOutput {
            provisioning_artifact_detail: Some(a.detail()),
            info: Some(a.info()),
            status: Some(super::status::CREATED.into()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    #[test]
    fn an_id_wins_over_a_name_and_neither_names_nothing() {
        assert_eq!(
            Named::of(Some("prod-1".into()), Some("web".into())),
            Some(Named::Id("prod-1".into()))
        );
        assert_eq!(
            Named::of(None, Some("web".into())),
            Some(Named::Name("web".into()))
        );
        assert_eq!(Named::of(None, None), None);
    }

    fn product(id: &str, name: &str) -> Product {
        Product {
            id: id.into(),
            arn: format!("arn:aws:catalog:us-east-1:123456789012:product/{id}"),
            view_id: format!("prodview-{id}"),
            name: name.into(),
            owner: "platform".into(),
            description: None,
            distributor: None,
            support_description: None,
            support_email: None,
            support_url: None,
            product_type: "TERRAFORM_OPEN_SOURCE".into(),
            tags: Vec::new(),
            created_ms: 0,
        }
    }

    fn version(id: &str, product_id: &str, name: &str) -> Artifact {
        Artifact {
            id: id.into(),
            product_id: product_id.into(),
            name: Some(name.into()),
            description: None,
            artifact_type: "TERRAFORM_OPEN_SOURCE".into(),
            created_ms: 0,
            active: true,
            guidance: "DEFAULT".into(),
            source_url: String::new(),
            object_key: String::new(),
            variables: Vec::new(),
        }
    }

    #[test]
    fn a_version_is_found_by_ids_or_names_and_only_under_its_own_product() {
        let fx = Fixture::new();
        let scope = fx.ctx("platform", true).scope();
        let lookup = |product: Named, version: Option<Named>| {
            transact(fx.store.as_ref(), Mode::Read, |tx| {
                resolve_version(
                    tx,
                    &scope,
                    &VersionLookup {
                        product: Some(product.clone()),
                        version: version.clone(),
                    },
                )
                .map(|(p, a)| (p.id, a.id))
            })
        };
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            for (p, name) in [("prod-a", "web"), ("prod-b", "db")] {
                store::put(tx, Kind::Product, &scope, p, "", &product(p, name))?;
                store::index::note(tx, &scope, p, &product(p, name))?;
            }
            for (a, p, name) in [
                ("pa-1", "prod-a", "v1"),
                ("pa-2", "prod-a", "v2"),
                ("pa-3", "prod-b", "v1"),
            ] {
                store::insert(tx, Kind::Artifact, &scope, a, p, &version(a, p, name))?;
            }
            Ok::<_, AwsError>(())
        })
        .unwrap();

        let by_ids = lookup(Named::Id("prod-a".into()), Some(Named::Id("pa-2".into())));
        assert_eq!(by_ids.unwrap(), ("prod-a".into(), "pa-2".into()));
        let by_names = lookup(Named::Name("db".into()), Some(Named::Name("v1".into())));
        assert_eq!(by_names.unwrap(), ("prod-b".into(), "pa-3".into()));

        // Another product's version is not found under this one.
        let err = lookup(Named::Id("prod-a".into()), Some(Named::Id("pa-3".into()))).unwrap_err();
        assert_eq!(err.code, "ResourceNotFoundException");
        let err = lookup(Named::Name("web".into()), Some(Named::Name("v9".into()))).unwrap_err();
        assert_eq!(err.message, "Provisioning artifact named v9 not found.");
        let err = lookup(Named::Name("cache".into()), None).unwrap_err();
        assert_eq!(err.message, "Product named cache not found.");
        let err = lookup(Named::Id("prod-a".into()), None).unwrap_err();
        assert_eq!(
            err.message,
            "Either ProvisioningArtifactId or ProvisioningArtifactName must be given."
        );
    }

    #[test]
    fn products_are_found_by_name_through_their_index_whatever_else_is_stored() {
        let fx = Fixture::new();
        let admin = fx.ctx("platform", true);
        let scope = admin.scope();
        let find = |name: &str| {
            transact(fx.store.as_ref(), Mode::Read, |tx| {
                find_by_name(tx, &scope, name).map(|p| p.id)
            })
        };
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            // Two products share a name: the one created first answers for it.
            for (p, name, created_ms) in [
                ("prod-b", "web", 20),
                ("prod-a", "web", 10),
                ("prod-c", "db", 30),
            ] {
                let product = Product {
                    created_ms,
                    ..product(p, name)
                };
                store::put(tx, Kind::Product, &scope, p, "", &product)?;
                store::index::note(tx, &scope, p, &product)?;
            }
            // Products no lookup by name may read: one would fail to decode.
            for i in 0..300 {
                tx.put(
                    Kind::Product,
                    &scope,
                    &format!("prod-broken-{i}"),
                    "",
                    b"not a product",
                )?;
            }
            Ok::<_, AwsError>(())
        })
        .unwrap();
        assert_eq!(find("web").unwrap(), "prod-a");
        assert_eq!(find("db").unwrap(), "prod-c");
        // Renamed: found by the new name only.
        update(
            &admin,
            sc::UpdateProductInput {
                id: Some("prod-c".into()),
                name: Some("database".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(find("database").unwrap(), "prod-c");
        assert_eq!(find("db").unwrap_err().code, "ResourceNotFoundException");
        // Deleted: no longer found; the other of its name answers.
        delete(
            &admin,
            sc::DeleteProductInput {
                id: Some("prod-a".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(find("web").unwrap(), "prod-b");
        // A name as long as the model allows.
        let long = "n".repeat(8_191);
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            store::put(
                tx,
                Kind::Product,
                &scope,
                "prod-long",
                "",
                &product("prod-long", &long),
            )?;
            store::index::note(tx, &scope, "prod-long", &product("prod-long", &long))
        })
        .unwrap();
        assert_eq!(find(&long).unwrap(), "prod-long");
    }

    #[test]
    fn a_search_query_keeps_each_value_once_and_matches_text_whatever_its_case() {
        let filters: std::collections::BTreeMap<String, Vec<String>> = [
            (
                "FullTextSearch".to_string(),
                vec!["WEB".into(), "web".into(), "Web".into()],
            ),
            (
                "Owner".to_string(),
                vec!["platform".into(), "platform".into(), "other".into()],
            ),
        ]
        .into_iter()
        .collect();
        let query = ProductQuery::new(Some(&filters), None, None);
        assert_eq!(query.filters["FullTextSearch"], ["web"]);
        assert_eq!(query.filters["Owner"], ["other", "platform"]);
        let mut p = product("prod-a", "My Web App");
        assert!(query.matches(&p));
        p.owner = "someone".into();
        assert!(!query.matches(&p), "every key must match");
        assert!(ProductQuery::new(Some(&filters), None, Some("DESCENDING")).descending);
    }
}
