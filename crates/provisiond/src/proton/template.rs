//! Environment templates and their versions (SPEC §7.2). A version is registered from a
//! `.tar.gz` bundle in the caller's object store (`source.s3`): `infrastructure/manifest.yaml`
//! (Terraform, rendered with `hcl`) and `schema/schema.yaml` naming an
//! `environment_input_type`. The bundle is copied into provisiond's own store at registration,
//! so a later change of the source object changes nothing. Versions start `DRAFT`;
//! `UpdateEnvironmentTemplateVersion{status: PUBLISHED}` publishes; the template's
//! `recommendedVersion` is the highest published minor of the highest major that has one.

use super::bundle::{self, Files};
use super::common::{
    arn, conflict, create_tags, delete_tags, invalid, not_found, page, require_admin,
};
use super::schema::{yaml_to_json, Schema};
use crate::catalog::product::ARTIFACT_BUCKET;
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, StoredObject, Tx};
use md5::{Digest, Md5};
use provisiond_model::proton::{self as pr, Operation};
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which kind of template: the id prefix in the store and the ARN resource type.
const KIND: &str = "environment-template";

/// A stored environment template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    /// The name.
    pub name: String,
    /// `arn:aws:proton:<region>:<account>:environment-template/<name>`.
    pub arn: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Encryption key ARN.
    pub encryption_key: Option<String>,
    /// `CUSTOMER_MANAGED` or none.
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
    /// The template's name.
    pub template_name: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// `…:environment-template/<name>:<major>.<minor>`.
    pub arn: String,
    /// `DRAFT` or `PUBLISHED`.
    pub status: String,
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
}

impl Version {
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
            status: Some(self.status.clone()),
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

fn template_id(name: &str) -> String {
    format!("{KIND}/{name}")
}

fn version_id(name: &str, major: u32, minor: u32) -> String {
    format!("{KIND}/{name}/{major}.{minor}")
}

/// The template `name`, or `ResourceNotFoundException`.
pub fn get_template(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Template, AwsError> {
    store::get(tx, Kind::ProtonTemplate, scope, &template_id(name))?
        .ok_or_else(|| not_found("environment template", name))
}

/// Every version of `name`, in (major, minor) order.
pub fn versions(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Vec<Version>, AwsError> {
    let mut all: Vec<Version> = store::list::<Version>(
        tx,
        Kind::ProtonTemplateVersion,
        scope,
        &template_id(name),
        None,
        100_000,
    )?
    .into_iter()
    .map(|(_, v)| v)
    .collect();
    all.sort_by_key(|v| (v.major, v.minor));
    Ok(all)
}

/// The version `major.minor` of `name`, or `ResourceNotFoundException`.
pub fn get_version(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    major: u32,
    minor: u32,
) -> Result<Version, AwsError> {
    store::get(
        tx,
        Kind::ProtonTemplateVersion,
        scope,
        &version_id(name, major, minor),
    )?
    .ok_or_else(|| {
        not_found(
            "environment template version",
            &format!("{name}:{major}.{minor}"),
        )
    })
}

/// The published version an environment uses: `minor` given, or the recommended (highest
/// published) minor of `major`. A draft or unknown version is `ValidationException`.
pub fn published_version(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    major: &str,
    minor: Option<&str>,
) -> Result<Version, AwsError> {
    get_template(tx, scope, name)?;
    let major = number(major, "templateMajorVersion")?;
    let chosen = match minor {
        Some(minor) => {
            let minor = number(minor, "templateMinorVersion")?;
            get_version(tx, scope, name, major, minor)?
        }
        None => recommended_minor(&versions(tx, scope, name)?, major)
            .map(|minor| get_version(tx, scope, name, major, minor))
            .transpose()?
            .ok_or_else(|| {
                invalid(format!(
                    "The environment template {name} has no published version in major version {major}."
                ))
            })?,
    };
    if chosen.status != "PUBLISHED" {
        return Err(invalid(format!(
            "The environment template version {name}:{}.{} is not published.",
            chosen.major, chosen.minor
        )));
    }
    Ok(chosen)
}

fn number(text: &str, member: &str) -> Result<u32, AwsError> {
    text.parse()
        .map_err(|_| invalid(format!("{member} {text} is not a version number.")))
}

fn recommended_minor(all: &[Version], major: u32) -> Option<u32> {
    all.iter()
        .filter(|v| v.major == major && v.status == "PUBLISHED")
        .map(|v| v.minor)
        .max()
}

fn recommended(all: &[Version]) -> Option<(u32, u32)> {
    all.iter()
        .filter(|v| v.status == "PUBLISHED")
        .map(|v| (v.major, v.minor))
        .max()
}

fn refresh_recommended(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    now_ms: i64,
) -> Result<(), AwsError> {
    let mut template = get_template(tx, scope, name)?;
    template.recommended = recommended(&versions(tx, scope, name)?);
    template.modified_ms = now_ms;
    store::put(
        tx,
        Kind::ProtonTemplate,
        scope,
        &template_id(name),
        "",
        &template,
    )?;
    Ok(())
}

/// `CreateEnvironmentTemplate`.
pub fn create(
    ctx: &RequestContext,
    input: pr::CreateEnvironmentTemplateInput,
) -> Result<pr::CreateEnvironmentTemplateOutput, AwsError> {
    require_admin(ctx, Operation::CreateEnvironmentTemplate)?;
    let name = input.name.unwrap_or_default();
    let template = Template {
        arn: arn(ctx, &format!("{KIND}/{name}")),
        name,
        display_name: input.display_name,
        description: input.description,
        encryption_key: input.encryption_key,
        provisioning: input.provisioning,
        created_ms: ctx.now_ms,
        modified_ms: ctx.now_ms,
        recommended: None,
    };
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        if !store::insert(
            tx,
            Kind::ProtonTemplate,
            &scope,
            &template_id(&template.name),
            "",
            &template,
        )? {
            return Err(conflict(format!(
                "The environment template {} already exists.",
                template.name
            )));
        }
        create_tags(tx, &scope, &template.arn, input.tags.as_ref())?;
        Ok(pr::CreateEnvironmentTemplateOutput {
            environment_template: Some(template.wire()),
        })
    })
}

/// `GetEnvironmentTemplate`.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetEnvironmentTemplateInput,
) -> Result<pr::GetEnvironmentTemplateOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let template = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_template(tx, &ctx.scope(), &name)
    })?;
    Ok(pr::GetEnvironmentTemplateOutput {
        environment_template: Some(template.wire()),
    })
}

