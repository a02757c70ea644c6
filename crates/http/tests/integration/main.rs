//! The integration tests of `http`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod binding;
mod client;
mod common;
mod connections;
