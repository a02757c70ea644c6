//! Re-reading the TLS material while the CSE runs (rotation without downtime): a new server
//! certificate and key, new CRLs, a changed credential file take effect for the next
//! handshake; connections already set up go on. Triggered by `SIGHUP` or the admin's
//! `POST /.admin/reload-tls` (`m2m reload-tls`), and written to the audit trail.

use crate::Cse;
use manager::audit::Event;
use model::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the binary re-reads; it knows the configuration file and how listeners are built.
pub trait TlsReload: Send + Sync + std::fmt::Debug + 'static {
    /// Rebuilds every TLS listener's acceptor from the configuration and puts it in place;
    /// returns the listeners reloaded and the CRLs to publish from now on. Nothing is
    /// replaced when anything is wrong (the reason is the error).
    fn reload(&self) -> std::result::Result<Reloaded, String>;
}

/// What a reload changed.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    /// Names of the listeners whose acceptor was replaced.
    pub listeners: Vec<String>,
    /// The CRLs to publish (file name, DER).
    pub published_crls: Vec<(String, Vec<u8>)>,
}

impl Cse {
    /// Re-reads the TLS material for `actor` (the admin, or `SIGHUP`); audited.
    pub async fn reload_tls(&self, actor: &str) -> Result<Value> {
        let Some(hook) = self.tls_reload.clone() else {
            return Err(Error::new(
                model::ResponseStatusCode::NotImplemented,
                "this CSE cannot re-read its TLS material",
            ));
        };
        let hook: Arc<dyn TlsReload> = hook;
        let outcome = tokio::task::spawn_blocking(move || hook.reload())
            .await
            .map_err(|e| Error::internal(format!("reload: {e}")))?;
        let reloaded = match outcome {
            Ok(r) => r,
            Err(reason) => {
                tracing::error!(%reason, "TLS material not reloaded; the listeners keep the previous one");
                return Err(Error::bad_request(format!(
                    "not reloaded (the listeners keep what they had): {reason}"
                )));
            }
        };
        let crls = reloaded.published_crls.len();
        match self.published_crls.write() {
            Ok(mut c) => *c = reloaded.published_crls,
            Err(poisoned) => *poisoned.into_inner() = reloaded.published_crls,
        }
        if let Some(audit) = self.audit() {
            audit
                .record_durably(Event::AdminAction {
                    actor: actor.to_owned(),
                    action: "reload-tls".into(),
                    target: Some(reloaded.listeners.join(" ")),
                })
                .await?;
        }
        tracing::info!(listeners = ?reloaded.listeners, crls, "TLS material reloaded");
        Ok(json!({ "reloaded": reloaded.listeners, "publishedCrls": crls }))
    }
}
