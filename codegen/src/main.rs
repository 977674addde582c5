//! `provisiond-codegen`: vendors the botocore models and generates the wire shapes, validators
//! and operation dispatch of `crates/model` from them.
//!
//! ```text
//! cargo run -p provisiond-codegen -- vendor ../shared/models   # strip docs, write data/botocore/
//! cargo run -p provisiond-codegen                              # regenerate crates/model/src/*/generated.rs
//! cargo run -p provisiond-codegen -- --check                   # fail if the committed output is stale
//! ```

mod javaregex;
mod shapes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One AWS service that provisiond serves: where its vendored model lives and which module of
/// `crates/model` receives the generated code.
pub struct Service {
    pub module: &'static str,
    pub model_dir: &'static str,
    pub model_file_prefix: &'static str,
}

pub const SERVICES: &[Service] = &[
    Service {
        module: "servicecatalog",
        model_dir: "data/botocore/servicecatalog/2015-12-10",
        model_file_prefix: "servicecatalog-2015-12-10",
    },
    Service {
        module: "proton",
        model_dir: "data/botocore/proton/2020-07-20",
        model_file_prefix: "proton-2020-07-20",
    },
    Service {
        module: "sqs",
        model_dir: "data/botocore/sqs/2012-11-05",
        model_file_prefix: "sqs-2012-11-05",
    },
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen sits one level below the workspace root")
        .to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("vendor") => {
            let from = args
                .get(1)
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("../shared/models"));
            vendor(&root, &from)
        }
        Some("--check") => generate(&root, true),
        None => generate(&root, false),
        Some(other) => Err(format!("unknown argument {other:?}; see the module doc")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provisiond-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies each model from `from` into `data/botocore/`, keeping only names, types and
/// constraints (every `documentation` string is dropped).
fn vendor(root: &Path, from: &Path) -> Result<(), String> {
    for service in SERVICES {
        let source = from.join(format!("{}.json", service.model_file_prefix));
        let text = std::fs::read_to_string(&source)
            .map_err(|e| format!("reading {}: {e}", source.display()))?;
        let mut model: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        strip_documentation(&mut model);
        let dir = root.join(service.model_dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut out = serde_json::to_string_pretty(&model).map_err(|e| e.to_string())?;
        out.push('\n');
        std::fs::write(dir.join("service-2.json"), out).map_err(|e| e.to_string())?;
        println!("vendored {}", source.display());
    }
    Ok(())
}

fn strip_documentation(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("documentation");
            map.remove("deprecatedMessage");
            for v in map.values_mut() {
                strip_documentation(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_documentation),
        _ => {}
    }
}

/// Formats generated code exactly as `cargo fmt` would, so the committed file stays stable.
fn rustfmt(code: &str) -> Result<String, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = code.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked".to_string())?
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err("rustfmt rejected the generated code".into());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

fn generate(root: &Path, check: bool) -> Result<(), String> {
    let mut stale = Vec::new();
    for service in SERVICES {
        let model_path = root.join(service.model_dir).join("service-2.json");
        let text = std::fs::read_to_string(&model_path)
            .map_err(|e| format!("reading {}: {e}", model_path.display()))?;
        let model: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", model_path.display()))?;
        let code = rustfmt(&shapes::generate_service(service, &model)?)?;
        let out_path = root
            .join("crates/model/src")
            .join(service.module)
            .join("generated.rs");
        let current = std::fs::read_to_string(&out_path).unwrap_or_default();
        if current == code {
            continue;
        }
        if check {
            stale.push(out_path.display().to_string());
        } else {
            std::fs::create_dir_all(out_path.parent().expect("has a parent"))
                .map_err(|e| e.to_string())?;
            std::fs::write(&out_path, code).map_err(|e| e.to_string())?;
            println!("wrote {}", out_path.display());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "generated code is stale: {}; run `cargo run -p provisiond-codegen` and commit",
            stale.join(", ")
        ))
    }
}
