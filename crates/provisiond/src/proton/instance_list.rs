//! `ListServiceInstances`: Proton's filters and sort orders over the account's service instances
//! (or one service's), read from the store a batch at a time into one page, so a call holds a
//! page in memory however many instances the account has. A page continues after the sort key
//! of the last instance of the page before, so pages neither skip nor repeat an instance that
//! stays put while a client pages.

use super::common::{invalid, not_found, page_size};
use super::service::{self, Service, ServiceInstance};
use super::template::{self, TemplateKind};
use crate::context::RequestContext;
use crate::paging::{self, TopPage};
use crate::store::{self, transact, Kind, Mode, Tx};
use crate::wire_enum::wire_enum;
use provisiond_model::proton as pr;
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// How many services, or instances of one service, one read of the store brings in.
const BATCH: usize = 100;

/// How many template versions' statuses one call remembers while it filters by
/// `deployedTemplateVersionStatus` (past that it starts over, so memory stays bounded).
const REMEMBERED_VERSIONS: usize = 1_000;

/// `ListServiceInstances`: optionally of one service (`serviceName`, which must exist), kept
/// when they pass the filters, sorted by `sortBy` (default `serviceName`, and within a service
/// by instance name) in `sortOrder` (default `ASCENDING`).
pub fn list(
    ctx: &RequestContext,
    input: pr::ListServiceInstancesInput,
) -> Result<pr::ListServiceInstancesOutput, AwsError> {
    let scope = ctx.scope();
    let sort_by = SortBy::given(input.sort_by.as_deref())?;
    let descending = match input.sort_order.as_deref() {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            return Err(invalid(format!(
                "The sortOrder {other} is not one of ASCENDING, DESCENDING."
            )))
        }
    };
    let filters = Filters::parse(input.filters.as_deref().unwrap_or_default())?;
    // A token names the order it belongs to: one taken from a list in another order is refused
    // rather than read as a place in this one.
    let listing = format!(
        "service-instances:{}:{}",
        sort_by.as_str(),
        if descending {
            "descending"
        } else {
            "ascending"
        }
    );
    let after = match input.next_token.as_deref() {
        None => None,
        Some(token) => Some(
            paging::key_of_token::<Place>(&listing, token).ok_or_else(|| {
                invalid("The nextToken is not one this list issued, for this sortBy and sortOrder.")
            })?,
        ),
    };
    let size = page_size(input.max_results);
    let only_service = input.service_name.as_deref();
    let (rows, more) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        if let Some(name) = only_service {
            service::find(tx, &scope, name)?.ok_or_else(|| not_found("service", name))?;
        }
        let mut page = TopPage::new(
            after.clone().map(|place| Directed { place, descending }),
            size,
        );
        let mut statuses = VersionStatuses::default();
        each_instance(tx, &scope, only_service, &mut |tx, instance| {
            if filters.admit(&instance, &mut |i| statuses.of(tx, &scope, i))? {
                let place = sort_by.place(&instance);
                page.offer(Directed { place, descending }, instance);
            }
            Ok(())
        })?;
        Ok::<_, AwsError>(page.finish())
    })?;
    let next_token = more
        .then(|| {
            rows.last()
                .map(|(key, _)| paging::token_after_key(&listing, &key.place))
        })
        .flatten();
    Ok(pr::ListServiceInstancesOutput {
        service_instances: Some(rows.iter().map(|(_, i)| i.summary()).collect()),
        next_token,
    })
}

/// Calls `visit` with every instance of the service `only` (when given) or of every service of
/// the account, reading a batch of services and then of instances at a time.
fn each_instance(
    tx: &mut dyn Tx,
    scope: &str,
    only: Option<&str>,
    visit: &mut dyn FnMut(&mut dyn Tx, ServiceInstance) -> Result<(), AwsError>,
) -> Result<(), AwsError> {
    if let Some(name) = only {
        return each_instance_of(tx, scope, name, visit);
    }
    let mut from = None;
    loop {
        let services: Vec<(i64, Service)> =
            store::list(tx, Kind::ProtonService, scope, "", from, BATCH)?;
        let ended = services.len() < BATCH;
        from = services.last().map(|(seq, _)| *seq).or(from);
        for (_, s) in services {
            each_instance_of(tx, scope, &s.name, visit)?;
        }
        if ended {
            return Ok(());
        }
    }
}

