//! Template schemas and specs: YAML read with `yaml-rust2` into JSON values, the
//! `schema/schema.yaml` of a template version (an OpenAPI-style `types` map and the names of the
//! input types), and validation of a spec's inputs against it with defaults filled in.
//!
//! Supported property keywords: `type` (`string`, `number`, `integer`, `boolean`, `array`,
//! `object`), `default`, `enum`, `minLength`/`maxLength`, `minimum`/`maximum`,
//! `minItems`/`maxItems`, `items`, `description`; `required` on the input type.

use serde_json::{Map, Value};

/// Parses YAML text into a JSON value (the first document; an empty text is `null`).
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().next().map(convert).unwrap_or(Value::Null))
}

fn convert(y: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(convert).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.into_iter()
                .map(|(k, v)| {
                    let key = match convert(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, convert(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// A template version's schema: its input types by name.
#[derive(Debug, Clone)]
pub struct Schema {
    types: Map<String, Value>,
    /// `environment_input_type`.
    pub environment_input_type: Option<String>,
    /// `service_input_type`.
    pub service_input_type: Option<String>,
    /// `pipeline_input_type`.
    pub pipeline_input_type: Option<String>,
}

impl Schema {
    /// Reads `schema/schema.yaml`.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let doc = yaml_to_json(text).map_err(|e| format!("schema/schema.yaml is not YAML: {e}"))?;
        let schema = doc
            .get("schema")
            .and_then(Value::as_object)
            .ok_or("schema/schema.yaml has no `schema` map")?;
        let types = schema
            .get("types")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let name = |key: &str| schema.get(key).and_then(Value::as_str).map(String::from);
        let parsed = Schema {
            types,
            environment_input_type: name("environment_input_type"),
            service_input_type: name("service_input_type"),
            pipeline_input_type: name("pipeline_input_type"),
        };
        for input in [
            &parsed.environment_input_type,
            &parsed.service_input_type,
            &parsed.pipeline_input_type,
        ]
        .into_iter()
        .flatten()
        {
            if !parsed.types.contains_key(input) {
                return Err(format!(
                    "schema/schema.yaml names the input type {input}, which is not in `types`"
                ));
            }
        }
        Ok(parsed)
    }

    /// Checks `inputs` (a spec's input map, `null` for none) against the type `type_name` and
    /// returns them with defaults filled in. `what` names the spec in messages.
    pub fn validate(&self, type_name: &str, inputs: &Value, what: &str) -> Result<Value, String> {
        let ty = self
            .types
            .get(type_name)
            .ok_or_else(|| format!("the schema has no type {type_name}"))?;
        let empty = Map::new();
        let given = match inputs {
            Value::Null => &empty,
            Value::Object(map) => map,
            _ => return Err(format!("the {what} must be a map of inputs")),
        };
        let properties = ty
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut problems = Vec::new();
        for key in given.keys() {
            if !properties.contains_key(key) {
                problems.push(format!("{what} input {key} is not defined in the schema"));
            }
        }
        let required: Vec<&str> = ty
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        for (name, property) in &properties {
            match given.get(name).filter(|v| !v.is_null()) {
                Some(value) => {
                    if let Err(e) = check(property, value) {
                        problems.push(format!("{what} input {name} {e}"));
                    }
                    out.insert(name.clone(), value.clone());
                }
                None => match property.get("default") {
                    Some(default) => {
                        out.insert(name.clone(), default.clone());
                    }
                    None if required.contains(&name.as_str()) => {
                        problems.push(format!("{what} input {name} is required"));
                    }
                    None => {}
                },
            }
        }
        if problems.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Checks one value against one property definition.
fn check(property: &Value, value: &Value) -> Result<(), String> {
    let ty = property.get("type").and_then(Value::as_str).unwrap_or("");
    let fits = match ty {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !fits {
        return Err(format!("must be of type {ty}"));
    }
    if let Some(allowed) = property.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("must be one of [{}]", list.join(", ")));
        }
    }
    let bound = |key: &str| property.get(key).and_then(Value::as_f64);
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as f64;
        if bound("minLength").is_some_and(|min| len < min) {
            return Err(format!(
                "must be at least {} characters long",
                bound("minLength").unwrap_or(0.0)
            ));
        }
        if bound("maxLength").is_some_and(|max| len > max) {
            return Err(format!(
                "must be at most {} characters long",
                bound("maxLength").unwrap_or(0.0)
            ));
        }
    }
    if let Some(n) = value.as_f64() {
        if bound("minimum").is_some_and(|min| n < min) {
            return Err(format!("must be at least {}", property["minimum"]));
        }
        if bound("maximum").is_some_and(|max| n > max) {
            return Err(format!("must be at most {}", property["maximum"]));
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as f64;
        if bound("minItems").is_some_and(|min| count < min) {
            return Err(format!("must have at least {} items", property["minItems"]));
        }
        if bound("maxItems").is_some_and(|max| count > max) {
            return Err(format!("must have at most {} items", property["maxItems"]));
        }
        if let Some(item_type) = property.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(item_type, item).map_err(|e| format!("item {} {e}", i + 1))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"
schema:
  format:
    openapi: "3.0.0"
  environment_input_type: "EnvInput"
  types:
    EnvInput:
      type: object
      properties:
        vpc_cidr:
          type: string
          default: "10.0.0.0/16"
        size:
          type: integer
          minimum: 1
          maximum: 10
        zones:
          type: array
          items:
            type: string
        tier:
          type: string
          enum: [dev, prod]
      required:
        - tier
"#;

    #[test]
    fn specs_are_checked_and_defaults_filled() {
        let schema = Schema::parse(SCHEMA).unwrap();
        assert_eq!(schema.environment_input_type.as_deref(), Some("EnvInput"));
        let spec = yaml_to_json("tier: dev\nsize: 3\nzones: [a, b]\n").unwrap();
        let out = schema
            .validate("EnvInput", &spec, "environment spec")
            .unwrap();
        assert_eq!(
            out,
            json!({"vpc_cidr": "10.0.0.0/16", "size": 3, "zones": ["a", "b"], "tier": "dev"})
        );
        let bad = yaml_to_json("size: 30\nzones: [1]\ncolour: red\n").unwrap();
        let e = schema
            .validate("EnvInput", &bad, "environment spec")
            .unwrap_err();
        assert!(e.contains("input colour is not defined"), "{e}");
        assert!(e.contains("input size must be at most 10"), "{e}");
        assert!(
            e.contains("input zones item 1 must be of type string"),
            "{e}"
        );
        assert!(e.contains("input tier is required"), "{e}");
        let e = schema
            .validate("EnvInput", &yaml_to_json("tier: test").unwrap(), "spec")
            .unwrap_err();
        assert!(e.contains("must be one of"), "{e}");
        assert!(Schema::parse("schema: {environment_input_type: Nope, types: {}}").is_err());
    }
}
