//! The door out: everything the CSE sends (notifications, verification requests, DAS
//! consultations, and next: requests forwarded to other CSEs) leaves through [`Outbound`].
//!
//! The CSE knows no transport. Each binding's client side implements [`Outbound`] for the
//! schemes it speaks (the HTTP binding for `http` and `https`); [`Senders`] picks the sender
//! by the target's scheme. A target whose scheme no binding serves fails with
//! [`DeliveryError::UnsupportedScheme`], which is logged and, like every delivery error,
//! maps to one status code ([`DeliveryError::rsc`]).

use model::{Request, Response, ResponseStatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The answer to one request sent out.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<Response, DeliveryError>> + Send + 'a>>;

/// Sends a request primitive to a target and reads the response primitive: implemented by
/// each binding's client side, so the CSE can reach a target over any binding.
pub trait Outbound: Send + Sync + std::fmt::Debug {
    /// Sends `req` to `target` (a notification URI or point of access, such as
    /// `http://host:port/path`), waiting at most `limits.timeout` for the whole answer.
    fn send<'a>(&'a self, target: &'a str, req: &'a Request, limits: Limits) -> Delivery<'a>;
}

/// Bounds on one exchange, chosen by what is sent (a notification, a consultation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time for the whole exchange, connecting included.
    pub timeout: Duration,
    /// Largest response content accepted, in bytes.
    pub max_body_bytes: usize,
}

/// Why a request sent out got no response primitive. A oneM2M error status in the answer
/// is not one of these: it is a normal [`Response`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No binding sends to targets of this scheme (say, `coap` before the CoAP binding
    /// exists). Nothing was sent.
    #[error("no binding sends to {scheme}:// targets")]
    UnsupportedScheme {
        /// The target's scheme, lower case.
        scheme: String,
    },
    /// The target or the request cannot be expressed for its binding (not a URL, a
    /// parameter that cannot travel, unusable TLS options). Nothing was sent.
    #[error("{0}")]
    Unsendable(String),
    /// Connecting, the security handshake, sending or receiving failed; the peer may be
    /// down.
    #[error("{0}")]
    Unreachable(String),
    /// No complete answer within the limit. The receiver may still have acted.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The peer answered, but not with a readable response primitive. `accepted`: the
    /// binding's own success signal was there (an HTTP 2xx from a simple webhook).
    #[error("{reason}")]
    NoPrimitive {
        /// Whether the transport reported success.
        accepted: bool,
        /// What was wrong with the answer.
        reason: String,
    },
}

impl DeliveryError {
    /// The status code of a request that failed because of this: the target was not
    /// reached with a usable answer.
    pub fn rsc(&self) -> ResponseStatusCode {
        ResponseStatusCode::TargetNotReachable
    }
}

/// The senders of the bindings, by scheme: the one [`Outbound`] the CSE holds.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    by_scheme: Vec<(String, Arc<dyn Outbound>)>,
}

impl Senders {
    /// No sender yet: every target fails with [`DeliveryError::UnsupportedScheme`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends targets of `scheme` (case-insensitive) through `sender`, in place of any
    /// earlier sender for it.
    pub fn with(mut self, scheme: &str, sender: Arc<dyn Outbound>) -> Self {
        let scheme = scheme.to_ascii_lowercase();
        self.by_scheme.retain(|(s, _)| *s != scheme);
        self.by_scheme.push((scheme, sender));
        self
    }

    /// Whether some binding sends to `target`'s scheme (a point of access worth trying).
    pub fn reaches(&self, target: &str) -> bool {
        self.sender(target).is_ok()
    }

    fn sender(&self, target: &str) -> Result<&Arc<dyn Outbound>, DeliveryError> {
        let scheme = scheme_of(target).ok_or_else(|| {
            DeliveryError::Unsendable(format!(
                "'{}' is not an address with a scheme",
                model::Untrusted(target)
            ))
        })?;
        self.by_scheme
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(scheme))
            .map(|(_, sender)| sender)
            .ok_or_else(|| DeliveryError::UnsupportedScheme {
                scheme: scheme.to_ascii_lowercase(),
            })
    }
}

impl Outbound for Senders {
    fn send<'a>(&'a self, target: &'a str, req: &'a Request, limits: Limits) -> Delivery<'a> {
        Box::pin(async move {
            let sender = self.sender(target).inspect_err(|e| {
                tracing::warn!(target_url = %model::Untrusted(target), reason = %e, "not sent: no binding for the target");
            })?;
            // The bound holds whatever the binding does with it.
            tokio::time::timeout(limits.timeout, sender.send(target, req, limits))
                .await
                .map_err(|_| DeliveryError::Timeout(limits.timeout))?
        })
    }
}

/// The scheme of `target` (`http` of `http://..`): letters, digits, `+`, `-`, `.`, starting
/// with a letter (RFC 3986 clause 3.1).
fn scheme_of(target: &str) -> Option<&str> {
    let (scheme, _) = target.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Operation;

    #[derive(Debug)]
    struct Echo;

    impl Outbound for Echo {
        fn send<'a>(&'a self, _: &'a str, req: &'a Request, _: Limits) -> Delivery<'a> {
            Box::pin(async move { Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, None)) })
        }
    }

    #[derive(Debug)]
    struct Silent;

    impl Outbound for Silent {
        fn send<'a>(&'a self, _: &'a str, _: &'a Request, _: Limits) -> Delivery<'a> {
            Box::pin(std::future::pending())
        }
    }

    const LIMITS: Limits = Limits {
        timeout: Duration::from_millis(50),
        max_body_bytes: 1024,
    };

    #[test]
    fn schemes_are_read_strictly() {
        assert_eq!(scheme_of("http://h/p"), Some("http"));
        assert_eq!(scheme_of("coap+tcp://h"), Some("coap+tcp"));
        assert_eq!(scheme_of("/id-in/cse-in"), None);
        assert_eq!(scheme_of("1x://h"), None);
        assert_eq!(scheme_of("://h"), None);
        assert_eq!(scheme_of("a b://h"), None);
    }

    #[tokio::test]
    async fn the_scheme_chooses_the_sender() {
        let senders = Senders::new()
            .with("HTTP", Arc::new(Echo))
            .with("mqtt", Arc::new(Silent));
        let req = Request::new(Operation::Notify, "", Some("/id-in".into()));
        assert!(senders.reaches("Http://h/n") && !senders.reaches("coap://h/n"));
        let ok = senders.send("http://h/n", &req, LIMITS).await;
        assert_eq!(ok.map(|r| r.rsc), Ok(ResponseStatusCode::Ok));
        assert_eq!(
            senders.send("coap://h/n", &req, LIMITS).await.err(),
            Some(DeliveryError::UnsupportedScheme {
                scheme: "coap".into()
            })
        );
        assert!(matches!(
            senders.send("no-scheme", &req, LIMITS).await,
            Err(DeliveryError::Unsendable(_))
        ));
        assert_eq!(
            senders.send("mqtt://h/n", &req, LIMITS).await.err(),
            Some(DeliveryError::Timeout(LIMITS.timeout))
        );
    }
}
