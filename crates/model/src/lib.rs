//! The oneM2M data model of secure-cse: resource types, attribute tables, request and
//! response primitives, status codes, filter criteria and the JSON/CBOR codecs.
//!
//! This crate is pure (no I/O, no async) so that every rule it encodes can be tested alone
//! and reused by every binding and by the client.
#![forbid(unsafe_code)]

pub mod attributes;
pub mod clock;
pub mod codec;
pub mod content_filter;
pub mod error;
pub mod filter;
pub mod id;
pub mod location;
pub mod primitive;
pub mod resource;
pub mod resources;
pub mod rsc;
pub mod time;
pub mod types;
pub mod untrusted;

pub use error::{Error, Result};
pub use filter::FilterCriteria;
pub use primitive::{ContentStatus, Request, Response, ResultContent};
pub use resource::Resource;
pub use rsc::ResponseStatusCode;
pub use types::{AccessOperation, Operation, ResourceType};
pub use untrusted::Untrusted;
