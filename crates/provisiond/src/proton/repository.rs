//! Repositories (`CreateRepository` & co.): the git repositories that receive self-managed
//! deployments. Registering one stores its provider, name (`owner/repo`) and connection ARN;
//! which git repository on disk it means is the server's configuration (`serve
//! --git-repository NAME=PATH`, see `delivery.rs`).

use super::common::{
    arn, conflict, create_tags, delete_tags, not_found, page_size, parse_next_token,
};
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};

/// A registered repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    /// `GITHUB`, `GITHUB_ENTERPRISE` or `BITBUCKET`.
    pub provider: String,
    /// `owner/repo`.
    pub name: String,
    /// `arn:aws:proton:<region>:<account>:repository/<provider lower>:<name>`.
    pub arn: String,
    /// The connection ARN given at registration.
    pub connection_arn: String,
    /// The encryption key ARN given at registration.
    pub encryption_key: Option<String>,
}

impl Repository {
    fn wire(&self) -> pr::Repository {
        pr::Repository {
            arn: Some(self.arn.clone()),
            connection_arn: Some(self.connection_arn.clone()),
            encryption_key: self.encryption_key.clone(),
            name: Some(self.name.clone()),
            provider: Some(self.provider.clone()),
        }
    }
}

fn id(provider: &str, name: &str) -> String {
    format!("{provider}:{name}")
}

/// The registered repository `provider`/`name`, or `ResourceNotFoundException`.
pub fn get_stored(
    tx: &mut dyn Tx,
    scope: &str,
    provider: &str,
    name: &str,
) -> Result<Repository, AwsError> {
    store::get(tx, Kind::ProtonRepository, scope, &id(provider, name))?
        .ok_or_else(|| not_found("repository", &format!("{provider}:{name}")))
}

/// `CreateRepository`.
pub fn create(
    ctx: &RequestContext,
    input: pr::CreateRepositoryInput,
) -> Result<pr::CreateRepositoryOutput, AwsError> {
    let provider = input.provider.unwrap_or_default();
    let name = input.name.unwrap_or_default();
    let repository = Repository {
        arn: arn(
            ctx,
            &format!("repository/{}:{name}", provider.to_lowercase()),
        ),
        provider,
        name,
        connection_arn: input.connection_arn.unwrap_or_default(),
        encryption_key: input.encryption_key,
    };
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let key = id(&repository.provider, &repository.name);
        if !store::insert(tx, Kind::ProtonRepository, &scope, &key, "", &repository)? {
            return Err(conflict(format!(
                "The repository {key} is already registered."
            )));
        }
        create_tags(tx, &scope, &repository.arn, input.tags.as_ref())?;
        Ok(pr::CreateRepositoryOutput {
            repository: Some(repository.wire()),
        })
    })
}

/// `GetRepository`.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetRepositoryInput,
) -> Result<pr::GetRepositoryOutput, AwsError> {
    let provider = input.provider.unwrap_or_default();
    let name = input.name.unwrap_or_default();
    let repository = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get_stored(tx, &ctx.scope(), &provider, &name)
    })?;
    Ok(pr::GetRepositoryOutput {
        repository: Some(repository.wire()),
    })
}

/// `ListRepositories`, in registration order.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListRepositoriesInput,
) -> Result<pr::ListRepositoriesOutput, AwsError> {
    let after = parse_next_token(input.next_token.as_deref())?;
    let scope = ctx.scope();
    let (repositories, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paging::scan_page(
            after,
            page_size(input.max_results),
            |from, limit| store::list(tx, Kind::ProtonRepository, &scope, "", from, limit),
            |_: &Repository| true,
        )
    })?;
    let page: Vec<pr::RepositorySummary> = repositories
        .into_iter()
        .map(|r| pr::RepositorySummary {
            arn: Some(r.arn),
            connection_arn: Some(r.connection_arn),
            name: Some(r.name),
            provider: Some(r.provider),
        })
        .collect();
    Ok(pr::ListRepositoriesOutput {
        repositories: Some(page),
        next_token: next,
    })
}

/// `DeleteRepository`: forgets the registration (deployments already committed stay in git).
pub fn delete(
    ctx: &RequestContext,
    input: pr::DeleteRepositoryInput,
) -> Result<pr::DeleteRepositoryOutput, AwsError> {
    let provider = input.provider.unwrap_or_default();
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let repository = get_stored(tx, &scope, &provider, &name)?;
        tx.delete(Kind::ProtonRepository, &scope, &id(&provider, &name))?;
        delete_tags(tx, &scope, &repository.arn)?;
        Ok(pr::DeleteRepositoryOutput {
            repository: Some(repository.wire()),
        })
    })
}