/// `UpdateEnvironmentTemplate`: display name and description.
pub fn update(
    ctx: &RequestContext,
    input: pr::UpdateEnvironmentTemplateInput,
) -> Result<pr::UpdateEnvironmentTemplateOutput, AwsError> {
    require_admin(ctx, Operation::UpdateEnvironmentTemplate)?;
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut template = get_template(tx, &scope, &name)?;
        if input.display_name.is_some() {
            template.display_name = input.display_name.clone();
        }
        if input.description.is_some() {
            template.description = input.description.clone();
        }
        template.modified_ms = ctx.now_ms;
        store::put(
            tx,
            Kind::ProtonTemplate,
            &scope,
            &template_id(&name),
            "",
            &template,
        )?;
        Ok(pr::UpdateEnvironmentTemplateOutput {
            environment_template: Some(template.wire()),
        })
    })
}

/// `ListEnvironmentTemplates`, in creation order.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListEnvironmentTemplatesInput,
) -> Result<pr::ListEnvironmentTemplatesOutput, AwsError> {
    let all = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::list::<Template>(tx, Kind::ProtonTemplate, &ctx.scope(), "", None, 100_000)
    })?;
    let summaries: Vec<_> = all
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.arn.contains(&format!(":{KIND}/")))
        .map(|t| t.summary())
        .collect();
    let (page, next) = page(summaries, input.next_token.as_deref(), input.max_results)?;
    Ok(pr::ListEnvironmentTemplatesOutput {
        templates: Some(page),
        next_token: next,
    })
}

/// `DeleteEnvironmentTemplate`: only a template without versions.
pub fn delete(
    ctx: &RequestContext,
    input: pr::DeleteEnvironmentTemplateInput,
) -> Result<pr::DeleteEnvironmentTemplateOutput, AwsError> {
    require_admin(ctx, Operation::DeleteEnvironmentTemplate)?;
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let template = get_template(tx, &scope, &name)?;
        if !versions(tx, &scope, &name)?.is_empty() {
            return Err(conflict(format!(
                "The environment template {name} still has versions; delete them first."
            )));
        }
        tx.delete(Kind::ProtonTemplate, &scope, &template_id(&name))?;
        delete_tags(tx, &scope, &template.arn)?;
        Ok(pr::DeleteEnvironmentTemplateOutput {
            environment_template: Some(template.wire()),
        })
    })
}

