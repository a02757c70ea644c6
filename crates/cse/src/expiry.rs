//! Expiration: a background sweep deletes resources whose `et` has passed and tells their
//! subscribers, as a deletion by the CSE itself. Between sweeps, addressing already treats
//! such resources as gone.

use crate::Cse;
use std::sync::Arc;
use std::time::Duration;

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
        for ri in &due {
            match cse.store.get(ri) {
                Ok(Some(r)) => match cse.remove(&r).await {
                    Ok(gone) => {
                        removed += gone.len();
                        if let Err(e) =
                            crate::service_subscription::audit(cse, "expiry", "expire", &r).await
                        {
                            tracing::error!(ri, error = %model::Untrusted(&e), "cannot audit an expired service subscription resource");
                        }
                        let actor = &cse.config.cse_id;
                        // Logged inside on failure; the sweep goes on with the next.
                        let _ = crate::resources::authority::audited_removals(
                            cse, actor, "expired", &gone,
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::error!(ri, error = %model::Untrusted(&e), "cannot delete expired resource")
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(ri, error = %model::Untrusted(&e), "cannot read expired resource")
                }
            }
        }
        if due.len() < 256 {
            return removed;
        }
    }
}
