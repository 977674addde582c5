//! Domain tests of Proton self-managed provisioning, without HTTP: every step of SPEC §7.5
//! (NotifyResourceDeploymentStatusChange) in its order, and every transition of §7.4, against
//! a real SQLite store, calling the functions the server dispatches to. Deliveries stay in the
//! outbox here (no git repository is mapped), which lets the tests see that each deployment and
//! its delivery commit together.

use provisiond::auth::Identity;
use provisiond::context::RequestContext;
use provisiond::crypto::ServerKey;
use provisiond::proton::{deployment, environment, in_use, notify, repository, target, template};
use provisiond::store::sqlite::SqliteStore;
use provisiond::store::{transact, Kind, Mode, Store, StoredObject};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";

const SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: EnvInput\n  types:\n    EnvInput:\n      type: object\n      properties:\n        size:\n          type: integer\n          default: 1\n";
const MANIFEST: &str = "infrastructure:\n  templates:\n    - file: \"*\"\n      rendering_engine: hcl\n      template_language: terraform\n";

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    key: Arc<ServerKey>,
}

impl World {
    fn ctx_in(&self, account: &str, region: &str, admin: bool) -> RequestContext {
        RequestContext {
            request_id: "test".into(),
            identity: Identity {
                access_key_id: "AKIATEST".into(),
                account: account.into(),
                principal: format!("arn:aws:iam::{account}:role/platform"),
                admin,
            },
            region: region.into(),
            now_ms: provisiond::time::now_ms(),
            store: self.store.clone(),
            server_key: self.key.clone(),
            host: "localhost".into(),
        }
    }

    fn admin(&self) -> RequestContext {
        self.ctx_in(ACCOUNT, "us-east-1", true)
    }

    fn pipeline(&self) -> RequestContext {
        self.ctx_in(ACCOUNT, "us-east-1", false)
    }

