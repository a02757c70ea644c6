//! One module per resource type, named by its short name: its attribute table and the
//! checks that belong to the type alone.

pub mod acp;
pub mod ae;
pub mod asar;
pub mod auds;
pub mod auif;
pub mod aupy;
pub mod cb;
pub mod cin;
pub mod cnt;
pub mod crs;
pub mod dac;
pub mod fcnt;
pub mod grp;
pub mod lcp;
pub mod mgo;
pub mod mssp;
pub mod nod;
pub mod ntp;
pub mod pch;
pub mod pdr;
pub mod req;
pub mod rol;
pub mod sch;
pub mod smd;
pub mod sub;
pub mod svsn;
pub mod tk;
pub mod ts;
pub mod tsi;
