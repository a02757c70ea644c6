//! The integration tests of `manager`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod audit;
mod audit_anchor;
mod ca;
mod kdf_properties;
mod kdf_vectors;
