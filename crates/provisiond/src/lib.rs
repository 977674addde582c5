//! provisiond: a self-hostable control plane that speaks the AWS Service Catalog and AWS Proton
//! APIs for infrastructure that an external engine provisions. See `ARCHITECTURE.md` for the map.
//!
//! Layers, from the top: `cli` → `server` (HTTP) → `protocol` (awsJson, SigV4, error rendering)
//! → domain (`catalog`, with `auth` for identities) → `store`. Wire shapes come from the
//! generated `provisiond_model` crate.

pub mod audit;
pub mod auth;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod console;
pub mod context;
pub mod crypto;
pub mod datadir;

pub mod engine_keys;
pub mod idempotency;
pub mod ids;
pub mod in_flight;
pub mod metrics;
pub mod paging;
pub mod protocol;
pub mod proton;
pub mod queue;
pub mod repair;
pub mod s3;
pub mod served;
pub mod server;
pub mod store;
#[cfg(test)]
mod testing;
pub mod time;
pub mod tls;
pub mod wire_enum;
