//! One module per resource type, named by its short name: its attribute table and the
//! checks that belong to the type alone.

pub mod acp;
pub mod ae;
pub mod cb;
pub mod cin;
pub mod cnt;
pub mod dac;
pub mod grp;
pub mod pch;
pub mod rol;
pub mod sub;
pub mod tk;
