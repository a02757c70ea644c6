//! The data folder is private (issue 9, L3): `cse --data DIR` creates DIR mode 700 and every
//! file it writes there (the database and its WAL, the journals, the audit log, sealed keys)
//! mode 600; a folder an older version left open to group and others is closed.
use crate::common;

use common::*;
use model::{Operation, ResourceType, ResponseStatusCode as R};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

/// Every entry below `dir` with its mode.
fn modes(dir: &Path) -> Vec<(String, u32, bool)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let is_dir = path.is_dir();
        out.push((path.display().to_string(), mode(&path), is_dir));
        if is_dir {
            out.extend(modes(&path));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_is_700_and_everything_in_it_600() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("var").join("data");
    let log = tmp.path().join("cse.log");
    let server = Server::start_logged(&data, &log, &[], 1);
    // A write, so the WAL holds something.
    let r = request(
        &server.client(),
        Operation::Create,
        "C",
        "cse-in",
        Some(ResourceType::Ae),
        Some(json!({"m2m:ae": {"rn": "a", "api": "Na", "rr": false, "srv": ["3"]}})),
    )
    .await;
    assert_eq!(r.rsc, R::Created);

    assert_eq!(mode(&data), 0o700);
    let found = modes(&data);
    let names: Vec<&str> = found.iter().map(|(p, ..)| p.as_str()).collect();
    for expected in [
        "cse.db",
        "cse.db-wal",
        "revocations.jsonl",
        "audit.log",
        "provisioned-psk.jsonl",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("/{expected}"))),
            "{expected} missing from {names:?}"
        );
    }
    for (path, mode, is_dir) in &found {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{path} is {mode:o}");
    }
    drop(server);

    // A folder left open (as older versions made it) is closed at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(data.join("cse.db"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let server = Server::start_logged(&data, &log, &[], 1);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("cse.db")), 0o600);
    assert!(
        server.log().contains("it is now mode 700"),
        "{}",
        server.log()
    );
}
