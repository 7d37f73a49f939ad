//! Subcommands too large for main.rs.

pub mod batch;
pub mod keys;
