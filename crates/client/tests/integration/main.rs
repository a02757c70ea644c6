//! The integration tests of `client`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod answers;
mod tls;
