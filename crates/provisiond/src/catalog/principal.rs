//! Portfolio access: principals associated with a portfolio, by exact IAM ARN (`IAM`) or by an
//! account-less ARN pattern with `*` and `?` wildcards (`IAM_PATTERN`, e.g.
//! `arn:aws:iam:::role/dev-*`). A principal may use a portfolio's products only through such an
//! association (`matches`).

use super::portfolio;
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};

/// Principals listed per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// An association of a principal with a portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    /// The portfolio.
    pub portfolio_id: String,
    /// `IAM` or `IAM_PATTERN`.
    pub principal_type: String,
    /// The ARN or pattern.
    pub principal_arn: String,
}

fn document_id(portfolio_id: &str, principal_type: &str, arn: &str) -> String {
    format!("{portfolio_id}/{principal_type}/{arn}")
}

/// Checks an association's ARN against its type and the caller's account.
fn check_arn(ctx: &RequestContext, principal_type: &str, arn: &str) -> Result<(), AwsError> {
    let invalid = |why: &str| {
        ErrorCode::InvalidParametersException
            .with(format!("PrincipalARN {arn} is not valid: {why}."))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, _partition, service, region, account, resource] = parts[..] else {
        return Err(invalid("it is not an ARN"));
    };
    if prefix != "arn" || service != "iam" || !region.is_empty() {
        return Err(invalid("it is not an IAM ARN"));
    }
    let kind_ok = ["user/", "group/", "role/"]
        .iter()
        .any(|k| resource.starts_with(k));
    if !kind_ok {
        return Err(invalid("it names no user/, group/ or role/"));
    }
    match principal_type {
        "IAM" if account != ctx.identity.account => Err(invalid(&format!(
            "it must belong to account {}",
            ctx.identity.account
        ))),
        "IAM" if resource.contains(['*', '?']) => {
            Err(invalid("wildcards need PrincipalType IAM_PATTERN"))
        }
        "IAM_PATTERN" if !account.is_empty() => Err(invalid(
            "an IAM_PATTERN has no account id (arn:aws:iam:::role/name-*)",
        )),
        _ => Ok(()),
    }
}

/// Whether `pattern` (with `*` for any run and `?` for one character) matches the whole of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Association {
    /// Whether `principal` (a role or user ARN) is covered by this association.
    pub fn matches(&self, principal: &str) -> bool {
        match self.principal_type.as_str() {
            "IAM" => self.principal_arn == principal,
            _ => {
                // Compare without the account id, which a pattern does not carry.
                let strip = |arn: &str| -> Option<(String, String)> {
                    let parts: Vec<&str> = arn.splitn(6, ':').collect();
                    (parts.len() == 6).then(|| (parts[..3].join(":"), parts[5].to_string()))
                };
                match (strip(&self.principal_arn), strip(principal)) {
                    (Some((pp, pr)), Some((ap, ar))) => pp == ap && glob(&pr, &ar),
                    _ => false,
                }
            }
        }
    }
}

/// `AssociatePrincipalWithPortfolio`: idempotent; the portfolio must exist.
pub fn associate(
    ctx: &RequestContext,
    input: sc::AssociatePrincipalWithPortfolioInput,
) -> Result<sc::AssociatePrincipalWithPortfolioOutput, AwsError> {
    let portfolio_id = input.portfolio_id.unwrap_or_default();
    let arn = input.principal_arn.unwrap_or_default();
    let principal_type = input.principal_type.unwrap_or_default();
    check_arn(ctx, &principal_type, &arn)?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        portfolio::get(tx, &scope, &portfolio_id)?;
        let association = Association {
            portfolio_id: portfolio_id.clone(),
            principal_type: principal_type.clone(),
            principal_arn: arn.clone(),
        };
        let id = document_id(&portfolio_id, &principal_type, &arn);
        store::insert(
            tx,
            Kind::PortfolioPrincipal,
            &scope,
            &id,
            &portfolio_id,
            &association,
        )?;
        Ok(sc::AssociatePrincipalWithPortfolioOutput {})
    })
}

