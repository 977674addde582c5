//! Holds no code: the tests in `tests/` drive provisiond with the real AWS SDK for Rust.
