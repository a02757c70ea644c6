//! The integration tests of `keystore`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod level1_software;
#[cfg(feature = "tpm")]
mod level2_tpm;
#[cfg(feature = "pkcs11")]
mod level3_pkcs11;
mod support;
