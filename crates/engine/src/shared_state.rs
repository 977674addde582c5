//! What the Terraform engine keeps of a provisioned product between runs (terraform's state and
//! the last applied configuration), shared through the account's object store so that any
//! engine (another replica's, or this one after its data directory was lost) picks the product
//! up where the last run left it. The working directory stays a local cache: the shared copy
//! is unpacked over it before a run and written back after.

use crate::client::{CallError, Client};
use provisiond_formats::bundle::{self, Files};
use std::path::Path;

/// The bucket of each account's object store that holds the engine's shared state.
pub const BUCKET: &str = "provisiond-engine-state";

/// What of a working directory is shared: state and the last applied configuration, not
/// plugins (`terraform init` makes those again).
const SHARED: [&str; 3] = [
    "terraform.tfstate",
    "terraform.tfstate.backup",
    crate::terraform::APPLIED,
];

/// The object key of a provisioned product's shared state.
pub fn product_key(provisioned_product_id: &str) -> String {
    format!(
        "{}/state.tar.gz",
        crate::terraform::sanitize(provisioned_product_id)
    )
}

/// The object key of a Proton resource's shared state (an environment, service instance or
/// component, by its ARN).
pub fn proton_key(resource_arn: &str) -> String {
    format!(
        "proton/{}/state.tar.gz",
        crate::terraform::sanitize(resource_arn)
    )
}

/// The state saved under `key`, if any engine saved one.
pub async fn fetch(client: &Client, key: &str) -> Result<Option<Vec<u8>>, CallError> {
    match client.get_object(BUCKET, key).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.code == "NoSuchKey" || e.code == "NoSuchBucket" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Saves `packed` under `key`, or removes what is there when the run left no state (a
/// destroy).
pub async fn save(client: &Client, key: &str, packed: Option<Vec<u8>>) -> Result<(), CallError> {
    match packed {
        Some(bytes) => {
            client.ensure_bucket(BUCKET).await?;
            client.put_object(BUCKET, key, bytes).await
        }
        None => match client.delete_object(BUCKET, key).await {
            Err(e) if e.code == "NoSuchBucket" => Ok(()),
            other => other,
        },
    }
}

/// Claims a Proton deployment for the engine `holder` names: `true` for the one engine, of
/// all that see the deployment's commit, whose claim was written first (S3's conditional
/// create decides). Claims stay after the run, so an engine that sees the commit late cannot
/// claim it again; a claim whose engine died leaves the deployment in progress until it is
/// cancelled (docs/decisions.md).
pub async fn claim(client: &Client, deployment_id: &str, holder: &str) -> Result<bool, CallError> {
    client.ensure_bucket(BUCKET).await?;
    let key = format!(
        "proton-claims/{}",
        crate::terraform::sanitize(deployment_id)
    );
    client
        .create_object(BUCKET, &key, holder.as_bytes().to_vec())
        .await
}

/// The shared part of `workspace` as a `.tar.gz`; `None` when it has none.
pub fn pack(workspace: &Path) -> Result<Option<Vec<u8>>, String> {
    let mut files = Files::new();
    for name in SHARED {
        collect(&workspace.join(name), name, &mut files)?;
    }
    Ok((!files.is_empty()).then(|| bundle::write(&files)))
}

fn collect(path: &Path, name: &str, files: &mut Files) -> Result<(), String> {
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).map_err(|e| format!("reading {}: {e}", path.display()))?
        {
            let entry = entry.map_err(|e| e.to_string())?;
            let child = format!("{name}/{}", entry.file_name().to_string_lossy());
            collect(&entry.path(), &child, files)?;
        }
    } else if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        files.insert(name.to_string(), bytes);
    }
    Ok(())
}

/// Replaces the shared part of `workspace` with `packed` (what [`pack`] made).
pub fn unpack(workspace: &Path, packed: &[u8]) -> Result<(), String> {
    let files =
        bundle::read(packed).map_err(|e| format!("the shared state does not unpack: {e}"))?;
    std::fs::create_dir_all(workspace)
        .map_err(|e| format!("creating {}: {e}", workspace.display()))?;
    for name in SHARED {
        let path = workspace.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.map_err(|e| format!("clearing {}: {e}", path.display()))?;
    }
    for (name, bytes) in files {
        if !SHARED
            .iter()
            .any(|s| name == *s || name.starts_with(&format!("{s}/")))
        {
            return Err(format!(
                "the shared state holds {name:?}, which is not engine state"
            ));
        }
        let path = workspace.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_part_round_trips_and_nothing_else_travels() {
        let from = tempfile::tempdir().unwrap();
        let w = from.path();
        std::fs::write(w.join("terraform.tfstate"), b"{\"serial\": 3}").unwrap();
        std::fs::create_dir_all(w.join(".provisiond-applied/modules")).unwrap();
        std::fs::write(
            w.join(".provisiond-applied/main.tf"),
            b"output \"a\" { value = 1 }",
        )
        .unwrap();
        std::fs::write(w.join(".provisiond-applied/modules/x.tf"), b"# x").unwrap();
        std::fs::create_dir_all(w.join(".terraform/providers")).unwrap();
        std::fs::write(w.join(".terraform/providers/big"), b"plugin").unwrap();
        std::fs::write(w.join("main.tf"), b"# the run's own copy").unwrap();
        let packed = pack(w).unwrap().expect("state to share");

        let to = tempfile::tempdir().unwrap();
        let t = to.path();
        std::fs::write(t.join("terraform.tfstate.backup"), b"stale").unwrap();
        unpack(t, &packed).unwrap();
        assert_eq!(
            std::fs::read(t.join("terraform.tfstate")).unwrap(),
            b"{\"serial\": 3}"
        );
        assert_eq!(
            std::fs::read(t.join(".provisiond-applied/modules/x.tf")).unwrap(),
            b"# x"
        );
        assert!(
            !t.join("terraform.tfstate.backup").exists(),
            "stale state is replaced"
        );
        assert!(!t.join(".terraform").exists() && !t.join("main.tf").exists());

        let empty = tempfile::tempdir().unwrap();
        assert!(pack(empty.path()).unwrap().is_none());
    }

    #[test]
    fn a_shared_state_holding_anything_but_state_is_refused() {
        let to = tempfile::tempdir().unwrap();
        let files = Files::from([("main.tf".to_string(), b"x".to_vec())]);
        assert!(unpack(to.path(), &bundle::write(&files)).is_err());
        assert!(!to.path().join("main.tf").exists());
    }
}
