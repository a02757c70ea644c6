//! Configuration and start-up of the `cse` server binary, kept in a library so that the
//! tests can check the documented options against the real ones.
#![forbid(unsafe_code)]

pub mod config;
