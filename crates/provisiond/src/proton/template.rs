//! Environment and service templates and their versions (SPEC §7.2). A version is registered
//! from a `.tar.gz` bundle in the caller's object store (`source.s3`): for an environment
//! template `infrastructure/manifest.yaml` and a `schema/schema.yaml` naming an
//! `environment_input_type`; for a service template `instance_infrastructure/manifest.yaml` and a
//! schema naming a `service_input_type` (Terraform, rendered with `hcl`, in every manifest).
//! Both kinds share the code below; the operations at the end of the file put it on the wire. The bundle is copied into provisiond's own store at registration,
//! so a later change of the source object changes nothing. Versions start `DRAFT`;
//! `UpdateEnvironmentTemplateVersion{status: PUBLISHED}` publishes; the template's
//! `recommendedVersion` is the highest published minor of the highest major that has one.

use super::common::{
    arn, conflict, create_tags, delete_tags, invalid, not_found, page, page_size, parse_next_token,
};
use super::dependents::Dependents;
use super::schema::{yaml_to_json, Schema};
use super::status::VersionStatus;
use crate::catalog::product::ARTIFACT_BUCKET;
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode, StoredObject, Tx};
use md5::{Digest, Md5};
use provisiond_formats::bundle::{self, Files};
use provisiond_model::proton as pr;
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which kind of template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateKind {
    /// An environment template.
    Environment,
    /// A service template.
    Service,
}

impl TemplateKind {
    /// The ARN resource type, also the id prefix in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Environment => "environment-template",
            TemplateKind::Service => "service-template",
        }
    }

    /// How messages name it.
    pub const fn noun(self) -> &'static str {
        match self {
            TemplateKind::Environment => "environment template",
            TemplateKind::Service => "service template",
        }
    }

    /// The folder of the bundle that holds the infrastructure files.
    pub const fn infrastructure_folder(self) -> &'static str {
        match self {
            TemplateKind::Environment => "infrastructure",
            TemplateKind::Service => "instance_infrastructure",
        }
    }
}

/// A stored template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    /// Environment or service.
    pub kind: TemplateKind,
    /// The name.
    pub name: String,
    /// `arn:aws:proton:<region>:<account>:<kind>/<name>`.
    pub arn: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Encryption key ARN.
    pub encryption_key: Option<String>,
    /// `provisioning` (environment) or `pipelineProvisioning` (service).
    pub provisioning: Option<String>,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last modified, epoch ms.
    pub modified_ms: i64,
    /// `(major, minor)` recommended, if any version is published.
    pub recommended: Option<(u32, u32)>,
}

impl Template {
    fn wire(&self) -> pr::EnvironmentTemplate {
        pr::EnvironmentTemplate {
            arn: Some(self.arn.clone()),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            description: self.description.clone(),
            display_name: self.display_name.clone(),
            encryption_key: self.encryption_key.clone(),
            last_modified_at: Some(Timestamp::from_millis(self.modified_ms)),
            name: Some(self.name.clone()),
            provisioning: self.provisioning.clone(),
            recommended_version: self.recommended.map(|(a, b)| format!("{a}.{b}")),
        }
    }

    fn service_wire(&self) -> pr::ServiceTemplate {
        let w = self.wire();
        pr::ServiceTemplate {
            arn: w.arn,
            created_at: w.created_at,
            description: w.description,
            display_name: w.display_name,
            encryption_key: w.encryption_key,
            last_modified_at: w.last_modified_at,
            name: w.name,
            pipeline_provisioning: w.provisioning,
            recommended_version: w.recommended_version,
        }
    }

    fn service_summary(&self) -> pr::ServiceTemplateSummary {
        let w = self.wire();
        pr::ServiceTemplateSummary {
            arn: w.arn,
            created_at: w.created_at,
            description: w.description,
            display_name: w.display_name,
            last_modified_at: w.last_modified_at,
            name: w.name,
            pipeline_provisioning: w.provisioning,
            recommended_version: w.recommended_version,
        }
    }

    fn summary(&self) -> pr::EnvironmentTemplateSummary {
        let w = self.wire();
        pr::EnvironmentTemplateSummary {
            arn: w.arn,
            created_at: w.created_at,
            description: w.description,
            display_name: w.display_name,
            last_modified_at: w.last_modified_at,
            name: w.name,
            provisioning: w.provisioning,
            recommended_version: w.recommended_version,
        }
    }
}

