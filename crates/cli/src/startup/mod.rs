//! Start-up as a library: the parts of a CSE opened from its settings, the `Reloader` behind
//! `reload-tls`, and the listeners served until the CSE stops. `bin/cse.rs` only calls these.

pub mod parts;
pub mod reload;
pub mod serve;
