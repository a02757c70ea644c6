//! `bench anchor`: what anchoring the audit checkpoint costs (issue 9, M3). For each anchor
//! (a TPM NV counter on swtpm, a PKCS#11 data object on SoftHSMv2) it measures one anchor
//! update on its own (`TPM2_NV_Increment`, or `C_SetAttributeValue` of the record), and one
//! durable append of an entry that is anchored at once (a revocation), next to the same
//! append on a log without an anchor, in the same run.
//!
//! It starts its own swtpm and SoftHSM token, as the tests do (`keystore::testing`).
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module loads: this mode sets it first, while
//! the process has one thread.

use keystore::anchor::AnchorRecord;
use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, SecretBytes};
use manager::audit::{Anchoring, AuditLog, Event, HeadAnchor, Layout};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `bench anchor`.
#[derive(Debug, clap::Args)]
pub(crate) struct AnchorArgs {
    /// Operations timed per figure.
    #[arg(long, default_value_t = 200)]
    ops: u32,
}

/// Milliseconds per operation: the median of `rounds` runs of `ops` operations each.
fn ms_per_op(
    ops: u32,
    rounds: usize,
    mut op: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..ops.min(10) {
        op()?;
    }
    let mut runs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..ops {
            op()?;
        }
        runs.push(start.elapsed().as_secs_f64() * 1000.0 / f64::from(ops));
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[runs.len() / 2])
}

fn revoked(n: u64) -> Event {
    Event::Revoked {
        credential: format!("12-bench{n}@sp.example"),
        actor: "CAdmin".into(),
        reason: "bench".into(),
    }
}

/// The audit key, in a level-1 home (the same for every row, so that only the anchor
/// differs).
fn audit_key(dir: &Path) -> anyhow::Result<keystore::SigningKey> {
    let home = Arc::new(SoftwareHome::create(&SoftwareConfig {
        dir: dir.join("keys"),
        kek: KekSource::Passphrase(keystore::SecretSource::Provided(SecretBytes::from_slice(
            b"bench anchor",
        ))),
    })?);
    let id = home.id().clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    let handle = store.generate(
        &id,
        &KeyId::new("audit")?,
        KeyRole::AuditLog,
        Algorithm::EcdsaP256Sha256,
    )?;
    Ok(store.signing_key(&handle)?)
}

/// Appends of anchored-at-once entries, with `anchor` or without any.
fn appends(
    dir: &Path,
    name: &str,
    key: &keystore::SigningKey,
    anchor: Option<HeadAnchor>,
    args: &AnchorArgs,
    rounds: usize,
) -> anyhow::Result<f64> {
    let path = dir.join(format!("{name}.log"));
    let log = AuditLog::open_with_anchor(
        &path,
        Some(key.clone()),
        Layout::for_log(&path),
        anchor.map(|anchor| Anchoring {
            anchor,
            interval: Duration::from_secs(3600),
        }),
    )?;
    let mut n = 0;
    ms_per_op(args.ops, rounds, || {
        n += 1;
        log.append(revoked(n))?;
        Ok(())
    })
}

/// Runs `bench anchor` and prints one line per figure.
pub(crate) fn run(args: &AnchorArgs, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(args.ops > 0, "--ops must be at least 1");
    let tmp = tempfile::tempdir()?;
    let hsm = keystore::testing::SoftHsm::new(&tmp.path().join("softhsm"));
    if let Some(hsm) = &hsm {
        hsm.use_in_this_process();
    }
    let key = audit_key(tmp.path())?;
    println!(
        "{} ops per figure, median of {rounds} rounds; each append is durable (fdatasync) and signed",
        args.ops
    );
    let plain = appends(tmp.path(), "plain", &key, None, args, rounds)?;
    println!("{:<44} {plain:>8.3} ms", "append, no anchor");

    match &hsm {
        Some(hsm) => {
            hsm.init_token("bench", "1234");
            let pin = tmp.path().join("pin");
            std::fs::write(&pin, "1234\n")?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600))?;
            }
            let home = Arc::new(keystore::pkcs11::Pkcs11Home::open(
                &keystore::pkcs11::Pkcs11Config {
                    module: keystore::testing::SOFTHSM_MODULE.into(),
                    token_label: "bench".into(),
                    pin: keystore::SecretSource::File(pin),
                },
            )?);
            let record = home.anchor_record("bench-head")?;
            let bytes = vec![b'x'; 250];
            let update = ms_per_op(args.ops, rounds, || Ok(record.write(&bytes)?))?;
            println!("{:<44} {update:>8.3} ms", "PKCS#11 record write (SoftHSM)");
            let anchored = appends(
                tmp.path(),
                "pkcs11",
                &key,
                Some(HeadAnchor::Record(Arc::new(
                    home.anchor_record("audit-head")?,
                ))),
                args,
                rounds,
            )?;
            println!(
                "{:<44} {anchored:>8.3} ms",
                "append, anchored at once (SoftHSM)"
            );
        }
        None => println!("PKCS#11 skipped: SoftHSMv2 missing"),
    }
    tpm(tmp.path(), &key, args, rounds)
}

#[cfg(not(feature = "tpm"))]
fn tpm(_: &Path, _: &keystore::SigningKey, _: &AnchorArgs, _: usize) -> anyhow::Result<()> {
    println!("TPM skipped: this bench was built without the feature tpm");
    Ok(())
}

#[cfg(feature = "tpm")]
fn tpm(
    dir: &Path,
    key: &keystore::SigningKey,
    args: &AnchorArgs,
    rounds: usize,
) -> anyhow::Result<()> {
    use keystore::anchor::MonotonicCounter;
    use keystore::tpm::{TpmConfig, TpmHome};
    let Some(swtpm) = keystore::testing::Swtpm::start() else {
        println!("TPM skipped: swtpm missing");
        return Ok(());
    };
    let home = Arc::new(TpmHome::open(&TpmConfig {
        tcti: swtpm.tcti(),
        dir: dir.join("tpm-keys"),
    })?);
    let counter = home.nv_counter("0x01800100")?;
    counter.create()?;
    let update = ms_per_op(args.ops, rounds, || {
        counter.increment()?;
        Ok(())
    })?;
    println!(
        "{:<44} {update:>8.3} ms",
        "TPM NV counter increment (swtpm)"
    );
    let anchored = appends(
        dir,
        "tpm",
        key,
        Some(HeadAnchor::Counter(Arc::new(
            home.nv_counter("0x01800101")?,
        ))),
        args,
        rounds,
    )?;
    println!(
        "{:<44} {anchored:>8.3} ms",
        "append, anchored at once (swtpm)"
    );
    home.close();
    Ok(())
}