/// Checks an environment template bundle: a Terraform `infrastructure/manifest.yaml` and a
/// `schema/schema.yaml` that names an `environment_input_type`. Returns the schema text.
fn check_bundle(files: &Files) -> Result<String, String> {
    let text = |path: &str| -> Result<String, String> {
        let bytes = files
            .get(path)
            .ok_or_else(|| format!("the bundle has no {path}"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{path} is not UTF-8 text"))
    };
    let manifest = yaml_to_json(&text("infrastructure/manifest.yaml")?)
        .map_err(|e| format!("infrastructure/manifest.yaml is not YAML: {e}"))?;
    let templates = manifest
        .pointer("/infrastructure/templates")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or("infrastructure/manifest.yaml has no infrastructure.templates list")?;
    for t in templates {
        let language = t.get("template_language").and_then(Value::as_str);
        if language != Some("terraform") {
            return Err(format!(
                "infrastructure/manifest.yaml: template_language {} is not served; provisiond provisions terraform templates through self-managed provisioning",
                language.unwrap_or("(missing)")
            ));
        }
    }
    let schema_text = text("schema/schema.yaml")?;
    let schema = Schema::parse(&schema_text)?;
    if schema.environment_input_type.is_none() {
        return Err("schema/schema.yaml names no environment_input_type".into());
    }
    Ok(schema_text)
}

/// `CreateEnvironmentTemplateVersion`: a new minor of `majorVersion`, or a new major without
/// it; registered at once (`DRAFT`) or refused with `ValidationException` saying what is wrong
/// with the bundle [ours: AWS registers asynchronously]. Idempotent on `clientToken`.
pub fn create_version(
    ctx: &RequestContext,
    input: pr::CreateEnvironmentTemplateVersionInput,
) -> Result<pr::CreateEnvironmentTemplateVersionOutput, AwsError> {
    require_admin(ctx, Operation::CreateEnvironmentTemplateVersion)?;
    let name = input.template_name.clone().unwrap_or_default();
    let source = input
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
            let mut template = get_template(tx, &scope, &name)?;
            let object = tx.get_object(&account, &bucket, &key)?.ok_or_else(|| {
                invalid(format!(
                    "The template bundle s3://{bucket}/{key} does not exist."
                ))
            })?;
            let files = bundle::read(&object.body).map_err(invalid)?;
            let schema = check_bundle(&files).map_err(|e| {
                invalid(format!(
                    "The template bundle s3://{bucket}/{key} is not valid: {e}"
                ))
            })?;
            let all = versions(tx, &scope, &name)?;
            let (major, minor) = match input.major_version.as_deref() {
                Some(major) => {
                    let major = number(major, "majorVersion")?;
                    let last = all
                        .iter()
                        .filter(|v| v.major == major)
                        .map(|v| v.minor)
                        .max();
                    match last {
                        Some(last) => (major, last + 1),
                        None => {
                            return Err(invalid(format!(
                                "The environment template {name} has no major version {major}; omit majorVersion to create a new major version."
                            )))
                        }
                    }
                }
                None => (all.iter().map(|v| v.major).max().unwrap_or(0) + 1, 0),
            };
            let bundle_key = format!("proton/{}/{KIND}/{name}/{major}.{minor}.tar.gz", ctx.region);
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
                arn: format!("{}:{major}.{minor}", template.arn),
                template_name: name.clone(),
                major,
                minor,
                status: "DRAFT".into(),
                description: input.description.clone(),
                schema,
                bundle_key,
                created_ms: ctx.now_ms,
                modified_ms: ctx.now_ms,
            };
            store::put(
                tx,
                Kind::ProtonTemplateVersion,
                &scope,
                &version_id(&name, major, minor),
                &template_id(&name),
                &version,
            )?;
            create_tags(tx, &scope, &version.arn, input.tags.as_ref())?;
            template.modified_ms = ctx.now_ms;
            store::put(
                tx,
                Kind::ProtonTemplate,
                &scope,
                &template_id(&name),
                "",
                &template,
            )?;
            Ok(pr::CreateEnvironmentTemplateVersionOutput {
                environment_template_version: Some(version.wire(recommended_minor(&all, major))),
            })
        };
        match input.client_token.as_deref() {
            Some(token) => crate::idempotency::remember(
                tx,
                &scope,
                &format!("CreateEnvironmentTemplateVersion/{name}"),
                token,
                work,
            ),
            None => work(tx),
        }
    })
}

/// `GetEnvironmentTemplateVersion`.
pub fn get_version_op(
    ctx: &RequestContext,
    input: pr::GetEnvironmentTemplateVersionInput,
) -> Result<pr::GetEnvironmentTemplateVersionOutput, AwsError> {
    let name = input.template_name.unwrap_or_default();
    let major = number(&input.major_version.unwrap_or_default(), "majorVersion")?;
    let minor = number(&input.minor_version.unwrap_or_default(), "minorVersion")?;
    let scope = ctx.scope();
    let (version, all) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        Ok::<_, AwsError>((
            get_version(tx, &scope, &name, major, minor)?,
            versions(tx, &scope, &name)?,
        ))
    })?;
    Ok(pr::GetEnvironmentTemplateVersionOutput {
        environment_template_version: Some(version.wire(recommended_minor(&all, major))),
    })
}

