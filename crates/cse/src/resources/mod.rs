//! What is special about each resource type when it is created, updated or deleted. One
//! module per type; the shared steps are in `create`, `update` and `delete`.

pub(crate) mod ae;
pub(crate) mod auds;
pub(crate) mod auif;
pub(crate) mod aupy;
pub(crate) mod authority;
pub(crate) mod cb;
pub(crate) mod cin;
pub(crate) mod cnt;
pub(crate) mod crs;
pub(crate) mod dac;
pub(crate) mod fcnt;
pub(crate) mod grp;
pub(crate) mod lcp;
pub(crate) mod mgo;
pub(crate) mod nod;
pub(crate) mod ntp;
pub(crate) mod pch;
pub(crate) mod req;
pub(crate) mod rol;
pub(crate) mod sch;
pub(crate) mod smd;
pub(crate) mod sub;
pub(crate) mod svsn;
pub(crate) mod tk;
pub(crate) mod ts;
pub(crate) mod tsi;
