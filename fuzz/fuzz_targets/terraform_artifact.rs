//! The Terraform artifact reader: a `.tar.gz` (first byte even) unpacked within its size limit
//! and its `variable` blocks parsed, or (first byte odd) HCL text parsed straight, which reaches
//! the variable parser without gzip's checksum in the way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond::catalog::terraform::{read_archive, variables};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(files) = read_archive(rest) {
            let _ = variables(&files);
        }
    } else if let Ok(text) = std::str::from_utf8(rest) {
        let _ = variables(&[("main.tf".to_string(), text.to_string())]);
    }
});
