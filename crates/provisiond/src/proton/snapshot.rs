//! What a deployment records of its resource's state before and after (`initialState`,
//! `targetState`), in the domain's own types. Stored in the JSON shape of Proton's
//! `DeploymentState` (one member named for the resource kind, camelCase fields, versions as
//! text), so documents written when the wire type itself was stored still read; `wire` gives
//! the wire type.

use provisiond_model::proton as pr;
use serde::{Deserialize, Serialize};

/// A resource's state as a deployment records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Snapshot {
    /// An environment's.
    #[serde(rename = "environment")]
    Environment(Templated),
    /// A service instance's.
    #[serde(rename = "serviceInstance")]
    ServiceInstance(InstanceSnapshot),
    /// A component's.
    #[serde(rename = "component")]
    Component(ComponentSnapshot),
}

/// A template version and the spec given to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Templated {
    /// The template.
    #[serde(rename = "templateName")]
    pub template_name: String,
    /// Its major version.
    #[serde(rename = "templateMajorVersion", with = "version_text")]
    pub major: u32,
    /// Its minor version.
    #[serde(rename = "templateMinorVersion", with = "version_text")]
    pub minor: u32,
    /// The spec as given (YAML).
    pub spec: String,
}

/// A service instance's state: its template and spec, and the environment deployment it runs
/// on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSnapshot {
    /// Template and spec.
    #[serde(flatten)]
    pub template: Templated,
    /// The environment's last succeeded deployment when this one was made.
    #[serde(
        rename = "lastSuccessfulEnvironmentDeploymentId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub environment_deployment: Option<String>,
}

/// A directly defined component's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSnapshot {
    /// The Terraform file as given.
    #[serde(rename = "templateFile")]
    pub template_file: String,
    /// The service instance's spec given with it.
    #[serde(
        rename = "serviceSpec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_spec: Option<String>,
    /// The service of the instance it is attached to.
    #[serde(
        rename = "serviceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<String>,
    /// The instance it is attached to.
    #[serde(
        rename = "serviceInstanceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_instance_name: Option<String>,
}

impl Snapshot {
    /// The snapshot on the wire.
    pub fn wire(&self) -> pr::DeploymentState {
        match self {
            Snapshot::Environment(t) => pr::DeploymentState {
                environment: Some(pr::EnvironmentState {
                    spec: Some(t.spec.clone()),
                    template_major_version: Some(t.major.to_string()),
                    template_minor_version: Some(t.minor.to_string()),
                    template_name: Some(t.template_name.clone()),
                }),
                ..Default::default()
            },
            Snapshot::ServiceInstance(i) => pr::DeploymentState {
                service_instance: Some(pr::ServiceInstanceState {
                    last_successful_component_deployment_ids: None,
                    last_successful_environment_deployment_id: i.environment_deployment.clone(),
                    last_successful_service_pipeline_deployment_id: None,
                    spec: Some(i.template.spec.clone()),
                    template_major_version: Some(i.template.major.to_string()),
                    template_minor_version: Some(i.template.minor.to_string()),
                    template_name: Some(i.template.template_name.clone()),
                }),
                ..Default::default()
            },
            Snapshot::Component(c) => pr::DeploymentState {
                component: Some(pr::ComponentState {
                    service_instance_name: c.service_instance_name.clone(),
                    service_name: c.service_name.clone(),
                    service_spec: c.service_spec.clone(),
                    template_file: Some(c.template_file.clone()),
                }),
                ..Default::default()
            },
        }
    }
}

/// Version numbers stored as text, as the wire writes them.
mod version_text {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| D::Error::custom(format!("{text:?} is not a version number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templated() -> Templated {
        Templated {
            template_name: "vpc".into(),
            major: 1,
            minor: 2,
            spec: "proton: EnvironmentSpec\nspec: {}\n".into(),
        }
    }

    /// Each kind, stored, reads back; and the stored JSON is what storing the wire type wrote,
    /// so documents from before the domain type still read.
    #[test]
    fn snapshots_store_as_the_wire_type_did_and_read_documents_it_wrote() {
        let snapshots = [
            Snapshot::Environment(templated()),
            Snapshot::ServiceInstance(InstanceSnapshot {
                template: templated(),
                environment_deployment: Some("d-1".into()),
            }),
            Snapshot::ServiceInstance(InstanceSnapshot {
                template: templated(),
                environment_deployment: None,
            }),
            Snapshot::Component(ComponentSnapshot {
                template_file: "resource \"terraform_data\" \"x\" {}".into(),
                service_spec: Some("a: 1".into()),
                service_name: Some("web".into()),
                service_instance_name: Some("one".into()),
            }),
            Snapshot::Component(ComponentSnapshot {
                template_file: "x".into(),
                service_spec: None,
                service_name: None,
                service_instance_name: None,
            }),
        ];
        for snapshot in snapshots {
            let stored = serde_json::to_value(&snapshot).unwrap();
            let as_wire_stored = serde_json::to_value(snapshot.wire()).unwrap();
            assert_eq!(stored, as_wire_stored, "{snapshot:?}");
            let back: Snapshot = serde_json::from_value(as_wire_stored).unwrap();
            assert_eq!(back, snapshot);
        }
    }

    #[test]
    fn a_version_that_is_not_a_number_does_not_read() {
        let bad = serde_json::json!({"environment": {
            "templateName": "vpc", "templateMajorVersion": "one",
            "templateMinorVersion": "0", "spec": ""}});
        let err = serde_json::from_value::<Snapshot>(bad).unwrap_err();
        assert!(
            err.to_string().contains("\"one\" is not a version number"),
            "{err}"
        );
        assert!(serde_json::from_value::<Snapshot>(serde_json::json!({})).is_err());
    }
}
