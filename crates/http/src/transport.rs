//! How a listener secures the connections it accepts: plain TCP (only where the operator
//! allows it) or TLS, whose association is bound to every request of the connection.

use cse::{ListenerRole, SecurityContext};
use security::association::Registry;
use security::privacy;
use security::tls::AcceptorSlot;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Secures accepted connections and says who is on the other end.
pub trait Transport: Send + Sync + 'static {
    /// The stream HTTP is spoken over.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The listener's name, for logs and security contexts.
    fn name(&self) -> &str;

    /// Secures one accepted connection; `None` when it was refused (and logged).
    fn secure(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Option<(Self::Io, SecurityContext)>> + Send;
}

/// Plain TCP: every request has no security association.
#[derive(Debug, Clone)]
pub struct Plaintext {
    /// Listener name.
    pub listener: String,
}

impl Transport for Plaintext {
    type Io = TcpStream;

    fn name(&self) -> &str {
        &self.listener
    }

    async fn secure(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TcpStream, SecurityContext)> {
        Some((
            tcp,
            SecurityContext::plaintext(self.listener.clone(), Some(peer)),
        ))
    }
}

/// TLS (TS-0003 security association frameworks): each connection's association is
/// registered for as long as the connection lives, and travels with its requests.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Listener name.
    pub listener: String,
    /// The handshake side (replaceable while the listener serves).
    pub acceptor: Arc<AcceptorSlot>,
    /// Where live associations are listed.
    pub registry: Arc<Registry>,
    /// What the listener is for (which services its associations reach).
    pub role: ListenerRole,
}

impl Transport for Tls {
    type Io = security::tls::TlsStream;

    fn name(&self) -> &str {
        &self.listener
    }

    async fn secure(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<(Self::Io, SecurityContext)> {
        match self.acceptor.current().accept(tcp, peer).await {
            Ok((stream, established)) => {
                tracing::info!(
                    listener = %self.listener,
                    peer = %privacy::peer_tag(Some(peer)),
                    framework = established.framework.name(),
                    credential = %privacy::credential_tag(&established.credential_id),
                    protocol = %established.protocol,
                    cipher = %established.cipher,
                    resumed = established.resumed,
                    "security association opened"
                );
                let registration = self.registry.open(&self.listener, peer, established);
                Some((
                    stream,
                    SecurityContext::established(self.role, Arc::new(registration)),
                ))
            }
            Err(e) => {
                // The registry logs it, counting a flood rather than writing every refusal.
                self.registry
                    .refused(&self.listener, peer, e.offered_identity(), &e.to_string());
                None
            }
        }
    }
}