/// A stored template version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    /// Environment or service.
    pub kind: TemplateKind,
    /// The template's name.
    pub template_name: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// `…:<kind>/<name>:<major>.<minor>`.
    pub arn: String,
    /// `DRAFT` or `PUBLISHED`.
    pub status: VersionStatus,
    /// Description.
    pub description: Option<String>,
    /// `schema/schema.yaml` as registered.
    pub schema: String,
    /// Key of the bundle copy in `ARTIFACT_BUCKET`.
    pub bundle_key: String,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last modified, epoch ms.
    pub modified_ms: i64,
    /// Service templates: the environment templates (name, major) instances may run in.
    #[serde(default)]
    pub compatible_environment_templates: Vec<(String, String)>,
    /// Service templates: `supportedComponentSources` (`DIRECTLY_DEFINED`).
    #[serde(default)]
    pub supported_component_sources: Vec<String>,
}

impl Version {
    fn service_wire(&self, recommended_minor: Option<u32>) -> pr::ServiceTemplateVersion {
        let w = self.wire(recommended_minor);
        pr::ServiceTemplateVersion {
            arn: w.arn,
            compatible_environment_templates: Some(
                self.compatible_environment_templates
                    .iter()
                    .map(|(name, major)| pr::CompatibleEnvironmentTemplate {
                        major_version: Some(major.clone()),
                        template_name: Some(name.clone()),
                    })
                    .collect(),
            ),
            created_at: w.created_at,
            description: w.description,
            last_modified_at: w.last_modified_at,
            major_version: w.major_version,
            minor_version: w.minor_version,
            recommended_minor_version: w.recommended_minor_version,
            schema: w.schema,
            status: w.status,
            status_message: w.status_message,
            supported_component_sources: Some(self.supported_component_sources.clone()),
            template_name: w.template_name,
        }
    }

    fn wire(&self, recommended_minor: Option<u32>) -> pr::EnvironmentTemplateVersion {
        pr::EnvironmentTemplateVersion {
            arn: Some(self.arn.clone()),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            description: self.description.clone(),
            last_modified_at: Some(Timestamp::from_millis(self.modified_ms)),
            major_version: Some(self.major.to_string()),
            minor_version: Some(self.minor.to_string()),
            recommended_minor_version: recommended_minor.map(|m| m.to_string()),
            schema: Some(self.schema.clone()),
            status: Some(self.status.into()),
            status_message: None,
            template_name: Some(self.template_name.clone()),
        }
    }

    /// The parsed schema (it was checked at registration).
    pub fn parsed_schema(&self) -> Result<Schema, AwsError> {
        Schema::parse(&self.schema).map_err(invalid)
    }

    /// The bundle's files.
    pub fn files(&self, tx: &mut dyn Tx, account: &str) -> Result<Files, AwsError> {
        let object = tx
            .get_object(account, ARTIFACT_BUCKET, &self.bundle_key)?
            .ok_or_else(|| not_found("template bundle", &self.bundle_key))?;
        bundle::read(&object.body).map_err(invalid)
    }
}

