//! The servicecatalog wire shapes, validators and dispatch, generated from the vendored botocore model.

mod generated;
pub use generated::*;
