//! Delivery of rendered deployment bundles (SPEC §7.3).
//!
//! In the deployment's own transaction, `schedule` stores the bundle in the object store
//! (`provisiond-deployments/<deployment id>.tar.gz`, readable by the account) and records a
//! pending delivery: a transactional outbox. After the commit, and every few seconds in the
//! background, `Deliverer::deliver_pending` commits each pending bundle to the git repository
//! the server maps the registered repository name to (`serve --git-repository NAME=PATH`), then
//! forgets it. A crash between the git commit and forgetting is harmless: each commit carries a
//! `Proton-Deployment-Id:` trailer, and a bundle already on the branch is not committed again.
//!
//! Git is driven through its command line with plumbing commands (`read-tree`, `hash-object`,
//! `update-index`, `write-tree`, `commit-tree`, `update-ref` with the old value, so a
//! concurrent push is never overwritten). That works the same for bare repositories and for
//! repositories with a working tree; in the latter, when the branch is checked out, the working
//! tree and index are moved to the new commit with `read-tree -m -u` (local changes to other
//! files are kept, a conflicting change stops the update and is logged).

use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, Store, StoredObject, Tx};
use md5::{Digest, Md5};
use provisiond_formats::bundle::{self, Files};
use provisiond_formats::repository::{git, NestedResources};
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The bucket that holds every rendered deployment bundle (read-only for S3 clients).
pub const DEPLOYMENT_BUCKET: &str = "provisiond-deployments";

/// A bundle waiting for its git commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// Owning account (object store scope).
    pub account: String,
    /// `<account>/<region>`.
    pub scope: String,
    /// The deployment.
    pub deployment_id: String,
    /// The registered repository name (`owner/repo`).
    pub repository: String,
    /// The branch.
    pub branch: String,
    /// The folder below the repository root (`<env>`, `<env>/<service>-<instance>`), under
    /// `environments/` when the branch has that folder.
    pub folder: String,
}

fn pending_id(scope: &str, deployment_id: &str) -> String {
    format!("{scope}/{deployment_id}")
}

/// Notes on `p`'s deployment the commit that delivered it (the deployment may be gone: a
/// deleted resource's history goes with it).
fn note_delivered(tx: &mut dyn Tx, p: &Pending, commit: String) -> Result<(), AwsError> {
    // Read for update: a Notify settling the deployment at the same moment is not overwritten.
    let mut deployment = match super::deployment::load_for_update(tx, &p.scope, &p.deployment_id) {
        Ok(deployment) => deployment,
        Err(e) if e.code == "ResourceNotFoundException" => return Ok(()),
        Err(e) => return Err(e),
    };
    deployment.delivered = Some(super::deployment::Delivered {
        repository: p.repository.clone(),
        branch: p.branch.clone(),
        commit,
    });
    super::deployment::save(tx, &p.scope, &deployment)
}

/// Stores the rendered bundle and records its pending delivery, inside the caller's
/// transaction.
pub fn schedule(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    deployment_id: &str,
    repository: &str,
    branch: &str,
    folder: &str,
    files: &Files,
) -> Result<(), AwsError> {
    let bytes = bundle::write(files);
    tx.put_object(
        &ctx.identity.account,
        DEPLOYMENT_BUCKET,
        &StoredObject {
            key: format!("{deployment_id}.tar.gz"),
            size: bytes.len() as i64,
            etag: hex::encode(Md5::digest(&bytes)),
            body: bytes,
            created_ms: ctx.now_ms,
        },
    )?;
    let scope = ctx.scope();
    let pending = Pending {
        account: ctx.identity.account.clone(),
        scope: scope.clone(),
        deployment_id: deployment_id.to_string(),
        repository: repository.to_string(),
        branch: branch.to_string(),
        folder: folder.to_string(),
    };
    store::put(
        tx,
        Kind::ProtonDelivery,
        "",
        &pending_id(&scope, deployment_id),
        "",
        &pending,
    )?;
    Ok(())
}

/// Drops a delivery not made yet (a cancelled deployment is not committed).
pub fn unschedule(tx: &mut dyn Tx, scope: &str, deployment_id: &str) -> Result<(), AwsError> {
    tx.delete(Kind::ProtonDelivery, "", &pending_id(scope, deployment_id))?;
    Ok(())
}

/// Whether the delivery of `deployment_id` is scheduled and not made yet.
pub fn is_pending(tx: &mut dyn Tx, scope: &str, deployment_id: &str) -> Result<bool, AwsError> {
    Ok(tx
        .get(Kind::ProtonDelivery, "", &pending_id(scope, deployment_id))?
        .is_some())
}

