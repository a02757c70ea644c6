//! The integration tests of `cse`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod access;
mod acp_decision;
mod acp_properties;
mod associations;
mod common;
mod container_properties;
mod containers;
mod creator;
mod cross_resource_subscription;
mod device_management;
mod distributed_authorization;
mod dynamic_authorization;
mod flex_container;
mod groups;
mod location;
mod location_policy;
mod polling;
mod registration;
mod requests;
mod requests_nonblocking;
mod results;
mod roles_tokens;
mod schedule;
mod semantic_descriptor;
mod service_subscription;
mod subscriptions;
mod time_series;
mod validation;
