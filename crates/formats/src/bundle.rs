//! Template and deployment bundles: `.tar.gz` archives read into a sorted map of paths to bytes,
//! and written back deterministically (sorted paths, fixed modes and times) so the same bundle
//! always has the same bytes.

use flate2::read::GzDecoder;
use std::collections::BTreeMap;
use std::io::Read;

/// Largest unpacked bundle: 64 MiB.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 20;

/// The files of a bundle: path (no leading `./`) → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Every regular file of a gzipped tar archive. Paths that climb out (`..`) or are absolute are
/// refused: a bundle is written into git trees and working directories.
pub fn read(bytes: &[u8]) -> Result<Files, String> {
    let decoder = GzDecoder::new(bytes).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(decoder);
    let mut files = Files::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("the bundle is not a .tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| format!("the bundle is not a readable .tar.gz archive: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry
            .path()
            .map_err(|e| format!("a bundle entry has a bad path: {e}"))?
            .to_string_lossy()
            .into_owned();
        let path = raw.trim_start_matches("./").to_string();
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return Err(format!("the bundle entry {raw} leaves the bundle"));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading {path} from the bundle: {e}"))?;
        files.insert(path, bytes);
    }
    Ok(files)
}

/// The files under `folder/` (without that prefix).
pub fn folder(files: &Files, folder: &str) -> Files {
    let prefix = format!("{folder}/");
    files
        .iter()
        .filter_map(|(path, bytes)| {
            path.strip_prefix(&prefix)
                .filter(|rest| !rest.is_empty())
                .map(|rest| (rest.to_string(), bytes.clone()))
        })
        .collect()
}

/// A `.tar.gz` of `files`, byte-for-byte the same for the same files.
pub fn write(files: &Files) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .expect("writing a tar entry to memory cannot fail");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finishing an in-memory archive cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_round_trip_and_stay_inside() {
        let mut files = Files::new();
        files.insert("infrastructure/main.tf".into(), b"x".to_vec());
        files.insert("schema/schema.yaml".into(), b"y".to_vec());
        let bytes = write(&files);
        assert_eq!(bytes, write(&files), "deterministic");
        assert_eq!(read(&bytes).unwrap(), files);
        let infra = folder(&files, "infrastructure");
        assert_eq!(infra.keys().collect::<Vec<_>>(), ["main.tf"]);
        assert!(read(b"not gzip").is_err());
    }
}
