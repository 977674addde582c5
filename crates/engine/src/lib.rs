//! The built-in Terraform engine: an ordinary client of provisiond's public API, in a crate of
//! its own so that it cannot reach the server's store or internals. It long-polls the engine
//! queues and runs `terraform` for Service Catalog tasks (`terraform`), applies Proton
//! deployment commits from mapped git repositories (`proton`), keeps each product's and
//! resource's state in the object store so any replica can run the next task (`shared_state`),
//! and talks to the server through a small SigV4-signed client over the model's typed shapes
//! (`client`).
//!
//! It depends on `provisiond-model` (request and answer shapes), `provisiond-sigv4` (signing)
//! and `provisiond-formats` (task messages, bundles, the repository layout), never on
//! `provisiond` itself.

pub mod client;
pub mod proton;
pub mod shared_state;
pub mod terraform;

/// A random token of 32 hex digits: the idempotency token of one Notify (reused by its
/// retries), a claim holder's identity.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}