fn template_id(kind: TemplateKind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

fn version_id(kind: TemplateKind, name: &str, major: u32, minor: u32) -> String {
    format!("{}/{name}/{major}.{minor}", kind.as_str())
}

/// The template `name`, or `ResourceNotFoundException`.
pub fn get_template(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
) -> Result<Template, AwsError> {
    store::get(tx, Kind::ProtonTemplate, scope, &template_id(kind, name))?
        .ok_or_else(|| not_found(kind.noun(), name))
}

/// Every version of `name`, in (major, minor) order.
pub fn versions(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
) -> Result<Vec<Version>, AwsError> {
    let mut all: Vec<Version> = store::list_all::<Version>(
        tx,
        Kind::ProtonTemplateVersion,
        scope,
        &template_id(kind, name),
    )?;
    all.sort_by_key(|v| (v.major, v.minor));
    Ok(all)
}

/// The version `major.minor` of `name`, if there is one.
pub fn find_version(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
    major: u32,
    minor: u32,
) -> Result<Option<Version>, AwsError> {
    Ok(store::get(
        tx,
        Kind::ProtonTemplateVersion,
        scope,
        &version_id(kind, name, major, minor),
    )?)
}

/// The version `major.minor` of `name`, or `ResourceNotFoundException`.
pub fn get_version(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
    major: u32,
    minor: u32,
) -> Result<Version, AwsError> {
    find_version(tx, scope, kind, name, major, minor)?.ok_or_else(|| {
        not_found(
            &format!("{} version", kind.noun()),
            &format!("{name}:{major}.{minor}"),
        )
    })
}

/// The published version a resource uses: `minor` given, or the recommended (highest
/// published) minor of `major`. A draft or unknown version is `ValidationException`.
pub fn published_version(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
    major: &str,
    minor: Option<&str>,
) -> Result<Version, AwsError> {
    get_template(tx, scope, kind, name)?;
    let major = number(major, "templateMajorVersion")?;
    let chosen = match minor {
        Some(minor) => {
            let minor = number(minor, "templateMinorVersion")?;
            get_version(tx, scope, kind, name, major, minor)?
        }
        None => recommended_minor(&versions(tx, scope, kind, name)?, major)
            .map(|minor| get_version(tx, scope, kind, name, major, minor))
            .transpose()?
            .ok_or_else(|| {
                invalid(format!(
                    "The {} {name} has no published version in major version {major}.",
                    kind.noun()
                ))
            })?,
    };
    if chosen.status != VersionStatus::Published {
        return Err(invalid(format!(
            "The {} version {name}:{}.{} is not published.",
            kind.noun(),
            chosen.major,
            chosen.minor
        )));
    }
    Ok(chosen)
}

/// A version number given as text.
pub fn number(text: &str, member: &str) -> Result<u32, AwsError> {
    text.parse()
        .map_err(|_| invalid(format!("{member} {text} is not a version number.")))
}

fn recommended_minor(all: &[Version], major: u32) -> Option<u32> {
    all.iter()
        .filter(|v| v.major == major && v.status == VersionStatus::Published)
        .map(|v| v.minor)
        .max()
}

fn recommended(all: &[Version]) -> Option<(u32, u32)> {
    all.iter()
        .filter(|v| v.status == VersionStatus::Published)
        .map(|v| (v.major, v.minor))
        .max()
}

fn save_template(tx: &mut dyn Tx, scope: &str, template: &Template) -> Result<(), AwsError> {
    let id = template_id(template.kind, &template.name);
    store::put(tx, Kind::ProtonTemplate, scope, &id, "", template)?;
    Ok(())
}

/// Stores a version (under its template, for the lists of versions).
pub(crate) fn save_version(
    tx: &mut dyn Tx,
    scope: &str,
    version: &Version,
) -> Result<(), AwsError> {
    let (kind, name) = (version.kind, &version.template_name);
    store::put(
        tx,
        Kind::ProtonTemplateVersion,
        scope,
        &version_id(kind, name, version.major, version.minor),
        &template_id(kind, name),
        version,
    )?;
    Ok(())
}

fn refresh_recommended(
    tx: &mut dyn Tx,
    scope: &str,
    kind: TemplateKind,
    name: &str,
    now_ms: i64,
) -> Result<(), AwsError> {
    let mut template = get_template(tx, scope, kind, name)?;
    template.recommended = recommended(&versions(tx, scope, kind, name)?);
    template.modified_ms = now_ms;
    save_template(tx, scope, &template)
}

/// What creating a template takes.
struct NewTemplate {
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    encryption_key: Option<String>,
    provisioning: Option<String>,
    tags: Option<Vec<pr::Tag>>,
}

fn create_template(
    ctx: &RequestContext,
    kind: TemplateKind,
    new: NewTemplate,
) -> Result<Template, AwsError> {
    let template = Template {
        kind,
        arn: arn(ctx, &format!("{}/{}", kind.as_str(), new.name)),
        name: new.name,
        display_name: new.display_name,
        description: new.description,
        encryption_key: new.encryption_key,
        provisioning: new.provisioning,
        created_ms: ctx.now_ms,
        modified_ms: ctx.now_ms,
        recommended: None,
    };
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let id = template_id(kind, &template.name);
        if !store::insert(tx, Kind::ProtonTemplate, &scope, &id, "", &template)? {
            return Err(conflict(format!(
                "The {} {} already exists.",
                kind.noun(),
                template.name
            )));
        }
        create_tags(tx, &scope, &template.arn, new.tags.as_ref())?;
        Ok(template.clone())
    })
}

fn read_template(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
) -> Result<Template, AwsError> {
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_template(tx, &ctx.scope(), kind, name)
    })
}

fn update_template(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
    display_name: Option<String>,
    description: Option<String>,
) -> Result<Template, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut template = get_template(tx, &scope, kind, name)?;
        if display_name.is_some() {
            template.display_name = display_name.clone();
        }
        if description.is_some() {
            template.description = description.clone();
        }
        template.modified_ms = ctx.now_ms;
        save_template(tx, &scope, &template)?;
        Ok(template)
    })
}

/// One page of the templates of `kind`, in creation order, read straight from the store (both
/// kinds share the list; a page looks at a bounded number of the other kind's).
fn template_page(
    ctx: &RequestContext,
    kind: TemplateKind,
    next_token: Option<&str>,
    max_results: Option<i32>,
) -> Result<(Vec<Template>, Option<String>), AwsError> {
    let after = parse_next_token(next_token)?;
    let scope = ctx.scope();
    Ok(transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            after,
            page_size(max_results),
            |from, limit| store::list(tx, Kind::ProtonTemplate, &scope, "", from, limit),
            |t: &Template| t.kind == kind,
        )
    })?)
}

