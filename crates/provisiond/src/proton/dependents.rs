//! What other resources hang on a resource: a template version an environment or service
//! instance uses, an environment with instances or components in it, an instance with
//! components attached. Deletes and changes are refused while dependents exist, but the
//! resource's own module cannot read its dependents' modules without importing upward (those
//! modules import it), so it asks through `Dependents`, which `in_use::Links`, above every
//! resource module, answers from the dependents' own indexes.

use crate::store::Tx;
use provisiond_model::AwsError;

/// The questions a resource's module asks about what depends on it.
pub trait Dependents: Sync {
    /// Whether an environment uses (or is deploying) the environment template version.
    fn environment_template_version_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        template: &str,
        major: u32,
        minor: u32,
    ) -> Result<bool, AwsError>;

    /// Whether a service instance uses (or is deploying) the service template version.
    fn service_template_version_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        template: &str,
        major: u32,
        minor: u32,
    ) -> Result<bool, AwsError>;

    /// Whether a service instance or a component runs in the environment.
    fn environment_in_use(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        environment: &str,
    ) -> Result<bool, AwsError>;

    /// Whether a component is attached to the instance.
    fn instance_has_components(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        service: &str,
        instance: &str,
    ) -> Result<bool, AwsError>;

    /// Whether a component attached to the instance is being deployed.
    fn instance_components_busy(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        service: &str,
        instance: &str,
    ) -> Result<bool, AwsError>;
}
