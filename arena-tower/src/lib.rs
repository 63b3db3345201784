//! `arena-tower`: a tower `Layer` that gives every request its own arena.
//!
//! This crate is a placeholder until its issue lands; see the workspace README.
#![forbid(unsafe_code)]

pub use arena_b;