fn delete_template(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
) -> Result<Template, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let template = get_template(tx, &scope, kind, name)?;
        if !versions(tx, &scope, kind, name)?.is_empty() {
            return Err(conflict(format!(
                "The {} {name} still has versions; delete them first.",
                kind.noun()
            )));
        }
        tx.delete(Kind::ProtonTemplate, &scope, &template_id(kind, name))?;
        delete_tags(tx, &scope, &template.arn)?;
        Ok(template)
    })
}

/// Checks a template bundle: a Terraform manifest in the kind's infrastructure folder and a
/// `schema/schema.yaml` naming the kind's input type. Returns the schema text.
pub fn check_bundle(kind: TemplateKind, files: &Files) -> Result<String, String> {
    let text = |path: &str| -> Result<String, String> {
        let bytes = files
            .get(path)
            .ok_or_else(|| format!("the bundle has no {path}"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{path} is not UTF-8 text"))
    };
    let folder = kind.infrastructure_folder();
    let manifest_path = format!("{folder}/manifest.yaml");
    let manifest = yaml_to_json(&text(&manifest_path)?)
        .map_err(|e| format!("{manifest_path} is not YAML: {e}"))?;
    let templates = manifest
        .get("infrastructure")
        .and_then(|i| i.get("templates"))
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{manifest_path} has no infrastructure.templates list"))?;
    for t in templates {
        let language = t.get("template_language").and_then(Value::as_str);
        if language != Some("terraform") {
            return Err(format!(
                "{manifest_path}: template_language {} is not served; the accepted value is terraform (provisiond provisions terraform templates through self-managed provisioning)",
                language.unwrap_or("(missing)")
            ));
        }
    }
    let schema_text = text("schema/schema.yaml")?;
    let schema = Schema::parse(&schema_text)?;
    let (input_type, key) = match kind {
        TemplateKind::Environment => (&schema.environment_input_type, "environment_input_type"),
        TemplateKind::Service => (&schema.service_input_type, "service_input_type"),
    };
    if input_type.is_none() {
        return Err(format!("schema/schema.yaml names no {key}"));
    }
    Ok(schema_text)
}

/// What registering a version takes.
struct NewVersion {
    name: String,
    client_token: Option<String>,
    description: Option<String>,
    major: Option<String>,
    source: Option<pr::TemplateVersionSourceInput>,
    tags: Option<Vec<pr::Tag>>,
    compatible_environment_templates: Vec<(String, String)>,
    supported_component_sources: Vec<String>,
}

/// A new minor of `major`, or a new major without it; registered at once (`DRAFT`) or refused
/// with `ValidationException` saying what is wrong with the bundle [ours: AWS registers
/// asynchronously]. Idempotent on `clientToken`.
fn create_version(
    ctx: &RequestContext,
    kind: TemplateKind,
    new: NewVersion,
) -> Result<(Version, Option<u32>), AwsError> {
    let name = new.name.clone();
    let source = new
        .source
        .as_ref()
        .and_then(|s| s.s3.as_ref())
        .ok_or_else(|| invalid("source.s3 is required: the bundle's bucket and key."))?;
    let (bucket, key) = (
        source.bucket.clone().unwrap_or_default(),
        source.key.clone().unwrap_or_default(),
    );
    let scope = ctx.scope();
    let account = ctx.identity.account.clone();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let work = |tx: &mut dyn Tx| {
            let mut template = get_template(tx, &scope, kind, &name)?;
            for (env_template, major) in &new.compatible_environment_templates {
                let env_versions = versions(tx, &scope, TemplateKind::Environment, env_template)?;
                get_template(tx, &scope, TemplateKind::Environment, env_template)?;
                if !env_versions.iter().any(|v| v.major.to_string() == *major) {
                    return Err(invalid(format!(
                        "The compatible environment template {env_template} has no major version {major}."
                    )));
                }
            }
            let object = tx.get_object(&account, &bucket, &key)?.ok_or_else(|| {
                invalid(format!(
                    "The template bundle s3://{bucket}/{key} does not exist."
                ))
            })?;
            let files = bundle::read(&object.body).map_err(invalid)?;
            let schema = check_bundle(kind, &files).map_err(|e| {
                invalid(format!(
                    "The template bundle s3://{bucket}/{key} is not valid: {e}"
                ))
            })?;
            let all = versions(tx, &scope, kind, &name)?;
            let (major, minor) = match new.major.as_deref() {
                Some(major) => {
                    let major = number(major, "majorVersion")?;
                    match all.iter().filter(|v| v.major == major).map(|v| v.minor).max() {
                        Some(last) => (major, last + 1),
                        None => {
                            return Err(invalid(format!(
                                "The {} {name} has no major version {major}; omit majorVersion to create a new major version.",
                                kind.noun()
                            )))
                        }
                    }
                }
                None => (all.iter().map(|v| v.major).max().unwrap_or(0) + 1, 0),
            };
            let bundle_key = format!(
                "proton/{}/{}/{name}/{major}.{minor}.tar.gz",
                ctx.region,
                kind.as_str()
            );
            tx.put_object(
                &account,
                ARTIFACT_BUCKET,
                &StoredObject {
                    key: bundle_key.clone(),
                    size: object.body.len() as i64,
                    etag: hex::encode(Md5::digest(&object.body)),
                    body: object.body.clone(),
                    created_ms: ctx.now_ms,
                },
            )?;
            let version = Version {
                kind,
                arn: format!("{}:{major}.{minor}", template.arn),
                template_name: name.clone(),
                major,
                minor,
                status: VersionStatus::Draft,
                description: new.description.clone(),
                schema,
                bundle_key,
                created_ms: ctx.now_ms,
                modified_ms: ctx.now_ms,
                compatible_environment_templates: new.compatible_environment_templates.clone(),
                supported_component_sources: new.supported_component_sources.clone(),
            };
            save_version(tx, &scope, &version)?;
            create_tags(tx, &scope, &version.arn, new.tags.as_ref())?;
            template.modified_ms = ctx.now_ms;
            save_template(tx, &scope, &template)?;
            Ok((version, recommended_minor(&all, major)))
        };
        match new.client_token.as_deref() {
            Some(token) => crate::idempotency::remember(
                tx,
                &scope,
                &format!("Create{}Version/{name}", kind.as_str()),
                token,
                work,
            ),
            None => work(tx),
        }
    })
}