    /// A store with a published environment template `vpc` 1.0 and a registered repository.
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let w = World {
            _dir: dir,
            store,
            key: Arc::new(ServerKey::generate()),
        };
        let mut files = provisiond_formats::bundle::Files::new();
        files.insert("infrastructure/manifest.yaml".into(), MANIFEST.into());
        files.insert("infrastructure/main.tf".into(), b"# nothing\n".to_vec());
        files.insert("schema/schema.yaml".into(), SCHEMA.into());
        let body = provisiond_formats::bundle::write(&files);
        transact(w.store.as_ref(), Mode::Write, |tx| {
            tx.put_object(
                ACCOUNT,
                "templates",
                &StoredObject {
                    key: "vpc.tar.gz".into(),
                    size: body.len() as i64,
                    etag: String::new(),
                    body: body.clone(),
                    created_ms: 0,
                },
            )
        })
        .unwrap();
        let admin = w.admin();
        template::ops::create_environment_template(
            &admin,
            pr::CreateEnvironmentTemplateInput {
                name: Some("vpc".into()),
                ..Default::default()
            },
        )
        .unwrap();
        template::ops::create_environment_template_version(
            &admin,
            pr::CreateEnvironmentTemplateVersionInput {
                template_name: Some("vpc".into()),
                source: Some(pr::TemplateVersionSourceInput {
                    s3: Some(pr::S3ObjectSource {
                        bucket: Some("templates".into()),
                        key: Some("vpc.tar.gz".into()),
                    }),
                }),
                ..Default::default()
            },
        )
        .unwrap();
        template::ops::update_environment_template_version(
            &admin,
            pr::UpdateEnvironmentTemplateVersionInput {
                template_name: Some("vpc".into()),
                major_version: Some("1".into()),
                minor_version: Some("0".into()),
                status: Some("PUBLISHED".into()),
                ..Default::default()
            },
        )
        .unwrap();
        repository::create(
            &admin,
            pr::CreateRepositoryInput {
                provider: Some("GITHUB".into()),
                name: Some("acme/envs".into()),
                connection_arn: Some(format!(
                    "arn:aws:codestar-connections:us-east-1:{ACCOUNT}:connection/c"
                )),
                ..Default::default()
            },
        )
        .unwrap();
        w
    }

    fn create_env(&self, name: &str, spec: &str) -> Result<pr::Environment, AwsError> {
        environment::create(
            &self.admin(),
            pr::CreateEnvironmentInput {
                name: Some(name.into()),
                template_name: Some("vpc".into()),
                template_major_version: Some("1".into()),
                spec: Some(spec.into()),
                provisioning_repository: Some(pr::RepositoryBranchInput {
                    provider: Some("GITHUB".into()),
                    name: Some("acme/envs".into()),
                    branch: Some("main".into()),
                }),
                ..Default::default()
            },
        )
        .map(|o| o.environment.unwrap())
    }

    fn update_env(&self, name: &str, spec: &str) -> Result<pr::Environment, AwsError> {
        environment::update(
            &self.admin(),
            pr::UpdateEnvironmentInput {
                name: Some(name.into()),
                deployment_type: Some("CURRENT_VERSION".into()),
                spec: Some(spec.into()),
                ..Default::default()
            },
        )
        .map(|o| o.environment.unwrap())
    }

    fn env(&self, name: &str) -> Result<pr::Environment, AwsError> {
        environment::get(
            &self.admin(),
            pr::GetEnvironmentInput {
                name: Some(name.into()),
            },
        )
        .map(|o| o.environment.unwrap())
    }

    fn deployment(&self, id: &str) -> pr::Deployment {
        deployment::get(
            &self.admin(),
            pr::GetDeploymentInput {
                id: Some(id.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .deployment
        .unwrap()
    }

    fn outputs(&self, env: &str, deployment_id: Option<&str>) -> Vec<(String, String)> {
        environment::outputs(
            &self.admin(),
            pr::ListEnvironmentOutputsInput {
                environment_name: Some(env.into()),
                deployment_id: deployment_id.map(String::from),
                ..Default::default()
            },
        )
        .unwrap()
        .outputs
        .unwrap()
        .into_iter()
        .map(|o| (o.key.unwrap(), o.value_string.unwrap()))
        .collect()
    }

    fn pending_deliveries(&self) -> usize {
        transact(self.store.as_ref(), Mode::Read, |tx| {
            tx.list(Kind::ProtonDelivery, "", "", None, 1000)
        })
        .unwrap()
        .len()
    }
}

fn notify_as(
    ctx: &RequestContext,
    arn: &str,
    deployment_id: Option<&str>,
    status: Option<&str>,
    outputs: &[(&str, &str)],
    message: Option<&str>,
) -> Result<(), AwsError> {
    notify::notify(
        ctx,
        pr::NotifyResourceDeploymentStatusChangeInput {
            resource_arn: Some(arn.into()),
            deployment_id: deployment_id.map(String::from),
            status: status.map(String::from),
            outputs: Some(
                outputs
                    .iter()
                    .map(|(k, v)| pr::Output {
                        key: Some(k.to_string()),
                        value_string: Some(v.to_string()),
                    })
                    .collect(),
            ),
            status_message: message.map(String::from),
        },
    )
    .map(|_| ())
}

#[test]
fn notify_runs_its_checks_in_the_specified_order() {
    let w = World::new();
    let env = w.create_env("dev", "spec:\n  size: 2\n").unwrap();
    let arn = env.arn.clone().unwrap();
    let first = env.last_attempted_deployment_id.clone().unwrap();
    let p = w.pipeline();

    // Step 2: another account, another region, an unknown or undeployable resource.
    for ctx in [
        w.ctx_in("999999999999", "us-east-1", false),
        w.ctx_in(ACCOUNT, "eu-west-1", false),
    ] {
        let e = notify_as(&ctx, &arn, None, Some("SUCCEEDED"), &[], None).unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
    }
    for other in [
        arn.replace("environment/dev", "environment/nope"),
        arn.replace("environment/dev", "service/s/pipeline"),
        arn.replace("environment/dev", "environment-template/vpc"),
    ] {
        let e = notify_as(&p, &other, None, Some("SUCCEEDED"), &[], None).unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException", "{other}");
    }
    // Step 3: an unknown deployment, then one that is not the current one.
    let e = notify_as(
        &p,
        &arn,
        Some("00000000-0000-4000-8000-000000000000"),
        Some("SUCCEEDED"),
        &[],
        None,
    )
    .unwrap_err();
    assert_eq!(e.code, "ResourceNotFoundException");
    let other_env = w.create_env("other", "spec: {}\n").unwrap();
    let foreign = other_env.last_attempted_deployment_id.unwrap();
    let e = notify_as(&p, &arn, Some(&foreign), Some("SUCCEEDED"), &[], None).unwrap_err();
    assert_eq!(e.code, "ConflictException");
    assert!(
        e.message.contains("is not the current deployment of"),
        "{}",
        e.message
    );

    // Step 5: in progress, outputs recorded on the deployment but not yet current.
    notify_as(&p, &arn, None, None, &[("vpc", "vpc-1")], Some("applying")).unwrap();
    notify_as(
        &p,
        &arn,
        Some(&first),
        Some("IN_PROGRESS"),
        &[("subnet", "s-1")],
        None,
    )
    .unwrap();
    assert_eq!(
        w.env("dev").unwrap().deployment_status.as_deref(),
        Some("IN_PROGRESS")
    );
    assert!(w.outputs("dev", None).is_empty());
    assert_eq!(w.outputs("dev", Some(&first)).len(), 2);
    assert_eq!(
        w.deployment(&first).deployment_status_message.as_deref(),
        Some("applying")
    );

    // Step 6: success; the deploymentId may be omitted (the current one).
    notify_as(&p, &arn, None, Some("SUCCEEDED"), &[("vpc", "vpc-2")], None).unwrap();
    let got = w.env("dev").unwrap();
    assert_eq!(got.deployment_status.as_deref(), Some("SUCCEEDED"));
    assert_eq!(
        got.last_succeeded_deployment_id.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        w.outputs("dev", None),
        [
            ("vpc".to_string(), "vpc-2".to_string()),
            ("subnet".to_string(), "s-1".to_string())
        ]
    );
    let d = w.deployment(&first);
    assert_eq!(d.deployment_status.as_deref(), Some("SUCCEEDED"));
    assert!(d.completed_at.is_some());

    // Step 4: the same final status again is harmless; any other is a conflict.
    notify_as(
        &p,
        &arn,
        Some(&first),
        Some("SUCCEEDED"),
        &[("vpc", "changed")],
        None,
    )
    .unwrap();
    assert_eq!(
        w.outputs("dev", None)[0].1,
        "vpc-2",
        "a repeat changes nothing"
    );
    for status in [Some("FAILED"), Some("IN_PROGRESS"), None] {
        let e = notify_as(&p, &arn, Some(&first), status, &[], None).unwrap_err();
        assert_eq!(e.code, "ConflictException", "{status:?}");
    }

    // Step 7: failure keeps the last succeeded state.
    let second = w
        .update_env("dev", "spec:\n  size: 9\n")
        .unwrap()
        .last_attempted_deployment_id
        .unwrap();
    notify_as(&p, &arn, Some(&second), Some("FAILED"), &[], Some("boom")).unwrap();
    let got = w.env("dev").unwrap();
    assert_eq!(got.deployment_status.as_deref(), Some("FAILED"));
    assert_eq!(got.deployment_status_message.as_deref(), Some("boom"));
    assert_eq!(got.spec.as_deref(), Some("spec:\n  size: 2\n"));
    assert_eq!(
        got.last_succeeded_deployment_id.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        w.deployment(&second).deployment_status.as_deref(),
        Some("FAILED")
    );
}

#[test]
fn deployments_move_through_their_states() {
    let w = World::new();
    let p = w.pipeline();
    // A create commits the environment, its deployment and its delivery together.
    assert_eq!(w.pending_deliveries(), 0);
    let env = w.create_env("dev", "spec:\n  size: 2\n").unwrap();
    let arn = env.arn.clone().unwrap();
    assert_eq!(env.deployment_status.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(w.pending_deliveries(), 1);
    let first = env.last_attempted_deployment_id.unwrap();
    let d = w.deployment(&first);
    assert_eq!(d.target_resource_type.as_deref(), Some("ENVIRONMENT"));
    assert!(d.initial_state.is_none());
    assert_eq!(
        d.target_state.unwrap().environment.unwrap().spec.as_deref(),
        Some("spec:\n  size: 2\n")
    );
    // A refused create leaves nothing behind.
    assert_eq!(
        w.create_env("bad", "spec:\n  colour: red\n")
            .unwrap_err()
            .code,
        "ValidationException"
    );
    assert_eq!(w.env("bad").unwrap_err().code, "ResourceNotFoundException");
    assert_eq!(w.pending_deliveries(), 1);
    // Updates wait for the deployment in progress; NONE needs no deployment.
    assert_eq!(
        w.update_env("dev", "spec: {}\n").unwrap_err().code,
        "ConflictException"
    );
    notify_as(&p, &arn, None, Some("SUCCEEDED"), &[], None).unwrap();
    let described = environment::update(
        &w.admin(),
        pr::UpdateEnvironmentInput {
            name: Some("dev".into()),
            deployment_type: Some("NONE".into()),
            description: Some("the dev network".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .environment
    .unwrap();
    assert_eq!(
        described.last_attempted_deployment_id.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(w.pending_deliveries(), 1);
    // An update carries the initial state; a cancel ends it and drops its delivery.
    let second = w
        .update_env("dev", "spec:\n  size: 3\n")
        .unwrap()
        .last_attempted_deployment_id
        .unwrap();
    assert_eq!(w.pending_deliveries(), 2);
    assert!(w.deployment(&second).initial_state.is_some());
    let cancel = |w: &World| {
        environment::cancel(
            &w.admin(),
            pr::CancelEnvironmentDeploymentInput {
                environment_name: Some("dev".into()),
            },
        )
    };
    let cancelled = cancel(&w).unwrap().environment.unwrap();
    assert_eq!(cancelled.deployment_status.as_deref(), Some("CANCELLED"));
    assert_eq!(w.pending_deliveries(), 1);
    let d = w.deployment(&second);
    assert_eq!(d.deployment_status.as_deref(), Some("CANCELLED"));
    assert_eq!(
        d.deployment_status_message.as_deref(),
        Some("User initiated cancellation.")
    );
    assert_eq!(cancel(&w).unwrap_err().code, "ConflictException");
    assert_eq!(
        notify_as(&p, &arn, Some(&second), Some("SUCCEEDED"), &[], None)
            .unwrap_err()
            .code,
        "ConflictException"
    );
    assert_eq!(
        w.env("dev").unwrap().spec.as_deref(),
        Some("spec:\n  size: 2\n")
    );
    // DeleteDeployment: not the current or last succeeded one; an older ended one goes.
    let delete_deployment = |id: &str| {
        target::delete_deployment(
            &w.admin(),
            pr::DeleteDeploymentInput {
                id: Some(id.into()),
            },
        )
    };
    assert_eq!(
        delete_deployment(&second).unwrap_err().code,
        "ConflictException"
    );
    assert_eq!(
        delete_deployment(&first).unwrap_err().code,
        "ConflictException"
    );
    // A delete that fails keeps the environment; one that succeeds removes it.
    let delete = |w: &World| {
        environment::delete(
            &w.admin(),
            pr::DeleteEnvironmentInput {
                name: Some("dev".into()),
            },
            &in_use::Links,
        )
    };
    let deleting = delete(&w).unwrap().environment.unwrap();
    assert_eq!(
        deleting.deployment_status.as_deref(),
        Some("DELETE_IN_PROGRESS")
    );
    let third = deleting.last_attempted_deployment_id.unwrap();
    assert_eq!(delete(&w).unwrap_err().code, "ConflictException");
    notify_as(&p, &arn, None, Some("FAILED"), &[], Some("destroy failed")).unwrap();
    assert_eq!(
        w.env("dev").unwrap().deployment_status.as_deref(),
        Some("DELETE_FAILED")
    );
    assert_eq!(
        w.deployment(&third).deployment_status.as_deref(),
        Some("DELETE_FAILED")
    );
    delete_deployment(&second).unwrap();
    let fourth = delete(&w)
        .unwrap()
        .environment
        .unwrap()
        .last_attempted_deployment_id
        .unwrap();
    notify_as(&p, &arn, Some(&fourth), Some("SUCCEEDED"), &[], None).unwrap();
    assert_eq!(w.env("dev").unwrap_err().code, "ResourceNotFoundException");
    assert_eq!(
        w.deployment(&fourth).deployment_status.as_deref(),
        Some("DELETE_COMPLETE")
    );
    // The pipeline's retry of that success is harmless; anything else is not found.
    notify_as(&p, &arn, Some(&fourth), Some("SUCCEEDED"), &[], None).unwrap();
    notify_as(&p, &arn, None, Some("SUCCEEDED"), &[], None).unwrap();
    assert_eq!(
        notify_as(&p, &arn, None, Some("FAILED"), &[], None)
            .unwrap_err()
            .code,
        "ConflictException"
    );
}

/// Stores `n` documents of `kind` in the test account that cannot be decoded: a call that
/// reads one fails, so a call that succeeds beside them never read them.
fn plant_unreadable(w: &World, kind: Kind, parent: &str, n: usize) {
    transact(w.store.as_ref(), Mode::Write, |tx| {
        for i in 0..n {
            let id = format!("unreadable-{i}");
            tx.put(
                kind,
                &format!("{ACCOUNT}/us-east-1"),
                &id,
                parent,
                b"not a document",
            )?;
        }
        Ok::<_, provisiond::store::StoreError>(())
    })
    .unwrap();
}

#[test]
fn lists_and_checks_by_resource_read_what_they_find_not_the_whole_account() {
    let w = World::new();
    let p = w.pipeline();
    let env = w.create_env("dev", "spec:\n  size: 2\n").unwrap();
    let arn = env.arn.clone().unwrap();
    let first = env.last_attempted_deployment_id.unwrap();
    for kind in [
        Kind::ProtonDeployment,
        Kind::ProtonComponent,
        Kind::ProtonEnvironment,
        Kind::ProtonService,
    ] {
        plant_unreadable(&w, kind, "", 300);
    }
    // Notify without a deployment id settles the resource's latest, found by its index.
    notify_as(&p, &arn, None, Some("SUCCEEDED"), &[("vpc", "v-1")], None).unwrap();
    assert_eq!(
        w.env("dev").unwrap().deployment_status.as_deref(),
        Some("SUCCEEDED")
    );
    let listed = deployment::list(
        &w.admin(),
        pr::ListDeploymentsInput {
            environment_name: Some("dev".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .deployments
    .unwrap();
    assert_eq!(
        listed
            .into_iter()
            .map(|d| d.id.unwrap())
            .collect::<Vec<_>>(),
        [first]
    );
    // Environments of a template, by its index.
    let of_template = environment::list(
        &w.admin(),
        pr::ListEnvironmentsInput {
            environment_templates: Some(vec![pr::EnvironmentTemplateFilter {
                template_name: Some("vpc".into()),
                major_version: Some("1".into()),
            }]),
            ..Default::default()
        },
    )
    .unwrap()
    .environments
    .unwrap();
    assert_eq!(
        of_template
            .into_iter()
            .map(|e| e.name.unwrap())
            .collect::<Vec<_>>(),
        ["dev"]
    );
    // Deleting the environment asks whether instances or components are in it, by index.
    let deleting = environment::delete(
        &w.admin(),
        pr::DeleteEnvironmentInput {
            name: Some("dev".into()),
        },
        &in_use::Links,
    )
    .unwrap()
    .environment
    .unwrap();
    assert_eq!(
        deleting.deployment_status.as_deref(),
        Some("DELETE_IN_PROGRESS")
    );
}

#[test]
fn templates_and_repositories_page_in_creation_order_from_the_store() {
    let w = World::new();
    let admin = w.admin();
    // Templates of both kinds share one list in the store: each kind's pages keep to their own.
    for (env, svc) in [("e2", "s1"), ("e3", "s2")] {
        template::ops::create_environment_template(
            &admin,
            pr::CreateEnvironmentTemplateInput {
                name: Some(env.into()),
                ..Default::default()
            },
        )
        .unwrap();
        template::ops::create_service_template(
            &admin,
            pr::CreateServiceTemplateInput {
                name: Some(svc.into()),
                ..Default::default()
            },
        )
        .unwrap();
    }
    // Every page, following the tokens, of a list read by `page`.
    let all_pages = |page: &dyn Fn(Option<String>) -> (Vec<String>, Option<String>)| {
        let (mut names, mut token) = (Vec::new(), None);
        loop {
            let (more, next) = page(token);
            names.extend(more);
            token = next;
            if token.is_none() {
                return names;
            }
        }
    };
    let environment_templates = all_pages(&|next_token| {
        let out = template::ops::list_environment_templates(
            &admin,
            pr::ListEnvironmentTemplatesInput {
                max_results: Some(1),
                next_token,
            },
        )
        .unwrap();
        let names = out.templates.unwrap().into_iter().map(|t| t.name.unwrap());
        (names.collect(), out.next_token)
    });
    let service_templates = all_pages(&|next_token| {
        let out = template::ops::list_service_templates(
            &admin,
            pr::ListServiceTemplatesInput {
                max_results: Some(1),
                next_token,
            },
        )
        .unwrap();
        let names = out.templates.unwrap().into_iter().map(|t| t.name.unwrap());
        (names.collect(), out.next_token)
    });
    assert_eq!(environment_templates, ["vpc", "e2", "e3"]);
    assert_eq!(service_templates, ["s1", "s2"]);

    for name in ["acme/apps", "acme/more"] {
        repository::create(
            &admin,
            pr::CreateRepositoryInput {
                provider: Some("GITHUB".into()),
                name: Some(name.into()),
                connection_arn: Some(format!(
                    "arn:aws:codestar-connections:us-east-1:{ACCOUNT}:connection/c"
                )),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let first = repository::list(
        &admin,
        pr::ListRepositoriesInput {
            max_results: Some(2),
            next_token: None,
        },
    )
    .unwrap();
    let rest = repository::list(
        &admin,
        pr::ListRepositoriesInput {
            max_results: Some(2),
            next_token: first.next_token.clone(),
        },
    )
    .unwrap();
    let names: Vec<String> = first
        .repositories
        .unwrap()
        .into_iter()
        .chain(rest.repositories.unwrap())
        .map(|r| r.name.unwrap())
        .collect();
    assert_eq!(names, ["acme/envs", "acme/apps", "acme/more"]);
    assert_eq!(rest.next_token, None);
    let e = repository::list(
        &admin,
        pr::ListRepositoriesInput {
            max_results: None,
            next_token: Some("bm90IGEgdG9rZW4=".into()),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "ValidationException");

    // A first page reads the first documents of the list, not the whole account's.
    plant_unreadable(&w, Kind::ProtonTemplate, "", 300);
    plant_unreadable(&w, Kind::ProtonRepository, "", 300);
    let first_templates = template::ops::list_environment_templates(
        &admin,
        pr::ListEnvironmentTemplatesInput {
            max_results: Some(1),
            next_token: None,
        },
    )
    .unwrap();
    assert_eq!(
        first_templates.templates.unwrap()[0].name.as_deref(),
        Some("vpc")
    );
    let first_repositories = repository::list(
        &admin,
        pr::ListRepositoriesInput {
            max_results: Some(2),
            next_token: None,
        },
    )
    .unwrap();
    assert_eq!(first_repositories.repositories.unwrap().len(), 2);
}
