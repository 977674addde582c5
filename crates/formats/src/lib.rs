//! The contracts between provisiond and the engines it hands work to that no botocore model
//! describes: the body of an engine task message (`task`), the `.tar.gz` bundles of artifacts,
//! templates and engine state (`bundle`), and the layout of a Proton deployment repository with
//! the `git` plumbing that reads and writes it (`repository`). The server writes them, the
//! built-in engine reads them; neither side has its own copy.

pub mod bundle;
pub mod repository;
pub mod task;
