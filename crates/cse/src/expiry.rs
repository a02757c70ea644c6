//! Expiration: a background sweep deletes resources whose `et` has passed and tells their
//! subscribers, as a deletion by the CSE itself. Between sweeps, addressing already treats
//! such resources as gone.

use crate::Cse;
use std::sync::Arc;
use std::time::Duration;

/// The actor of the audit entries of an expiry.
pub(crate) const EXPIRY_ACTOR: &str = "expiry";

/// Starts the sweeper; it runs until the runtime shuts down.
pub fn spawn(cse: Arc<Cse>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_millis(cse.config.expiry_check_ms.max(10));
        loop {
            tokio::time::sleep(period).await;
            sweep(&cse).await;
        }
    })
}

/// Deletes what has expired now; returns how many resources were removed.
pub async fn sweep(cse: &Cse) -> usize {
    let now = model::time::format(cse.config.clock.now());
    let mut removed = 0;
    loop {
        let due = match cse.store.expired(&now, 256) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "expiry sweep failed");
                return removed;
            }
        };
        if due.is_empty() {
            return removed;
        }
        let mut unaudited = false;
        for ri in &due {
            match cse.store.get(ri) {
                Ok(Some(r)) => {
                    // Write-ahead: a security administration resource (and any below it)
                    // is in the audit log before it goes; when the log cannot be written
                    // it stays until a later sweep can (addressing already treats it as
                    // gone).
                    if crate::security_manager::administration::record_removal(
                        cse,
                        EXPIRY_ACTOR,
                        crate::security_manager::administration::Change::Expire,
                        &r,
                    )
                    .await
                    .is_err()
                    {
                        unaudited = true;
                        continue;
                    }
                    match cse.remove(&r).await {
                        Ok(gone) => removed += gone.len(),
                        Err(e) => {
                            tracing::error!(ri, error = %model::Untrusted(&e), "cannot delete expired resource")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(ri, error = %model::Untrusted(&e), "cannot read expired resource")
                }
            }
        }
        // A batch left to a later sweep is not read again now (it would come back first).
        if due.len() < 256 || unaudited {
            return removed;
        }
    }
}