/// Calls `visit` with every instance of the service `name`, a batch at a time.
fn each_instance_of(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    visit: &mut dyn FnMut(&mut dyn Tx, ServiceInstance) -> Result<(), AwsError>,
) -> Result<(), AwsError> {
    let mut from = None;
    loop {
        let instances: Vec<(i64, ServiceInstance)> =
            store::list(tx, Kind::ProtonServiceInstance, scope, name, from, BATCH)?;
        let ended = instances.len() < BATCH;
        from = instances.last().map(|(seq, _)| *seq).or(from);
        for (_, instance) in instances {
            visit(tx, instance)?;
        }
        if ended {
            return Ok(());
        }
    }
}

wire_enum! {
    /// `sortBy`.
    enum SortBy {
        Name = "name",
        DeploymentStatus = "deploymentStatus",
        TemplateName = "templateName",
        ServiceName = "serviceName",
        EnvironmentName = "environmentName",
        LastDeploymentAttemptedAt = "lastDeploymentAttemptedAt",
        CreatedAt = "createdAt",
    }
}

impl SortBy {
    /// The wire's value; `serviceName` when none is given, as AWS documents.
    fn given(wire: Option<&str>) -> Result<SortBy, AwsError> {
        let Some(wire) = wire else {
            return Ok(SortBy::ServiceName);
        };
        SortBy::parse(wire)
            .ok_or_else(|| invalid(format!("The sortBy {wire} is not one Proton sorts by.")))
    }

    /// Where `instance` goes in this order.
    fn place(self, instance: &ServiceInstance) -> Place {
        let text = |s: &str| SortValue::Text(s.to_string());
        let value = match self {
            SortBy::Name => text(&instance.name),
            SortBy::DeploymentStatus => text(instance.status.status.as_str()),
            SortBy::TemplateName => text(&instance.state.template_name),
            // The service, then (by the tie-break every place has) the instance's name.
            SortBy::ServiceName => text(&instance.service_name),
            SortBy::EnvironmentName => text(&instance.environment_name),
            SortBy::LastDeploymentAttemptedAt => {
                SortValue::Millis(instance.status.last_attempted_ms)
            }
            SortBy::CreatedAt => SortValue::Millis(instance.created_ms),
        };
        Place {
            value,
            service: instance.service_name.clone(),
            name: instance.name.clone(),
        }
    }
}

/// The value an instance is sorted by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum SortValue {
    Text(String),
    Millis(i64),
}

/// An instance's place in a list: the sorted-by value, then its service and its name, which
/// together name one instance of the account, so the order is total and a token exact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Place {
    value: SortValue,
    service: String,
    name: String,
}

/// A place in the order asked for: `DESCENDING` reverses the whole order, ties included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directed {
    place: Place,
    descending: bool,
}

impl PartialOrd for Directed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Directed {
    fn cmp(&self, other: &Self) -> Ordering {
        let order = self.place.cmp(&other.place);
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

/// A text field an instance is filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Name,
    DeploymentStatus,
    TemplateName,
    ServiceName,
    DeployedTemplateVersionStatus,
    EnvironmentName,
}

/// A time an instance is filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    LastDeploymentAttemptedAt,
    CreatedAt,
}

/// What one filter key asks, its values folded together (values of one key are alternatives):
/// a text key's into a set, a date key's into its loosest bound. However many filters a
/// request sends, an instance is checked once per key.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    OneOf(TextField, HashSet<String>),
    Before(TimeField, i64),
    After(TimeField, i64),
}

