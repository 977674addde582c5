//! Reading Terraform artifacts as the reference engine's parameter parser reads them (what AWS
//! answers `DescribeProvisioningParameters` with) and as Terraform loads a root module: the
//! configuration files at the root of a `.tar.gz` (`read_archive`: `.tf` and `.tf.json`, also
//! under `./`, without the files Terraform ignores), and their `variable` blocks (`variables`),
//! override files merged into them. These become a product version's
//! `ProvisioningArtifactParameters`; subdirectories (local modules) are the engine's business.

use flate2::read::GzDecoder;
use hcl::edit::Span;
use std::io::Read;

/// Most bytes an archive may unpack to, against decompression bombs.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 20;

/// A Terraform input variable, as Service Catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name (`ParameterKey`).
    pub name: String,
    /// The default as text: strings unquoted, other values as JSON text with object keys in
    /// sorted order (`DefaultValue`); `None` when there is none or it is `null`.
    pub default: Option<String>,
    /// The type expression exactly as written in the source, e.g. `list(string)`
    /// (`ParameterType`).
    pub type_expr: Option<String>,
    /// The description (`Description`).
    pub description: Option<String>,
    /// Whether the variable is `sensitive` (`IsNoEcho`).
    pub sensitive: bool,
}

/// The file name of a path, and whether Terraform reads it as configuration of the module it
/// sits in: `.tf` or `.tf.json`, not hidden (`.` — macOS's `._*` AppleDouble files among them),
/// not an editor's backup (`~`, `#…#`).
fn is_configuration(name: &str) -> bool {
    !(name.starts_with('.')
        || name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#')))
        && (name.ends_with(".tf") || name.ends_with(".tf.json"))
}

/// Whether Terraform treats the file as an override file: `override.tf`, `*_override.tf` and
/// their `.tf.json` forms.
pub fn is_override(name: &str) -> bool {
    let stem = name
        .strip_suffix(".tf.json")
        .or_else(|| name.strip_suffix(".tf"))
        .unwrap_or(name);
    stem == "override" || stem.ends_with("_override")
}

/// The root module's configuration files of a gzipped tar archive, as `(file name, text)` in
/// name order. Paths may start with `./`; files in subdirectories and files Terraform ignores are
/// skipped. An archive that is not a `.tar.gz`, or has no configuration file at its root, is an
/// error saying so.
pub fn read_archive(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let decoder = GzDecoder::new(bytes).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(decoder);
    let mut files = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("the artifact is not a .tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| format!("the artifact is not a readable .tar.gz archive: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("an archive entry has a bad path: {e}"))?
            .to_string_lossy()
            .into_owned();
        let mut name = path.as_str();
        while let Some(rest) = name.strip_prefix("./") {
            name = rest;
        }
        if name.contains('/') || !is_configuration(name) {
            continue;
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("{name} is not UTF-8 text: {e}"))?;
        files.push((name.to_string(), text));
    }
    if files.is_empty() {
        return Err("the artifact has no .tf or .tf.json file at the root of its archive".into());
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The attributes one `variable` block sets; `None` for those it leaves out (an override block
/// changes only the attributes it sets, as Terraform merges them).
#[derive(Debug, Default)]
struct Declared {
    name: String,
    default: Option<Option<String>>,
    type_expr: Option<String>,
    description: Option<String>,
    sensitive: Option<bool>,
}

/// A default value as the reference parser shows it: a string as it is, anything else as compact
/// JSON with object keys sorted and whole numbers without a fraction; `None` for `null`.
fn default_text(value: serde_json::Value) -> Option<String> {
    fn normalise(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                    Value::from(f as i64)
                }
                _ => Value::Number(n),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
            // Keys sorted, as Go's encoder writes them (whatever order serde_json's map keeps:
            // another crate of the build may turn on its `preserve_order`).
            Value::Object(map) => {
                let sorted: std::collections::BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, normalise(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            other => other,
        }
    }
    match normalise(value) {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The `variable` blocks of one HCL file.
fn declared_in_hcl(name: &str, text: &str) -> Result<Vec<Declared>, String> {
    let body = hcl::edit::parser::parse_body(text).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::new();
    for block in body.blocks().filter(|b| b.ident.as_str() == "variable") {
        let [label] = &block.labels[..] else {
            return Err(format!("{name}: a variable block needs exactly one label"));
        };
        let mut declared = Declared {
            name: label.as_str().to_string(),
            ..Default::default()
        };
        for attribute in block.body.attributes() {
            let expr = hcl::Expression::from(attribute.value.clone());
            match attribute.key.as_str() {
                "default" => {
                    let value = serde_json::to_value(hcl::Value::from(expr)).unwrap_or_default();
                    declared.default = Some(default_text(value));
                }
                "type" => {
                    // As written; the old quoted form (`type = "string"`) is its keyword.
                    declared.type_expr = Some(match expr {
                        hcl::Expression::String(s) => s,
                        _ => attribute
                            .value
                            .span()
                            .and_then(|span| text.get(span))
                            .map(str::to_string)
                            .unwrap_or_default(),
                    });
                }
                "description" => {
                    declared.description = Some(match expr {
                        hcl::Expression::String(s) => s,
                        other => hcl::format::to_string(&other).unwrap_or_default(),
                    })
                }
                "sensitive" => {
                    declared.sensitive = Some(matches!(expr, hcl::Expression::Bool(true)))
                }
                _ => {}
            }
        }
        out.push(declared);
    }
    Ok(out)
}

/// The `variable` blocks of one JSON configuration file (`{"variable": {"name": {…}}}`, or a
/// list of such objects).
fn declared_in_json(name: &str, text: &str) -> Result<Vec<Declared>, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let blocks: Vec<&Value> = match doc.get("variable") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    let mut out = Vec::new();
    for block in blocks {
        let Value::Object(variables) = block else {
            return Err(format!("{name}: \"variable\" must hold objects"));
        };
        for (variable, attributes) in variables {
            let Value::Object(attributes) = attributes else {
                return Err(format!("{name}: variable {variable} must be an object"));
            };
            let text = |key: &str| match attributes.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
                None => None,
            };
            out.push(Declared {
                name: variable.clone(),
                default: attributes.get("default").cloned().map(default_text),
                type_expr: text("type"),
                description: text("description"),
                sensitive: attributes.get("sensitive").map(|v| v == &Value::Bool(true)),
            });
        }
    }
    Ok(out)
}

impl Declared {
    /// The variable a block declares on its own (what it leaves out at its defaults).
    fn into_variable(self) -> Variable {
        Variable {
            name: self.name,
            default: self.default.flatten(),
            type_expr: self.type_expr,
            description: self.description,
            sensitive: self.sensitive.unwrap_or(false),
        }
    }
}

fn declared_in(name: &str, text: &str) -> Result<Vec<Declared>, String> {
    if name.ends_with(".tf.json") {
        declared_in_json(name, text)
    } else {
        declared_in_hcl(name, text)
    }
}

/// Every `variable` block of `files`, sorted by name: those of the primary files, then each
/// override file (in name order) replacing the attributes it sets, as Terraform merges them (a
/// variable only an override file declares is listed, as the reference parser lists it). A file
/// that does not parse, or a variable declared twice among the primary files, is an error naming
/// the file.
pub fn variables(files: &[(String, String)]) -> Result<Vec<Variable>, String> {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let (overrides, primaries): (Vec<_>, Vec<_>) =
        sorted.into_iter().partition(|(name, _)| is_override(name));
    let mut out: Vec<Variable> = Vec::new();
    for (name, text) in primaries {
        for d in declared_in(name, text)? {
            if out.iter().any(|v| v.name == d.name) {
                return Err(format!("{name}: variable {} is declared twice", d.name));
            }
            out.push(d.into_variable());
        }
    }
    for (name, text) in overrides {
        for d in declared_in(name, text)? {
            let Some(v) = out.iter_mut().find(|v| v.name == d.name) else {
                // The reference parser lists it (terraform itself will refuse to apply it).
                out.push(d.into_variable());
                continue;
            };
            if let Some(default) = d.default {
                v.default = default;
            }
            if let Some(type_expr) = d.type_expr {
                v.type_expr = Some(type_expr);
            }
            if let Some(description) = d.description {
                v.description = Some(description);
            }
            if let Some(sensitive) = d.sensitive {
                v.sensitive = sensitive;
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `.tar.gz` holding `files` (name, text), made the way `tar czf` would.
    pub(crate) fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
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

    const MAIN: &str = r#"
variable "bucket_name" {
  type        = string
  description = "Name of the bucket"
}
variable "size" {
  type    = number
  default = 3
}
variable "tags" {
  type    = map(string)
  default = { team = "platform" }
}
variable "password" {
  type      = string
  sensitive = true
  default   = "hunter2"
}
variable "zones" {
  type    = list(string)
  default = ["a", "b"]
}
output "name" { value = var.bucket_name }
"#;

    #[test]
    fn variables_read_like_the_reference_parser() {
        let archive = tar_gz(&[
            ("./main.tf", MAIN),
            ("modules/x/ignored.tf", "variable \"nested\" {}"),
            ("README.md", "hi"),
        ]);
        let files = read_archive(&archive).unwrap();
        assert_eq!(
            files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["main.tf"]
        );
        let vars = variables(&files).unwrap();
        let names: Vec<_> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["bucket_name", "password", "size", "tags", "zones"]);
        let get = |n: &str| vars.iter().find(|v| v.name == n).unwrap();
        assert_eq!(get("bucket_name").default, None);
        assert_eq!(get("bucket_name").type_expr.as_deref(), Some("string"));
        assert_eq!(
            get("bucket_name").description.as_deref(),
            Some("Name of the bucket")
        );
        assert_eq!(get("size").default.as_deref(), Some("3"));
        assert_eq!(
            get("tags").default.as_deref(),
            Some(r#"{"team":"platform"}"#)
        );
        assert_eq!(get("tags").type_expr.as_deref(), Some("map(string)"));
        assert_eq!(get("zones").default.as_deref(), Some(r#"["a","b"]"#));
        assert!(get("password").sensitive);
        assert_eq!(get("password").default.as_deref(), Some("hunter2"));
    }

    const PRIMARY: &str = r#"
variable "region_name" {
  type    = string
  default = "eu-west-1"
  validation {
    condition     = length(var.region_name) > 3
    error_message = "Too short."
  }
}
variable "replicas" {
  type        = number
  description = "How many"
  sensitive   = true
}
variable "settings" {
  type = object({
    enabled = bool
    zone    = string
    alias   = string
  })
  default = {
    zone    = "z1"
    enabled = true
    alias   = "main"
  }
  description = "All the settings"
}
variable "ports" {
  type    = set(number)
  default = [443, 80]
}
variable "pair" {
  type    = tuple([string, bool])
  default = ["x", false]
}
variable "ratio" {
  type    = number
  default = 2.0
}
variable "legacy" {
  type    = "string"
  default = null
}
"#;

    const OVERRIDE: &str = r#"
variable "region_name" {
  default = "us-west-2"
}
variable "replicas" {
  type        = string
  description = "How many, as text"
}
variable "settings" {
  sensitive = true
}
variable "only_here" {
  type        = string
  default     = "hi"
  description = "Declared by the override file alone"
  sensitive   = true
}
"#;

    const JSON: &str = r#"{
  "variable": {
    "from_json": {"type": "map(string)", "default": {"b": "2", "a": "1"}, "description": "JSON syntax"},
    "flag": {"type": "bool", "default": true}
  },
  "output": {"x": {"value": "${var.flag}"}}
}"#;

    #[test]
    fn archives_are_read_as_terraform_reads_a_root_module() {
        let archive = tar_gz(&[
            ("./main.tf", PRIMARY),
            ("./._main.tf", "\u{0}\u{5}\u{16}\u{7} not text"),
            ("._variables.tf", "\u{0}\u{5}"),
            ("./.hidden.tf", "variable \"hidden\" {}"),
            ("./variables.tf.json", JSON),
            ("./override.tf", OVERRIDE),
            ("./modules/net/main.tf", "variable \"nested\" {}"),
            ("./main.tf~", "variable \"backup\" {}"),
            ("./README.md", "hi"),
        ]);
        let files = read_archive(&archive).unwrap();
        assert_eq!(
            files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["main.tf", "override.tf", "variables.tf.json"]
        );
        let vars = variables(&files).unwrap();
        let get = |n: &str| {
            vars.iter()
                .find(|v| v.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        assert_eq!(vars.len(), 10);
        // Overrides replace what they set, and only that.
        assert_eq!(get("region_name").default.as_deref(), Some("us-west-2"));
        assert_eq!(get("region_name").type_expr.as_deref(), Some("string"));
        let replicas = get("replicas");
        assert_eq!(replicas.type_expr.as_deref(), Some("string"));
        assert_eq!(replicas.description.as_deref(), Some("How many, as text"));
        assert!(replicas.sensitive, "not overridden, so still sensitive");
        assert_eq!(replicas.default, None);
        let settings = get("settings");
        assert!(settings.sensitive);
        // The type as written, whitespace and all; object keys of defaults sorted.
        assert_eq!(
            settings.type_expr.as_deref(),
            Some("object({\n    enabled = bool\n    zone    = string\n    alias   = string\n  })")
        );
        assert_eq!(
            settings.default.as_deref(),
            Some(r#"{"alias":"main","enabled":true,"zone":"z1"}"#)
        );
        assert_eq!(settings.description.as_deref(), Some("All the settings"));
        assert_eq!(get("ports").default.as_deref(), Some("[443,80]"));
        assert_eq!(get("ports").type_expr.as_deref(), Some("set(number)"));
        assert_eq!(get("pair").default.as_deref(), Some(r#"["x",false]"#));
        assert_eq!(
            get("pair").type_expr.as_deref(),
            Some("tuple([string, bool])")
        );
        assert_eq!(get("ratio").default.as_deref(), Some("2"));
        assert_eq!(get("legacy").type_expr.as_deref(), Some("string"));
        assert_eq!(get("legacy").default, None, "null is no default");
        let only = get("only_here");
        assert!(only.sensitive && only.default.as_deref() == Some("hi"));
        // JSON syntax.
        assert_eq!(get("from_json").type_expr.as_deref(), Some("map(string)"));
        assert_eq!(
            get("from_json").default.as_deref(),
            Some(r#"{"a":"1","b":"2"}"#)
        );
        assert_eq!(get("flag").default.as_deref(), Some("true"));
    }

    #[test]
    fn override_files_are_named_as_terraform_names_them() {
        for name in [
            "override.tf",
            "x_override.tf",
            "override.tf.json",
            "a_b_override.tf.json",
        ] {
            assert!(is_override(name), "{name}");
        }
        for name in ["main.tf", "xoverride.tf", "override_x.tf", "overrides.tf"] {
            assert!(!is_override(name), "{name}");
        }
    }

    #[test]
    fn bad_archives_and_bad_hcl_say_why() {
        assert!(read_archive(b"not gzip").unwrap_err().contains(".tar.gz"));
        let no_tf = tar_gz(&[("README.md", "hi")]);
        assert!(read_archive(&no_tf)
            .unwrap_err()
            .contains("no .tf or .tf.json file"));
        let broken = vec![("main.tf".to_string(), "variable \"x\" {".to_string())];
        assert!(variables(&broken).unwrap_err().starts_with("main.tf:"));
        let twice = vec![(
            "a.tf".to_string(),
            "variable \"x\" {}\nvariable \"x\" {}".to_string(),
        )];
        assert!(variables(&twice).unwrap_err().contains("declared twice"));
    }
}