fn read_version(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
    major: Option<&str>,
    minor: Option<&str>,
) -> Result<(Version, Option<u32>), AwsError> {
    let major = number(major.unwrap_or_default(), "majorVersion")?;
    let minor = number(minor.unwrap_or_default(), "minorVersion")?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let version = get_version(tx, &scope, kind, name, major, minor)?;
        let all = versions(tx, &scope, kind, name)?;
        Ok((version, recommended_minor(&all, major)))
    })
}

/// What updating a version may change.
struct VersionChange {
    description: Option<String>,
    status: Option<String>,
    compatible_environment_templates: Option<Vec<(String, String)>>,
    supported_component_sources: Option<Vec<String>>,
}

/// Description, the service fields, and `DRAFT` → `PUBLISHED`.
fn update_version(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
    major: Option<&str>,
    minor: Option<&str>,
    change: VersionChange,
) -> Result<(Version, Option<u32>), AwsError> {
    let major = number(major.unwrap_or_default(), "majorVersion")?;
    let minor = number(minor.unwrap_or_default(), "minorVersion")?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut version = get_version(tx, &scope, kind, name, major, minor)?;
        if let Some(wanted) = change.status.as_deref() {
            let current = version.status;
            match VersionStatus::parse(wanted) {
                Some(wanted) if current.may_become(wanted) => version.status = wanted,
                _ => {
                    return Err(invalid(format!(
                        "The {} version {name}:{major}.{minor} is {current}; it cannot become {wanted}.",
                        kind.noun()
                    )))
                }
            }
        }
        if change.description.is_some() {
            version.description = change.description.clone();
        }
        if let Some(compatible) = &change.compatible_environment_templates {
            version.compatible_environment_templates = compatible.clone();
        }
        if let Some(sources) = &change.supported_component_sources {
            version.supported_component_sources = sources.clone();
        }
        version.modified_ms = ctx.now_ms;
        save_version(tx, &scope, &version)?;
        refresh_recommended(tx, &scope, kind, name, ctx.now_ms)?;
        let all = versions(tx, &scope, kind, name)?;
        Ok((version, recommended_minor(&all, major)))
    })
}

fn list_all_versions(
    ctx: &RequestContext,
    kind: TemplateKind,
    name: &str,
    major: Option<&str>,
) -> Result<Vec<(Version, Option<u32>)>, AwsError> {
    let major = major.map(|m| number(m, "majorVersion")).transpose()?;
    let scope = ctx.scope();
    let all = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_template(tx, &scope, kind, name)?;
        versions(tx, &scope, kind, name)
    })?;
    Ok(all
        .iter()
        .filter(|v| major.is_none_or(|m| v.major == m))
        .map(|v| (v.clone(), recommended_minor(&all, v.major)))
        .collect())
}

