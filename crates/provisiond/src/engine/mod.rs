//! What provisiond hands to external engines and gets back from them. For now: the workflow
//! token (`token`) that an engine returns with every Notify call.

pub mod message;
pub mod token;
