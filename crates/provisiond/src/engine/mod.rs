//! What provisiond hands to external engines and gets back from them (`message.rs`, the task
//! bodies; `token.rs`, the workflow token an engine returns with every Notify call), and the
//! built-in Terraform engine (`terraform.rs`, and `proton.rs` for Proton deployment commits) with the signed API client it uses (`client.rs`).

pub mod client;
pub mod message;
pub mod proton;
pub mod shared_state;
pub mod terraform;
pub mod token;