/// Refused while a resource uses the version.
fn delete_version(
    ctx: &RequestContext,
    dependents: &dyn Dependents,
    kind: TemplateKind,
    name: &str,
    major: Option<&str>,
    minor: Option<&str>,
) -> Result<Version, AwsError> {
    let major = number(major.unwrap_or_default(), "majorVersion")?;
    let minor = number(minor.unwrap_or_default(), "minorVersion")?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let version = get_version(tx, &scope, kind, name, major, minor)?;
        let used = match kind {
            TemplateKind::Environment => {
                dependents.environment_template_version_in_use(tx, &scope, name, major, minor)?
            }
            TemplateKind::Service => {
                dependents.service_template_version_in_use(tx, &scope, name, major, minor)?
            }
        };
        if used {
            return Err(conflict(format!(
                "The {} version {name}:{major}.{minor} is in use.",
                kind.noun()
            )));
        }
        tx.delete(
            Kind::ProtonTemplateVersion,
            &scope,
            &version_id(kind, name, major, minor),
        )?;
        tx.delete_object(&ctx.identity.account, ARTIFACT_BUCKET, &version.bundle_key)?;
        delete_tags(tx, &scope, &version.arn)?;
        refresh_recommended(tx, &scope, kind, name, ctx.now_ms)?;
        Ok(version)
    })
}

fn compatible(list: Option<Vec<pr::CompatibleEnvironmentTemplateInput>>) -> Vec<(String, String)> {
    list.unwrap_or_default()
        .into_iter()
        .map(|c| {
            (
                c.template_name.unwrap_or_default(),
                c.major_version.unwrap_or_default(),
            )
        })
        .collect()
}

fn env_version_summary(v: &Version, rec: Option<u32>) -> pr::EnvironmentTemplateVersionSummary {
    let w = v.wire(rec);
    pr::EnvironmentTemplateVersionSummary {
        arn: w.arn,
        created_at: w.created_at,
        description: w.description,
        last_modified_at: w.last_modified_at,
        major_version: w.major_version,
        minor_version: w.minor_version,
        recommended_minor_version: w.recommended_minor_version,
        status: w.status,
        status_message: w.status_message,
        template_name: w.template_name,
    }
}

fn service_version_summary(v: &Version, rec: Option<u32>) -> pr::ServiceTemplateVersionSummary {
    let w = v.wire(rec);
    pr::ServiceTemplateVersionSummary {
        arn: w.arn,
        created_at: w.created_at,
        description: w.description,
        last_modified_at: w.last_modified_at,
        major_version: w.major_version,
        minor_version: w.minor_version,
        recommended_minor_version: w.recommended_minor_version,
        status: w.status,
        status_message: w.status_message,
        template_name: w.template_name,
    }
}

/// The wire operations of both kinds: thin mappings of the functions above.
pub mod ops {
    use super::*;
    use TemplateKind::{Environment as Env, Service as Svc};

    /// `CreateEnvironmentTemplate`.
    pub fn create_environment_template(
        ctx: &RequestContext,
        input: pr::CreateEnvironmentTemplateInput,
    ) -> Result<pr::CreateEnvironmentTemplateOutput, AwsError> {
        let t = create_template(
            ctx,
            Env,
            NewTemplate {
                name: input.name.unwrap_or_default(),
                display_name: input.display_name,
                description: input.description,
                encryption_key: input.encryption_key,
                provisioning: input.provisioning,
                tags: input.tags,
            },
        )?;
        Ok(pr::CreateEnvironmentTemplateOutput {
            environment_template: Some(t.wire()),
        })
    }

    /// `CreateServiceTemplate`.
    pub fn create_service_template(
        ctx: &RequestContext,
        input: pr::CreateServiceTemplateInput,
    ) -> Result<pr::CreateServiceTemplateOutput, AwsError> {
        if input.pipeline_provisioning.is_some() {
            return Err(invalid(
                "provisiond does not serve service pipelines yet: create the service template without pipelineProvisioning.",
            ));
        }
        let t = create_template(
            ctx,
            Svc,
            NewTemplate {
                name: input.name.unwrap_or_default(),
                display_name: input.display_name,
                description: input.description,
                encryption_key: input.encryption_key,
                provisioning: None,
                tags: input.tags,
            },
        )?;
        Ok(pr::CreateServiceTemplateOutput {
            service_template: Some(t.service_wire()),
        })
    }

    /// `GetEnvironmentTemplate`.
    pub fn get_environment_template(
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateInput,
    ) -> Result<pr::GetEnvironmentTemplateOutput, AwsError> {
        let t = read_template(ctx, Env, input.name.as_deref().unwrap_or_default())?;
        Ok(pr::GetEnvironmentTemplateOutput {
            environment_template: Some(t.wire()),
        })
    }

