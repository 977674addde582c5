//! Proton's readers: a template bundle (`.tar.gz`, first byte 0) checked as an environment and
//! a service template; a schema (1) and a spec validated against it (the input split at the
//! first NUL); or a manifest read as YAML (2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond::proton::schema::{yaml_to_json, Schema};
use provisiond::proton::template::{check_bundle, TemplateKind};
use provisiond_formats::bundle;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(files) = bundle::read(rest) {
                let _ = check_bundle(TemplateKind::Environment, &files);
                let _ = check_bundle(TemplateKind::Service, &files);
            }
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let (schema, spec) = text.split_once('\0').unwrap_or((&text, ""));
            if let Ok(schema) = Schema::parse(schema) {
                if let Ok(spec) = yaml_to_json(spec) {
                    for ty in [&schema.environment_input_type, &schema.service_input_type]
                        .into_iter()
                        .flatten()
                    {
                        let _ = schema.validate(ty, &spec, "spec");
                    }
                }
            }
        }
        _ => {
            let _ = yaml_to_json(&String::from_utf8_lossy(rest));
        }
    }
});
