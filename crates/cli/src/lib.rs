//! Configuration and start-up of the `cse` server binary, kept in a library so that the
//! tests can check the documented options against the real ones.
#![forbid(unsafe_code)]

pub mod audit_cmd;
pub mod ca_cmd;
pub mod cert_enrol_cmd;
pub mod cert_enrolment;
pub mod config;
pub mod enrol_cmd;
pub mod fd_limit;
pub mod fetch_cmd;
pub mod gba_cmd;
pub mod https_url;
pub mod init_cmd;
pub mod keyhomes;
pub mod keys_cmd;
pub mod maf_cmd;
pub mod secret_files;
pub mod startup;
pub mod stdout;