    /// `GetServiceTemplate`.
    pub fn get_service_template(
        ctx: &RequestContext,
        input: pr::GetServiceTemplateInput,
    ) -> Result<pr::GetServiceTemplateOutput, AwsError> {
        let t = read_template(ctx, Svc, input.name.as_deref().unwrap_or_default())?;
        Ok(pr::GetServiceTemplateOutput {
            service_template: Some(t.service_wire()),
        })
    }

    /// `UpdateEnvironmentTemplate`.
    pub fn update_environment_template(
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateInput,
    ) -> Result<pr::UpdateEnvironmentTemplateOutput, AwsError> {
        let name = input.name.unwrap_or_default();
        let t = update_template(ctx, Env, &name, input.display_name, input.description)?;
        Ok(pr::UpdateEnvironmentTemplateOutput {
            environment_template: Some(t.wire()),
        })
    }

    /// `UpdateServiceTemplate`.
    pub fn update_service_template(
        ctx: &RequestContext,
        input: pr::UpdateServiceTemplateInput,
    ) -> Result<pr::UpdateServiceTemplateOutput, AwsError> {
        let name = input.name.unwrap_or_default();
        let t = update_template(ctx, Svc, &name, input.display_name, input.description)?;
        Ok(pr::UpdateServiceTemplateOutput {
            service_template: Some(t.service_wire()),
        })
    }

    /// `ListEnvironmentTemplates`, in creation order.
    pub fn list_environment_templates(
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplatesInput,
    ) -> Result<pr::ListEnvironmentTemplatesOutput, AwsError> {
        let (templates, next) =
            template_page(ctx, Env, input.next_token.as_deref(), input.max_results)?;
        Ok(pr::ListEnvironmentTemplatesOutput {
            templates: Some(templates.iter().map(Template::summary).collect()),
            next_token: next,
        })
    }

    /// `ListServiceTemplates`, in creation order.
    pub fn list_service_templates(
        ctx: &RequestContext,
        input: pr::ListServiceTemplatesInput,
    ) -> Result<pr::ListServiceTemplatesOutput, AwsError> {
        let (templates, next) =
            template_page(ctx, Svc, input.next_token.as_deref(), input.max_results)?;
        Ok(pr::ListServiceTemplatesOutput {
            templates: Some(templates.iter().map(Template::service_summary).collect()),
            next_token: next,
        })
    }

    /// `DeleteEnvironmentTemplate`: only a template without versions.
    pub fn delete_environment_template(
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateInput,
    ) -> Result<pr::DeleteEnvironmentTemplateOutput, AwsError> {
        let t = delete_template(ctx, Env, input.name.as_deref().unwrap_or_default())?;
        Ok(pr::DeleteEnvironmentTemplateOutput {
            environment_template: Some(t.wire()),
        })
    }

    /// `DeleteServiceTemplate`: only a template without versions.
    pub fn delete_service_template(
        ctx: &RequestContext,
        input: pr::DeleteServiceTemplateInput,
    ) -> Result<pr::DeleteServiceTemplateOutput, AwsError> {
        let t = delete_template(ctx, Svc, input.name.as_deref().unwrap_or_default())?;
        Ok(pr::DeleteServiceTemplateOutput {
            service_template: Some(t.service_wire()),
        })
    }

    /// `CreateEnvironmentTemplateVersion`.
    pub fn create_environment_template_version(
        ctx: &RequestContext,
        input: pr::CreateEnvironmentTemplateVersionInput,
    ) -> Result<pr::CreateEnvironmentTemplateVersionOutput, AwsError> {
        let (v, rec) = create_version(
            ctx,
            Env,
            NewVersion {
                name: input.template_name.unwrap_or_default(),
                client_token: input.client_token,
                description: input.description,
                major: input.major_version,
                source: input.source,
                tags: input.tags,
                compatible_environment_templates: Vec::new(),
                supported_component_sources: Vec::new(),
            },
        )?;
        Ok(pr::CreateEnvironmentTemplateVersionOutput {
            environment_template_version: Some(v.wire(rec)),
        })
    }

    /// `CreateServiceTemplateVersion`.
    pub fn create_service_template_version(
        ctx: &RequestContext,
        input: pr::CreateServiceTemplateVersionInput,
    ) -> Result<pr::CreateServiceTemplateVersionOutput, AwsError> {
        let (v, rec) = create_version(
            ctx,
            Svc,
            NewVersion {
                name: input.template_name.unwrap_or_default(),
                client_token: input.client_token,
                description: input.description,
                major: input.major_version,
                source: input.source,
                tags: input.tags,
                compatible_environment_templates: compatible(
                    input.compatible_environment_templates,
                ),
                supported_component_sources: input.supported_component_sources.unwrap_or_default(),
            },
        )?;
        Ok(pr::CreateServiceTemplateVersionOutput {
            service_template_version: Some(v.service_wire(rec)),
        })
    }