/// The lease one deliverer holds while it commits (see `store::lease`): one at a time, across
/// threads and replicas, so two never race on one branch.
const LEASE: &str = "proton-delivery";
/// How long a lease lasts unless renewed: a deliverer that died frees it after this.
const LEASE_MS: i64 = 60_000;
/// How long a caller waits for another deliverer before leaving its bundle to the retry.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Commits pending bundles to the configured git repositories.
pub struct Deliverer {
    repositories: BTreeMap<String, PathBuf>,
}

impl Deliverer {
    /// A deliverer for `repositories` (registered name → local git repository).
    pub fn new(repositories: BTreeMap<String, PathBuf>) -> Deliverer {
        Deliverer { repositories }
    }

    /// Checks that every mapped path is a git repository (bare or not).
    pub fn check(&self) -> Result<(), String> {
        for (name, path) in &self.repositories {
            git(path, &["rev-parse", "--git-dir"], None, &[]).map_err(|e| {
                format!(
                    "--git-repository {name}={}: not a git repository: {e}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }

    /// Delivers every pending bundle; returns how many were committed. Failures are logged
    /// and retried on the next call. While another deliverer (a thread here, or a replica)
    /// holds the lease, waits for it a while: the pending bundle of this caller is then
    /// either delivered by that one or by this call.
    pub fn deliver_pending(&self, store: &dyn Store) -> usize {
        let holder = store::lease::new_holder();
        let waited = std::time::Instant::now();
        loop {
            match store::lease::try_take(store, LEASE, &holder, crate::time::now_ms(), LEASE_MS) {
                Ok(true) => break,
                Ok(false) if waited.elapsed() < LEASE_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Ok(false) => return 0,
                Err(e) => {
                    tracing::warn!("taking the delivery lease: {e}");
                    return 0;
                }
            }
        }
        let delivered = self.deliver_holding(store, &holder);
        if let Err(e) = store::lease::release(store, LEASE, &holder) {
            tracing::warn!("releasing the delivery lease: {e}");
        }
        delivered
    }

    fn deliver_holding(&self, store: &dyn Store, holder: &str) -> usize {
        let pending: Vec<Pending> = match transact(store, Mode::Read, |tx| {
            store::list::<Pending>(tx, Kind::ProtonDelivery, "", "", None, 1000)
        }) {
            Ok(rows) => rows.into_iter().map(|(_, p)| p).collect(),
            Err(e) => {
                tracing::warn!("reading pending deliveries: {e}");
                return 0;
            }
        };
        let mut delivered = 0;
        for p in pending {
            // Renewed before each commit, so a long backlog never outlives the lease.
            match store::lease::try_take(store, LEASE, holder, crate::time::now_ms(), LEASE_MS) {
                Ok(true) => {}
                Ok(false) => return delivered,
                Err(e) => {
                    tracing::warn!("renewing the delivery lease: {e}");
                    return delivered;
                }
            }
            let outcome = match self.repositories.get(&p.repository) {
                None => {
                    tracing::info!(
                        deployment = %p.deployment_id,
                        repository = %p.repository,
                        "no --git-repository mapping; the bundle stays at s3://{DEPLOYMENT_BUCKET}/{}.tar.gz",
                        p.deployment_id
                    );
                    Ok(None)
                }
                Some(path) => self.commit(store, path, &p).map(Some),
            };
            match outcome {
                Ok(commit) => {
                    let committed = commit.is_some();
                    let forgot = transact(store, Mode::Write, |tx| {
                        tx.delete(
                            Kind::ProtonDelivery,
                            "",
                            &pending_id(&p.scope, &p.deployment_id),
                        )?;
                        if let Some(commit) = commit.clone() {
                            note_delivered(tx, &p, commit)?;
                        }
                        Ok::<_, AwsError>(())
                    });
                    if let Err(e) = forgot {
                        tracing::warn!(deployment = %p.deployment_id, "forgetting a delivery: {}", e.message);
                    }
                    delivered += usize::from(committed);
                }
                Err(e) => tracing::warn!(
                    deployment = %p.deployment_id,
                    repository = %p.repository,
                    "delivery failed, will retry: {e}"
                ),
            }
        }
        delivered
    }

    /// Commits `p`'s bundle to `repo` (unless a commit of it is on the branch already); the
    /// commit's id either way.
    fn commit(&self, store: &dyn Store, repo: &Path, p: &Pending) -> Result<String, String> {
        let object = transact(store, Mode::Read, |tx| {
            tx.get_object(
                &p.account,
                DEPLOYMENT_BUCKET,
                &format!("{}.tar.gz", p.deployment_id),
            )
        })
        .map_err(|e| e.to_string())?
        .ok_or("the rendered bundle is missing from the object store")?;
        let files = bundle::read(&object.body)?;
        let trailer = format!("Proton-Deployment-Id: {}", p.deployment_id);
        let branch_ref = format!("refs/heads/{}", p.branch);
        let tip = git(
            repo,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("{branch_ref}^{{commit}}"),
            ],
            None,
            &[],
        )
        .ok()
        .filter(|s| !s.is_empty());
        if let Some(tip) = &tip {
            let found = git(
                repo,
                &["log", "--format=%H", "-F", "--grep", &trailer, tip],
                None,
                &[],
            )?;
            if let Some(commit) = found.lines().next().filter(|l| !l.is_empty()) {
                return Ok(commit.to_string());
            }
        }
        let folder = match &tip {
            Some(tip)
                if !git(
                    repo,
                    &["ls-tree", "-d", "--name-only", tip, "environments"],
                    None,
                    &[],
                )?
                .is_empty() =>
            {
                format!("environments/{}", p.folder)
            }
            _ => p.folder.clone(),
        };
        let scratch = tempdir()?;
        let index = scratch.join("index");
        let env = [("GIT_INDEX_FILE", index.to_string_lossy().into_owned())];
        match &tip {
            Some(tip) => git(repo, &["read-tree", tip], None, &env)?,
            None => git(repo, &["read-tree", "--empty"], None, &env)?,
        };
        // The resource's own files are replaced whole: index lines with mode 0 remove the old
        // entries (this works without a working tree, unlike `update-index --force-remove`).
        // Folders of other resources nested below this one (a service instance or component
        // under its environment) are left exactly as they are.
        let old = match &tip {
            Some(tip) => git(
                repo,
                &[
                    "ls-tree",
                    "-r",
                    "--name-only",
                    tip,
                    "--",
                    &format!("{folder}/"),
                ],
                None,
                &[],
            )?,
            None => String::new(),
        };
        let old: Vec<&str> = old.lines().filter(|l| !l.is_empty()).collect();
        let foreign = NestedResources::below(&folder, &old);
        let mut info = String::new();
        for path in old.iter().filter(|path| !foreign.holds(path)) {
            info.push_str(&format!("0 {}\t{path}\n", "0".repeat(40)));
        }
        for (path, bytes) in &files {
            let path = format!("{folder}/{path}");
            if foreign.holds(&path) {
                tracing::warn!(deployment = %p.deployment_id, %path, "not committed: the path lies in another resource's folder");
                continue;
            }
            let sha = git(repo, &["hash-object", "-w", "--stdin"], Some(bytes), &[])?;
            info.push_str(&format!("100644 {sha}\t{path}\n"));
        }
        git(
            repo,
            &["update-index", "--index-info"],
            Some(info.as_bytes()),
            &env,
        )?;
        let tree = git(repo, &["write-tree"], None, &env)?;
        let message = format!("Update requested for Proton - {folder}\n\n{trailer}\n");
        let mut args = vec!["commit-tree", tree.as_str(), "-F", "-"];
        if let Some(tip) = &tip {
            args.extend(["-p", tip.as_str()]);
        }
        let commit = git(
            repo,
            &args,
            Some(message.as_bytes()),
            &IDENTITY.map(|(k, v)| (k, v.to_string())),
        )?;
        let old = tip.clone().unwrap_or_else(|| "0".repeat(40));
        git(repo, &["update-ref", &branch_ref, &commit, &old], None, &[])?;
        std::fs::remove_dir_all(&scratch).ok();
        self.refresh_work_tree(repo, &branch_ref, tip.as_deref(), &commit);
        tracing::info!(deployment = %p.deployment_id, repository = %p.repository, branch = %p.branch, %commit, "committed deployment");
        Ok(commit)
    }

    /// Moves a checked-out working tree along with the branch it has checked out.
    fn refresh_work_tree(&self, repo: &Path, branch_ref: &str, old: Option<&str>, new: &str) {
        let bare = git(repo, &["rev-parse", "--is-bare-repository"], None, &[]).unwrap_or_default();
        if bare != "false" {
            return;
        }
        let head = git(repo, &["symbolic-ref", "-q", "HEAD"], None, &[]).unwrap_or_default();
        if head != branch_ref {
            return;
        }
        let result = match old {
            Some(old) => git(repo, &["read-tree", "-m", "-u", old, new], None, &[]),
            None => git(repo, &["read-tree", "-m", "-u", new], None, &[]),
        };
        if let Err(e) = result {
            tracing::warn!(repository = %repo.display(), "the branch moved but its working tree was left as it was: {e}");
        }
    }
}

/// The author and committer of deployment commits.
const IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "provisiond"),
    ("GIT_AUTHOR_EMAIL", "provisiond@localhost"),
    ("GIT_COMMITTER_NAME", "provisiond"),
    ("GIT_COMMITTER_EMAIL", "provisiond@localhost"),
];

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("provisiond-git-{}", crate::ids::uuid()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
