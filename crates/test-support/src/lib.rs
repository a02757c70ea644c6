//! The one skip rule of the workspace's tests. A test that needs a real peer (the openssl
//! command, curl, python3, swtpm, SoftHSMv2, root for a tmpfs) skips with a printed reason on
//! a laptop that lacks it, but fails when `SECURE_CSE_REQUIRE_SERVICES` is set, as CI does, so
//! that a missing install step can never turn into a silently skipped test.

use std::process::{Command, Stdio};

/// The environment variable that turns every skip into a failure (set by `.ci/run`).
pub const REQUIRE_SERVICES: &str = "SECURE_CSE_REQUIRE_SERVICES";

/// `None` when `available`; otherwise prints why and returns `Some(())` (the test returns
/// early), or panics when [`REQUIRE_SERVICES`] is set. `what` names what is missing.
pub fn skip_unless(available: bool, what: &str) -> Option<()> {
    if available {
        return None;
    }
    if std::env::var_os(REQUIRE_SERVICES).is_some() {
        panic!("{what} is required ({REQUIRE_SERVICES} is set) but missing");
    }
    eprintln!("SKIPPED: {what} is missing");
    Some(())
}

/// Whether `tool args` (a `--version`-like probe) runs and succeeds; when it does not, the
/// rule of [`skip_unless`] applies (a printed reason, or a panic in CI).
pub fn have_tool(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    skip_unless(ok, &format!("the {tool} command")).is_none()
}