    /// `GetEnvironmentTemplateVersion`.
    pub fn get_environment_template_version(
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateVersionInput,
    ) -> Result<pr::GetEnvironmentTemplateVersionOutput, AwsError> {
        let (v, rec) = read_version(
            ctx,
            Env,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
        )?;
        Ok(pr::GetEnvironmentTemplateVersionOutput {
            environment_template_version: Some(v.wire(rec)),
        })
    }

    /// `GetServiceTemplateVersion`.
    pub fn get_service_template_version(
        ctx: &RequestContext,
        input: pr::GetServiceTemplateVersionInput,
    ) -> Result<pr::GetServiceTemplateVersionOutput, AwsError> {
        let (v, rec) = read_version(
            ctx,
            Svc,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
        )?;
        Ok(pr::GetServiceTemplateVersionOutput {
            service_template_version: Some(v.service_wire(rec)),
        })
    }

    /// `UpdateEnvironmentTemplateVersion`.
    pub fn update_environment_template_version(
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateVersionInput,
    ) -> Result<pr::UpdateEnvironmentTemplateVersionOutput, AwsError> {
        let (v, rec) = update_version(
            ctx,
            Env,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
            VersionChange {
                description: input.description,
                status: input.status,
                compatible_environment_templates: None,
                supported_component_sources: None,
            },
        )?;
        Ok(pr::UpdateEnvironmentTemplateVersionOutput {
            environment_template_version: Some(v.wire(rec)),
        })
    }

    /// `UpdateServiceTemplateVersion`.
    pub fn update_service_template_version(
        ctx: &RequestContext,
        input: pr::UpdateServiceTemplateVersionInput,
    ) -> Result<pr::UpdateServiceTemplateVersionOutput, AwsError> {
        let (v, rec) = update_version(
            ctx,
            Svc,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
            VersionChange {
                description: input.description,
                status: input.status,
                compatible_environment_templates: input
                    .compatible_environment_templates
                    .map(|c| compatible(Some(c))),
                supported_component_sources: input.supported_component_sources,
            },
        )?;
        Ok(pr::UpdateServiceTemplateVersionOutput {
            service_template_version: Some(v.service_wire(rec)),
        })
    }

    /// `ListEnvironmentTemplateVersions`, in version order.
    pub fn list_environment_template_versions(
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplateVersionsInput,
    ) -> Result<pr::ListEnvironmentTemplateVersionsOutput, AwsError> {
        let all: Vec<_> = list_all_versions(
            ctx,
            Env,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
        )?
        .iter()
        .map(|(v, rec)| env_version_summary(v, *rec))
        .collect();
        let (page, next) = page(all, input.next_token.as_deref(), input.max_results)?;
        Ok(pr::ListEnvironmentTemplateVersionsOutput {
            template_versions: Some(page),
            next_token: next,
        })
    }

    /// `ListServiceTemplateVersions`, in version order.
    pub fn list_service_template_versions(
        ctx: &RequestContext,
        input: pr::ListServiceTemplateVersionsInput,
    ) -> Result<pr::ListServiceTemplateVersionsOutput, AwsError> {
        let all: Vec<_> = list_all_versions(
            ctx,
            Svc,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
        )?
        .iter()
        .map(|(v, rec)| service_version_summary(v, *rec))
        .collect();
        let (page, next) = page(all, input.next_token.as_deref(), input.max_results)?;
        Ok(pr::ListServiceTemplateVersionsOutput {
            template_versions: Some(page),
            next_token: next,
        })
    }

    /// `DeleteEnvironmentTemplateVersion`.
    pub fn delete_environment_template_version(
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateVersionInput,
        dependents: &dyn Dependents,
    ) -> Result<pr::DeleteEnvironmentTemplateVersionOutput, AwsError> {
        let v = delete_version(
            ctx,
            dependents,
            Env,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
        )?;
        Ok(pr::DeleteEnvironmentTemplateVersionOutput {
            environment_template_version: Some(v.wire(None)),
        })
    }

    /// `DeleteServiceTemplateVersion`.
    pub fn delete_service_template_version(
        ctx: &RequestContext,
        input: pr::DeleteServiceTemplateVersionInput,
        dependents: &dyn Dependents,
    ) -> Result<pr::DeleteServiceTemplateVersionOutput, AwsError> {
        let v = delete_version(
            ctx,
            dependents,
            Svc,
            input.template_name.as_deref().unwrap_or_default(),
            input.major_version.as_deref(),
            input.minor_version.as_deref(),
        )?;
        Ok(pr::DeleteServiceTemplateVersionOutput {
            service_template_version: Some(v.service_wire(None)),
        })
    }
}
