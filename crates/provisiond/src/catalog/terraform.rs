//! Reading Terraform artifacts: a `.tar.gz` whose root holds `.tf` files (`read_archive`), and the
//! `variable` blocks of those files (`variables`), parsed with a real HCL parser. These become a
//! product version's `ProvisioningArtifactParameters`.

use flate2::read::GzDecoder;
use std::io::Read;

/// Most bytes an archive may unpack to, against decompression bombs.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 20;

/// A Terraform input variable, as Service Catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name (`ParameterKey`).
    pub name: String,
    /// The default as text: strings unquoted, other values as JSON text (`DefaultValue`).
    pub default: Option<String>,
    /// The type expression as written, e.g. `list(string)` (`ParameterType`).
    pub type_expr: Option<String>,
    /// The description (`Description`).
    pub description: Option<String>,
    /// Whether the variable is `sensitive` (`IsNoEcho`).
    pub sensitive: bool,
}

/// The `.tf` files at the root of a gzipped tar archive, as `(file name, text)` in archive order.
/// An archive that is not a `.tar.gz`, or has no `.tf` file at its root, is an error saying so.
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
        let name = path.trim_start_matches("./");
        if name.contains('/') || !name.ends_with(".tf") {
            continue;
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("{name} is not UTF-8 text: {e}"))?;
        files.push((name.to_string(), text));
    }
    if files.is_empty() {
        return Err("the artifact has no .tf file at the root of its archive".into());
    }
    Ok(files)
}

fn expression_text(expr: &hcl::Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_default()
}

/// The default value as Service Catalog shows it: strings as they are, anything else as JSON.
fn default_text(expr: &hcl::Expression) -> Option<String> {
    match hcl::Value::from(expr.clone()) {
        hcl::Value::Null => None,
        hcl::Value::String(s) => Some(s),
        other => Some(serde_json::to_string(&other).unwrap_or_default()),
    }
}

/// Every `variable` block of `files`, sorted by name. A file that does not parse is an error
/// naming the file and the parser's reason.
pub fn variables(files: &[(String, String)]) -> Result<Vec<Variable>, String> {
    let mut out = Vec::new();
    for (name, text) in files {
        let body = hcl::parse(text).map_err(|e| format!("{name}: {e}"))?;
        for block in body.blocks().filter(|b| b.identifier() == "variable") {
            let [label] = block.labels() else {
                return Err(format!("{name}: a variable block needs exactly one label"));
            };
            let mut variable = Variable {
                name: label.as_str().to_string(),
                default: None,
                type_expr: None,
                description: None,
                sensitive: false,
            };
            for attribute in block.body().attributes() {
                match attribute.key() {
                    "default" => variable.default = default_text(attribute.expr()),
                    "type" => variable.type_expr = Some(expression_text(attribute.expr())),
                    "description" => {
                        variable.description = match attribute.expr() {
                            hcl::Expression::String(s) => Some(s.clone()),
                            other => Some(expression_text(other)),
                        }
                    }
                    "sensitive" => {
                        variable.sensitive = matches!(attribute.expr(), hcl::Expression::Bool(true))
                    }
                    _ => {}
                }
            }
            if out.iter().any(|v: &Variable| v.name == variable.name) {
                return Err(format!(
                    "{name}: variable {} is declared twice",
                    variable.name
                ));
            }
            out.push(variable);
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

    #[test]
    fn bad_archives_and_bad_hcl_say_why() {
        assert!(read_archive(b"not gzip").unwrap_err().contains(".tar.gz"));
        let no_tf = tar_gz(&[("README.md", "hi")]);
        assert!(read_archive(&no_tf).unwrap_err().contains("no .tf file"));
        let broken = vec![("main.tf".to_string(), "variable \"x\" {".to_string())];
        assert!(variables(&broken).unwrap_err().starts_with("main.tf:"));
        let twice = vec![(
            "a.tf".to_string(),
            "variable \"x\" {}\nvariable \"x\" {}".to_string(),
        )];
        assert!(variables(&twice).unwrap_err().contains("declared twice"));
    }
}
