//! The Proton repository layout that the server's deployment commits and an engine's scans
//! share: where a resource's deployment metadata sits, which folders below a resource belong
//! to other resources, and the `git` plumbing both run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where a deployment's metadata sits inside its resource's folder.
pub const METADATA_FILE: &str = ".proton/deployment-metadata.json";

/// The folders, below one resource's folder, that belong to other resources: every folder that
/// holds its own `.proton/deployment-metadata.json` (a service instance or component under its
/// environment). A deployment's commit never touches them.
pub struct NestedResources {
    roots: Vec<String>,
}

impl NestedResources {
    /// The nested resource folders among `paths` (files under `folder/`, from `git ls-tree`).
    pub fn below(folder: &str, paths: &[&str]) -> NestedResources {
        let own = format!("{folder}/{METADATA_FILE}");
        let suffix = format!("/{METADATA_FILE}");
        let roots = paths
            .iter()
            .filter(|path| **path != own)
            .filter_map(|path| path.strip_suffix(&suffix))
            .filter(|root| root.starts_with(&format!("{folder}/")))
            .map(|root| format!("{root}/"))
            .collect();
        NestedResources { roots }
    }

    /// Whether `path` lies in another resource's folder.
    pub fn holds(&self, path: &str) -> bool {
        self.roots
            .iter()
            .any(|root| path.starts_with(root.as_str()))
    }
}

/// Runs `git -C repo args…` with `stdin`, returning its trimmed standard output.
pub fn git(
    repo: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, String)],
) -> Result<String, String> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().map_err(|e| format!("running git: {e}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input)
            .map_err(|e| format!("writing to git: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_their_own_metadata_belong_to_other_resources() {
        let paths = [
            "dev/.proton/deployment-metadata.json",
            "dev/main.tf",
            "dev/modules/net/main.tf",
            "dev/web-one/.proton/deployment-metadata.json",
            "dev/web-one/main.tf",
            "dev/cache/.proton/deployment-metadata.json",
            "dev/cache/sub/x.tf",
        ];
        let nested = NestedResources::below("dev", &paths);
        let own: Vec<&str> = paths.iter().copied().filter(|p| !nested.holds(p)).collect();
        assert_eq!(
            own,
            [
                "dev/.proton/deployment-metadata.json",
                "dev/main.tf",
                "dev/modules/net/main.tf"
            ]
        );
        // A resource without nested ones owns everything below it.
        let nested = NestedResources::below("dev/web-one", &paths[3..5]);
        assert!(!nested.holds("dev/web-one/main.tf"));
        // A folder whose name merely starts like a nested one is not part of it.
        let nested = NestedResources::below("dev", &paths);
        assert!(!nested.holds("dev/web-one-more/main.tf"));
    }
}
