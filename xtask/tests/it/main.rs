//! Integration tests of `cargo xtask`: the commands as a user runs them, and the repository's tidy rules.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod cli;
mod tidy;