impl Condition {
    /// The condition one filter states, and its key.
    fn parse(
        filter: &pr::ListServiceInstancesFilter,
    ) -> Result<(&'static str, Condition), AwsError> {
        let Some(key) = filter.key.as_deref() else {
            return Err(invalid("Every filter needs a key."));
        };
        let Some(value) = filter.value.clone() else {
            return Err(invalid(format!("The filter {key} needs a value.")));
        };
        let date = || {
            crate::time::parse_rfc3339_utc(&value).ok_or_else(|| {
                invalid(format!(
                    "The filter {key} takes an RFC 3339 date and time in UTC, such as 2026-10-07T12:00:00.000Z."
                ))
            })
        };
        let text = |field| Condition::OneOf(field, HashSet::from([value.clone()]));
        Ok(match key {
            "name" => ("name", text(TextField::Name)),
            "deploymentStatus" => ("deploymentStatus", text(TextField::DeploymentStatus)),
            "templateName" => ("templateName", text(TextField::TemplateName)),
            "serviceName" => ("serviceName", text(TextField::ServiceName)),
            "deployedTemplateVersionStatus" => (
                "deployedTemplateVersionStatus",
                text(TextField::DeployedTemplateVersionStatus),
            ),
            "environmentName" => ("environmentName", text(TextField::EnvironmentName)),
            "lastDeploymentAttemptedAtBefore" => (
                "lastDeploymentAttemptedAtBefore",
                Condition::Before(TimeField::LastDeploymentAttemptedAt, date()?),
            ),
            "lastDeploymentAttemptedAtAfter" => (
                "lastDeploymentAttemptedAtAfter",
                Condition::After(TimeField::LastDeploymentAttemptedAt, date()?),
            ),
            "createdAtBefore" => (
                "createdAtBefore",
                Condition::Before(TimeField::CreatedAt, date()?),
            ),
            "createdAtAfter" => (
                "createdAtAfter",
                Condition::After(TimeField::CreatedAt, date()?),
            ),
            other => {
                return Err(invalid(format!(
                    "The filter key {other} is not one Proton filters by."
                )))
            }
        })
    }

    /// Takes in another filter of the same key: one more accepted value, or a looser bound.
    fn widen(&mut self, other: Condition) {
        match (self, other) {
            (Condition::OneOf(_, values), Condition::OneOf(_, more)) => values.extend(more),
            (Condition::Before(_, ms), Condition::Before(_, other)) => *ms = (*ms).max(other),
            (Condition::After(_, ms), Condition::After(_, other)) => *ms = (*ms).min(other),
            // One key always states the same kind of condition.
            _ => {}
        }
    }

    /// Whether `instance` passes; `version_status` gives the status of the template version
    /// it is deployed on (`None` when that version is gone).
    fn admits(
        &self,
        instance: &ServiceInstance,
        version_status: &mut dyn FnMut(&ServiceInstance) -> Result<Option<&'static str>, AwsError>,
    ) -> Result<bool, AwsError> {
        let time = |field: &TimeField| match field {
            TimeField::LastDeploymentAttemptedAt => instance.status.last_attempted_ms,
            TimeField::CreatedAt => instance.created_ms,
        };
        Ok(match self {
            Condition::OneOf(field, values) => {
                let value = match field {
                    TextField::Name => instance.name.as_str(),
                    TextField::DeploymentStatus => instance.status.status.as_str(),
                    TextField::TemplateName => instance.state.template_name.as_str(),
                    TextField::ServiceName => instance.service_name.as_str(),
                    TextField::EnvironmentName => instance.environment_name.as_str(),
                    TextField::DeployedTemplateVersionStatus => match version_status(instance)? {
                        Some(status) => status,
                        None => return Ok(false),
                    },
                };
                values.contains(value)
            }
            Condition::Before(field, ms) => time(field) < *ms,
            Condition::After(field, ms) => time(field) > *ms,
        })
    }
}

