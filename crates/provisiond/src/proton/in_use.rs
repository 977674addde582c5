//! The answers to `Dependents`, read from the dependent resources' indexes: the one module
//! that sees every resource module, so that none of them imports another upward.

use super::dependents::Dependents;
use super::{component, environment, service};
use crate::store::Tx;
use provisiond_model::AwsError;

/// What depends on what, as the stored resources say.
pub struct Links;

impl Dependents for Links {
    fn environment_template_version_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        template: &str,
        major: u32,
        minor: u32,
    ) -> Result<bool, AwsError> {
        environment::uses_template_version(tx, scope, template, major, minor)
    }

    fn service_template_version_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        template: &str,
        major: u32,
        minor: u32,
    ) -> Result<bool, AwsError> {
        service::uses_template_version(tx, scope, template, major, minor)
    }

    fn environment_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        environment: &str,
    ) -> Result<bool, AwsError> {
        Ok(service::environment_has_instances(tx, scope, environment)?
            || component::in_environment(tx, scope, environment)?)
    }

    fn instance_has_components(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        service: &str,
        instance: &str,
    ) -> Result<bool, AwsError> {
        component::attached_to(tx, scope, service, instance)
    }

    fn instance_components_busy(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        service: &str,
        instance: &str,
    ) -> Result<bool, AwsError> {
        component::attached_busy(tx, scope, service, instance)
    }
}
