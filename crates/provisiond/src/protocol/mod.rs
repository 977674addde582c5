//! The wire protocol layer: which service a request is for (`awsjson`), who signed it
//! (`sigv4`), and how answers and errors are rendered. It knows nothing about storage or
//! domain rules.

pub mod awsjson;
pub mod foreign;
pub mod sigv4;