/// `DisassociatePrincipalFromPortfolio`: without `PrincipalType`, `IAM` is meant, as in AWS.
pub fn disassociate(
    ctx: &RequestContext,
    input: sc::DisassociatePrincipalFromPortfolioInput,
) -> Result<sc::DisassociatePrincipalFromPortfolioOutput, AwsError> {
    let portfolio_id = input.portfolio_id.unwrap_or_default();
    let arn = input.principal_arn.unwrap_or_default();
    let principal_type = input.principal_type.unwrap_or_else(|| "IAM".into());
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        portfolio::get(tx, &scope, &portfolio_id)?;
        if tx.delete(
            Kind::PortfolioPrincipal,
            &scope,
            &document_id(&portfolio_id, &principal_type, &arn),
        )? {
            Ok(sc::DisassociatePrincipalFromPortfolioOutput {})
        } else {
            Err(ErrorCode::ResourceNotFoundException.with(format!(
                "Principal {arn} ({principal_type}) is not associated with portfolio {portfolio_id}."
            )))
        }
    })
}

/// `ListPrincipalsForPortfolio`, in association order.
pub fn list(
    ctx: &RequestContext,
    input: sc::ListPrincipalsForPortfolioInput,
) -> Result<sc::ListPrincipalsForPortfolioOutput, AwsError> {
    let portfolio_id = input.portfolio_id.unwrap_or_default();
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging::page_size(input.page_size, DEFAULT_PAGE_SIZE, 20);
    let scope = ctx.scope();
    let (rows, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        portfolio::get(tx, &scope, &portfolio_id)?;
        let rows: Vec<(i64, Association)> = store::list(
            tx,
            Kind::PortfolioPrincipal,
            &scope,
            &portfolio_id,
            after,
            size + 1,
        )?;
        Ok::<_, AwsError>(paging::split_page(rows, size))
    })?;
    Ok(sc::ListPrincipalsForPortfolioOutput {
        principals: Some(
            rows.into_iter()
                .map(|a| sc::Principal {
                    principal_arn: Some(a.principal_arn),
                    principal_type: Some(a.principal_type),
                })
                .collect(),
        ),
        next_page_token: next,
    })
}

/// The associations of a portfolio (all of them; a portfolio has few).
pub fn of_portfolio(
    tx: &mut dyn store::Tx,
    scope: &str,
    portfolio_id: &str,
) -> Result<Vec<Association>, AwsError> {
    Ok(store::list_all::<Association>(
        tx,
        Kind::PortfolioPrincipal,
        scope,
        portfolio_id,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assoc(kind: &str, arn: &str) -> Association {
        Association {
            portfolio_id: "port-x".into(),
            principal_type: kind.into(),
            principal_arn: arn.into(),
        }
    }

    #[test]
    fn iam_associations_match_exactly() {
        let a = assoc("IAM", "arn:aws:iam::123456789012:role/dev");
        assert!(a.matches("arn:aws:iam::123456789012:role/dev"));
        assert!(!a.matches("arn:aws:iam::123456789012:role/dev2"));
        assert!(!a.matches("arn:aws:iam::210987654321:role/dev"));
    }

    #[test]
    fn patterns_match_any_account_with_wildcards() {
        let a = assoc("IAM_PATTERN", "arn:aws:iam:::role/dev-*");
        assert!(a.matches("arn:aws:iam::123456789012:role/dev-alice"));
        assert!(a.matches("arn:aws:iam::123456789012:role/dev-"));
        assert!(!a.matches("arn:aws:iam::123456789012:role/ops-alice"));
        assert!(!a.matches("arn:aws:iam::123456789012:user/dev-alice"));
        let q = assoc("IAM_PATTERN", "arn:aws:iam:::user/ci?");
        assert!(q.matches("arn:aws:iam::123456789012:user/ci1"));
        assert!(!q.matches("arn:aws:iam::123456789012:user/ci12"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }
}
