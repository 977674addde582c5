//! `AccessLevelFilter`: whose provisioned products, records and plans a read returns.
//!
//! `Account` keeps the whole account's, `Role` those owned by the caller's role, `User` the
//! caller's own. Each operation has its own default (AWS documents `User` for
//! ScanProvisionedProducts, ListRecordHistory and ListProvisionedProductPlans, `Account` for
//! SearchProvisionedProducts). The only value AWS supports is `self` (any case); another value
//! answers `InvalidParametersException` [ours].

use crate::context::RequestContext;
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;

/// The owners a read admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLevel {
    /// Every owner in the account.
    Account,
    /// Owners whose role is this role ARN.
    Role(String),
    /// This principal only.
    User(String),
}

/// The level an operation uses when the caller sends no filter.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// `Account`.
    Account,
    /// `User`.
    User,
}

impl AccessLevel {
    /// The caller's filter, or `default` without one.
    pub fn of(
        ctx: &RequestContext,
        filter: Option<&sc::AccessLevelFilter>,
        default: Default,
    ) -> Result<AccessLevel, AwsError> {
        let key = filter.and_then(|f| f.key.as_deref());
        if let Some(value) = filter.and_then(|f| f.value.as_deref()) {
            if !value.eq_ignore_ascii_case("self") {
                return Err(ErrorCode::InvalidParametersException.with(format!(
                    "AccessLevelFilter Value {value} is not supported; the only supported value is self"
                )));
            }
        }
        let principal = &ctx.identity.principal;
        Ok(match (key, default) {
            (Some("Account"), _) | (None, Default::Account) => AccessLevel::Account,
            (Some("Role"), _) => AccessLevel::Role(role_of(principal)),
            _ => AccessLevel::User(principal.clone()),
        })
    }

    /// Whether something owned by `owner` is returned.
    pub fn admits(&self, owner: &str) -> bool {
        match self {
            AccessLevel::Account => true,
            AccessLevel::Role(role) => role_of(owner) == *role,
            AccessLevel::User(principal) => owner == principal,
        }
    }
}

/// The role behind a principal: an assumed-role session
/// (`arn:aws:sts::<account>:assumed-role/<name>/<session>`) belongs to
/// `arn:aws:iam::<account>:role/<name>`; any other principal is its own role.
pub fn role_of(principal: &str) -> String {
    if let Some(rest) = principal.strip_prefix("arn:aws:sts::") {
        if let Some((account, tail)) = rest.split_once(":assumed-role/") {
            if let Some((name, _session)) = tail.split_once('/') {
                return format!("arn:aws:iam::{account}:role/{name}");
            }
        }
    }
    principal.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_their_role() {
        assert_eq!(
            role_of("arn:aws:sts::123456789012:assumed-role/dev/alice"),
            "arn:aws:iam::123456789012:role/dev"
        );
        assert_eq!(
            role_of("arn:aws:iam::123456789012:role/dev"),
            "arn:aws:iam::123456789012:role/dev"
        );
        let role = AccessLevel::Role("arn:aws:iam::123456789012:role/dev".into());
        assert!(role.admits("arn:aws:sts::123456789012:assumed-role/dev/bob"));
        assert!(!role.admits("arn:aws:sts::123456789012:assumed-role/ops/bob"));
        assert!(AccessLevel::Account.admits("anyone"));
        assert!(!AccessLevel::User("a".into()).admits("b"));
    }
}
