//! A listener's acceptor that can be replaced while the listener serves: the CSE re-reads its
//! certificates, keys, CRLs and credentials without a restart (rotation without downtime).
//! New handshakes use the newest acceptor; connections set up before keep the one they had.

use super::TlsAcceptor;
use std::sync::{Arc, RwLock};

/// The current acceptor of one TLS listener.
#[derive(Debug)]
pub struct AcceptorSlot(RwLock<Arc<TlsAcceptor>>);

impl AcceptorSlot {
    /// A slot holding `acceptor`.
    pub fn new(acceptor: Arc<TlsAcceptor>) -> Self {
        Self(RwLock::new(acceptor))
    }

    /// The acceptor for the next handshake.
    pub fn current(&self) -> Arc<TlsAcceptor> {
        match self.0.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `acceptor` in place for every later handshake.
    pub fn replace(&self, acceptor: Arc<TlsAcceptor>) {
        match self.0.write() {
            Ok(mut a) => *a = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
    }
}
