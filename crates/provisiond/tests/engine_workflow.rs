//! Domain tests of the engine workflow, without HTTP: every row of SPEC §5.1's table, every
//! step of §5.3 and the plan transitions of §6 (with a race of executions), against a real
//! SQLite store, calling the Service Catalog functions the server dispatches to.

use provisiond::auth::Identity;
use provisiond::catalog::{
    constraint, membership, notify, plan, portfolio, principal, product, product_view,
    provisioned_search, provisioning,
};
use provisiond::context::RequestContext;
use provisiond::crypto::ServerKey;
use provisiond::store::sqlite::SqliteStore;
use provisiond::store::{transact, Kind, Mode, Store};
use provisiond_model::servicecatalog as sc;
use provisiond_model::AwsError;
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";
const TF: &str = "variable \"name\" {}\nvariable \"size\" { default = 3 }\n";

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    key: Arc<ServerKey>,
    product: String,
    artifact: String,
}

impl World {
    fn ctx(&self, account: &str, region: &str, principal: &str, admin: bool) -> RequestContext {
        RequestContext {
            request_id: "test".into(),
            identity: Identity {
                access_key_id: "AKIATEST".into(),
                account: account.into(),
                principal: principal.into(),
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
        self.ctx(
            ACCOUNT,
            "us-east-1",
            &format!("arn:aws:iam::{ACCOUNT}:role/platform"),
            true,
        )
    }

    fn dev(&self) -> RequestContext {
        self.ctx(
            ACCOUNT,
            "us-east-1",
            &format!("arn:aws:iam::{ACCOUNT}:role/dev"),
            false,
        )
    }

    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let archive = dir.path().join("module.tar.gz");
        std::fs::write(&archive, tar_gz(&[("main.tf", TF)])).unwrap();
        let mut w = World {
            _dir: dir,
            store,
            key: Arc::new(ServerKey::generate()),
            product: String::new(),
            artifact: String::new(),
        };
        let admin = w.admin();
        let out = product::create(
            &admin,
            sc::CreateProductInput {
                name: Some("bucket".into()),
                owner: Some("platform".into()),
                product_type: Some("TERRAFORM_OPEN_SOURCE".into()),
                idempotency_token: Some("p".into()),
                provisioning_artifact_parameters: Some(sc::ProvisioningArtifactProperties {
                    info: Some(
                        [(
                            "LoadTemplateFromURL".to_string(),
                            format!("file://{}", archive.display()),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
        w.product = out
            .product_view_detail
            .unwrap()
            .product_view_summary
            .unwrap()
            .product_id
            .unwrap();
        w.artifact = out.provisioning_artifact_detail.unwrap().id.unwrap();
        let port = portfolio::create(
            &admin,
            sc::CreatePortfolioInput {
                display_name: Some("p".into()),
                provider_name: Some("p".into()),
                idempotency_token: Some("t".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .portfolio_detail
        .unwrap()
        .id
        .unwrap();
        membership::associate(
            &admin,
            sc::AssociateProductWithPortfolioInput {
                product_id: Some(w.product.clone()),
                portfolio_id: Some(port.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        principal::associate(
            &admin,
            sc::AssociatePrincipalWithPortfolioInput {
                portfolio_id: Some(port.clone()),
                principal_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/dev")),
                principal_type: Some("IAM".into()),
                ..Default::default()
            },
        )
        .unwrap();
        constraint::create(
            &admin,
            sc::CreateConstraintInput {
                portfolio_id: Some(port),
                product_id: Some(w.product.clone()),
                r#type: Some("LAUNCH".into()),
                parameters: Some(format!(
                    "{{\"RoleArn\":\"arn:aws:iam::{ACCOUNT}:role/Launch\"}}"
                )),
                idempotency_token: Some("c".into()),
                ..Default::default()
            },
        )
        .unwrap();
        w
    }

    fn provision(&self, name: &str) -> Result<sc::RecordDetail, AwsError> {
        self.provision_with_token(name, &format!("tok-{name}-{}", provisiond::ids::uuid()))
    }

    fn provision_with_token(&self, name: &str, token: &str) -> Result<sc::RecordDetail, AwsError> {
        provisioning::provision(
            &self.dev(),
            sc::ProvisionProductInput {
                product_id: Some(self.product.clone()),
                provisioning_artifact_id: Some(self.artifact.clone()),
                provisioned_product_name: Some(name.into()),
                provisioning_parameters: Some(vec![sc::ProvisioningParameter {
                    key: Some("name".into()),
                    value: Some("n".into()),
                }]),
                provision_token: Some(token.into()),
                ..Default::default()
            },
        )
        .map(|o| o.record_detail.unwrap())
    }

    /// The bodies of the messages waiting on `queue`, oldest first.
    fn tasks(&self, queue: &str) -> Vec<serde_json::Value> {
        transact(self.store.as_ref(), Mode::Read, |tx| {
            tx.claim_messages(&format!("{ACCOUNT}/us-east-1"), queue, i64::MAX, 100)
        })
        .unwrap()
        .into_iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
    }

    fn task_for(&self, queue: &str, record_id: &str) -> serde_json::Value {
        self.tasks(queue)
            .into_iter()
            .find(|t| t["recordId"] == record_id)
            .expect("a task for the record")
    }

    fn pp(&self, id: &str) -> Result<sc::ProvisionedProductDetail, AwsError> {
        provisioning::describe(
            &self.dev(),
            sc::DescribeProvisionedProductInput {
                id: Some(id.into()),
                ..Default::default()
            },
        )
        .map(|o| o.provisioned_product_detail.unwrap())
    }

    fn record(&self, id: &str) -> sc::RecordDetail {
        provisioning::describe_record(
            &self.dev(),
            sc::DescribeRecordInput {
                id: Some(id.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .record_detail
        .unwrap()
    }
}

fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, text.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

const PROVISION_Q: &str = "ServiceCatalogTerraformOSProvisionOperationQueue";
const UPDATE_Q: &str = "ServiceCatalogTerraformOSUpdateOperationQueue";
const TERMINATE_Q: &str = "ServiceCatalogTerraformOSTerminateOperationQueue";

fn notify_provision(
    ctx: &RequestContext,
    token: &str,
    record: &str,
    status: &str,
    idem: &str,
    tag: bool,
) -> Result<(), AwsError> {
    notify::provision(
        ctx,
        sc::NotifyProvisionProductEngineWorkflowResultInput {
            workflow_token: Some(token.into()),
            record_id: Some(record.into()),
            status: Some(status.into()),
            failure_reason: (status == "FAILED").then(|| "boom".into()),
            resource_identifier: tag.then(|| sc::EngineWorkflowResourceIdentifier {
                unique_tag: Some(sc::UniqueTagResourceIdentifier {
                    key: Some("k".into()),
                    value: Some("v".into()),
                }),
            }),
            outputs: Some(vec![sc::RecordOutput {
                output_key: Some("o".into()),
                output_value: Some("1".into()),
                description: None,
            }]),
            idempotency_token: Some(idem.into()),
        },
    )
    .map(|_| ())
}

fn update(w: &World, pp: &str, token: &str) -> Result<sc::RecordDetail, AwsError> {
    provisioning::update(
        &w.dev(),
        sc::UpdateProvisionedProductInput {
            provisioned_product_id: Some(pp.into()),
            update_token: Some(token.into()),
            provisioning_parameters: Some(vec![sc::UpdateProvisioningParameter {
                key: Some("name".into()),
                use_previous_value: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
    )
    .map(|o| o.record_detail.unwrap())
}

fn terminate(
    w: &World,
    pp: &str,
    token: &str,
    ignore_errors: bool,
) -> Result<sc::RecordDetail, AwsError> {
    provisioning::terminate(
        &w.dev(),
        sc::TerminateProvisionedProductInput {
            provisioned_product_id: Some(pp.into()),
            terminate_token: Some(token.into()),
            ignore_errors: Some(ignore_errors),
            ..Default::default()
        },
    )
    .map(|o| o.record_detail.unwrap())
}

#[test]
fn provision_writes_record_product_and_task_together() {
    let w = World::new();
    let rec = w.provision("a").unwrap();
    assert_eq!(rec.status.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(rec.record_type.as_deref(), Some("PROVISION_PRODUCT"));
    let pp = w
        .pp(rec.provisioned_product_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(pp.status.as_deref(), Some("UNDER_CHANGE"));
    let tasks = w.tasks(PROVISION_Q);
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0]["parameters"],
        serde_json::json!([{"key": "name", "value": "n"}, {"key": "size", "value": "3"}])
    );
    // A refused request writes nothing: no record, no product, no task.
    let replay = w.provision_with_token("b", "same").unwrap();
    assert_eq!(
        w.provision_with_token("b2", "same").unwrap(),
        replay,
        "the token replays the first answer"
    );
    let dup = w.provision("a").unwrap_err();
    assert_eq!(dup.code, "DuplicateResourceException");
    assert_eq!(w.tasks(PROVISION_Q).len(), 2);
    let records: Vec<(i64, provisioning::Record)> = transact(w.store.as_ref(), Mode::Read, |tx| {
        provisiond::store::list(
            tx,
            Kind::Record,
            &format!("{ACCOUNT}/us-east-1"),
            "",
            None,
            100,
        )
    })
    .unwrap();
    let pp_id = rec.provisioned_product_id.as_deref().unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|(_, r)| r.provisioned_product_id == pp_id)
            .count(),
        1
    );
}

#[test]
fn update_and_terminate_follow_the_status_table() {
    let w = World::new();
    let rec = w.provision("a").unwrap();
    let pp = rec.provisioned_product_id.clone().unwrap();
    // UNDER_CHANGE: no update, no plain terminate.
    assert_eq!(
        update(&w, &pp, "u0").unwrap_err().code,
        "InvalidParametersException"
    );
    assert_eq!(
        terminate(&w, &pp, "t0", false).unwrap_err().code,
        "InvalidParametersException"
    );
    let task = w.task_for(PROVISION_Q, rec.record_id.as_deref().unwrap());
    notify_provision(
        &w.dev(),
        task["token"].as_str().unwrap(),
        rec.record_id.as_deref().unwrap(),
        "SUCCEEDED",
        "i1",
        true,
    )
    .unwrap();
    assert_eq!(w.pp(&pp).unwrap().status.as_deref(), Some("AVAILABLE"));
    // AVAILABLE → update allowed, task carries the resolved parameters.
    let u = update(&w, &pp, "u1").unwrap();
    assert_eq!(u.record_type.as_deref(), Some("UPDATE_PROVISIONED_PRODUCT"));
    assert_eq!(w.pp(&pp).unwrap().status.as_deref(), Some("UNDER_CHANGE"));
    let utask = w.task_for(UPDATE_Q, u.record_id.as_deref().unwrap());
    assert_eq!(
        utask["parameters"][1],
        serde_json::json!({"key": "size", "value": "3"})
    );
    notify::update(
        &w.dev(),
        sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput {
            workflow_token: utask["token"].as_str().map(String::from),
            record_id: u.record_id.clone(),
            status: Some("FAILED".into()),
            failure_reason: Some("update broke".into()),
            idempotency_token: Some("i2".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let detail = w.pp(&pp).unwrap();
    assert_eq!(detail.status.as_deref(), Some("TAINTED"));
    assert_eq!(detail.status_message.as_deref(), Some("update broke"));
    // TAINTED → update and terminate allowed.
    let t = terminate(&w, &pp, "t1", false).unwrap();
    let ttask = w.task_for(TERMINATE_Q, t.record_id.as_deref().unwrap());
    assert!(
        ttask.get("artifact").is_none()
            && ttask.get("parameters").is_none()
            && ttask.get("tags").is_none()
    );
    notify::terminate(
        &w.dev(),
        sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput {
            workflow_token: ttask["token"].as_str().map(String::from),
            record_id: t.record_id.clone(),
            status: Some("FAILED".into()),
            failure_reason: Some("destroy broke".into()),
            idempotency_token: Some("i3".into()),
        },
    )
    .unwrap();
    assert_eq!(
        w.pp(&pp).unwrap().status.as_deref(),
        Some("TAINTED"),
        "a failed terminate taints"
    );
    // The way out: IgnoreErrors removes the product whatever the engine says.
    let t2 = terminate(&w, &pp, "t2", true).unwrap();
    let t2task = w.task_for(TERMINATE_Q, t2.record_id.as_deref().unwrap());
    notify::terminate(
        &w.dev(),
        sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput {
            workflow_token: t2task["token"].as_str().map(String::from),
            record_id: t2.record_id.clone(),
            status: Some("FAILED".into()),
            failure_reason: Some("still broke".into()),
            idempotency_token: Some("i4".into()),
        },
    )
    .unwrap();
    assert_eq!(w.pp(&pp).unwrap_err().code, "ResourceNotFoundException");
    assert_eq!(
        w.record(t2.record_id.as_deref().unwrap()).status.as_deref(),
        Some("FAILED")
    );
    assert!(w.provision("a").is_ok(), "the name is free again");
}

#[test]
fn notify_checks_run_in_the_specified_order() {
    let w = World::new();
    let r1 = w.provision("one").unwrap();
    let r2 = w.provision("two").unwrap();
    let id1 = r1.record_id.clone().unwrap();
    let tok1 = w.task_for(PROVISION_Q, &id1)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = w.dev();
    let code = |r: Result<(), AwsError>| r.unwrap_err().code;

    // 2. A token that does not open, or opens for another account or region.
    assert_eq!(
        code(notify_provision(
            &dev,
            "QUJDREVGR0g=",
            &id1,
            "SUCCEEDED",
            "x",
            false
        )),
        "InvalidParametersException"
    );
    let other_account = w.ctx(
        "210987654321",
        "us-east-1",
        "arn:aws:iam::210987654321:role/e",
        false,
    );
    let err = notify_provision(&other_account, &tok1, &id1, "SUCCEEDED", "x", false).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            "InvalidParametersException",
            "The workflow token is not valid."
        )
    );
    let other_region = w.ctx(
        ACCOUNT,
        "eu-west-1",
        "arn:aws:iam::123456789012:role/e",
        false,
    );
    assert_eq!(
        code(notify_provision(
            &other_region,
            &tok1,
            &id1,
            "SUCCEEDED",
            "x",
            false
        )),
        "InvalidParametersException"
    );
    // 3. Another record's id; the wrong call.
    assert_eq!(
        code(notify_provision(
            &dev,
            &tok1,
            r2.record_id.as_deref().unwrap(),
            "SUCCEEDED",
            "x",
            false
        )),
        "InvalidParametersException"
    );
    let wrong_call = notify::update(
        &dev,
        sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput {
            workflow_token: Some(tok1.clone()),
            record_id: Some(id1.clone()),
            status: Some("SUCCEEDED".into()),
            idempotency_token: Some("x".into()),
            ..Default::default()
        },
    );
    assert_eq!(wrong_call.unwrap_err().code, "InvalidParametersException");
    assert_eq!(
        w.record(&id1).status.as_deref(),
        Some("IN_PROGRESS"),
        "nothing changed so far"
    );
    // 5-7. Success, then replays and retries.
    notify_provision(&dev, &tok1, &id1, "SUCCEEDED", "first", false).unwrap();
    notify_provision(&dev, &tok1, &id1, "FAILED", "first", false)
        .expect("same idempotency token: the first answer, no change");
    assert_eq!(w.record(&id1).status.as_deref(), Some("SUCCEEDED"));
    notify_provision(&dev, &tok1, &id1, "SUCCEEDED", "fresh", false)
        .expect("a retry of the same status");
    let err = notify_provision(&dev, &tok1, &id1, "FAILED", "fresh2", false).unwrap_err();
    assert_eq!(err.message, format!("Record {id1} is already SUCCEEDED."));
    assert!(
        w.tasks(PROVISION_Q)
            .iter()
            .all(|t| t["recordId"] != id1.as_str()),
        "the task is settled"
    );
    // 4. A record that is gone.
    let id2 = r2.record_id.clone().unwrap();
    let tok2 = w.task_for(PROVISION_Q, &id2)["token"]
        .as_str()
        .unwrap()
        .to_string();
    transact(w.store.as_ref(), Mode::Write, |tx| {
        tx.delete(Kind::Record, &format!("{ACCOUNT}/us-east-1"), &id2)
    })
    .unwrap();
    assert_eq!(
        code(notify_provision(&dev, &tok2, &id2, "SUCCEEDED", "x", false)),
        "ResourceNotFoundException"
    );
}

#[test]
fn provision_failure_is_error_without_resources_and_tainted_with_them() {
    let w = World::new();
    for (name, tag, expected) in [("bare", false, "ERROR"), ("tagged", true, "TAINTED")] {
        let rec = w.provision(name).unwrap();
        let id = rec.record_id.clone().unwrap();
        let token = w.task_for(PROVISION_Q, &id)["token"]
            .as_str()
            .unwrap()
            .to_string();
        notify_provision(&w.dev(), &token, &id, "FAILED", "i", tag).unwrap();
        let pp = w
            .pp(rec.provisioned_product_id.as_deref().unwrap())
            .unwrap();
        assert_eq!(pp.status.as_deref(), Some(expected), "{name}");
        assert_eq!(pp.status_message.as_deref(), Some("boom"));
        let record = w.record(&id);
        assert_eq!(
            record.record_errors.unwrap()[0].code.as_deref(),
            Some("ENGINE_WORKFLOW_FAILURE")
        );
    }
}

fn create_plan(
    w: &World,
    name: &str,
    plan_name: &str,
    token: &str,
) -> Result<sc::CreateProvisionedProductPlanOutput, AwsError> {
    plan::create(
        &w.dev(),
        sc::CreateProvisionedProductPlanInput {
            plan_name: Some(plan_name.into()),
            plan_type: Some("CLOUDFORMATION".into()),
            product_id: Some(w.product.clone()),
            provisioning_artifact_id: Some(w.artifact.clone()),
            provisioned_product_name: Some(name.into()),
            provisioning_parameters: Some(vec![sc::UpdateProvisioningParameter {
                key: Some("name".into()),
                value: Some("planned".into()),
                use_previous_value: None,
            }]),
            idempotency_token: Some(token.into()),
            ..Default::default()
        },
    )
}

fn execute(w: &World, plan_id: &str, token: &str) -> Result<sc::RecordDetail, AwsError> {
    plan::execute(
        &w.dev(),
        sc::ExecuteProvisionedProductPlanInput {
            plan_id: Some(plan_id.into()),
            idempotency_token: Some(token.into()),
            ..Default::default()
        },
    )
    .map(|o| o.record_detail.unwrap())
}

fn plan_status(w: &World, plan_id: &str) -> String {
    plan::describe(
        &w.dev(),
        sc::DescribeProvisionedProductPlanInput {
            plan_id: Some(plan_id.into()),
            ..Default::default()
        },
    )
    .unwrap()
    .provisioned_product_plan_details
    .unwrap()
    .status
    .unwrap()
}

#[test]
fn plans_move_through_their_states() {
    let w = World::new();
    let created = create_plan(&w, "p", "first", "c1").unwrap();
    let plan_id = created.plan_id.clone().unwrap();
    let pp = created.provision_product_id.clone().unwrap();
    assert_eq!(
        w.pp(&pp).unwrap().status.as_deref(),
        Some("PLAN_IN_PROGRESS")
    );
    assert_eq!(plan_status(&w, &plan_id), "CREATE_SUCCESS");
    assert!(w.tasks(PROVISION_Q).is_empty(), "a plan enqueues nothing");
    // The name is taken by the planned product; a plan may not be made on a PLAN_IN_PROGRESS product.
    assert_eq!(
        w.provision("p").unwrap_err().code,
        "DuplicateResourceException"
    );
    assert_eq!(
        create_plan(&w, "p", "second", "c2").unwrap_err().code,
        "InvalidStateException"
    );

    let rec = execute(&w, &plan_id, "e1").unwrap();
    assert_eq!(rec.record_type.as_deref(), Some("PROVISION_PRODUCT"));
    assert_eq!(
        execute(&w, &plan_id, "e1").unwrap(),
        rec,
        "the same token, the same record"
    );
    assert_eq!(
        execute(&w, &plan_id, "e2").unwrap_err().code,
        "InvalidStateException"
    );
    assert_eq!(plan_status(&w, &plan_id), "EXECUTE_IN_PROGRESS");
    assert_eq!(w.pp(&pp).unwrap().status.as_deref(), Some("UNDER_CHANGE"));
    let id = rec.record_id.clone().unwrap();
    let task = w.task_for(PROVISION_Q, &id);
    assert_eq!(
        task["parameters"][0],
        serde_json::json!({"key": "name", "value": "planned"})
    );
    notify_provision(
        &w.dev(),
        task["token"].as_str().unwrap(),
        &id,
        "SUCCEEDED",
        "n",
        false,
    )
    .unwrap();
    assert_eq!(plan_status(&w, &plan_id), "EXECUTE_SUCCESS");
    assert_eq!(w.pp(&pp).unwrap().status.as_deref(), Some("AVAILABLE"));

    // An update plan that fails; a stale plan; unknown plans.
    let update_plan = create_plan(&w, "p", "update", "c3")
        .unwrap()
        .plan_id
        .unwrap();
    let stale_attempt = create_plan(&w, "p", "another", "c4").unwrap_err();
    assert_eq!(
        stale_attempt.code, "InvalidStateException",
        "one open plan per product"
    );
    let urec = execute(&w, &update_plan, "e3").unwrap();
    assert_eq!(
        urec.record_type.as_deref(),
        Some("UPDATE_PROVISIONED_PRODUCT")
    );
    let utask = w.task_for(UPDATE_Q, urec.record_id.as_deref().unwrap());
    notify::update(
        &w.dev(),
        sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput {
            workflow_token: utask["token"].as_str().map(String::from),
            record_id: urec.record_id.clone(),
            status: Some("FAILED".into()),
            failure_reason: Some("plan failed".into()),
            idempotency_token: Some("n2".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(plan_status(&w, &update_plan), "EXECUTE_FAILED");
    let stale = create_plan(&w, "p", "stale", "c5")
        .unwrap()
        .plan_id
        .unwrap();
    let t = terminate(&w, &pp, "t", false).unwrap();
    assert!(t.record_id.is_some());
    assert_eq!(
        execute(&w, &stale, "e4").unwrap_err().code,
        "InvalidStateException"
    );
    assert_eq!(
        execute(&w, "doesnotexist1", "e5").unwrap_err().code,
        "ResourceNotFoundException"
    );
}

#[test]
fn racing_executions_make_exactly_one_record() {
    let w = Arc::new(World::new());
    let plan_id = create_plan(&w, "raced", "race", "c")
        .unwrap()
        .plan_id
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let w = w.clone();
            let plan_id = plan_id.clone();
            std::thread::spawn(move || execute(&w, &plan_id, &format!("token-{i}")))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code == "InvalidStateException"));
    assert_eq!(w.tasks(PROVISION_Q).len(), 1);
}

#[test]
fn plans_of_another_account_or_region_are_not_found() {
    let w = World::new();
    let plan_id = create_plan(&w, "scoped", "mine", "c")
        .unwrap()
        .plan_id
        .unwrap();
    let strangers = [
        w.ctx(
            "999999999999",
            "us-east-1",
            "arn:aws:iam::999999999999:role/dev",
            true,
        ),
        w.ctx(
            ACCOUNT,
            "eu-west-1",
            &format!("arn:aws:iam::{ACCOUNT}:role/dev"),
            true,
        ),
    ];
    for ctx in &strangers {
        let executed = plan::execute(
            ctx,
            sc::ExecuteProvisionedProductPlanInput {
                plan_id: Some(plan_id.clone()),
                idempotency_token: Some("steal".into()),
                ..Default::default()
            },
        );
        assert_eq!(executed.unwrap_err().code, "ResourceNotFoundException");
        let deleted = plan::delete(
            ctx,
            sc::DeleteProvisionedProductPlanInput {
                plan_id: Some(plan_id.clone()),
                ignore_errors: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(deleted.unwrap_err().code, "ResourceNotFoundException");
    }
    assert_eq!(plan_status(&w, &plan_id), "CREATE_SUCCESS");
    assert!(w.tasks(PROVISION_Q).is_empty());
}

/// Stores `n` documents of `kind` in the test account that cannot be decoded: a call that
/// reads one fails, so a call that succeeds beside them never read them.
fn plant_unreadable(w: &World, kind: Kind, n: usize) {
    transact(w.store.as_ref(), Mode::Write, |tx| {
        for i in 0..n {
            let id = format!("unreadable-{i}");
            tx.put(
                kind,
                &format!("{ACCOUNT}/us-east-1"),
                &id,
                "",
                b"not a document",
            )?;
        }
        Ok::<_, provisiond::store::StoreError>(())
    })
    .unwrap();
}

fn history(w: &World, filter: Option<(&str, &str)>, page_size: i32) -> Vec<String> {
    provisioning::record_history(
        &w.dev(),
        sc::ListRecordHistoryInput {
            search_filter: filter.map(|(k, v)| sc::ListRecordHistorySearchFilter {
                key: Some(k.into()),
                value: Some(v.into()),
            }),
            page_size: Some(page_size),
            ..Default::default()
        },
    )
    .unwrap()
    .record_details
    .unwrap()
    .into_iter()
    .map(|r| r.record_id.unwrap())
    .collect()
}

#[test]
fn filtered_lists_and_checks_read_what_they_find_not_the_whole_account() {
    let w = World::new();
    let first = w.provision("first").unwrap();
    plant_unreadable(&w, Kind::Record, 300);
    plant_unreadable(&w, Kind::Plan, 300);
    let second = w.provision("second").unwrap();
    let third = w.provision("third").unwrap();
    let (first_pp, first_record) = (
        first.provisioned_product_id.unwrap(),
        first.record_id.unwrap(),
    );
    let second_record = second.record_id.unwrap();
    // By provisioned product and by product: through their indexes, past the 300.
    assert_eq!(
        history(&w, Some(("provisionedproduct", &first_pp)), 20),
        vec![first_record.clone()]
    );
    assert_eq!(
        history(&w, Some(("product", &w.product)), 20),
        [
            third.record_id.clone().unwrap(),
            second_record.clone(),
            first_record.clone()
        ]
    );
    // Unfiltered, a first page of one is the newest record, read from the store's order (the
    // page and one more, to know there is a next page).
    assert_eq!(history(&w, None, 1), [third.record_id.unwrap()]);
    // A plan checks for an open plan of its provisioned product, and plans are listed by it,
    // through the index.
    let task = w.task_for(PROVISION_Q, &first_record);
    notify_provision(
        &w.dev(),
        task["token"].as_str().unwrap(),
        &first_record,
        "SUCCEEDED",
        "done",
        false,
    )
    .unwrap();
    let planned = create_plan(&w, "first", "p1", "plan-token").unwrap();
    let refused = create_plan(&w, "first", "p2", "plan-token-2").unwrap_err();
    assert_eq!(refused.code, "InvalidStateException");
    assert!(
        refused.message.contains("already has plan"),
        "one open plan per provisioned product: {}",
        refused.message
    );
    let listed = plan::list(
        &w.dev(),
        sc::ListProvisionedProductPlansInput {
            provision_product_id: Some(first_pp),
            ..Default::default()
        },
    )
    .unwrap()
    .provisioned_product_plans
    .unwrap();
    assert_eq!(
        listed
            .into_iter()
            .map(|p| p.plan_id.unwrap())
            .collect::<Vec<_>>(),
        [planned.plan_id.unwrap()]
    );
}

/// The caller's provisioned products, a page of `page_size` per call, following the tokens:
/// each page's names.
fn scan_pages(w: &World, page_size: i32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let out = provisioning::scan(
            &w.dev(),
            sc::ScanProvisionedProductsInput {
                page_size: Some(page_size),
                page_token: token.take(),
                ..Default::default()
            },
        )
        .unwrap();
        pages.push(
            out.provisioned_products
                .unwrap_or_default()
                .into_iter()
                .map(|pp| pp.name.unwrap())
                .collect(),
        );
        match out.next_page_token {
            Some(next) => token = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn a_scan_of_ones_own_looks_at_a_bounded_part_of_the_account_per_call() {
    let w = World::new();
    let mine = w.provision("mine").unwrap();
    // 1,500 provisioned products of another principal of the account, then one more of the
    // caller's.
    let scope = format!("{ACCOUNT}/us-east-1");
    let id = mine.provisioned_product_id.unwrap();
    transact(w.store.as_ref(), Mode::Write, |tx| {
        let body = tx.get(Kind::ProvisionedProduct, &scope, &id)?.unwrap();
        let mut theirs: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for i in 0..1_500 {
            theirs["id"] = format!("pp-theirs{i}").into();
            theirs["name"] = format!("theirs-{i}").into();
            theirs["owner_principal"] = format!("arn:aws:iam::{ACCOUNT}:role/other").into();
            let body = serde_json::to_vec(&theirs).unwrap();
            tx.put(
                Kind::ProvisionedProduct,
                &scope,
                &format!("pp-theirs{i}"),
                "",
                &body,
            )?;
        }
        Ok::<_, provisiond::store::StoreError>(())
    })
    .unwrap();
    w.provision("mine-too").unwrap();
    let pages = scan_pages(&w, 20);
    // The first call stops after looking at 1,000 (`paging::SCAN_BUDGET`): a short page and a
    // token past what it looked at; the caller's second product comes on a later page.
    assert_eq!(pages[0], ["mine"]);
    assert!(pages.len() >= 2, "{pages:?}");
    assert_eq!(pages.concat(), ["mine", "mine-too"]);
}

/// One page of `SearchProvisionedProducts`: the names, the token, and the total.
fn search_page(
    w: &World,
    sort_by: Option<&str>,
    sort_order: Option<&str>,
    token: Option<String>,
) -> (Vec<String>, Option<String>, i32) {
    let out = provisioned_search::search(
        &w.dev(),
        sc::SearchProvisionedProductsInput {
            sort_by: sort_by.map(str::to_string),
            sort_order: sort_order.map(str::to_string),
            page_size: Some(2),
            page_token: token,
            ..Default::default()
        },
    )
    .unwrap();
    (
        out.provisioned_products
            .unwrap_or_default()
            .into_iter()
            .map(|pp| pp.name.unwrap())
            .collect(),
        out.next_page_token,
        out.total_results_count.unwrap(),
    )
}

#[test]
fn a_sorted_search_continues_after_the_last_item_shown_whatever_was_added_before_it() {
    let w = World::new();
    for name in ["b", "d", "f"] {
        w.provision(name).unwrap();
    }
    let (first, token, total) = search_page(&w, Some("name"), None, None);
    assert_eq!((first, total), (vec!["b".to_string(), "d".to_string()], 3));
    // Two that sort before the page shown arrive; the next page still starts after "d".
    for name in ["a", "c"] {
        w.provision(name).unwrap();
    }
    let (second, token, total) = search_page(&w, Some("name"), None, token);
    assert_eq!((second, token, total), (vec!["f".to_string()], None, 5));

    // Newest first, by creation: the same.
    let (first, token, _) = search_page(&w, None, Some("DESCENDING"), None);
    assert_eq!(first, ["c", "a"]);
    w.provision("e").unwrap();
    let (second, token, _) = search_page(&w, None, Some("DESCENDING"), token);
    assert_eq!(second, ["f", "d"]);
    let (third, token, total) = search_page(&w, None, Some("DESCENDING"), token);
    assert_eq!((third, token, total), (vec!["b".to_string()], None, 6));

    // By name, descending, across the pages.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let (page, next, _) = search_page(&w, Some("name"), Some("DESCENDING"), token);
        names.extend(page);
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(names, ["f", "e", "d", "c", "b", "a"]);
    // A token of one order is refused by the other.
    let (_, by_creation, _) = search_page(&w, None, Some("DESCENDING"), None);
    let refused = provisioned_search::search(
        &w.dev(),
        sc::SearchProvisionedProductsInput {
            sort_by: Some("name".into()),
            page_token: by_creation,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(refused.code, "InvalidParametersException");
}

#[test]
fn records_stored_before_their_index_are_found_once_it_is_built() {
    let w = World::new();
    let record = w.provision("early").unwrap();
    let pp = record.provisioned_product_id.unwrap();
    // As a database written before the index existed: the entries and the marker gone.
    transact(w.store.as_ref(), Mode::Write, |tx| {
        let scope = format!("{ACCOUNT}/us-east-1");
        let parent = format!("record/provisioned-product/{pp}");
        for row in tx.list(Kind::Index, &scope, &parent, None, 10)? {
            tx.delete(Kind::Index, &scope, &row.id)?;
        }
        tx.delete(Kind::Index, "", "built/record/provisioned-product")
            .map(drop)
    })
    .map_err(|e: provisiond::store::StoreError| e)
    .unwrap();
    assert!(history(&w, Some(("provisionedproduct", &pp)), 20).is_empty());
    provisiond::store::index::build_missing(
        w.store.as_ref(),
        &[provisiond::store::index::backfill::<provisioning::Record>()],
    )
    .unwrap();
    assert_eq!(
        history(&w, Some(("provisionedproduct", &pp)), 20),
        [record.record_id.unwrap()]
    );
}

#[test]
fn an_end_users_product_search_reads_who_may_use_each_portfolio_and_nothing_more() {
    let w = World::new();
    let portfolio_id = portfolio::list(&w.admin(), sc::ListPortfoliosInput::default())
        .unwrap()
        .portfolio_details
        .unwrap()[0]
        .id
        .clone()
        .unwrap();
    // Constraints of the portfolio that cannot be decoded: SearchProducts asks whether the
    // caller may launch, not through which constraint.
    transact(w.store.as_ref(), Mode::Write, |tx| {
        for i in 0..300 {
            tx.put(
                Kind::Constraint,
                &format!("{ACCOUNT}/us-east-1"),
                &format!("unreadable-{i}"),
                &portfolio_id,
                b"not a constraint",
            )?;
        }
        Ok::<_, provisiond::store::StoreError>(())
    })
    .unwrap();
    let search = |ctx: &RequestContext| {
        product_view::search(ctx, sc::SearchProductsInput::default())
            .unwrap()
            .product_view_summaries
            .unwrap()
            .into_iter()
            .map(|p| p.product_id.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(search(&w.dev()), std::slice::from_ref(&w.product));
    // A principal the portfolio does not name sees nothing.
    let stranger = w.ctx(
        ACCOUNT,
        "us-east-1",
        &format!("arn:aws:iam::{ACCOUNT}:role/stranger"),
        false,
    );
    assert!(search(&stranger).is_empty());
}

/// A search's names and `TotalResultsCount`, all in one page.
fn search_all(
    w: &World,
    input: sc::SearchProvisionedProductsInput,
) -> Result<(Vec<String>, i32), AwsError> {
    let out = provisioned_search::search(
        &w.dev(),
        sc::SearchProvisionedProductsInput {
            page_size: Some(100),
            ..input
        },
    )?;
    Ok((
        out.provisioned_products
            .unwrap()
            .into_iter()
            .map(|pp| pp.name.unwrap())
            .collect(),
        out.total_results_count.unwrap(),
    ))
}

#[test]
fn a_search_sorts_by_the_documented_fields_and_queries_any_of_them() {
    let w = World::new();
    let mut made = Vec::new();
    for name in ["web", "db", "cache"] {
        let record = w.provision(name).unwrap();
        made.push((
            name.to_string(),
            record.provisioned_product_id.unwrap(),
            record.record_id.unwrap(),
        ));
    }
    // Each documented SortBy orders by its field, either way round.
    let by = |key: fn(&(String, String, String)) -> String| {
        let mut sorted = made.clone();
        sorted.sort_by_key(key);
        sorted
            .into_iter()
            .map(|(name, _, _)| name)
            .collect::<Vec<_>>()
    };
    for (sort_by, expected) in [
        ("name", by(|m| m.0.clone())),
        ("id", by(|m| m.1.clone())),
        ("lastRecordId", by(|m| m.2.clone())),
    ] {
        let asked = |order: Option<&str>| {
            search_all(
                &w,
                sc::SearchProvisionedProductsInput {
                    sort_by: Some(sort_by.into()),
                    sort_order: order.map(String::from),
                    ..Default::default()
                },
            )
            .unwrap()
            .0
        };
        assert_eq!(asked(None), expected, "{sort_by}");
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(asked(Some("DESCENDING")), reversed, "{sort_by} descending");
    }
    let by_arn = search_all(
        &w,
        sc::SearchProvisionedProductsInput {
            sort_by: Some("arn".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .0;
    let pp_arn = |name: &str| {
        let id = &made.iter().find(|m| m.0 == name).unwrap().1;
        w.pp(id).unwrap().arn.unwrap()
    };
    let mut arns: Vec<String> = by_arn.iter().map(|n| pp_arn(n)).collect();
    let listed = arns.clone();
    arns.sort();
    assert_eq!(listed, arns, "sorted by ARN");
    // Another SortBy is refused.
    let e = search_all(
        &w,
        sc::SearchProvisionedProductsInput {
            sort_by: Some("status".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidParametersException");

    // SearchQuery over the documented fields, any case; a prefix that names none is text.
    let query = |q: &str| {
        search_all(
            &w,
            sc::SearchProvisionedProductsInput {
                filters: Some([("SearchQuery".to_string(), vec![q.to_string()])].into()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let db = &made[1];
    let three = vec!["web".to_string(), "db".to_string(), "cache".to_string()];
    assert_eq!(query("productName:BUCKET"), (three.clone(), 3));
    assert_eq!(query("productName:other"), (vec![], 0));
    assert_eq!(
        query(&format!("lastRecordId:{}", db.2)),
        (vec!["db".to_string()], 1)
    );
    assert_eq!(
        query(&format!("provisioningArtifactId:{}", w.artifact)).1,
        3
    );
    assert_eq!(
        query(&format!("userArn:arn:aws:iam::{ACCOUNT}:role/dev")).1,
        3
    );
    assert_eq!(query("status:under_change").1, 3);
    assert_eq!(
        query(&format!(
            "createdTime:{}",
            &provisiond::time::format_iso8601(provisiond::time::now_ms())[..4]
        ))
        .1,
        3
    );
    assert_eq!(
        query("userArnSession:arn").1,
        0,
        "provisiond keeps no session"
    );
    assert_eq!(
        query("nosuchfield:web"),
        (vec![], 0),
        "the text 'nosuchfield:web' is in no name"
    );
}
