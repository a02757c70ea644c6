//! Connections that have not sent a request yet (no request head, or for TLS not even a
//! finished handshake), oldest first. When a listener has as many connections as
//! `max_connections` allows, the oldest of these is closed to make room for the new one:
//! an idle socket has asked for nothing, so it must never keep a real client out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The waiting connections of one listener.
#[derive(Debug, Default)]
pub(crate) struct Lobby {
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    next: u64,
    /// By arrival order: the first entry is the oldest.
    tickets: BTreeMap<u64, oneshot::Sender<()>>,
}

/// One connection's place in the lobby, until it sends its first request or ends.
#[derive(Debug)]
pub(crate) struct Ticket {
    lobby: Arc<Lobby>,
    id: u64,
    left: AtomicBool,
}

/// Resolves when the connection was chosen to make room; pending forever once it has left
/// the lobby.
#[derive(Debug)]
pub(crate) struct Evicted(oneshot::Receiver<()>);

impl Lobby {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        // Nothing panics while holding the lock; recover rather than wedge the listener.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts a new connection in the lobby.
    pub(crate) fn enter(self: &Arc<Self>) -> (Ticket, Evicted) {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting();
        let id = waiting.next;
        waiting.next += 1;
        waiting.tickets.insert(id, tx);
        let ticket = Ticket {
            lobby: self.clone(),
            id,
            left: AtomicBool::new(false),
        };
        (ticket, Evicted(rx))
    }

    /// Closes the oldest waiting connection; `false` when none is waiting.
    pub(crate) fn evict_oldest(&self) -> bool {
        let oldest = self.waiting().tickets.pop_first();
        match oldest {
            // A receiver already gone belongs to a connection that is ending anyway.
            Some((_, tx)) => {
                let _ = tx.send(());
                true
            }
            None => false,
        }
    }

    /// Connections waiting for their first request.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting().tickets.len()
    }
}

impl Ticket {
    /// The connection sent a request: from its first on, it can no longer be evicted.
    /// `false` when it was evicted before: the request must not run, the connection is
    /// being closed.
    pub(crate) fn leave(&self) -> bool {
        if self.left.load(Ordering::Acquire) {
            return true;
        }
        let was_waiting = self.lobby.waiting().tickets.remove(&self.id).is_some();
        self.left.store(was_waiting, Ordering::Release);
        was_waiting
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.lobby.waiting().tickets.remove(&self.id);
    }
}

impl Evicted {
    /// Waits until this connection is chosen to make room.
    pub(crate) async fn chosen(self) {
        if self.0.await.is_err() {
            // Left the lobby (the sender was dropped): never evicted.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn the_oldest_waiting_connection_is_evicted_first() {
        let lobby = Arc::new(Lobby::default());
        let (first, first_evicted) = lobby.enter();
        let (second, second_evicted) = lobby.enter();
        let (third, third_evicted) = lobby.enter();
        assert!(first.leave());
        assert!(first.leave(), "leaving twice is still leaving");
        assert!(lobby.evict_oldest());
        assert!(!second.leave(), "evicted before its first request");
        assert_eq!(second_evicted.chosen().now_or_never(), Some(()));
        assert_eq!(
            first_evicted.chosen().now_or_never(),
            None,
            "it left the lobby"
        );
        drop(third);
        assert_eq!(third_evicted.chosen().now_or_never(), None, "it ended");
        assert!(!lobby.evict_oldest());
        assert_eq!(lobby.len(), 0);
        drop((first, second));
    }
}
