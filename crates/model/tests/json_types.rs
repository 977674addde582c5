//! Every member of the five core inputs takes exactly its JSON type: a table of wrong-typed
//! bodies, generated from the vendored botocore models, each answers `SerializationException`
//! naming the place and never the value; a body of the right types decodes.

use provisiond_model::runtime::{Codec, Json, JsonType};
use provisiond_model::{proton, servicecatalog as sc};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn model(service: &str, version: &str) -> Value {
    let path = format!(
        "{}/../../data/botocore/{service}/{version}/service-2.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vendored model")).unwrap()
}

/// A marker string no wrong-typed body may see echoed.
const MARK: &str = "s3cr3t-marker";

/// A value of the right JSON type for `shape`.
fn right(model: &Value, shape: &str, depth: usize) -> Value {
    let s = &model["shapes"][shape];
    match s["type"].as_str().unwrap() {
        "structure" if depth > 3 => json!({}),
        "structure" => {
            let mut out = serde_json::Map::new();
            for (name, member) in s["members"].as_object().unwrap() {
                out.insert(
                    name.clone(),
                    right(model, member["shape"].as_str().unwrap(), depth + 1),
                );
            }
            Value::Object(out)
        }
        "list" => json!([right(
            model,
            s["member"]["shape"].as_str().unwrap(),
            depth + 1
        )]),
        "map" => json!({"k": right(model, s["value"]["shape"].as_str().unwrap(), depth + 1)}),
        "string" | "blob" => json!("x"),
        "integer" | "long" => json!(1),
        "boolean" => json!(true),
        "timestamp" => json!(1.5),
        other => panic!("unexpected shape type {other}"),
    }
}

/// Values of every other JSON type than `shape`'s, each carrying the marker where it can.
fn wrong(model: &Value, shape: &str) -> Vec<Value> {
    let s = &model["shapes"][shape];
    let text = json!(MARK);
    let number = json!(12345);
    match s["type"].as_str().unwrap() {
        "structure" => vec![
            json!([]),
            json!([{}]),
            json!([MARK]),
            text,
            number,
            json!(true),
        ],
        "list" => vec![json!({}), json!({"a": MARK}), text, number, json!(false)],
        "map" => vec![json!([]), json!([["k", MARK]]), text, number],
        "string" | "blob" => vec![
            number,
            json!(1.5),
            json!(true),
            json!([MARK]),
            json!({"a": MARK}),
        ],
        "integer" | "long" => vec![
            text,
            json!("1"),
            json!(1.5),
            json!(true),
            json!([1]),
            json!({"a": 1}),
        ],
        "boolean" => vec![json!("true"), text, json!(1), json!([true]), json!({})],
        "timestamp" => vec![json!("2026-01-01T00:00:00Z"), text, json!(true), json!([1])],
        other => panic!("unexpected shape type {other}"),
    }
}

fn object(key: &str, value: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

/// Every body with exactly one wrong-typed value, at every depth of `shape`: (where, body).
fn cases(model: &Value, shape: &str, depth: usize) -> Vec<(String, Value)> {
    let s = &model["shapes"][shape];
    let mut out = Vec::new();
    match s["type"].as_str().unwrap() {
        "structure" if depth <= 3 => {
            for (name, member) in s["members"].as_object().unwrap() {
                let target = member["shape"].as_str().unwrap();
                for bad in wrong(model, target) {
                    out.push((name.clone(), object(name, bad)));
                }
                for (inner, bad) in cases(model, target, depth + 1) {
                    out.push((format!("{name}/{inner}"), object(name, bad)));
                }
            }
        }
        "list" => {
            let item = s["member"]["shape"].as_str().unwrap();
            for bad in wrong(model, item) {
                out.push(("[0]".into(), json!([bad])));
            }
            for (inner, bad) in cases(model, item, depth + 1) {
                out.push((format!("[0]/{inner}"), json!([bad])));
            }
        }
        "map" => {
            let value = s["value"]["shape"].as_str().unwrap();
            for bad in wrong(model, value) {
                out.push(("{k}".into(), json!({ "k": bad })));
            }
        }
        _ => {}
    }
    out
}

fn assert_table<T: DeserializeOwned + JsonType>(model: &Value, shape: &str) -> usize {
    let ok: Result<T, _> = Json::decode(right(model, shape, 0).to_string().as_bytes());
    assert!(ok.is_ok(), "{shape}: a body of the right types must decode");
    let table = cases(model, shape, 0);
    for (place, body) in &table {
        let err = match Json::decode::<T>(body.to_string().as_bytes()) {
            Ok(_) => panic!("{shape}: {place} = {body} was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.code, "SerializationException", "{shape}: {place}");
        assert_eq!(err.status, 400);
        assert!(
            !err.message.contains(MARK) && !err.message.contains("12345"),
            "{shape}: {place}: the value was echoed: {}",
            err.message
        );
        let top = place.split('/').next().unwrap();
        assert!(
            err.message.contains(&format!("'{top}")),
            "{shape}: {place}: the message names no place: {}",
            err.message
        );
    }
    table.len()
}

#[test]
fn the_five_core_inputs_take_only_their_json_types() {
    let sc_model = model("servicecatalog", "2015-12-10");
    let proton_model = model("proton", "2020-07-20");
    let mut total = 0;
    total += assert_table::<sc::ExecuteProvisionedProductPlanInput>(
        &sc_model,
        "ExecuteProvisionedProductPlanInput",
    );
    total += assert_table::<sc::NotifyProvisionProductEngineWorkflowResultInput>(
        &sc_model,
        "NotifyProvisionProductEngineWorkflowResultInput",
    );
    total += assert_table::<sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput>(
        &sc_model,
        "NotifyUpdateProvisionedProductEngineWorkflowResultInput",
    );
    total += assert_table::<sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput>(
        &sc_model,
        "NotifyTerminateProvisionedProductEngineWorkflowResultInput",
    );
    total += assert_table::<proton::NotifyResourceDeploymentStatusChangeInput>(
        &proton_model,
        "NotifyResourceDeploymentStatusChangeInput",
    );
    assert!(
        total > 150,
        "the table is as large as the models make it: {total}"
    );
}

#[test]
fn the_reported_bodies_are_refused() {
    // What a hostile engine sent: each answered 200 and settled the record before.
    for body in [
        r#"{"ResourceIdentifier": []}"#,
        r#"{"ResourceIdentifier": [{"UniqueTag": {"Key": "k", "Value": "v"}}]}"#,
        r#"{"Outputs": [[]]}"#,
        r#"{"Outputs": [["k", "v", "d"]]}"#,
    ] {
        let err =
            Json::decode::<sc::NotifyProvisionProductEngineWorkflowResultInput>(body.as_bytes())
                .unwrap_err();
        assert_eq!(err.code, "SerializationException", "{body}");
    }
    for body in [r#"{"outputs": [[]]}"#, r#"{"outputs": "s3cr3t-marker"}"#] {
        let err =
            Json::decode::<proton::NotifyResourceDeploymentStatusChangeInput>(body.as_bytes())
                .unwrap_err();
        assert_eq!(err.code, "SerializationException", "{body}");
        assert!(!err.message.contains(MARK), "{}", err.message);
    }
    // Nulls stand for absent members; unknown members are ignored.
    let ok = Json::decode::<sc::NotifyProvisionProductEngineWorkflowResultInput>(
        br#"{"Outputs": null, "Unknown": [1, {"a": 2}]}"#,
    )
    .unwrap();
    assert!(ok.outputs.is_none());
}