/// `UpdateEnvironmentTemplateVersion`: description, and `DRAFT` → `PUBLISHED`.
pub fn update_version(
    ctx: &RequestContext,
    input: pr::UpdateEnvironmentTemplateVersionInput,
) -> Result<pr::UpdateEnvironmentTemplateVersionOutput, AwsError> {
    require_admin(ctx, Operation::UpdateEnvironmentTemplateVersion)?;
    let name = input.template_name.clone().unwrap_or_default();
    let major = number(
        input.major_version.as_deref().unwrap_or_default(),
        "majorVersion",
    )?;
    let minor = number(
        input.minor_version.as_deref().unwrap_or_default(),
        "minorVersion",
    )?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut version = get_version(tx, &scope, &name, major, minor)?;
        if let Some(status) = input.status.as_deref() {
            match (version.status.as_str(), status) {
                (current, wanted) if current == wanted => {}
                ("DRAFT", "PUBLISHED") => version.status = "PUBLISHED".into(),
                (current, wanted) => {
                    return Err(invalid(format!(
                        "The environment template version {name}:{major}.{minor} is {current}; it cannot become {wanted}."
                    )))
                }
            }
        }
        if input.description.is_some() {
            version.description = input.description.clone();
        }
        version.modified_ms = ctx.now_ms;
        store::put(
            tx,
            Kind::ProtonTemplateVersion,
            &scope,
            &version_id(&name, major, minor),
            &template_id(&name),
            &version,
        )?;
        refresh_recommended(tx, &scope, &name, ctx.now_ms)?;
        let all = versions(tx, &scope, &name)?;
        Ok(pr::UpdateEnvironmentTemplateVersionOutput {
            environment_template_version: Some(version.wire(recommended_minor(&all, major))),
        })
    })
}

/// `ListEnvironmentTemplateVersions`, in version order, optionally of one major version.
pub fn list_versions(
    ctx: &RequestContext,
    input: pr::ListEnvironmentTemplateVersionsInput,
) -> Result<pr::ListEnvironmentTemplateVersionsOutput, AwsError> {
    let name = input.template_name.clone().unwrap_or_default();
    let major = input
        .major_version
        .as_deref()
        .map(|m| number(m, "majorVersion"))
        .transpose()?;
    let scope = ctx.scope();
    let all = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_template(tx, &scope, &name)?;
        versions(tx, &scope, &name)
    })?;
    let summaries: Vec<_> = all
        .iter()
        .filter(|v| major.is_none_or(|m| v.major == m))
        .map(|v| {
            let w = v.wire(recommended_minor(&all, v.major));
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
        })
        .collect();
    let (page, next) = page(summaries, input.next_token.as_deref(), input.max_results)?;
    Ok(pr::ListEnvironmentTemplateVersionsOutput {
        template_versions: Some(page),
        next_token: next,
    })
}

/// `DeleteEnvironmentTemplateVersion`: refused while an environment uses the version.
pub fn delete_version(
    ctx: &RequestContext,
    input: pr::DeleteEnvironmentTemplateVersionInput,
) -> Result<pr::DeleteEnvironmentTemplateVersionOutput, AwsError> {
    require_admin(ctx, Operation::DeleteEnvironmentTemplateVersion)?;
    let name = input.template_name.unwrap_or_default();
    let major = number(&input.major_version.unwrap_or_default(), "majorVersion")?;
    let minor = number(&input.minor_version.unwrap_or_default(), "minorVersion")?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let version = get_version(tx, &scope, &name, major, minor)?;
        if super::environment::uses_template_version(tx, &scope, &name, major, minor)? {
            return Err(conflict(format!(
                "The environment template version {name}:{major}.{minor} is used by an environment."
            )));
        }
        tx.delete(
            Kind::ProtonTemplateVersion,
            &scope,
            &version_id(&name, major, minor),
        )?;
        tx.delete_object(&ctx.identity.account, ARTIFACT_BUCKET, &version.bundle_key)?;
        delete_tags(tx, &scope, &version.arn)?;
        refresh_recommended(tx, &scope, &name, ctx.now_ms)?;
        Ok(pr::DeleteEnvironmentTemplateVersionOutput {
            environment_template_version: Some(version.wire(None)),
        })
    })
}
