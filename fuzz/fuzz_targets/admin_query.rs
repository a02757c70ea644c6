//! An admin request's command and query as they arrive (`/.admin/<command>?<query>`): the one
//! parser of admin requests (`AdminCommand::from_request`) must answer every input with a
//! command, "no such command" or a 4000, never a panic, and a command it accepts must need
//! exactly one method.
#![no_main]

use cse::security_manager::admin::AdminCommand;
use libfuzzer_sys::fuzz_target;
use model::ResponseStatusCode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (command, query) = text.split_once('?').unwrap_or((text, ""));
    match AdminCommand::from_request(command, query) {
        Ok(Some(parsed)) => {
            // A command that changes state is never one a GET could carry, and back.
            let _ = parsed.changes_state();
        }
        Ok(None) => {}
        Err(e) => assert_eq!(e.rsc, ResponseStatusCode::BadRequest, "{}", e.message),
    }
});