/// The filters, one condition per key given: an instance is listed when it passes them all
/// (so `deploymentStatus` twice lists either status; docs/decisions.md).
#[derive(Debug, Default)]
struct Filters(Vec<(&'static str, Condition)>);

impl Filters {
    fn parse(given: &[pr::ListServiceInstancesFilter]) -> Result<Filters, AwsError> {
        let mut conditions: Vec<(&'static str, Condition)> = Vec::new();
        for filter in given {
            let (key, condition) = Condition::parse(filter)?;
            match conditions.iter_mut().find(|(k, _)| *k == key) {
                Some((_, known)) => known.widen(condition),
                None => conditions.push((key, condition)),
            }
        }
        Ok(Filters(conditions))
    }

    fn admit(
        &self,
        instance: &ServiceInstance,
        version_status: &mut dyn FnMut(&ServiceInstance) -> Result<Option<&'static str>, AwsError>,
    ) -> Result<bool, AwsError> {
        for (_, condition) in &self.0 {
            if !condition.admits(instance, version_status)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The statuses of the service template versions instances are deployed on, read once each.
#[derive(Default)]
struct VersionStatuses(HashMap<(String, u32, u32), Option<&'static str>>);

impl VersionStatuses {
    fn of(
        &mut self,
        tx: &mut dyn Tx,
        scope: &str,
        instance: &ServiceInstance,
    ) -> Result<Option<&'static str>, AwsError> {
        let state = &instance.state;
        let key = (state.template_name.clone(), state.major, state.minor);
        if let Some(known) = self.0.get(&key) {
            return Ok(*known);
        }
        let status = template::find_version(
            tx,
            scope,
            TemplateKind::Service,
            &state.template_name,
            state.major,
            state.minor,
        )?
        .map(|v| v.status.as_str());
        if self.0.len() >= REMEMBERED_VERSIONS {
            self.0.clear();
        }
        self.0.insert(key, status);
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proton::deployment::ResourceStatus;
    use crate::proton::service::InstanceState;
    use crate::proton::status::{DeploymentStatus, ServiceStatus, VersionStatus};
    use crate::proton::template::Version;
    use crate::testing::{Fixture, ACCOUNT};

    const SCOPE: &str = "123456789012/us-east-1";

    /// Services `web`, `api` and `batch` (no instances), and four instances stored in an
    /// order no sort gives: web/two, web/one, api/zeta, api/alpha. Template `svc` 1.0 is
    /// published and 1.1 a draft; `other` 1.0 is gone.
    fn world() -> Fixture {
        let f = Fixture::new();
        let service = |name: &str| Service {
            name: name.into(),
            arn: format!("arn:aws:proton:us-east-1:{ACCOUNT}:service/{name}"),
            description: None,
            template_name: "svc".into(),
            spec: String::new(),
            status: ServiceStatus::Active,
            branch_name: None,
            repository_connection_arn: None,
            repository_id: None,
            created_ms: 0,
            modified_ms: 0,
        };
        let instance = |service: &str,
                        name: &str,
                        env: &str,
                        status: DeploymentStatus,
                        created_ms: i64,
                        attempted_ms: i64,
                        (template, minor): (&str, u32)| ServiceInstance {
            service_name: service.into(),
            name: name.into(),
            arn: format!(
                "arn:aws:proton:us-east-1:{ACCOUNT}:service/{service}/service-instance/{name}"
            ),
            environment_name: env.into(),
            created_ms,
            state: InstanceState {
                template_name: template.into(),
                major: 1,
                minor,
                spec: String::new(),
                inputs: serde_json::Value::Null,
            },
            pending: None,
            status: ResourceStatus {
                status,
                last_attempted_ms: attempted_ms,
                ..ResourceStatus::creating()
            },
            last_client_request_token: None,
        };
        let version = |minor: u32, status: VersionStatus| Version {
            kind: TemplateKind::Service,
            template_name: "svc".into(),
            major: 1,
            minor,
            arn: format!("arn:aws:proton:us-east-1:{ACCOUNT}:service-template/svc:1.{minor}"),
            status,
            description: None,
            schema: String::new(),
            bundle_key: String::new(),
            created_ms: 0,
            modified_ms: 0,
            compatible_environment_templates: Vec::new(),
            supported_component_sources: Vec::new(),
        };
        transact(f.store.as_ref(), Mode::Write, |tx| {
            for name in ["web", "api", "batch"] {
                store::put(tx, Kind::ProtonService, SCOPE, name, "", &service(name))?;
            }
            use DeploymentStatus::*;
            for i in [
                instance("web", "two", "prod", Succeeded, 3_000, 3_500, ("svc", 0)),
                instance("web", "one", "dev", InProgress, 1_000, 1_000, ("svc", 1)),
                instance("api", "zeta", "dev", Failed, 2_000, 4_000, ("svc", 0)),
                instance("api", "alpha", "dev", Succeeded, 4_000, 4_500, ("other", 0)),
            ] {
                i.save(tx, SCOPE)?;
            }
            template::save_version(tx, SCOPE, &version(0, VersionStatus::Published))?;
            template::save_version(tx, SCOPE, &version(1, VersionStatus::Draft))?;
            Ok::<_, AwsError>(())
        })
        .unwrap();
        f
    }

    fn ask(
        f: &Fixture,
        input: pr::ListServiceInstancesInput,
    ) -> Result<(Vec<String>, Option<String>), AwsError> {
        let out = list(&f.ctx("dev", false), input)?;
        let names = out
            .service_instances
            .unwrap()
            .into_iter()
            .map(|i| format!("{}/{}", i.service_name.unwrap(), i.name.unwrap()))
            .collect();
        Ok((names, out.next_token))
    }

    fn sorted(f: &Fixture, sort_by: Option<&str>, order: Option<&str>) -> Vec<String> {
        ask(
            f,
            pr::ListServiceInstancesInput {
                sort_by: sort_by.map(String::from),
                sort_order: order.map(String::from),
                ..Default::default()
            },
        )
        .unwrap()
        .0
    }

    fn filtered(f: &Fixture, filters: &[(&str, &str)]) -> Result<Vec<String>, AwsError> {
        ask(
            f,
            pr::ListServiceInstancesInput {
                filters: Some(
                    filters
                        .iter()
                        .map(|(k, v)| pr::ListServiceInstancesFilter {
                            key: Some(k.to_string()),
                            value: Some(v.to_string()),
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        )
        .map(|(names, _)| names)
    }

    #[test]
    fn instances_sort_by_service_then_name_unless_asked_otherwise() {
        let f = world();
        let by_service = ["api/alpha", "api/zeta", "web/one", "web/two"];
        assert_eq!(sorted(&f, None, None), by_service);
        assert_eq!(
            sorted(&f, Some("serviceName"), Some("ASCENDING")),
            by_service
        );
        let mut reversed = by_service.to_vec();
        reversed.reverse();
        assert_eq!(sorted(&f, None, Some("DESCENDING")), reversed);
        assert_eq!(
            sorted(&f, Some("name"), None),
            ["api/alpha", "web/one", "web/two", "api/zeta"]
        );
        assert_eq!(
            sorted(&f, Some("createdAt"), None),
            ["web/one", "api/zeta", "web/two", "api/alpha"]
        );
        assert_eq!(
            sorted(&f, Some("lastDeploymentAttemptedAt"), Some("DESCENDING")),
            ["api/alpha", "api/zeta", "web/two", "web/one"]
        );
        // Ties go by service, then name.
        assert_eq!(
            sorted(&f, Some("deploymentStatus"), None),
            ["api/zeta", "web/one", "api/alpha", "web/two"]
        );
        assert_eq!(
            sorted(&f, Some("environmentName"), None),
            ["api/alpha", "api/zeta", "web/one", "web/two"]
        );
        assert_eq!(
            sorted(&f, Some("templateName"), None),
            ["api/alpha", "api/zeta", "web/one", "web/two"]
        );
    }

    #[test]
    fn filters_of_one_key_are_alternatives_and_keys_all_apply() {
        let f = world();
        // The filters given, and the instances listed.
        type Case = (
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                &[("deploymentStatus", "SUCCEEDED")],
                &["api/alpha", "web/two"],
            ),
            (
                &[
                    ("deploymentStatus", "SUCCEEDED"),
                    ("deploymentStatus", "FAILED"),
                ],
                &["api/alpha", "api/zeta", "web/two"],
            ),
            (
                &[
                    ("deploymentStatus", "SUCCEEDED"),
                    ("environmentName", "dev"),
                    ("deploymentStatus", "FAILED"),
                ],
                &["api/alpha", "api/zeta"],
            ),
            (
                &[
                    ("name", "one"),
                    ("serviceName", "web"),
                    ("templateName", "svc"),
                ],
                &["web/one"],
            ),
            // The status of the version each is deployed on: `other` 1.0 is gone, so neither.
            (
                &[("deployedTemplateVersionStatus", "PUBLISHED")],
                &["api/zeta", "web/two"],
            ),
            (&[("deployedTemplateVersionStatus", "DRAFT")], &["web/one"]),
            // Dates: strictly before or after, in RFC 3339 UTC.
            (
                &[("createdAtAfter", "1970-01-01T00:00:02.000Z")],
                &["api/alpha", "web/two"],
            ),
            (&[("createdAtBefore", "1970-01-01T00:00:02Z")], &["web/one"]),
            (
                &[
                    ("lastDeploymentAttemptedAtAfter", "1970-01-01T00:00:01.000Z"),
                    ("lastDeploymentAttemptedAtBefore", "1970-01-01T00:00:04.5Z"),
                ],
                &["api/zeta", "web/two"],
            ),
        ];
        for (filters, expected) in cases {
            assert_eq!(filtered(&f, filters).unwrap(), *expected, "{filters:?}");
        }
        // Dates of one key are alternatives too: the loosest bound holds.
        assert_eq!(
            filtered(
                &f,
                &[
                    ("createdAtBefore", "1970-01-01T00:00:01Z"),
                    ("createdAtBefore", "1970-01-01T00:00:03Z"),
                ]
            )
            .unwrap(),
            ["api/zeta", "web/one"]
        );
        assert_eq!(
            filtered(
                &f,
                &[
                    ("createdAtAfter", "1970-01-01T00:00:03.5Z"),
                    ("createdAtAfter", "1970-01-01T00:00:01Z"),
                ]
            )
            .unwrap(),
            ["api/alpha", "api/zeta", "web/two"]
        );
        // However many filters a request sends, one condition per key is checked.
        let many: Vec<pr::ListServiceInstancesFilter> = (0..20_000)
            .flat_map(|i| {
                [
                    pr::ListServiceInstancesFilter {
                        key: Some("name".into()),
                        value: Some(format!("n{i}")),
                    },
                    pr::ListServiceInstancesFilter {
                        key: Some("createdAtAfter".into()),
                        value: Some("1970-01-01T00:00:00Z".into()),
                    },
                ]
            })
            .collect();
        assert_eq!(Filters::parse(&many).unwrap().0.len(), 2);
        for bad in [
            ("createdAtAfter", "yesterday"),
            ("createdAtBefore", "1970-01-01T00:00:02+01:00"),
            ("lastDeploymentAttemptedAtAfter", ""),
        ] {
            let e = filtered(&f, &[bad]).unwrap_err();
            assert_eq!(e.code, "ValidationException", "{bad:?}");
        }
        let e = ask(
            &f,
            pr::ListServiceInstancesInput {
                filters: Some(vec![pr::ListServiceInstancesFilter {
                    key: Some("name".into()),
                    value: None,
                }]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }

    #[test]
    fn pages_follow_the_order_and_tokens_belong_to_it() {
        let f = world();
        for (sort_by, order) in [
            (None, None),
            (Some("name"), Some("DESCENDING")),
            (Some("createdAt"), None),
        ] {
            let whole = sorted(&f, sort_by, order);
            let mut paged = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let (names, next) = ask(
                    &f,
                    pr::ListServiceInstancesInput {
                        sort_by: sort_by.map(String::from),
                        sort_order: order.map(String::from),
                        max_results: Some(1),
                        next_token: token.clone(),
                        ..Default::default()
                    },
                )
                .unwrap();
                assert!(names.len() <= 1);
                paged.extend(names);
                let Some(next) = next else { break };
                // Proton's NextToken pattern.
                assert!(
                    next.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"+=/".contains(&c)),
                    "{next}"
                );
                token = Some(next);
            }
            assert_eq!(paged, whole, "{sort_by:?} {order:?}");
        }
        // A token of one order is refused by another; so is one never issued.
        let (_, token) = ask(
            &f,
            pr::ListServiceInstancesInput {
                sort_by: Some("name".into()),
                max_results: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        for (sort_by, token) in [
            (Some("createdAt"), token.clone().unwrap()),
            (Some("name"), "bm90IGEgdG9rZW4=".to_string()),
            (Some("name"), "%%%".to_string()),
        ] {
            let e = ask(
                &f,
                pr::ListServiceInstancesInput {
                    sort_by: sort_by.map(String::from),
                    next_token: Some(token),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert_eq!(e.code, "ValidationException");
        }
    }

    #[test]
    fn a_named_service_lists_its_own_instances_and_reads_no_other() {
        let f = world();
        // Instances of another service that cannot be decoded: reading one would fail.
        transact(f.store.as_ref(), Mode::Write, |tx| {
            for i in 0..250 {
                tx.put(
                    Kind::ProtonServiceInstance,
                    SCOPE,
                    &format!("api/broken-{i}"),
                    "api",
                    b"not a document",
                )?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .unwrap();
        let (names, next) = ask(
            &f,
            pr::ListServiceInstancesInput {
                service_name: Some("web".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (names, next),
            (vec!["web/one".to_string(), "web/two".to_string()], None)
        );
        let e = ask(
            &f,
            pr::ListServiceInstancesInput {
                service_name: Some("nowhere".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
    }
}
